package engine

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/pyudf/pyudf/arrowconv"
	"github.com/pyudf/pyudf/bridge"
	"github.com/pyudf/pyudf/cgo"
)

// checkedAllocator returns an allocator whose buffers cross to Python without
// a copy, and checks at the end of the test that nothing is left allocated.
func checkedAllocator(t *testing.T) *memory.CheckedAllocator {
	t.Helper()
	c := arrowconv.NewAllocator()
	arrowconv.Register(c)
	mem := memory.NewCheckedAllocator(c)
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	return mem
}

// batchOf builds a record batch from (type, JSON values) columns.
func batchOf(t *testing.T, mem memory.Allocator, cols ...any) arrow.RecordBatch {
	t.Helper()
	var fields []arrow.Field
	var arrays []arrow.Array
	for i := 0; i < len(cols); i += 2 {
		dt := cols[i].(arrow.DataType)
		arr, _, err := array.FromJSON(mem, dt, strings.NewReader(cols[i+1].(string)))
		if err != nil {
			t.Fatalf("column %d: %v", i/2, err)
		}
		fields = append(fields, arrow.Field{Name: fmt.Sprintf("c%d", i/2), Type: dt, Nullable: true})
		arrays = append(arrays, arr)
	}
	rec := array.NewRecordBatch(arrow.NewSchema(fields, nil), arrays, int64(arrays[0].Len()))
	for _, a := range arrays {
		a.Release()
	}
	t.Cleanup(rec.Release)
	return rec
}

func jsonOf(t *testing.T, a arrow.Array) string {
	t.Helper()
	b, err := a.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const batchSource = `
import pandas as pd
import pyarrow.compute as pc
from pyudf import udf

@udf(input_types=['BIGINT', 'BIGINT'], result_type='BIGINT')
def add(a, b):
    return None if a is None or b is None else a + b

add_pandas = udf(lambda a, b: a + b, input_types=['BIGINT', 'BIGINT'], result_type='BIGINT', func_type='pandas')
add_arrow = udf(lambda a, b: pc.add(a, b), input_types=['BIGINT', 'BIGINT'], result_type='BIGINT', func_type='arrow')
scale_pandas = udf(lambda x: x * 1.5, input_types=['DOUBLE'], result_type='DOUBLE', func_type='pandas')

@udf(input_types=['DOUBLE'], result_type='BOOLEAN', func_type='pandas')
def is_view(x):
    """True for each row when the Series is a view over the Arrow buffer."""
    return pd.Series([not x.to_numpy().flags.owndata] * len(x))

@udf(input_types=['BIGINT'], result_type='BIGINT')
def fail_on_3(x):
    if x == 3:
        raise ValueError("three is not allowed")
    return x * 10

wrong_length = udf(lambda x: x.iloc[:-1], input_types=['BIGINT'], result_type='BIGINT', func_type='pandas')
strings_for_double = udf(lambda x: x.astype(str) + "!", input_types=['DOUBLE'], result_type='DOUBLE', func_type='pandas')
scalar_result = udf(lambda x: 42, input_types=['DOUBLE'], result_type='DOUBLE', func_type='pandas')
upper = udf(lambda s: None if s is None else s.upper(), input_types=['STRING'], result_type='STRING')
upper_pandas = udf(lambda s: s.str.upper(), input_types=['STRING'], result_type='STRING', func_type='pandas')
count_nulls = udf(lambda x: pd.Series([int(x.isna().sum())] * len(x)), input_types=['DOUBLE'], result_type='BIGINT', func_type='pandas')

# Make the C shim's export of a plain result fail once: pyudf._batch hands it
# what bad_plain holds instead of the result's numpy array.
import numpy as np
import pyudf._batch as _batch
_plain_result = _batch._plain_result
bad_plain = []
def _hand_over_bad(result, result_type):
    _batch._plain_result = _plain_result
    return bad_plain[0]
def _export_fails(what):
    def f(x):
        bad_plain[:] = [what]
        _batch._plain_result = _hand_over_bad
        return x
    return udf(f, input_types=['BIGINT'], result_type='BIGINT', func_type='pandas')
two_d_plain = _export_fails(np.zeros((2, 2), dtype=np.int64))
no_buffer_plain = _export_fails(object())
narrow_plain = _export_fails(np.array([1, 2, 3], dtype=np.int32))  # BIGINT needs 8 bytes a value
`

func batchModule(t *testing.T) *Module {
	t.Helper()
	return loadModule(t, Config{}, "batch_udfs.py", batchSource)
}

func eval(t *testing.T, m *Module, name string, rec arrow.RecordBatch) string {
	t.Helper()
	res, err := function(t, m, name).Eval(context.Background(), rec)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	defer res.Release()
	return jsonOf(t, res)
}

func TestEvalThreeWays(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := batchModule(t)
		for _, mem := range []memory.Allocator{checkedAllocator(t), memory.NewGoAllocator()} {
			rec := batchOf(t, mem, arrow.PrimitiveTypes.Int64, `[1, 2, null, 4]`, arrow.PrimitiveTypes.Int64, `[10, 20, 30, null]`)
			for _, name := range []string{"add", "add_pandas", "add_arrow"} {
				if got := eval(t, m, name, rec); got != `[11,22,null,null]` {
					t.Errorf("%T %s = %s", mem, name, got)
				}
			}
		}
	})
}

