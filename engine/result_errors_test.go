package engine

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/pyudf/pyudf/bridge"
)

const resultErrorsSource = `
import pandas as pd
import pyarrow as pa
from pyflink.table.udf import AggregateFunction, udaf, udf, udtf
from pyudf import Row

def add(a, b):
    return a + b
add = udf(add, input_types=['BIGINT', 'BIGINT'], result_type='BIGINT')

str_for_bigint = udf(lambda x: "s" if x == 2 else x, input_types=['BIGINT'], result_type='BIGINT')

def _mixed(x):
    if x == 1:
        return "one"
    if x == 2:
        raise ValueError("two")
    if x == 3:
        return 2 ** 70
    return None if x is None else x * 10

mixed = udf(_mixed, input_types=['BIGINT'], result_type='BIGINT')

def _mixed_s(s):
    if s == "bad":
        return 7
    if s == "raise":
        raise ValueError("raised")
    return s

mixed_s = udf(_mixed_s, input_types=['STRING'], result_type='STRING')  # the generic row loop
str_for_bigint_s = udf(lambda s: "s" if s == "b" else 1, input_types=['STRING'], result_type='BIGINT')
raises_type_error = udf(lambda x: int("x", "y"), input_types=['BIGINT'], result_type='BIGINT')
pandas_short = udf(lambda x: x[:1], input_types=['BIGINT'], result_type='BIGINT', func_type='pandas')
pandas_raises = udf(lambda x: int("x", "y"), input_types=['BIGINT'], result_type='BIGINT', func_type='pandas')
arrow_strings = udf(lambda x: pa.array(["a"] * len(x)), input_types=['BIGINT'], result_type='BIGINT', func_type='arrow')
row_missing = udf(lambda r: Row(id=r.id), input_types=['ROW<id BIGINT>'], result_type='ROW<id BIGINT, label STRING>')
pandas_map_short = udf(lambda df: df[:1], input_types=['ROW<id BIGINT>'], result_type='ROW<id BIGINT>', func_type='pandas')
series_udaf = udaf(lambda v: v, input_types=['BIGINT'], result_type='BIGINT', func_type='pandas')

@udtf(input_types=['STRING'], result_types=['STRING', 'BIGINT'])
def bad_table(s):
    yield s, "not a number"

class BadValue(AggregateFunction):
    def create_accumulator(self):
        return [0]
    def accumulate(self, acc, v):
        acc[0] += v
    def get_value(self, acc):
        return "not a number"

bad_value = udaf(BadValue(), input_types=['BIGINT'], result_type='BIGINT')
`

// wantResultError checks that err is a *bridge.ConversionError about the
// result (not a PythonError) at row, whose message holds parts.
func wantResultError(t *testing.T, what string, err error, row int, parts ...string) {
	t.Helper()
	var ce *bridge.ConversionError
	if !errors.As(err, &ce) {
		t.Errorf("%s: got %T %v, want a *bridge.ConversionError", what, err, err)
		return
	}
	var pe *bridge.PythonError
	if errors.As(err, &pe) {
		t.Errorf("%s: also a PythonError", what)
	}
	if !strings.HasPrefix(ce.Path, "result") || ce.Row != row {
		t.Errorf("%s: path %q row %d, want result at row %d (%v)", what, ce.Path, ce.Row, row, err)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("%s: %q does not mention %q", what, err, p)
		}
	}
}

