package engine

import (
	"context"
	"errors"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/pyudf/pyudf/bridge"
)

const fixedSource = `
from pyudf import udf, DataTypes
str_for_bigint = udf(lambda x: "s" if x == 2 else x, input_types=['BIGINT'], result_type='BIGINT')
too_big = udf(lambda x: x * 100, input_types=['INT'], result_type='TINYINT')
none_not_null = udf(lambda x: None if x == 3 else x, input_types=['BIGINT'], result_type=DataTypes.BIGINT(False))
negate = udf(lambda b: None if b is None else not b, input_types=['BOOLEAN'], result_type='BOOLEAN')
mix = udf(lambda i, f, u: None if None in (i, f, u) else i + f + u, input_types=['SMALLINT', 'FLOAT', 'INT'], result_type='DOUBLE')
`

func fixedModule(t *testing.T) *Module {
	return loadModule(t, Config{}, "fixed.py", fixedSource)
}

func TestFixedPathResultErrorsNameTheRow(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := fixedModule(t)
		mem := checkedAllocator(t)
		for _, c := range []struct {
			name, json string
			message    string // the same words in both modes: the C loop's and the worker's
			typ        arrow.DataType
			row        int
		}{
			{"str_for_bigint", `[1, 2, 3]`, `row 1: result: Python str is not a BIGINT`, arrow.PrimitiveTypes.Int64, 1},
			{"too_big", `[1, 2]`, `row 1: result: 200 overflows TINYINT`, arrow.PrimitiveTypes.Int32, 1},
		} {
			_, err := function(t, m, c.name).Eval(context.Background(), batchOf(t, mem, c.typ, c.json))
			var ce *bridge.ConversionError
			if !errors.As(err, &ce) || ce.Row != c.row || ce.Path != "result" {
				t.Fatalf("%s: want a result ConversionError at row %d, got %v", c.name, c.row, err)
			}
			wantMessage(t, err, c.message)
		}
		_, err := function(t, m, "none_not_null").Eval(context.Background(), batchOf(t, mem, arrow.PrimitiveTypes.Int64, `[1, 3]`))
		wantMessage(t, err, `function "none_not_null": result: 1 None results for BIGINT NOT NULL`)
	})
}

func TestFixedPathSlicesBooleansAndMixedWidths(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := fixedModule(t)
		for _, mem := range []memory.Allocator{checkedAllocator(t), memory.NewGoAllocator()} {
			bools := batchOf(t, mem, arrow.FixedWidthTypes.Boolean, `[true, false, null, true, false, true, true, false, true]`)
			if got := eval(t, m, "negate", bools); got != `[false,true,null,false,true,false,false,true,false]` {
				t.Errorf("negate = %s", got)
			}
			slice := bools.NewSlice(3, 9)
			if got := eval(t, m, "negate", slice); got != `[false,true,false,false,true,false]` {
				t.Errorf("negate over a slice = %s", got)
			}
			slice.Release()
			mixed := batchOf(t, mem, arrow.PrimitiveTypes.Int16, `[1, -2, null]`, arrow.PrimitiveTypes.Float32, `[0.5, 1.5, 2]`,
				arrow.PrimitiveTypes.Int32, `[100, 200, 300]`)
			if got := eval(t, m, "mix", mixed); got != `[101.5,199.5,null]` {
				t.Errorf("mix = %s", got)
			}
		}
	})
}

// The C loop gives an int or float argument the next row's value in place
// once nothing else refers to it; a UDF that keeps some of its arguments
// must still see each kept one unchanged, through sign changes, values
// past one digit (2^30) and the small-int cache.
func TestFixedPathArgumentsAUDFKeepsStayTheirOwn(t *testing.T) {
	m := loadModule(t, Config{}, "keep.py", `
from pyudf import udf
kept = []
def keep_int(i):
    if i is not None and i % 3 == 0:
        kept.append(i)
    return None if i is None else -i
def keep_float(f):
    if f is not None and f > 5:
        kept.append(f)
    return None if f is None else -f
keep_ints = udf(keep_int, input_types=['BIGINT'], result_type='BIGINT')
keep_small_ints = udf(keep_int, input_types=['SMALLINT'], result_type='BIGINT')
keep_floats = udf(keep_float, input_types=['DOUBLE'], result_type='DOUBLE')
kept_so_far = udf(lambda: repr(kept), input_types=[], result_type='STRING')
`)
	mem := checkedAllocator(t)
	for _, c := range []struct {
		name, typ string
		in, want  string
		dt        arrow.DataType
	}{
		{"keep_ints", "BIGINT",
			`[0, 300, -300, 301, 3000, -3000, 1073741823, 1073741824, 6, -3, null, 999, -999, 4611686018427387904, 1000000005, -7, 7]`,
			`[0,-300,300,-301,-3000,3000,-1073741823,-1073741824,-6,3,null,-999,999,-4611686018427387904,-1000000005,7,-7]`,
			arrow.PrimitiveTypes.Int64},
		{"keep_small_ints", "SMALLINT", `[3000, -3000, 3001, 255, 258, -258]`, `[-3000,3000,-3001,-255,-258,258]`,
			arrow.PrimitiveTypes.Int16},
		{"keep_floats", "DOUBLE", `[0.5, 6.5, -1.5, 7.25, null, 8, 2]`, `[-0.5,-6.5,1.5,-7.25,null,-8,-2]`,
			arrow.PrimitiveTypes.Float64},
	} {
		if got := eval(t, m, c.name, batchOf(t, mem, c.dt, c.in)); got != c.want {
			t.Errorf("%s(%s) = %s, want %s", c.name, c.in, got, c.want)
		}
	}
	got, err := function(t, m, "kept_so_far").Call(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := "[0, 300, -300, 3000, -3000, 1073741823, 6, -3, 999, -999, 1000000005, " +
		"3000, -3000, 255, 258, -258, " +
		"6.5, 7.25, 8.0]"
	if got != want {
		t.Errorf("the arguments the UDFs kept are %s, want %s", got, want)
	}
}