func TestPandasSeriesAreViewsWithoutNulls(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := batchModule(t)
		rec := batchOf(t, checkedAllocator(t), arrow.PrimitiveTypes.Float64, `[1.5, 2.5, 3.5]`)
		if got := eval(t, m, "is_view", rec); got != `[true,true,true]` {
			t.Errorf("the Series of a null-free DOUBLE column is a copy: %s", got)
		}
		if got := eval(t, m, "scale_pandas", rec); got != `[2.25,3.75,5.25]` {
			t.Errorf("scale_pandas = %s", got)
		}
	})
}

func TestExceptionInTheMiddleOfABatchNamesTheRow(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := batchModule(t)
		rec := batchOf(t, checkedAllocator(t), arrow.PrimitiveTypes.Int64, `[1, 2, 3, 4]`)
		_, err := function(t, m, "fail_on_3").Eval(context.Background(), rec)
		var pe *bridge.PythonError
		if !errors.As(err, &pe) || pe.Row != 2 || pe.Type != "ValueError" {
			t.Fatalf("want a ValueError at row 2, got %#v", err)
		}
		wantMessage(t, err, `function "fail_on_3": eval: row 2: ValueError: three is not allowed`)
		if got := eval(t, m, "add", batchOf(t, checkedAllocator(t), arrow.PrimitiveTypes.Int64, `[1]`, arrow.PrimitiveTypes.Int64, `[1]`)); got != `[2]` {
			t.Errorf("engine unusable after the error: %s", got)
		}
	})
}

func TestRowErrorMode(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := batchModule(t)
		rec := batchOf(t, checkedAllocator(t), arrow.PrimitiveTypes.Int64, `[1, 3, null, 3]`)
		f := function(t, m, "fail_on_3")
		res, errs, err := f.EvalRowErrors(context.Background(), rec)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Release()
		defer errs.Release()
		if got := jsonOf(t, res); got != `[10,null,null,null]` {
			t.Errorf("results %s", got)
		}
		want := `[null,"ValueError: three is not allowed",` +
			`"TypeError: unsupported operand type(s) for *: 'NoneType' and 'int'","ValueError: three is not allowed"]`
		if got := jsonOf(t, errs); got != want {
			t.Errorf("errors %s\nwant %s", got, want)
		}
		if _, _, err := function(t, m, "add_pandas").EvalRowErrors(context.Background(), rec); !errors.Is(err, ErrUnsupported) {
			t.Errorf("row errors for a Pandas UDF: %v", err)
		}
	})
}