// TestResultErrorsAreConversionErrorsEverywhere: a UDF returning something
// invalid is a *bridge.ConversionError on every path and in both modes;
// a UDF raising (even a TypeError) is a *bridge.PythonError.
func TestResultErrorsAreConversionErrorsEverywhere(t *testing.T) {
	modes(t, func(t *testing.T) {
		ctx := context.Background()
		m := loadModule(t, Config{}, "result_errors.py", resultErrorsSource)
		mem := checkedAllocator(t)
		ints := batchOf(t, mem, arrow.PrimitiveTypes.Int64, `[1, 2, 3]`)
		strs := batchOf(t, mem, arrow.BinaryTypes.String, `["a", "b"]`)

		_, err := function(t, m, "str_for_bigint").Call(ctx, int64(2))
		wantResultError(t, "Call", err, -1, `function "str_for_bigint": result: Python str is not a BIGINT`)
		_, err = function(t, m, "str_for_bigint").CallValues(ctx, bridge.Int64(2))
		wantResultError(t, "CallValues", err, -1, `result: Python str is not a BIGINT`)
		_, err = function(t, m, "str_for_bigint").Eval(ctx, ints) // fixed-width C loop (thread mode)
		wantResultError(t, "Eval fixed", err, 1, `function "str_for_bigint": row 1: result: Python str is not a BIGINT`)
		_, err = function(t, m, "str_for_bigint_s").Eval(ctx, strs) // pyarrow path
		wantResultError(t, "Eval pyarrow", err, 1, `row 1: result: Python str is not a BIGINT`)
		_, err = function(t, m, "pandas_short").Eval(ctx, ints)
		wantResultError(t, "Pandas UDF", err, -1, `result: the Pandas UDF's result has 1 values for a batch of 3 rows`)
		_, err = function(t, m, "arrow_strings").Eval(ctx, ints)
		wantResultError(t, "Arrow UDF", err, -1, `result: the Arrow UDF's result cannot be converted to int64`)
		rows := renamed(t, batchOf(t, mem, arrow.PrimitiveTypes.Int64, `[1, 2]`), "id")
		_, err = function(t, m, "row_missing").Map(ctx, rows)
		wantResultError(t, "Map", err, 0, `row 0: result: `, `field 'label' of ROW<id BIGINT, label STRING> is missing`)
		_, err = function(t, m, "pandas_map_short").Map(ctx, rows)
		wantResultError(t, "Pandas Map", err, -1, `result: the Pandas map's result has 1 values for a batch of 2 rows`)
		_, err = function(t, m, "series_udaf").Reduce(ctx, ints)
		wantResultError(t, "Reduce", err, -1, `result: the Pandas UDAF's result must be a scalar, not Series`)
		for _, err := range function(t, m, "bad_table").Rows(ctx, "x") {
			wantResultError(t, "Rows", err, -1, `result[0].f1: `, `Python str is not a BIGINT`)
			break
		}
		_, err = function(t, m, "bad_table").Explode(ctx, batchOf(t, mem, arrow.BinaryTypes.String, `["x"]`))
		wantResultError(t, "Explode", err, -1, `result: the table function's 'f1' values cannot be converted to int64`)
		agg := openAggregate(t, m, "bad_value")
		if err := agg.Accumulate(ctx, "k", int64(1)); err != nil {
			t.Fatal(err)
		}
		_, err = agg.Value(ctx, "k")
		wantResultError(t, "Aggregate.Value", err, -1, `result: Python str is not a BIGINT`)

		// The UDF's own exceptions stay PythonErrors, a TypeError included.
		for what, err := range map[string]error{
			"Call raising":   func() error { _, err := function(t, m, "raises_type_error").Call(ctx, int64(1)); return err }(),
			"Eval raising":   func() error { _, err := function(t, m, "raises_type_error").Eval(ctx, ints); return err }(),
			"Pandas raising": func() error { _, err := function(t, m, "pandas_raises").Eval(ctx, ints); return err }(),
		} {
			if pe := (*bridge.PythonError)(nil); errors.As(err, &pe) && pe.Type != "TypeError" {
				t.Errorf("%s: type %s, want the UDF's TypeError", what, pe.Type)
			}
			var pe *bridge.PythonError
			var ce *bridge.ConversionError
			if !errors.As(err, &pe) || errors.As(err, &ce) {
				t.Errorf("%s: got %T %v, want the UDF's PythonError", what, err, err)
			}
		}
		stillWorks(t, m)
	})
}

