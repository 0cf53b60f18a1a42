package engine

import (
	"context"
	"errors"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/pyudf/pyudf/bridge"
)

const tableSource = `
from pyflink.table import DataTypes, Row
from pyflink.table.udf import TableFunction, udtf

@udtf(result_types=[DataTypes.STRING()])
def split(s):
    for word in s.split():
        yield word

class WordLengths(TableFunction):
    def eval(self, s, min_len):
        if s is None:
            return None  # no rows
        for word in s.split():
            if len(word) >= min_len:
                yield Row(word, len(word))

word_lengths = udtf(WordLengths(), input_types=['STRING', 'INT'], result_types=['STRING', 'BIGINT'])

@udtf(result_types=['STRING', 'BIGINT'])
def bad_arity(s):
    yield ("only one value",)

@udtf(result_types=['BIGINT'])
def fails(n):
    yield 1
    raise ValueError("stopped after one row")
`

func tableModule(t *testing.T) *Module {
	return loadModule(t, Config{}, "tables.py", tableSource)
}

func collect(t *testing.T, f *Function, args ...any) []bridge.Row {
	t.Helper()
	var out []bridge.Row
	for row, err := range f.Rows(context.Background(), args...) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, row)
	}
	return out
}

func TestTableFunctionRows(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := tableModule(t)
		if got := collect(t, function(t, m, "split"), "to be or not"); !sameValue(rowsAsAny(got), []any{bridge.Row{"to"}, bridge.Row{"be"}, bridge.Row{"or"}, bridge.Row{"not"}}) {
			t.Errorf("split = %v", got)
		}
		wl := function(t, m, "word_lengths")
		if got := collect(t, wl, "a quick fox", 3); !sameValue(rowsAsAny(got), []any{bridge.Row{"quick", int64(5)}, bridge.Row{"fox", int64(3)}}) {
			t.Errorf("word_lengths = %v", got)
		}
		if got := collect(t, wl, nil, 1); len(got) != 0 {
			t.Errorf("None input gave %v", got)
		}
		for row, err := range wl.Rows(context.Background(), "stop early here", 1) {
			if err != nil || row[0] != "stop" {
				t.Errorf("first row %v, %v", row, err)
			}
			break // stopping the iteration early is fine
		}
	})
}

func rowsAsAny(rows []bridge.Row) []any {
	out := make([]any, len(rows))
	for i, r := range rows {
		out[i] = r
	}
	return out
}

func TestTableFunctionErrors(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := tableModule(t)
		ctx := context.Background()
		for _, c := range []struct {
			name    string
			args    []any
			message string
		}{
			{"fails", []any{int64(3)}, `function "fails": ValueError: stopped after one row`},
			{"bad_arity", []any{"x"}, `result[0]: 1 values for ROW<f0 STRING, f1 BIGINT>, which has 2 fields`},
			{"word_lengths", []any{"x"}, `function "word_lengths" takes 2 arguments (STRING, INT), got 1`},
		} {
			n := 0
			for row, err := range function(t, m, c.name).Rows(ctx, c.args...) {
				n++
				if err == nil || row != nil {
					t.Errorf("%s: row %v, err %v", c.name, row, err)
					continue
				}
				wantMessage(t, err, c.message)
			}
			if n != 1 {
				t.Errorf("%s yielded %d times, want the error once", c.name, n)
			}
		}
		if _, err := function(t, m, "split").Call(ctx, "x"); !errors.Is(err, ErrUnsupported) {
			t.Errorf("Call of a table function: %v", err)
		}
	})
}

func TestTableFunctionExplode(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := tableModule(t)
		mem := checkedAllocator(t)
		rec := batchOf(t, mem, arrow.BinaryTypes.String, `["a bb ccc", null, "dddd", ""]`, arrow.PrimitiveTypes.Int32, `[2, 1, 1, 1]`)
		out, err := function(t, m, "word_lengths").Explode(context.Background(), rec)
		if err != nil {
			t.Fatal(err)
		}
		defer out.Release()
		want := `[{"f0":"bb","f1":2,"row":0},{"f0":"ccc","f1":3,"row":0},{"f0":"dddd","f1":4,"row":2}]`
		if got := recordJSON(t, out); got != want {
			t.Errorf("explode = %s\nwant %s", got, want)
		}
		if s := out.Schema(); s.Field(0).Name != "row" || s.Field(1).Name != "f0" || s.Field(2).Name != "f1" {
			t.Errorf("explode columns %s, want row, f0, f1", s)
		}
		_, err = function(t, m, "bad_arity").Explode(context.Background(), batchOf(t, mem, arrow.BinaryTypes.String, `["x"]`))
		wantMessage(t, err, "row 0: result: the table function produced 1 values for 2 result fields")
		empty := batchOf(t, mem, arrow.BinaryTypes.String, `[]`, arrow.PrimitiveTypes.Int32, `[]`)
		out2, err := function(t, m, "word_lengths").Explode(context.Background(), empty)
		if err != nil || out2.NumRows() != 0 || out2.NumCols() != 3 {
			t.Errorf("explode of zero rows: %v, %v", out2, err)
		}
		if out2 != nil {
			out2.Release()
		}
	})
}