// RowErrorOf reads each kind of EvalRowErrors message, and the error it
// returns owns its text: the message may alias an array released after.
func TestRowErrorOf(t *testing.T) {
	for _, c := range []struct {
		message string
		want    error
	}{
		{"ValueError: three is not allowed", &bridge.PythonError{Function: "f", Op: "call", Row: 7, Type: "ValueError", Message: "three is not allowed"}},
		{"udfs.parse.<locals>.BadRow: field 2: not a number", &bridge.PythonError{Function: "f", Op: "call", Row: 7, Type: "udfs.parse.<locals>.BadRow", Message: "field 2: not a number"}},
		{"KeyError: ", &bridge.PythonError{Function: "f", Op: "call", Row: 7, Type: "KeyError"}},
		{"ConversionError: result: Python str is not a BIGINT", &bridge.ConversionError{Function: "f", Path: "result", Row: 7, Reason: "Python str is not a BIGINT"}},
		{"ConversionError: result.b[2]: Python int is out of range", &bridge.ConversionError{Function: "f", Path: "result.b[2]", Row: 7, Reason: "Python int is out of range"}},
	} {
		buf := []byte(c.message)
		got := RowErrorOf("f", 7, unsafe.String(&buf[0], len(buf)))
		for i := range buf {
			buf[i] = '#'
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("RowErrorOf(%q) = %#v, want %#v", c.message, got, c.want)
		}
	}
}

func TestPandasResultOfWrongLength(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := batchModule(t)
		rec := batchOf(t, checkedAllocator(t), arrow.PrimitiveTypes.Int64, `[1, 2, 3]`)
		_, err := function(t, m, "wrong_length").Eval(context.Background(), rec)
		var ce *bridge.ConversionError
		if !errors.As(err, &ce) || ce.Path != "result" || ce.Row != -1 {
			t.Fatalf("want a result ConversionError, got %v", err)
		}
		wantMessage(t, err, `function "wrong_length": result: the Pandas UDF's result has 2 values for a batch of 3 rows`)
	})
}

func TestPandasResultNotNumericForDouble(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := batchModule(t)
		rec := batchOf(t, checkedAllocator(t), arrow.PrimitiveTypes.Float64, `[1.5, 2]`)
		_, err := function(t, m, "strings_for_double").Eval(context.Background(), rec)
		wantMessage(t, err, "result: the Pandas UDF's result cannot be converted to double")
		_, err = function(t, m, "scalar_result").Eval(context.Background(), rec)
		wantMessage(t, err, "result: the Pandas UDF's result must be a Series or array-like of 2 values, not int")
	})
}

func TestBatchSchemaMismatch(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := batchModule(t)
		rec := batchOf(t, checkedAllocator(t), arrow.PrimitiveTypes.Int64, `[1]`, arrow.BinaryTypes.String, `["x"]`)
		_, err := function(t, m, "add").Eval(context.Background(), rec)
		wantMessage(t, err, `function "add": column 1 ("c1") is utf8, the function's argument 2 is BIGINT (Arrow int64)`)
		_, err = function(t, m, "add").Eval(context.Background(), batchOf(t, checkedAllocator(t), arrow.PrimitiveTypes.Int64, `[1]`))
		wantMessage(t, err, "the batch has 1 columns, the function takes 2 arguments")
	})
}

func TestBatchWithZeroRows(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := batchModule(t)
		rec := batchOf(t, checkedAllocator(t), arrow.PrimitiveTypes.Int64, `[]`, arrow.PrimitiveTypes.Int64, `[]`)
		for _, name := range []string{"add", "add_pandas", "add_arrow"} {
			res, err := function(t, m, name).Eval(context.Background(), rec)
			if err != nil || res.Len() != 0 || res.DataType().ID() != arrow.INT64 {
				t.Errorf("%s on zero rows: %v, %v", name, res, err)
			}
			if res != nil {
				res.Release()
			}
		}
	})
}

