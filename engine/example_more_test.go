package engine_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/pyudf/pyudf/bridge"
	"github.com/pyudf/pyudf/engine"
)

// EvalRowErrors keeps a batch going when rows raise: a failing row's result
// is null and its message is in errs, at the same index.
func ExampleFunction_EvalRowErrors() {
	ctx := context.Background()
	eng, err := engine.New(ctx, engine.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close()
	mod, err := eng.LoadSource(ctx, "ratio.py", `
from pyflink.table.udf import udf

@udf(input_types=['BIGINT', 'BIGINT'], result_type='BIGINT')
def ratio(a, b):
    return b // a
`)
	if err != nil {
		log.Fatal(err)
	}
	ratio, err := mod.Function(ctx, "ratio")
	if err != nil {
		log.Fatal(err)
	}
	batch := batchFromJSON(arrow.NewSchema([]arrow.Field{
		{Name: "a", Type: arrow.PrimitiveTypes.Int64},
		{Name: "b", Type: arrow.PrimitiveTypes.Int64},
	}, nil), `[{"a": 2, "b": 10}, {"a": 0, "b": 20}, {"a": 5, "b": 30}]`)
	defer batch.Release()
	results, errs, err := ratio.EvalRowErrors(ctx, batch)
	if err != nil {
		log.Fatal(err)
	}
	defer results.Release()
	defer errs.Release()
	fmt.Println(results)
	fmt.Println(errs)
	// Output:
	// [5 (null) 6]
	// [(null) "ZeroDivisionError: integer division or modulo by zero" (null)]
}

// RowErrorOf tells EvalRowErrors' two kinds of row errors apart: a row whose
// result does not convert to the declared type, and a row that raised.
func ExampleRowErrorOf() {
	ctx := context.Background()
	eng, err := engine.New(ctx, engine.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close()
	mod, err := eng.LoadSource(ctx, "parse.py", `
from pyflink.table.udf import udf

@udf(input_types=['STRING'], result_type='BIGINT')
def parse(s):
    return s if s == "raw" else int(s)
`)
	if err != nil {
		log.Fatal(err)
	}
	parse, err := mod.Function(ctx, "parse")
	if err != nil {
		log.Fatal(err)
	}
	batch := batchFromJSON(arrow.NewSchema([]arrow.Field{{Name: "s", Type: arrow.BinaryTypes.String}}, nil),
		`[{"s": "7"}, {"s": "raw"}, {"s": "x"}]`)
	defer batch.Release()
	results, errs, err := parse.EvalRowErrors(ctx, batch)
	if err != nil {
		log.Fatal(err)
	}
	defer results.Release()
	defer errs.Release()
	msgs := errs.(*array.String)
	for row := range msgs.Len() {
		if !msgs.IsValid(row) {
			fmt.Println(row, "ok:", results.ValueStr(row))
			continue
		}
		var ce *bridge.ConversionError
		var pe *bridge.PythonError
		switch err := engine.RowErrorOf("parse", row, msgs.Value(row)); {
		case errors.As(err, &ce):
			fmt.Println(row, "returned a bad value:", ce.Reason)
		case errors.As(err, &pe):
			fmt.Printf("%d raised %s: %s\n", row, pe.Type, pe.Message)
		}
	}
	// Output:
	// 0 ok: 7
	// 1 returned a bad value: Python str is not a BIGINT
	// 2 raised ValueError: invalid literal for int() with base 10: 'x'
}

// NewPandasWindows drives a Pandas UDAF over windows: each firing window's
// rows reach it as one pd.Series per column.
func ExampleNewPandasWindows() {
	ctx := context.Background()
	eng, err := engine.New(ctx, engine.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close()
	mod, err := eng.LoadSource(ctx, "visited.py", `
from pyflink.table.udf import udaf

@udaf(input_types=['STRING'], result_type='STRING', func_type="pandas")
def visited(items):
    return "|".join(sorted(set(items)))
`)
	if err != nil {
		log.Fatal(err)
	}
	visited, err := mod.Function(ctx, "visited")
	if err != nil {
		log.Fatal(err)
	}
	w, err := engine.NewPandasWindows(engine.WindowSpec{Kind: engine.Tumbling, Size: time.Minute}, visited)
	if err != nil {
		log.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for i, item := range []string{"shoes", "hats", "shoes", "socks"} {
		if err := w.Add(ctx, "ada", t0.Add(time.Duration(i*20)*time.Second), item); err != nil {
			log.Fatal(err)
		}
	}
	results, err := w.Watermark(ctx, t0.Add(2*time.Minute))
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range results {
		fmt.Println(r.Key, r.Window.Start.Format("15:04"), r.Value)
	}
	// Output:
	// ada 12:00 hats|shoes
	// ada 12:01 socks
}