// TestEvalRowErrorsKeepsRowsWhoseResultDoesNotConvert: under EvalRowErrors a
// row returning a value the result type refuses is null with its reason, as
// a raising row is null with its exception, and the other rows keep their
// values; Eval still fails the batch on it (or on a row before it that
// raises); a Stream reports the row as a
// *bridge.ConversionError, the raising one as a *bridge.PythonError.
func TestEvalRowErrorsKeepsRowsWhoseResultDoesNotConvert(t *testing.T) {
	modes(t, func(t *testing.T) {
		ctx := context.Background()
		m := loadModule(t, Config{}, "result_errors.py", resultErrorsSource)
		mem := checkedAllocator(t)
		f := function(t, m, "mixed")
		batch := batchOf(t, mem, arrow.PrimitiveTypes.Int64, `[0, 1, 2, 3, 4, null]`)
		res, errs, err := f.EvalRowErrors(ctx, batch)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Release()
		defer errs.Release()
		got, msgs := res.(*array.Int64), errs.(*array.String)
		wantMsg := []string{"", "ConversionError: result: Python str is not a BIGINT", "ValueError: two",
			"ConversionError: result: 1180591620717411303424 overflows BIGINT", "", ""}
		wantVal := []int64{0, 0, 0, 0, 40, 0}
		for i := range wantMsg {
			if msg := msgs.ValueStr(i); wantMsg[i] == "" && msgs.IsValid(i) || wantMsg[i] != "" && msg != wantMsg[i] {
				t.Errorf("row %d: message %q, want %q", i, msg, wantMsg[i])
			}
			if valid := wantMsg[i] == "" && i != 5; got.IsValid(i) != valid || valid && got.Value(i) != wantVal[i] {
				t.Errorf("row %d: result %s (valid %v), want %d (valid %v)", i, got.ValueStr(i), got.IsValid(i), wantVal[i], valid)
			}
		}
		_, err = f.Eval(ctx, batchOf(t, mem, arrow.PrimitiveTypes.Int64, `[0, 1]`))
		wantResultError(t, "Eval", err, 1, `row 1: result: Python str is not a BIGINT`)
		// A bad result and a raising row: the first of them fails the batch,
		// in every mode and through both of thread mode's row loops.
		for _, c := range []struct {
			f               *Function
			badFirst, raise arrow.RecordBatch
			reason          string
		}{
			{f, batchOf(t, mem, arrow.PrimitiveTypes.Int64, `[0, 1, 2]`), batchOf(t, mem, arrow.PrimitiveTypes.Int64, `[0, 2, 1]`),
				`row 1: result: Python str is not a BIGINT`},
			{function(t, m, "mixed_s"), batchOf(t, mem, arrow.BinaryTypes.String, `["ok", "bad", "raise"]`),
				batchOf(t, mem, arrow.BinaryTypes.String, `["ok", "raise", "bad"]`), `row 1: result: Python int is not a STRING`},
		} {
			_, err = c.f.Eval(ctx, c.badFirst)
			wantResultError(t, c.f.Name()+": Eval, a bad result before a raising row", err, 1, c.reason)
			_, err = c.f.Eval(ctx, c.raise)
			if pe := (*bridge.PythonError)(nil); !errors.As(err, &pe) || pe.Type != "ValueError" || pe.Row != 1 {
				t.Errorf("%s: Eval, a raising row before a bad result: %v, want the ValueError of row 1", c.f.Name(), err)
			}
		}

		s, err := f.Stream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for _, x := range []int64{0, 1, 2} {
				s.Send(x)
			}
			s.Close()
		}()
		var results []StreamResult
		for r := range s.Results() {
			results = append(results, r)
		}
		var ce *bridge.ConversionError
		var pe *bridge.PythonError
		switch {
		case len(results) != 3:
			t.Fatalf("stream: %d results, want 3", len(results))
		case results[0].Err != nil || results[0].Value != int64(0):
			t.Errorf("stream row 0: %v, %v", results[0].Value, results[0].Err)
		case !errors.As(results[1].Err, &ce) || ce.Path != "result" || ce.Reason != "Python str is not a BIGINT":
			t.Errorf("stream row 1: %v, want a ConversionError about the result", results[1].Err)
		case !errors.As(results[2].Err, &pe) || pe.Type != "ValueError" || pe.Message != "two":
			t.Errorf("stream row 2: %v, want the ValueError", results[2].Err)
		}
		stillWorks(t, m)
	})
}