func TestColumnOfNullsOnly(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := batchModule(t)
		rec := batchOf(t, checkedAllocator(t), arrow.PrimitiveTypes.Float64, `[null, null, null]`)
		if got := eval(t, m, "count_nulls", rec); got != `[3,3,3]` {
			t.Errorf("count_nulls = %s", got)
		}
		if got := eval(t, m, "scale_pandas", rec); got != `[null,null,null]` {
			t.Errorf("scale_pandas of nulls = %s", got)
		}
		strs := batchOf(t, checkedAllocator(t), arrow.BinaryTypes.String, `[null, null]`)
		for _, name := range []string{"upper", "upper_pandas"} {
			if got := eval(t, m, name, strs); got != `[null,null]` {
				t.Errorf("%s of nulls = %s", name, got)
			}
		}
	})
}

func TestDictionaryEncodedStrings(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := batchModule(t)
		mem := checkedAllocator(t)
		dt := &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}
		b := array.NewDictionaryBuilder(mem, dt).(*array.BinaryDictionaryBuilder)
		for _, s := range []string{"a", "b", "a"} {
			if err := b.AppendString(s); err != nil {
				t.Fatal(err)
			}
		}
		b.AppendNull()
		dict := b.NewArray()
		b.Release()
		rec := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "s", Type: dt, Nullable: true}}, nil), []arrow.Array{dict}, 4)
		dict.Release()
		defer rec.Release()
		for _, name := range []string{"upper", "upper_pandas"} {
			if got := eval(t, m, name, rec); got != `["A","B","A",null]` {
				t.Errorf("%s on dictionary strings = %s", name, got)
			}
		}
	})
}

