package engine_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/pyudf/pyudf/arrowconv"
	"github.com/pyudf/pyudf/engine"
)

// batchFromJSON builds a record batch in C memory (arrowconv's allocator), so
// that it crosses into Python without a copy.
func batchFromJSON(schema *arrow.Schema, rows string) arrow.RecordBatch {
	rec, _, err := array.RecordFromJSON(arrowconv.DefaultAllocator, schema, strings.NewReader(rows))
	if err != nil {
		log.Fatal(err)
	}
	return rec
}

// twoBigints is a batch of two BIGINT columns, a and b.
func twoBigints() arrow.RecordBatch {
	return batchFromJSON(arrow.NewSchema([]arrow.Field{
		{Name: "a", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "b", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	}, nil), `[{"a": 1, "b": 10}, {"a": 2, "b": 20}, {"a": null, "b": 30}]`)
}

// Eval runs a function over a whole record batch in one crossing. How the
// function sees the batch follows its declaration, as in PyFlink: a general
// UDF one row at a time (the loop runs in C), a Pandas UDF one pd.Series per
// column, an Arrow UDF one pyarrow.Array per column.
func ExampleFunction_Eval() {
	ctx := context.Background()
	eng, err := engine.New(ctx, engine.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close()
	mod, err := eng.LoadSource(ctx, "adds.py", `
import pyarrow.compute as pc
from pyflink.table.udf import udf

@udf(input_types=['BIGINT', 'BIGINT'], result_type='BIGINT')
def add(a, b):
    return None if a is None else a + b

@udf(input_types=['BIGINT', 'BIGINT'], result_type='BIGINT', func_type="pandas")
def add_pandas(a, b):          # a, b: pandas.Series
    return a + b

@udf(input_types=['BIGINT', 'BIGINT'], result_type='BIGINT', func_type="arrow")
def add_arrow(a, b):           # a, b: pyarrow.Array
    return pc.add(a, b)
`)
	if err != nil {
		log.Fatal(err)
	}
	batch := twoBigints()
	defer batch.Release()
	for _, name := range []string{"add", "add_pandas", "add_arrow"} {
		f, err := mod.Function(ctx, name)
		if err != nil {
			log.Fatal(err)
		}
		res, err := f.Eval(ctx, batch) // an arrow.Array of the result type
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(name, res)
		res.Release()
	}
	// Output:
	// add [11 22 (null)]
	// add_pandas [11 22 (null)]
	// add_arrow [11 22 (null)]
}

// Map is PyFlink's row-based map: each row arrives as a Row (fields by name),
// the result is a record batch of the declared ROW's fields.
func ExampleFunction_Map() {
	ctx := context.Background()
	eng, err := engine.New(ctx, engine.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close()
	mod, err := eng.LoadSource(ctx, "enrich.py", `
from pyflink.common import Row
from pyflink.table.udf import udf

@udf(result_type='ROW<total BIGINT, big BOOLEAN>')
def enrich(row):
    total = (row.a or 0) + row["b"]
    return Row(total=total, big=total > 20)
`)
	if err != nil {
		log.Fatal(err)
	}
	enrich, err := mod.Function(ctx, "enrich")
	if err != nil {
		log.Fatal(err)
	}
	batch := twoBigints()
	defer batch.Release()
	out, err := enrich.Map(ctx, batch)
	if err != nil {
		log.Fatal(err)
	}
	defer out.Release()
	if err := array.RecordToJSON(out, os.Stdout); err != nil {
		log.Fatal(err)
	}
	// Output:
	// {"big":false,"total":11}
	// {"big":true,"total":22}
	// {"big":true,"total":30}
}

// Explode runs a table function over every row of a batch: the result has a
// column "row" (the input row that produced each output row), then the
// declared result fields.
func ExampleFunction_Explode() {
	ctx := context.Background()
	eng, err := engine.New(ctx, engine.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close()
	mod, err := eng.LoadSource(ctx, "words.py", `
from pyflink.table.udf import udtf

@udtf(input_types=['STRING'], result_types=['STRING'])
def words(line):
    for w in line.split():
        yield w
`)
	if err != nil {
		log.Fatal(err)
	}
	words, err := mod.Function(ctx, "words")
	if err != nil {
		log.Fatal(err)
	}
	lines := batchFromJSON(arrow.NewSchema([]arrow.Field{{Name: "line", Type: arrow.BinaryTypes.String}}, nil),
		`[{"line": "to be"}, {"line": ""}, {"line": "or not"}]`)
	defer lines.Release()
	out, err := words.Explode(ctx, lines)
	if err != nil {
		log.Fatal(err)
	}
	defer out.Release()
	if err := array.RecordToJSON(out, os.Stdout); err != nil {
		log.Fatal(err)
	}
	// Output:
	// {"f0":"to","row":0}
	// {"f0":"be","row":0}
	// {"f0":"or","row":2}
	// {"f0":"not","row":2}
}

// Reduce runs a Pandas UDAF over a batch (a window's rows, say): one
// pd.Series per column in, one scalar out.
func ExampleFunction_Reduce() {
	ctx := context.Background()
	eng, err := engine.New(ctx, engine.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close()
	mod, err := eng.LoadSource(ctx, "means.py", `
from pyflink.table.udf import udaf

@udaf(input_types=['BIGINT', 'BIGINT'], result_type='DOUBLE', func_type="pandas")
def mean_sum(a, b):              # a null arrives as NaN, which mean() skips
    return float((a + b).mean())
`)
	if err != nil {
		log.Fatal(err)
	}
	meanSum, err := mod.Function(ctx, "mean_sum") // a Pandas UDAF opens as a Function
	if err != nil {
		log.Fatal(err)
	}
	batch := twoBigints()
	defer batch.Release()
	fmt.Println(meanSum.Reduce(ctx, batch))
	// Output:
	// 16.5 <nil>
}