// A Pandas UDF's result that already is the result's Arrow data (a numpy
// array of exactly the declared type, no NaN) reaches Go without pyarrow:
// the values are right, the numpy array stays alive as long as Go holds the
// result and no longer, and an export that fails is an error naming why.
func TestPandasPlainResults(t *testing.T) {
	m := loadModule(t, Config{}, "plain.py", batchSource+`
import gc, weakref
made = []
def doubled(x):
    out = x.to_numpy() * 2
    made.append(weakref.ref(out))
    return pd.Series(out, copy=False)
doubled_pandas = udf(doubled, input_types=['BIGINT'], result_type='BIGINT', func_type='pandas')

@udf(result_type='BIGINT')
def alive():
    gc.collect()
    return sum(ref() is not None for ref in made)
`)
	ctx := context.Background()
	mem := checkedAllocator(t)
	ints := batchOf(t, mem, arrow.PrimitiveTypes.Int64, `[1, -2, 3000000000]`)
	alive := func() int64 {
		v, err := function(t, m, "alive").Call(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return v.(int64)
	}
	live := cgo.PlainLive()
	res, err := function(t, m, "doubled_pandas").Eval(ctx, ints)
	if err != nil {
		t.Fatal(err)
	}
	if got := cgo.PlainLive() - live; got != 1 {
		t.Errorf("%d plain results live, want 1 (the result did not go out plain)", got)
	}
	if n := alive(); n != 1 {
		t.Errorf("while Go holds the result, %d of its numpy arrays are alive, want 1", n)
	}
	if got := jsonOf(t, res); got != `[2,-4,6000000000]` {
		t.Errorf("doubled = %s", got)
	}
	res.Release()
	if n := alive(); n != 0 || cgo.PlainLive() != live {
		t.Errorf("after Release: %d numpy arrays alive, %d plain results live, want 0 and %d", n, cgo.PlainLive(), live)
	}
	if got := eval(t, m, "scale_pandas", batchOf(t, mem, arrow.PrimitiveTypes.Float64, `[1, -2]`)); got != `[1.5,-3]` {
		t.Errorf("scale_pandas = %s", got)
	}

	for name, message := range map[string]string{
		"two_d_plain":     "TypeError: pyudf: a plain result must be one-dimensional, not 2-dimensional",
		"no_buffer_plain": "TypeError: a bytes-like object is required, not 'object'",
		"narrow_plain":    "its values are 4 bytes wide, not those of int64",
	} {
		_, err := function(t, m, name).Eval(ctx, ints)
		wantMessage(t, err, message)
	}
	if got := eval(t, m, "add_pandas", batchOf(t, mem, arrow.PrimitiveTypes.Int64, `[1]`, arrow.PrimitiveTypes.Int64, `[2]`)); got != `[3]` {
		t.Errorf("after failed exports: add_pandas = %s", got)
	}
	if cgo.PlainLive() != live {
		t.Errorf("%d plain results live after the test, want %d", cgo.PlainLive(), live)
	}
}

// A Pandas UDF whose columns are all numbers without nulls gets Series
// straight over the batch's buffers (cgo/arrays.h), without pyarrow: views,
// read-only, right through slices and every width; the batch stays alive
// while Python keeps a Series and is released once it does not.
func TestPandasPlainColumns(t *testing.T) {
	m := loadModule(t, Config{}, "plain_columns.py", `
import gc
import numpy as np
import pandas as pd
from pyudf import udf

kept = []

@udf(input_types=['TINYINT', 'SMALLINT', 'INT', 'BIGINT', 'FLOAT', 'DOUBLE'], result_type='DOUBLE', func_type='pandas')
def total(a, b, c, d, e, f):
    kept.append(d)
    return a + b + c + d + e + f

@udf(input_types=['BIGINT'], result_type='BIGINT', func_type='pandas')
def keep_one(d):
    kept.append(d)
    return d + 1

@udf(input_types=['BIGINT'], result_type='STRING', func_type='pandas')
def how(x):
    """How the column arrived: over what memory, a view or not, writable or not."""
    values = owner = x.to_numpy()
    while isinstance(owner, np.ndarray) and owner.base is not None:
        owner = owner.base
    return pd.Series(["%s view=%s writeable=%s" % (type(owner).__name__, not values.flags.owndata,
                                                    values.flags.writeable)] * len(x))

@udf(result_type='BIGINT')
def drop():
    kept.clear()
    gc.collect()
    return 0

@udf(result_type='BIGINT')
def kept_sum():
    return int(sum(s.sum() for s in kept))
`)
	ctx := context.Background()
	mem := checkedAllocator(t)
	call := func(name string) any {
		v, err := function(t, m, name).Call(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	before := cgo.PlainBatchesLive()
	all := batchOf(t, mem, arrow.PrimitiveTypes.Int8, `[1, -2, 3]`, arrow.PrimitiveTypes.Int16, `[300, 0, -300]`,
		arrow.PrimitiveTypes.Int32, `[70000, 1, 2]`, arrow.PrimitiveTypes.Int64, `[5000000000, 4, 5]`,
		arrow.PrimitiveTypes.Float32, `[0.5, 0.25, 0]`, arrow.PrimitiveTypes.Float64, `[0.125, 1, -1]`)
	if got := eval(t, m, "total", all); got != `[5000070301.625,4.25,-291]` {
		t.Errorf("total = %s", got)
	}
	slice := all.NewSlice(1, 3)
	defer slice.Release()
	if got := eval(t, m, "total", slice); got != `[4.25,-291]` {
		t.Errorf("total over a slice = %s", got)
	}
	if got := cgo.PlainBatchesLive() - before; got != 2 {
		t.Errorf("while Python keeps a Series of each, %d batches are held, want 2", got)
	}
	if got := call("kept_sum"); got != int64(5000000000+4+5+4+5) {
		t.Errorf("the kept Series sum to %v", got)
	}
	call("drop")
	if got := cgo.PlainBatchesLive() - before; got != 0 {
		t.Errorf("after Python dropped them, %d batches are held", got)
	}

	// Go lets go of its batch while Python still keeps a Series over it.
	allocated := mem.CurrentAlloc()
	col, _, err := array.FromJSON(mem, arrow.PrimitiveTypes.Int64, strings.NewReader(`[7, 8, 9]`))
	if err != nil {
		t.Fatal(err)
	}
	own := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "d", Type: arrow.PrimitiveTypes.Int64, Nullable: true}}, nil),
		[]arrow.Array{col}, 3)
	col.Release()
	if got := eval(t, m, "keep_one", own); got != `[8,9,10]` {
		t.Errorf("keep_one = %s", got)
	}
	own.Release()
	if mem.CurrentAlloc() == allocated {
		t.Error("the batch's memory was freed while Python keeps a Series over it")
	}
	if got := call("kept_sum"); got != int64(7+8+9) {
		t.Errorf("after Go released its batch, the kept Series sums to %v, want 24", got)
	}
	call("drop")
	if got := cgo.PlainBatchesLive() - before; got != 0 || mem.CurrentAlloc() != allocated {
		t.Errorf("after Python dropped it: %d batches held, %d bytes allocated, want 0 and %d",
			got, mem.CurrentAlloc(), allocated)
	}

	if got := eval(t, m, "how", batchOf(t, mem, arrow.PrimitiveTypes.Int64, `[1, 2]`)); !strings.Contains(got, `"PlainColumn view=True writeable=False"`) {
		t.Errorf("[1, 2] arrived as %s, want a read-only view over a PlainColumn", got)
	}
	// With nulls pyarrow converts the column (to float64 with NaN).
	if got := eval(t, m, "how", batchOf(t, mem, arrow.PrimitiveTypes.Int64, `[1, null]`)); strings.Contains(got, "PlainColumn") {
		t.Errorf("[1, null] arrived as %s, want it through pyarrow", got)
	}
	if got := cgo.PlainBatchesLive() - before; got != 0 {
		t.Errorf("%d batches still held", got)
	}
}

// _pyudf_host.plain_columns refuses what it cannot take with a clear error,
// and leaves a batch it declines (nulls) for pyarrow.
func TestPlainColumnsRefusesBadInput(t *testing.T) {
	m := loadModule(t, Config{}, "plain_columns_errors.py", `
import _pyudf_host
import pyarrow as pa
from pyarrow.cffi import ffi
from pyudf import udf

def exported(batch):
    array, schema = ffi.new("struct ArrowArray*"), ffi.new("struct ArrowSchema*")
    addrs = int(ffi.cast("uintptr_t", array)), int(ffi.cast("uintptr_t", schema))
    batch._export_to_c(*addrs)
    return (array, schema), addrs

@udf(result_type='STRING')
def outcomes():
    out = []
    keep, (array, schema) = exported(pa.RecordBatch.from_pydict({"a": pa.array([1, 2], pa.int64())}))
    for args in ((0, b""), (array, b"\x08\x08")):
        try:
            _pyudf_host.plain_columns(*args)
        except ValueError as exc:
            out.append(str(exc))
    keep2, (array2, schema2) = exported(pa.RecordBatch.from_pydict({"a": pa.array([1, None], pa.int64())}))
    out.append(repr(_pyudf_host.plain_columns(array2, b"\x08")))
    out.append(str(pa.RecordBatch._import_from_c(array2, schema2).column(0).to_pylist()))  # still there
    columns, rows = _pyudf_host.plain_columns(array, b"\x08")
    out.append("%d rows, %s" % (rows, bytes(columns[0])[:8].hex()))
    try:
        _pyudf_host.plain_columns(array, b"\x08")
    except ValueError as exc:
        out.append(str(exc))
    pa.Schema._import_from_c(schema)
    return " | ".join(out)
`)
	v, err := function(t, m, "outcomes").Call(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := "plain_columns: no batch at that address (null or released) | " +
		"plain_columns: the batch has 1 columns, 2 item sizes given | " +
		"None | [1, None] | " +
		"2 rows, 0100000000000000 | " +
		"plain_columns: no batch at that address (null or released)"
	if v != want {
		t.Errorf("plain_columns said:\n%s\nwant:\n%s", v, want)
	}
	if n := cgo.PlainBatchesLive(); n != 0 {
		t.Errorf("%d batches held after the columns were dropped", n)
	}
}
