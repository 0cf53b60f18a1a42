package engine

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/cdata"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/pyudf/pyudf/arrowconv"
	"github.com/pyudf/pyudf/bridge"
	"github.com/pyudf/pyudf/cgo"
)

// Hostile Arrow input: batches a caller can build with arrow-go (slices at
// any offset, arrays imported through the C Data Interface, dictionaries,
// zero rows or columns, huge columns, schemas that do not match) and results
// a UDF can hand back (wrong length, wrong type, a ChunkedArray, a list).
// Every case asserts the exact values or the exact error, then that the
// engine still answers a normal call.

const hostileArrowSource = `
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pyflink.table import DataTypes, Row
from pyflink.table.udf import AggregateFunction, udaf, udtf
from pyudf import udf

TYPES = {'bigint': 'BIGINT', 'string': 'STRING', 'bool': 'BOOLEAN', 'double': 'DOUBLE'}
for _name, _sql in TYPES.items():
    globals()['ident_general_' + _name] = udf(lambda x: x, input_types=[_sql], result_type=_sql)
    globals()['ident_pandas_' + _name] = udf(lambda x: x, input_types=[_sql], result_type=_sql, func_type='pandas')
    globals()['ident_arrow_' + _name] = udf(lambda x: x, input_types=[_sql], result_type=_sql, func_type='arrow')

doubled_or_raise = udf(lambda x: x * 2, input_types=['BIGINT'], result_type='BIGINT')
add = udf(lambda a, b: a + b, input_types=['BIGINT', 'BIGINT'], result_type='BIGINT')

@udf(input_types=['BIGINT', 'STRING', 'BOOLEAN', 'DOUBLE'], result_type='STRING', func_type='pandas')
def isna_pandas(v, s, b, d):
    """Per row, N for a null and . for a value, one letter per column."""
    marks = [c.isna().map({True: 'N', False: '.'}) for c in (v, s, b, d)]
    return marks[0] + marks[1] + marks[2] + marks[3]

@udf(input_types=['BIGINT', 'STRING', 'BOOLEAN', 'DOUBLE'], result_type='STRING')
def isna_general(v, s, b, d):
    return ''.join('N' if x is None else '.' for x in (v, s, b, d))

row_type = DataTypes.ROW([DataTypes.FIELD("v", DataTypes.BIGINT()), DataTypes.FIELD("s", DataTypes.STRING())])
map_general = udf(lambda r: Row(v=r.v, s=r.s), result_type=row_type)
map_pandas = udf(lambda df: df, result_type=row_type, func_type='pandas')

nulls_udaf = udaf(lambda v, s, b, d: int(v.isna().sum() + s.isna().sum() + b.isna().sum() + d.isna().sum()),
                  input_types=['BIGINT', 'STRING', 'BOOLEAN', 'DOUBLE'], result_type='BIGINT', func_type='pandas')
sum_udaf = udaf(lambda v: int(v.sum()), input_types=['BIGINT'], result_type='BIGINT', func_type='pandas')

class NullsAndSum(AggregateFunction):
    def create_accumulator(self):
        return [0, 0]
    def accumulate(self, acc, v):
        if v is None:
            acc[0] += 1
        else:
            acc[1] += v
    def get_value(self, acc):
        return "nulls=%d sum=%d" % tuple(acc)

nulls_and_sum = udaf(NullsAndSum(), input_types=['BIGINT'], result_type='STRING')

@udtf(input_types=['BIGINT'], result_types=['BIGINT'])
def echo_rows(x):
    yield (x,)
`

func hostileArrowModule(t *testing.T) *Module {
	t.Helper()
	return loadModule(t, Config{}, "hostile_arrow.py", hostileArrowSource)
}

// cArrowArray is struct ArrowArray of the Arrow C Data Interface (an ABI), to
// edit what an exporter wrote, as another producer would have written it.
type cArrowArray struct {
	length, nullCount, offset, nBuffers, nChildren int64
	buffers                                        *unsafe.Pointer
	children                                       **cArrowArray
	dictionary                                     *cArrowArray
	release, privateData                           unsafe.Pointer
}

// cImported passes rec (in C memory) through the C Data Interface, the way a batch from
// another Arrow library arrives: exported with arrow-go's cdata, every array
// that has a validity bitmap marked with an unknown null count (-1, as
// Arrow C++ exports a sliced array), and imported again.
func cImported(t *testing.T, rec arrow.RecordBatch) arrow.RecordBatch {
	t.Helper()
	e := arrowconv.NewArrayStructs()
	defer e.Free()
	cdata.ExportArrowRecordBatch(rec, e.Array, e.Schema)
	var unknown func(a *cArrowArray)
	unknown = func(a *cArrowArray) {
		if a.nBuffers > 0 && *a.buffers != nil {
			a.nullCount = -1
		}
		children := unsafe.Slice(a.children, a.nChildren)
		for _, c := range children {
			unknown(c)
		}
	}
	unknown((*cArrowArray)(unsafe.Pointer(e.Array)))
	out, err := cdata.ImportCRecordBatch(e.Array, e.Schema)
	if err != nil {
		t.Fatal(err)
	}
	for _, col := range out.Columns() {
		if col.Data().NullN() != -1 && col.Data().Buffers()[0] != nil {
			t.Fatalf("the imported column's null count is %d, want unknown", col.Data().NullN())
		}
	}
	t.Cleanup(out.Release)
	return out
}

// nullsBatch is 20 rows of a BIGINT v, a STRING s, a BOOLEAN b, a DOUBLE d
// and a STRING key k, nulls in rows 1, 4, 9, 12 and 17 of all but k.
func nullsBatch(t *testing.T, mem memory.Allocator) arrow.RecordBatch {
	var v, s, b, d, k []string
	for i := range 20 {
		k = append(k, fmt.Sprintf(`"k%d"`, i%2))
		if i == 1 || i == 4 || i == 9 || i == 12 || i == 17 {
			v, s, b, d = append(v, "null"), append(s, "null"), append(b, "null"), append(d, "null")
			continue
		}
		v, s = append(v, fmt.Sprint(i)), append(s, fmt.Sprintf(`"s%d"`, i))
		b, d = append(b, fmt.Sprint(i%3 == 0)), append(d, fmt.Sprintf("%d.5", i))
	}
	list := func(x []string) string { return "[" + strings.Join(x, ",") + "]" }
	rec := batchOf(t, mem, arrow.PrimitiveTypes.Int64, list(v), arrow.BinaryTypes.String, list(s),
		arrow.FixedWidthTypes.Boolean, list(b), arrow.PrimitiveTypes.Float64, list(d), arrow.BinaryTypes.String, list(k))
	return renamed(t, rec, "v", "s", "b", "d", "k")
}

// sliced is rec.NewSlice(from, to), released when the test ends.
func sliced(t *testing.T, rec arrow.RecordBatch, from, to int64) arrow.RecordBatch {
	s := rec.NewSlice(from, to)
	t.Cleanup(s.Release)
	return s
}

// pick is a batch of rec's columns named names.
func pick(t *testing.T, rec arrow.RecordBatch, names ...string) arrow.RecordBatch {
	var fields []arrow.Field
	var cols []arrow.Array
	for _, n := range names {
		i := rec.Schema().FieldIndices(n)[0]
		fields = append(fields, rec.Schema().Field(i))
		cols = append(cols, rec.Column(i))
	}
	out := array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, rec.NumRows())
	t.Cleanup(out.Release)
	return out
}

// nullInputs are nullsBatch's rows 3 to 13 (offset 3, not a multiple of 8),
// three ways: sliced in Go; sliced, then through the C Data Interface with
// unknown null counts; through the C Data Interface, then sliced.
// Only batches in C memory go through the C Data Interface (arrow-go's
// export of Go memory breaks the cgo pointer rules: GOEXPERIMENT=cgocheck2).
func nullInputs(t *testing.T, mem memory.Allocator) map[string]arrow.RecordBatch {
	full := nullsBatch(t, mem)
	inputs := map[string]arrow.RecordBatch{"sliced": sliced(t, full, 3, 14)}
	if _, inC := mem.(*memory.CheckedAllocator); inC { // checkedAllocator's: C memory
		inputs["sliced-imported"] = cImported(t, sliced(t, full, 3, 14))
		inputs["imported-sliced"] = sliced(t, cImported(t, full), 3, 14)
	}
	return inputs
}

// The values of rows 3 to 13 of nullsBatch's columns.
var nullColumns = map[string]string{
	"bigint": `[3,null,5,6,7,8,null,10,11,null,13]`,
	"string": `["s3",null,"s5","s6","s7","s8",null,"s10","s11",null,"s13"]`,
	"bool":   `[true,null,false,true,false,false,null,false,false,null,false]`,
	"double": `[3.5,null,5.5,6.5,7.5,8.5,null,10.5,11.5,null,13.5]`,
}

var nullColumnNames = map[string]string{"bigint": "v", "string": "s", "bool": "b", "double": "d"}

// Item 1 of issue 11: nulls of sliced and C-imported batches reach every
// batch path (before the fix, row-wise Eval over fixed-width columns read a
// BIGINT [NULL, 1] slice as [0, 1]).
func TestHostileSlicedAndImportedNullsReachEveryPath(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := hostileArrowModule(t)
		ctx := context.Background()
		for _, mem := range []memory.Allocator{checkedAllocator(t), memory.NewGoAllocator()} {
			for how, rec := range nullInputs(t, mem) {
				for _, ft := range []string{"general", "pandas", "arrow"} {
					for typ, want := range nullColumns {
						name := "ident_" + ft + "_" + typ
						if got := eval(t, m, name, pick(t, rec, nullColumnNames[typ])); got != want {
							t.Errorf("%s %T: %s = %s, want %s", how, mem, name, got, want)
						}
					}
				}
				all := pick(t, rec, "v", "s", "b", "d")
				wantMarks := `["....","NNNN","....","....","....","....","NNNN","....","....","NNNN","...."]`
				for _, name := range []string{"isna_general", "isna_pandas"} {
					if got := eval(t, m, name, all); got != wantMarks {
						t.Errorf("%s %T: %s = %s, want %s", how, mem, name, got, wantMarks)
					}
				}

				res, errs, err := function(t, m, "doubled_or_raise").EvalRowErrors(ctx, pick(t, rec, "v"))
				if err != nil {
					t.Fatalf("%s: EvalRowErrors: %v", how, err)
				}
				noneTimes := `"TypeError: unsupported operand type(s) for *: 'NoneType' and 'int'"`
				if got, want := jsonOf(t, res), `[6,null,10,12,14,16,null,20,22,null,26]`; got != want {
					t.Errorf("%s: EvalRowErrors results %s, want %s", how, got, want)
				}
				if got, want := jsonOf(t, errs), "[null,"+noneTimes+",null,null,null,null,"+noneTimes+",null,null,"+noneTimes+",null]"; got != want {
					t.Errorf("%s: EvalRowErrors errors %s, want %s", how, got, want)
				}
				res.Release()
				errs.Release()

				wantRows := `[{"s":"s3","v":3},{"s":null,"v":null},{"s":"s5","v":5},{"s":"s6","v":6},{"s":"s7","v":7},` +
					`{"s":"s8","v":8},{"s":null,"v":null},{"s":"s10","v":10},{"s":"s11","v":11},{"s":null,"v":null},{"s":"s13","v":13}]`
				for _, name := range []string{"map_general", "map_pandas"} {
					if got := mapJSON(t, m, name, pick(t, rec, "v", "s")); got != wantRows {
						t.Errorf("%s: %s = %s\nwant %s", how, name, got, wantRows)
					}
				}

				if v, err := function(t, m, "nulls_udaf").Reduce(ctx, all); err != nil || v != int64(12) {
					t.Errorf("%s: nulls_udaf = %v, %v, want 12", how, v, err)
				}
				if v, err := function(t, m, "sum_udaf").Reduce(ctx, pick(t, rec, "v")); err != nil || v != int64(63) {
					t.Errorf("%s: sum_udaf = %v, %v, want 63", how, v, err)
				}

				agg, err := m.Aggregate(ctx, "nulls_and_sum")
				if err != nil {
					t.Fatal(err)
				}
				if err := agg.AccumulateBatch(ctx, pick(t, rec, "k", "v"), 0); err != nil {
					t.Fatalf("%s: AccumulateBatch: %v", how, err)
				}
				for key, want := range map[string]string{"k0": "nulls=2 sum=24", "k1": "nulls=1 sum=39"} {
					if v, err := agg.Value(ctx, key); err != nil || v != want {
						t.Errorf("%s: aggregate value of %s = %v, %v, want %q", how, key, v, err, want)
					}
				}
				agg.Close()

				out, err := function(t, m, "echo_rows").Explode(ctx, pick(t, rec, "v"))
				if err != nil {
					t.Fatalf("%s: Explode: %v", how, err)
				}
				if got, want := jsonOf(t, out.Column(1)), nullColumns["bigint"]; got != want {
					t.Errorf("%s: Explode = %s, want %s", how, got, want)
				}
				out.Release()
			}
		}
		if got := eval(t, m, "add", batchOf(t, checkedAllocator(t), arrow.PrimitiveTypes.Int64, `[1]`, arrow.PrimitiveTypes.Int64, `[2]`)); got != `[3]` {
			t.Errorf("add = %s", got)
		}
	})
}

// _pyudf_host.plain_columns (a Pandas UDF's numbers without pyarrow) reads
// the validity bitmap when a column's null count is unknown (-1) or covers
// more rows than the batch's window, at offsets that are not a multiple of
// 8, and refuses a column shorter than the batch.
func TestHostilePlainColumnsUnknownNullCounts(t *testing.T) {
	m := loadModule(t, Config{}, "plain_unknown.py", `
import _pyudf_host
import pyarrow as pa
from pyarrow.cffi import ffi
from pyudf import udf

def outcome(batch, edit):
    array, schema = ffi.new("struct ArrowArray*"), ffi.new("struct ArrowSchema*")
    batch._export_to_c(int(ffi.cast("uintptr_t", array)), int(ffi.cast("uintptr_t", schema)))
    edit(array)
    try:
        taken = _pyudf_host.plain_columns(int(ffi.cast("uintptr_t", array)), b"\x08")
    except ValueError as exc:
        taken = str(exc)
    pa.Schema._import_from_c(int(ffi.cast("uintptr_t", schema)))
    if array.release != ffi.NULL:  # not taken: still the exporter's
        array.release(array)
        return "declined %s" % taken if taken is None else taken
    columns, rows = taken
    return "took %d rows: %s" % (rows, list(memoryview(columns[0]).cast("q")))

def unknown(array):
    array.children[0].null_count = -1

def window(offset, length):
    def edit(array):
        array.children[0].null_count = -1
        array.offset, array.length = offset, length
    return edit

def short(array):
    array.children[0].length = 2

@udf(result_type='STRING')
def outcomes():
    values = pa.array([None, 1, 2, 3, 4, 5, 6, 7, 8, 9, None, 11], pa.int64())
    batch = pa.RecordBatch.from_pydict({"a": values})
    return " | ".join([
        outcome(batch, unknown),                  # nulls at 0 and 10
        outcome(batch.slice(1, 9), unknown),      # offset 1: no null in rows 1 to 9
        outcome(batch.slice(9, 3), unknown),      # offset 9: row 10 is null
        outcome(batch, window(3, 6)),             # the batch's own offset 3: rows 3 to 8
        outcome(batch, window(5, 6)),             # rows 5 to 10: 10 is null
        outcome(batch, short),
    ])
`)
	v, err := function(t, m, "outcomes").Call(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := "declined None | took 9 rows: [1, 2, 3, 4, 5, 6, 7, 8, 9] | declined None | " +
		"took 6 rows: [3, 4, 5, 6, 7, 8] | declined None | " +
		"plain_columns: column 0 is missing, released or shorter than the batch's 12 rows"
	if v != want {
		t.Errorf("plain_columns said:\n%s\nwant:\n%s", v, want)
	}
}

// zeroColumns is a batch of rows rows and no columns.
func zeroColumns(t *testing.T, rows int64) arrow.RecordBatch {
	rec := array.NewRecordBatch(arrow.NewSchema(nil, nil), nil, rows)
	t.Cleanup(rec.Release)
	return rec
}

// Item 7 of issue 11: Map over a batch with rows but no columns gives each
// row an empty Row (it dereferenced an empty list in C: SIGSEGV), row-wise
// and in Pandas form; Eval of a function of no arguments calls it once a row.
func TestHostileZeroColumnBatches(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := loadModule(t, Config{}, "zero_columns.py", `
import pandas as pd
from pyflink.table import DataTypes, Row
from pyudf import udf
counted = DataTypes.ROW([DataTypes.FIELD("n", DataTypes.BIGINT())])
fields = udf(lambda r: Row(n=len(r)), result_type=counted)
frame = udf(lambda df: pd.DataFrame({"n": [len(df.columns)] * len(df)}), result_type=counted, func_type='pandas')
seven = udf(lambda: 7, input_types=[], result_type='BIGINT')
seven_pandas = udf(lambda: pd.Series([7, 7, 7]), input_types=[], result_type='BIGINT', func_type='pandas')
add = udf(lambda a, b: a + b, input_types=['BIGINT', 'BIGINT'], result_type='BIGINT')
`)
		rec := zeroColumns(t, 3)
		for _, name := range []string{"fields", "frame"} {
			if got, want := mapJSON(t, m, name, rec), `[{"n":0},{"n":0},{"n":0}]`; got != want {
				t.Errorf("%s over 3 rows of no columns = %s, want %s", name, got, want)
			}
		}
		if got := eval(t, m, "seven", rec); got != `[7,7,7]` {
			t.Errorf("seven = %s", got)
		}
		if got := eval(t, m, "seven_pandas", rec); got != `[7,7,7]` {
			t.Errorf("seven_pandas = %s", got)
		}
		_, err := function(t, m, "seven_pandas").Eval(context.Background(), zeroColumns(t, 2))
		wantMessage(t, err, "result: the Pandas UDF's result has 3 values for a batch of 2 rows")
		_, err = function(t, m, "add").Eval(context.Background(), rec)
		wantMessage(t, err, `function "add": the batch has 0 columns, the function takes 2 arguments`)
		if got := eval(t, m, "add", batchOf(t, checkedAllocator(t), arrow.PrimitiveTypes.Int64, `[1]`, arrow.PrimitiveTypes.Int64, `[2]`)); got != `[3]` {
			t.Errorf("add = %s", got)
		}
	})
}

// The C row loop checks the columns it indexes against the row count: a
// column list shorter than the batch, or not a list at all, is an error
// naming it, not a read past the list (thread mode: the loop is C).
func TestHostileRowLoopChecksColumnSizes(t *testing.T) {
	m := loadModule(t, Config{Mode: Thread}, "row_loop_sizes.py", `
import pyudf._batch as _batch
from pyudf import udf
_columns = _batch.columns
def _once(result):
    def columns(array_addr, schema_addr):
        _batch.columns = _columns
        _columns(array_addr, schema_addr)  # takes the batch, as the real one does
        return result
    return columns
def lying(result):
    def f(x):
        return x
    g = udf(f, input_types=['STRING'], result_type='STRING')
    def arm():
        _batch.columns = _once(result)
        return 0
    return g, udf(arm, input_types=[], result_type='BIGINT')
short_column, arm_short = lying(([["a"]], 3))
not_a_list, arm_not_a_list = lying(([("a", "b", "c")], 3))
not_a_tuple, arm_not_a_tuple = lying([["a", "b", "c"], 3])
negative_rows, arm_negative = lying(([], -1))
`)
	ctx := context.Background()
	rec := batchOf(t, checkedAllocator(t), arrow.BinaryTypes.String, `["x", "y", "z"]`)
	for _, c := range []struct{ name, arm, message string }{
		{"short_column", "arm_short", "SystemError: pyudf: column 0 of the batch holds 1 values for 3 rows"},
		{"not_a_list", "arm_not_a_list", "SystemError: pyudf: column 0 of the batch holds -1 values for 3 rows"},
		{"not_a_tuple", "arm_not_a_tuple", "SystemError: pyudf: the batch's columns are not a (list, int) tuple"},
		{"negative_rows", "arm_negative", "SystemError: pyudf: the batch has -1 rows"},
	} {
		if _, err := function(t, m, c.arm).Call(ctx); err != nil {
			t.Fatal(err)
		}
		_, err := function(t, m, c.name).Eval(ctx, rec)
		var pe *bridge.PythonError
		if !errors.As(err, &pe) {
			t.Fatalf("%s: want a PythonError, got %v", c.name, err)
		}
		wantMessage(t, err, c.message)
		if got := eval(t, m, c.name, rec); got != `["x","y","z"]` {
			t.Errorf("after the error, %s = %s", c.name, got)
		}
	}
}

// Item 4 of issue 11: a Pandas UDF that fills one output buffer batch after
// batch, and returns it, a view of it or a Series over it, no longer rewrites
// the results Go already holds: the first batch's result keeps its values
// after the second call. Fresh results still cross without a copy
// (TestPandasPlainResults).
func TestHostileReusedOutputBuffers(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := loadModule(t, Config{}, "reuse.py", `
import numpy as np
import pandas as pd
import pyarrow as pa
from pyudf import udf

class Reuse:
    """Doubles x into one buffer it keeps; shape says what it returns."""
    def __init__(self, shape, dtype=np.int64, nan_first=False):
        self.buf, self.shape, self.dtype, self.nan_first = None, shape, dtype, nan_first
    def __call__(self, x):
        n = len(x)
        if self.buf is None or len(self.buf) < n + 2:
            self.buf = np.zeros(n + 2, dtype=self.dtype)
        out = self.buf[1:n + 1] if self.shape.startswith("view") else self.buf[:n]
        np.multiply(x.to_numpy(), 2, out=out)
        if self.nan_first:
            out[0] = np.nan  # a null: the result goes through pyarrow, which wraps numpy memory
        if self.shape == "array":
            return self.buf[:n] if n < len(self.buf) else self.buf
        if self.shape in ("view", "view_series"):
            return out if self.shape == "view" else pd.Series(out, copy=False)
        return pd.Series(out, copy=False)

def reuse(shape, sql='BIGINT', **kw):
    return udf(Reuse(shape, **kw), input_types=[sql], result_type=sql, func_type='pandas')

reuse_array = reuse("array")
reuse_view = reuse("view")
reuse_view_series = reuse("view_series")
reuse_series = reuse("series")
reuse_nan = reuse("series", 'DOUBLE', dtype=np.float64, nan_first=True)
reuse_nan_array = reuse("array", 'DOUBLE', dtype=np.float64, nan_first=True)
`)
		mem := checkedAllocator(t)
		for _, c := range []struct {
			name, typ, first, second, want1, want2 string
		}{
			{"reuse_array", "bigint", `[1, 2, 3]`, `[10, 20, 30]`, `[2,4,6]`, `[20,40,60]`},
			{"reuse_view", "bigint", `[1, 2, 3]`, `[10, 20, 30]`, `[2,4,6]`, `[20,40,60]`},
			{"reuse_view_series", "bigint", `[1, 2, 3]`, `[10, 20, 30]`, `[2,4,6]`, `[20,40,60]`},
			{"reuse_series", "bigint", `[1, 2, 3]`, `[10, 20, 30]`, `[2,4,6]`, `[20,40,60]`},
			{"reuse_nan", "double", `[1, 2, 3]`, `[10, 20, 30]`, `[null,4,6]`, `[null,40,60]`},
			// a bare numpy array keeps NaN as a value (pa.array without from_pandas)
			{"reuse_nan_array", "double", `[1, 2, 3]`, `[10, 20, 30]`, `["NaN",4,6]`, `["NaN",40,60]`},
		} {
			dt := map[string]arrow.DataType{"bigint": arrow.PrimitiveTypes.Int64, "double": arrow.PrimitiveTypes.Float64}[c.typ]
			f := function(t, m, c.name)
			first, err := f.Eval(context.Background(), batchOf(t, mem, dt, c.first))
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			if got := jsonOf(t, first); got != c.want1 {
				t.Errorf("%s first batch = %s, want %s", c.name, got, c.want1)
			}
			if got := eval(t, m, c.name, batchOf(t, mem, dt, c.second)); got != c.want2 {
				t.Errorf("%s second batch = %s, want %s", c.name, got, c.want2)
			}
			if got := jsonOf(t, first); got != c.want1 {
				t.Errorf("%s: after the second call the first result is %s, want %s", c.name, got, c.want1)
			}
			first.Release()
		}
	})
}

// Item 17 of issue 11: one outsized call (a 24 MB argument, a 48 MB result,
// a 24 MB error message) leaves its frame's C buffers at their start size
// once it is over, not at the call's size for the engine's life; the values
// were right. Thread mode: the frames are this process's.
func TestHostileOutsizedCallBuffersShrink(t *testing.T) {
	t.Cleanup(debug.FreeOSMemory) // later tests measure the resident set
	m := loadModule(t, Config{Mode: Thread}, "outsized.py", `
from pyudf import udf
twice = udf(lambda s: s + s, input_types=['STRING'], result_type='STRING')
@udf(input_types=['STRING'], result_type='BIGINT')
def refuse(s):
    raise ValueError(s)
add = udf(lambda a, b: a + b, input_types=['BIGINT', 'BIGINT'], result_type='BIGINT')
`)
	ctx := context.Background()
	if got := call(t, m, "add", int64(1), int64(2)); got != int64(3) {
		t.Fatalf("add = %v", got)
	}
	before := cgo.FrameBytes()
	big := strings.Repeat("abcdefgh", 3<<20) // 24 MiB
	v, err := function(t, m, "twice").Call(ctx, big)
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := v.(string); !ok || len(s) != 2*len(big) || s[:len(big)] != big || s[len(big):] != big {
		t.Fatalf("twice returned %d bytes, want %d (the argument twice)", len(fmt.Sprint(v)), 2*len(big))
	}
	if got := cgo.FrameBytes(); got > before+1<<20 {
		t.Errorf("after a 24 MiB argument and a 48 MiB result the frames hold %d bytes, %d before", got, before)
	}
	err = callErr(t, function(t, m, "refuse"), big)
	var pe *bridge.PythonError
	if !errors.As(err, &pe) || pe.Type != "ValueError" || pe.Message != big {
		t.Fatalf("refuse: want the ValueError with the 24 MiB message, got %d bytes of %v", len(fmt.Sprint(err)), pe != nil)
	}
	if got := cgo.FrameBytes(); got > before+1<<20 {
		t.Errorf("after a 24 MiB error the frames hold %d bytes, %d before", got, before)
	}
	rec := batchOf(t, checkedAllocator(t), arrow.BinaryTypes.String, `["`+strings.Repeat("x", 2<<20)+`"]`)
	if got := eval(t, m, "twice", rec); len(got) != 4<<20+4 {
		t.Errorf("twice over a batch: %d bytes of JSON", len(got))
	}
	if got := cgo.FrameBytes(); got > before+1<<20 {
		t.Errorf("after a batch the frames hold %d bytes, %d before", got, before)
	}
	if got := call(t, m, "add", int64(2), int64(3)); got != int64(5) {
		t.Errorf("add = %v", got)
	}
}

// evalErr evaluates rec with function name of m, wanting an error.
func evalErr(t *testing.T, m *Module, name string, rec arrow.RecordBatch) error {
	t.Helper()
	res, err := function(t, m, name).Eval(context.Background(), rec)
	if err == nil {
		defer res.Release()
		t.Errorf("%s = %s, want an error", name, jsonOf(t, res))
		return errNoError
	}
	return err
}

var errNoError = errors.New("(there was no error)")

// stillAdds checks that m's add (BIGINT, BIGINT) answers a normal batch.
func stillAdds(t *testing.T, m *Module) {
	t.Helper()
	if got := eval(t, m, "add", batchOf(t, checkedAllocator(t), arrow.PrimitiveTypes.Int64, `[1, 4]`, arrow.PrimitiveTypes.Int64, `[2, 3]`)); got != `[3,7]` {
		t.Fatalf("afterwards, add = %s", got)
	}
}

// Bit-packed booleans and their validity bitmap, sliced at every offset from
// 0 to 16 and every length, through the row loop's direct reads of the
// buffers (thread mode) and pyarrow (process mode).
func TestHostileBitmapsAtEveryOffset(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := loadModule(t, Config{}, "offsets.py", `
from pyudf import udf
negate = udf(lambda b: None if b is None else not b, input_types=['BOOLEAN'], result_type='BOOLEAN')
neg = udf(lambda x: None if x is None else -x, input_types=['INT'], result_type='INT')
add = udf(lambda a, b: a + b, input_types=['BIGINT', 'BIGINT'], result_type='BIGINT')
`)
		mem := checkedAllocator(t)
		var bools, ints []string
		for i := range 24 {
			switch {
			case i%5 == 2 || i%7 == 0:
				bools, ints = append(bools, "null"), append(ints, "null")
			default:
				bools, ints = append(bools, fmt.Sprint(i%3 == 1)), append(ints, fmt.Sprint(i))
			}
		}
		rec := batchOf(t, mem, arrow.FixedWidthTypes.Boolean, "["+strings.Join(bools, ",")+"]",
			arrow.PrimitiveTypes.Int32, "["+strings.Join(ints, ",")+"]")
		for from := int64(0); from <= 16; from++ {
			for _, n := range []int64{1, 3, 7, 8} {
				s := rec.NewSlice(from, from+n)
				var wantB, wantI []string
				for i := from; i < from+n; i++ {
					switch b := bools[i]; b {
					case "null":
						wantB, wantI = append(wantB, "null"), append(wantI, "null")
					default:
						wantB, wantI = append(wantB, fmt.Sprint(b != "true")), append(wantI, "-"+ints[i])
					}
				}
				if got, want := eval(t, m, "negate", pick(t, s, "c0")), "["+strings.Join(wantB, ",")+"]"; got != want {
					t.Errorf("negate of rows [%d, %d) = %s, want %s", from, from+n, got, want)
				}
				if got, want := strings.ReplaceAll(eval(t, m, "neg", pick(t, s, "c1")), "-0", "0"), strings.ReplaceAll("["+strings.Join(wantI, ",")+"]", "-0", "0"); got != want {
					t.Errorf("neg of rows [%d, %d) = %s, want %s", from, from+n, got, want)
				}
				s.Release()
			}
		}
		stillAdds(t, m)
	})
}

// Batches of zero rows, as built and as the empty slice of a longer batch,
// through every batch path: empty results of the declared types, the UDF
// never called.
func TestHostileZeroRowBatches(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := hostileArrowModule(t)
		ctx := context.Background()
		full := nullsBatch(t, checkedAllocator(t))
		for how, rec := range map[string]arrow.RecordBatch{"built": batchOf(t, checkedAllocator(t),
			arrow.PrimitiveTypes.Int64, `[]`, arrow.BinaryTypes.String, `[]`, arrow.FixedWidthTypes.Boolean, `[]`,
			arrow.PrimitiveTypes.Float64, `[]`, arrow.BinaryTypes.String, `[]`), "slice": sliced(t, full, 7, 7)} {
			rec = renamed(t, rec, "v", "s", "b", "d", "k")
			for _, ft := range []string{"general", "pandas", "arrow"} {
				for typ := range nullColumns {
					if got := eval(t, m, "ident_"+ft+"_"+typ, pick(t, rec, nullColumnNames[typ])); got != `[]` {
						t.Errorf("%s: ident_%s_%s = %s", how, ft, typ, got)
					}
				}
			}
			res, errs, err := function(t, m, "doubled_or_raise").EvalRowErrors(ctx, pick(t, rec, "v"))
			if err != nil || res.Len() != 0 || errs.Len() != 0 || errs.DataType().ID() != arrow.STRING {
				t.Errorf("%s: EvalRowErrors = %v, %v, %v", how, res, errs, err)
			} else {
				res.Release()
				errs.Release()
			}
			for _, name := range []string{"map_general", "map_pandas"} {
				if got := mapJSON(t, m, name, pick(t, rec, "v", "s")); got != `[]` {
					t.Errorf("%s: %s = %s", how, name, got)
				}
			}
			if v, err := function(t, m, "sum_udaf").Reduce(ctx, pick(t, rec, "v")); err != nil || v != int64(0) {
				t.Errorf("%s: sum_udaf of no rows = %v, %v, want 0", how, v, err)
			}
			out, err := function(t, m, "echo_rows").Explode(ctx, pick(t, rec, "v"))
			if err != nil || out.NumRows() != 0 || out.NumCols() != 2 {
				t.Errorf("%s: Explode = %v, %v", how, out, err)
			} else {
				out.Release()
			}
			agg, err := m.Aggregate(ctx, "nulls_and_sum")
			if err != nil {
				t.Fatal(err)
			}
			if err := agg.AccumulateBatch(ctx, pick(t, rec, "k", "v"), 0); err != nil {
				t.Errorf("%s: AccumulateBatch of no rows: %v", how, err)
			}
			if n, err := agg.Len(ctx); err != nil || n != 0 {
				t.Errorf("%s: after no rows the aggregate has %d keys, %v", how, n, err)
			}
			agg.Close()
		}
		stillAdds(t, m)
	})
}

// dictionaryColumn is a dictionary-encoded column of JSON values.
func dictionaryColumn(t *testing.T, mem memory.Allocator, value arrow.DataType, json string) arrow.Array {
	dt := &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int16, ValueType: value}
	arr, _, err := array.FromJSON(mem, dt, strings.NewReader(json))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(arr.Release)
	return arr
}

func oneColumn(t *testing.T, arr arrow.Array) arrow.RecordBatch {
	rec := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "x", Type: arr.DataType(), Nullable: true}}, nil),
		[]arrow.Array{arr}, int64(arr.Len()))
	t.Cleanup(rec.Release)
	return rec
}

// Dictionary-encoded columns, whole and sliced (nulls included), reach every
// kind of function decoded; a dictionary of values the function does not
// take is refused by name.
func TestHostileDictionaryColumns(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := hostileArrowModule(t)
		mem := checkedAllocator(t)
		strs := dictionaryColumn(t, mem, arrow.BinaryTypes.String, `["a", null, "bb", "a", "", "bb", null, "a", "ccc", "a"]`)
		ints := dictionaryColumn(t, mem, arrow.PrimitiveTypes.Int64, `[5, null, 7, 5, 5, 9, null, 7, 5, 1]`)
		for _, ft := range []string{"general", "pandas", "arrow"} {
			for _, c := range []struct {
				typ  string
				arr  arrow.Array
				want string
			}{
				{"string", strs, `["a",null,"bb","a","","bb",null,"a","ccc","a"]`},
				{"bigint", ints, `[5,null,7,5,5,9,null,7,5,1]`},
			} {
				name := "ident_" + ft + "_" + c.typ
				if got := eval(t, m, name, oneColumn(t, c.arr)); got != c.want {
					t.Errorf("%s of a dictionary column = %s, want %s", name, got, c.want)
				}
				slice := array.NewSlice(c.arr, 1, 7)
				want := "[" + strings.Join(strings.Split(strings.Trim(c.want, "[]"), ",")[1:7], ",") + "]"
				if got := eval(t, m, name, oneColumn(t, slice)); got != want {
					t.Errorf("%s of a sliced dictionary column = %s, want %s", name, got, want)
				}
				slice.Release()
			}
		}
		floats := dictionaryColumn(t, mem, arrow.PrimitiveTypes.Float64, `[1.5]`)
		err := evalErr(t, m, "ident_general_bigint", oneColumn(t, floats))
		wantMessage(t, err, `column 0 ("x") is dictionary<values=float64, indices=int16, ordered=false>, the function's argument 1 is BIGINT`)
		stillAdds(t, m)
	})
}

// Columns that do not match the declared input types are refused before
// Python runs, naming the column and both types; columns of narrower
// encodings of the same SQL type are accepted and give the right values.
func TestHostileSchemaMismatch(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := hostileArrowModule(t)
		mem := checkedAllocator(t)
		for _, c := range []struct {
			name    string
			rec     arrow.RecordBatch
			message string
		}{
			{"ident_general_bigint", batchOf(t, mem, arrow.PrimitiveTypes.Uint64, `[1]`),
				`column 0 ("c0") is uint64, the function's argument 1 is BIGINT (Arrow int64)`},
			{"ident_pandas_bigint", batchOf(t, mem, arrow.PrimitiveTypes.Float64, `[1]`),
				`column 0 ("c0") is float64, the function's argument 1 is BIGINT (Arrow int64)`},
			{"ident_arrow_string", batchOf(t, mem, arrow.BinaryTypes.Binary, `["eA=="]`),
				`column 0 ("c0") is binary, the function's argument 1 is STRING (Arrow utf8)`},
			{"ident_general_double", batchOf(t, mem, arrow.Null, `[null]`),
				`column 0 ("c0") is null, the function's argument 1 is DOUBLE (Arrow float64)`},
			{"add", batchOf(t, mem, arrow.PrimitiveTypes.Int64, `[1]`, arrow.PrimitiveTypes.Int64, `[1]`, arrow.PrimitiveTypes.Int64, `[1]`),
				`the batch has 3 columns, the function takes 2 arguments`},
			{"ident_general_bool", batchOf(t, mem, arrow.ListOf(arrow.FixedWidthTypes.Boolean), `[[true]]`),
				`column 0 ("c0") is list<item: bool, nullable>, the function's argument 1 is BOOLEAN (Arrow bool)`},
		} {
			err := evalErr(t, m, c.name, c.rec)
			wantMessage(t, err, fmt.Sprintf("function %q: %s", c.name, c.message))
		}
		for _, ft := range []string{"general", "pandas", "arrow"} {
			for _, c := range []struct {
				typ  string
				rec  arrow.RecordBatch
				want string
			}{
				{"bigint", batchOf(t, mem, arrow.PrimitiveTypes.Int32, `[1, null, -3]`), `[1,null,-3]`},
				{"bigint", batchOf(t, mem, arrow.PrimitiveTypes.Uint32, `[4294967295, null]`), `[4294967295,null]`},
				{"double", batchOf(t, mem, arrow.PrimitiveTypes.Float32, `[0.5, null]`), `[0.5,null]`},
				{"string", batchOf(t, mem, arrow.BinaryTypes.LargeString, `["x", null, ""]`), `["x",null,""]`},
			} {
				if got := eval(t, m, "ident_"+ft+"_"+c.typ, c.rec); got != c.want {
					t.Errorf("ident_%s_%s of %s = %s, want %s", ft, c.typ, c.rec.Column(0).DataType(), got, c.want)
				}
			}
		}
		stillAdds(t, m)
	})
}

// Empty strings, a column of empty strings only, NUL bytes, multi-byte
// UTF-8 and string views, whole and sliced, through every kind of function.
func TestHostileEmptyAndOddStrings(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := hostileArrowModule(t)
		mem := checkedAllocator(t)
		for _, want := range []string{
			`["",null,"","a\u0000b","é€😀",""]`,
			`["","",""]`,
		} {
			for _, dt := range []arrow.DataType{arrow.BinaryTypes.String, arrow.BinaryTypes.LargeString, arrow.BinaryTypes.StringView} {
				rec := batchOf(t, mem, dt, want)
				for _, ft := range []string{"general", "pandas", "arrow"} {
					if got := eval(t, m, "ident_"+ft+"_string", rec); got != want {
						t.Errorf("ident_%s_string of %s %s = %s", ft, dt, want, got)
					}
					s := sliced(t, rec, 1, 3)
					if got, wantS := eval(t, m, "ident_"+ft+"_string", s), "["+strings.Join(strings.Split(strings.Trim(want, "[]"), ",")[1:3], ",")+"]"; got != wantS {
						t.Errorf("ident_%s_string of sliced %s = %s, want %s", ft, dt, got, wantS)
					}
				}
			}
		}
		stillAdds(t, m)
	})
}

const hostileResultsSource = `
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pyudf import udf

def pandas(f, result='BIGINT'):
    return udf(f, input_types=['BIGINT'], result_type=result, func_type='pandas')

def arrow(f, result='BIGINT'):
    return udf(f, input_types=['BIGINT'], result_type=result, func_type='arrow')

add = udf(lambda a, b: a + b, input_types=['BIGINT', 'BIGINT'], result_type='BIGINT')

too_long = pandas(lambda x: pd.concat([x, x]))
too_short = pandas(lambda x: x.iloc[:1])
empty = pandas(lambda x: pd.Series([], dtype='int64'))
scalar = pandas(lambda x: 7)
none = pandas(lambda x: None)
a_string = pandas(lambda x: "abc")
strings_for_bigint = pandas(lambda x: x.astype(str))
fractions_for_bigint = pandas(lambda x: x / 3)
whole_floats_for_bigint = pandas(lambda x: x * 1.0)
ints_for_string = pandas(lambda x: x, 'STRING')
too_big_for_int = pandas(lambda x: x * 2**40, 'INT')
bools_for_bigint = pandas(lambda x: x > 1)
frame = pandas(lambda x: pd.DataFrame({"a": x}))
two_d = pandas(lambda x: np.zeros((len(x), 2), dtype=np.int64))
object_mix = pandas(lambda x: pd.Series([1, "two", 3.0][:len(x)], dtype=object))
int32_for_bigint = pandas(lambda x: x.astype(np.int32))
nan_for_bigint = pandas(lambda x: pd.Series([np.nan] * len(x)))
list_result = pandas(lambda x: [int(v) * 2 for v in x])
tuple_result = pandas(lambda x: tuple(int(v) * 3 for v in x))

chunked = arrow(lambda x: pa.chunked_array([x.slice(0, 1), x.slice(1)]))
chunked_empty_chunks = arrow(lambda x: pa.chunked_array([x.slice(0, 0), x, x.slice(0, 0)]))
chunked_no_chunks = arrow(lambda x: pa.chunked_array([], pa.int64()))
arrow_list = arrow(lambda x: [None if v is None else v * 2 for v in x.to_pylist()])
arrow_numpy = arrow(lambda x: np.arange(len(x), dtype=np.int64))
arrow_scalar = arrow(lambda x: pa.scalar(1))
arrow_none = arrow(lambda x: None)
arrow_batch = arrow(lambda x: pa.RecordBatch.from_arrays([x], ["a"]))
arrow_int32 = arrow(lambda x: pc.cast(x, pa.int32()))
arrow_strings = arrow(lambda x: pc.cast(x, pa.string()))
arrow_uncastable = arrow(lambda x: pa.array(["a"] * len(x)))
arrow_offset = arrow(lambda x: pa.concat_arrays([pa.array([99, 98, 97], pa.int64()), x]).slice(3))
arrow_too_long = arrow(lambda x: pa.concat_arrays([x, x]))
arrow_dictionary_strings = arrow(lambda x: pc.cast(x, pa.string()).dictionary_encode(), 'STRING')
arrow_chunked_strings = arrow(lambda x: pa.chunked_array([pa.array([""]), pa.array([], pa.string()), pc.cast(x, pa.string()).slice(1)]), 'STRING')
`

// A Pandas UDF's result of the wrong length, of a dtype that does not fit
// the declared type, or not array-like at all: the exact error, and results
// that do fit (lists, tuples, narrower ints, whole floats) the exact values.
func TestHostilePandasResults(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := loadModule(t, Config{}, "pandas_results.py", hostileResultsSource)
		rec := batchOf(t, checkedAllocator(t), arrow.PrimitiveTypes.Int64, `[1, 2, 3]`)
		for name, message := range map[string]string{
			"too_long":             "result: the Pandas UDF's result has 6 values for a batch of 3 rows",
			"too_short":            "result: the Pandas UDF's result has 1 values for a batch of 3 rows",
			"empty":                "result: the Pandas UDF's result has 0 values for a batch of 3 rows",
			"scalar":               "result: the Pandas UDF's result must be a Series or array-like of 3 values, not int",
			"none":                 "result: the Pandas UDF's result must be a Series or array-like of 3 values, not NoneType",
			"a_string":             "result: the Pandas UDF's result must be a Series or array-like of 3 values, not str",
			"strings_for_bigint":   "result: the Pandas UDF's result cannot be converted to int64",
			"fractions_for_bigint": "result: the Pandas UDF's result cannot be converted to int64: Float value 0.333333 was truncated converting to int64",
			"ints_for_string":      "result: the Pandas UDF's result cannot be converted to string",
			"too_big_for_int":      "result: the Pandas UDF's result cannot be converted to int32",
			"bools_for_bigint":     "result: the Pandas UDF's result cannot be converted to int64",
			"two_d":                "result: the Pandas UDF's result cannot be converted to int64",
			"object_mix":           "result: the Pandas UDF's result cannot be converted to int64",
		} {
			err := evalErr(t, m, name, rec)
			var ce *bridge.ConversionError
			if !errors.As(err, &ce) || ce.Path != "result" {
				t.Errorf("%s: want a result ConversionError, got %v", name, err)
			}
			wantMessage(t, err, message)
		}
		for name, want := range map[string]string{
			"whole_floats_for_bigint": `[1,2,3]`,
			"int32_for_bigint":        `[1,2,3]`,
			"nan_for_bigint":          `[null,null,null]`,
			"list_result":             `[2,4,6]`,
			"tuple_result":            `[3,6,9]`,
		} {
			if got := eval(t, m, name, rec); got != want {
				t.Errorf("%s = %s, want %s", name, got, want)
			}
		}
		stillAdds(t, m)
	})
}

// An Arrow UDF's result: a ChunkedArray (empty chunks included) or a Python
// list or numpy array is converted; a scalar, None or a RecordBatch is
// refused; another Arrow type is cast when it can be and refused by name
// when not; an array with an offset or a dictionary comes back right.
func TestHostileArrowResults(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := loadModule(t, Config{}, "arrow_results.py", hostileResultsSource)
		rec := batchOf(t, checkedAllocator(t), arrow.PrimitiveTypes.Int64, `[1, null, 3]`)
		for name, want := range map[string]string{
			"chunked":                  `[1,null,3]`,
			"chunked_empty_chunks":     `[1,null,3]`,
			"arrow_list":               `[2,null,6]`,
			"arrow_numpy":              `[0,1,2]`,
			"arrow_int32":              `[1,null,3]`,
			"arrow_offset":             `[1,null,3]`,
			"arrow_dictionary_strings": `["1",null,"3"]`,
			"arrow_chunked_strings":    `["",null,"3"]`,
		} {
			if got := eval(t, m, name, rec); got != want {
				t.Errorf("%s = %s, want %s", name, got, want)
			}
		}
		for name, message := range map[string]string{
			"chunked_no_chunks": "result: the Arrow UDF's result has 0 values for a batch of 3 rows",
			"arrow_scalar":      "result: the Arrow UDF's result must be a Series or array-like of 3 values, not Int64Scalar",
			"arrow_none":        "result: the Arrow UDF's result must be a Series or array-like of 3 values, not NoneType",
			"arrow_batch":       "result: the Arrow UDF's result cannot be converted to int64",
			"arrow_strings":     "result: the Arrow UDF's result cannot be converted to int64",
			"arrow_uncastable":  "result: the Arrow UDF's result cannot be converted to int64",
			"arrow_too_long":    "result: the Arrow UDF's result has 6 values for a batch of 3 rows",
		} {
			err := evalErr(t, m, name, rec)
			var ce *bridge.ConversionError
			if !errors.As(err, &ce) || ce.Path != "result" {
				t.Errorf("%s: want a result ConversionError, got %v", name, err)
			}
			wantMessage(t, err, message)
		}
		stillAdds(t, m)
	})
}

const hostileMoreSource = `
import math
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pyflink.table import DataTypes, Row
from pyflink.table.udf import udtf
from pyudf import udf
add = udf(lambda a, b: a + b, input_types=['BIGINT', 'BIGINT'], result_type='BIGINT')
describe = udf(lambda x: 'null' if x is None else 'nan' if math.isnan(x) else 'inf' if math.isinf(x) else 'value',
               input_types=['DOUBLE'], result_type='STRING')
describe_pandas = udf(lambda x: x.map(lambda v: 'nan-or-null' if pd.isna(v) else 'inf' if math.isinf(v) else 'value'),
                      input_types=['DOUBLE'], result_type='STRING', func_type='pandas')
same_double = udf(lambda x: x, input_types=['DOUBLE'], result_type='DOUBLE')
same_double_pandas = udf(lambda x: x, input_types=['DOUBLE'], result_type='DOUBLE', func_type='pandas')
same_double_arrow = udf(lambda x: x, input_types=['DOUBLE'], result_type='DOUBLE', func_type='arrow')
lists = udf(lambda x: x, input_types=['ARRAY<BIGINT>'], result_type='ARRAY<BIGINT>')
lists_arrow = udf(lambda x: x, input_types=['ARRAY<BIGINT>'], result_type='ARRAY<BIGINT>', func_type='arrow')
rows = udf(lambda x: x, input_types=['ROW<a BIGINT, b STRING>'], result_type='ROW<a BIGINT, b STRING>')
rows_arrow = udf(lambda x: x, input_types=['ROW<a BIGINT, b STRING>'], result_type='ROW<a BIGINT, b STRING>', func_type='arrow')
decimals = udf(lambda x: x, input_types=['DECIMAL(10, 2)'], result_type='DECIMAL(10, 2)')
decimals_pandas = udf(lambda x: x, input_types=['DECIMAL(10, 2)'], result_type='DECIMAL(10, 2)', func_type='pandas')
times = udf(lambda x: x, input_types=['TIMESTAMP(3)'], result_type='TIMESTAMP(3)')
times_pandas = udf(lambda x: x, input_types=['TIMESTAMP(3)'], result_type='TIMESTAMP(3)', func_type='pandas')
rowtype = DataTypes.ROW([DataTypes.FIELD("n", DataTypes.BIGINT())])
short_frame = udf(lambda df: df.iloc[:1], result_type=rowtype, func_type='pandas')
missing_column = udf(lambda df: pd.DataFrame({"m": df["v"]}), result_type=rowtype, func_type='pandas')
not_a_frame = udf(lambda df: df["v"], result_type=rowtype, func_type='pandas')
strings_column = udf(lambda df: pd.DataFrame({"n": df["v"].astype(str)}), result_type=rowtype, func_type='pandas')

@udtf(input_types=['BIGINT'], result_types=['BIGINT'])
def repeat(n):
    if n is None:
        return None
    for i in range(n):
        yield i

@udtf(input_types=['BIGINT'], result_types=['BIGINT'])
def not_iterable(n):
    return 5
`

// NaN and infinities in a DOUBLE column are values, not nulls: row-wise
// UDFs see them as such and they come back as values; a Pandas UDF sees
// NaN and null alike (pandas has one missing value) and a NaN it returns is
// null, as in PyFlink; an Arrow UDF keeps them apart.
func TestHostileNaNIsAValue(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := loadModule(t, Config{}, "nan.py", hostileMoreSource)
		rec := batchOf(t, checkedAllocator(t), arrow.PrimitiveTypes.Float64, `[1, null, "NaN", "+Inf", "-Inf"]`)
		rec = sliced(t, cImported(t, rec), 0, 5)
		for name, want := range map[string]string{
			"describe":           `["value",null,"nan","inf","inf"]`,
			"describe_pandas":    `["value","nan-or-null","nan-or-null","inf","inf"]`,
			"same_double":        `[1,null,"NaN","+Inf","-Inf"]`,
			"same_double_pandas": `[1,null,null,"+Inf","-Inf"]`,
			"same_double_arrow":  `[1,null,"NaN","+Inf","-Inf"]`,
		} {
			got := eval(t, m, name, rec)
			if name == "describe" {
				want = `["value","null","nan","inf","inf"]`
			}
			if got != want {
				t.Errorf("%s = %s, want %s", name, got, want)
			}
		}
		stillAdds(t, m)
	})
}

// Nested, DECIMAL and TIMESTAMP columns sliced at an offset that is not a
// multiple of 8, nulls at every level, and through the C Data Interface.
func TestHostileNestedAndWideColumnsSliced(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := loadModule(t, Config{}, "nested.py", hostileMoreSource)
		mem := checkedAllocator(t)
		for _, c := range []struct {
			names []string
			dt    arrow.DataType
			json  string
			want  string
		}{
			{[]string{"lists", "lists_arrow"}, arrow.ListOf(arrow.PrimitiveTypes.Int64),
				`[[0], null, [1, null], [], [2, 3], null, [null], [4], [5, 6, 7], null, [8]]`,
				`[[1,null],[],[2,3],null,[null],[4],[5,6,7],null]`},
			{[]string{"rows", "rows_arrow"}, arrow.StructOf(arrow.Field{Name: "a", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
				arrow.Field{Name: "b", Type: arrow.BinaryTypes.String, Nullable: true}),
				`[{"a": 0, "b": "z"}, null, {"a": 1, "b": null}, {"a": null, "b": "y"}, null, {"a": 2, "b": "x"}, {"a": 3, "b": ""}, null, {"a": 4, "b": "w"}, null, {"a": 5, "b": "v"}]`,
				`[{"a":1,"b":null},{"a":null,"b":"y"},null,{"a":2,"b":"x"},{"a":3,"b":""},null,{"a":4,"b":"w"},null]`},
			{[]string{"decimals", "decimals_pandas"}, &arrow.Decimal128Type{Precision: 10, Scale: 2},
				`["0.01", null, "1.25", "-3.50", null, "99999999.99", "0", null, "7.07", "1", "2"]`,
				`["1.25","-3.5",null,"99999999.99","0",null,"7.07","1"]`},
			{[]string{"times", "times_pandas"}, &arrow.TimestampType{Unit: arrow.Millisecond},
				`["2024-01-01 00:00:00.001", null, "1969-12-31 23:59:59.999", null, "2024-02-29 12:00:00", "1970-01-01", null, "2038-01-19 03:14:08", "9999-12-31 23:59:59.999", null, "2000-01-01"]`,
				`["1969-12-31T23:59:59.999",null,"2024-02-29T12:00:00","1970-01-01T00:00:00",null,"2038-01-19T03:14:08","9999-12-31T23:59:59.999",null]`},
		} {
			rec := renamed(t, batchOf(t, mem, c.dt, c.json), "x")
			for how, in := range map[string]arrow.RecordBatch{"sliced": sliced(t, rec, 2, 10), "imported-sliced": sliced(t, cImported(t, rec), 2, 10)} {
				if got := strings.ReplaceAll(jsonOf(t, in.Column(0)), "\n", ""); got != c.want {
					t.Errorf("%s input as Go sees it = %s\nwant %s", how, got, c.want)
				}
				for _, name := range c.names {
					if got := strings.ReplaceAll(eval(t, m, name, in), "\n", ""); got != c.want {
						t.Errorf("%s %s = %s\nwant %s", how, name, got, c.want)
					}
				}
			}
		}
		stillAdds(t, m)
	})
}

// A Pandas map whose DataFrame is short, lacks a declared column, is not a
// DataFrame or holds strings for a BIGINT column: the exact error.
func TestHostilePandasMapResults(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := loadModule(t, Config{}, "pandas_maps.py", hostileMoreSource)
		rec := renamed(t, batchOf(t, checkedAllocator(t), arrow.PrimitiveTypes.Int64, `[1, 2, 3]`), "v")
		for name, message := range map[string]string{
			"short_frame":    "result: the Pandas map's result has 1 values for a batch of 3 rows",
			"missing_column": "result: the Pandas map's result does not fit struct<n: int64>",
			"not_a_frame":    "result: the Pandas map's result must be a DataFrame, not Series",
			"strings_column": "result: the Pandas map's result does not fit struct<n: int64>",
		} {
			_, err := function(t, m, name).Map(context.Background(), rec)
			var ce *bridge.ConversionError
			if !errors.As(err, &ce) || ce.Path != "result" {
				t.Errorf("%s: want a result ConversionError, got %v", name, err)
			}
			wantMessage(t, err, message)
		}
		stillAdds(t, m)
	})
}

// A table function over a sliced batch with nulls: None means no rows,
// rows keep the index of their input row; one that returns a non-iterable
// is an error naming it.
func TestHostileExplodeOfSlices(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := loadModule(t, Config{}, "explode.py", hostileMoreSource)
		rec := renamed(t, batchOf(t, checkedAllocator(t), arrow.PrimitiveTypes.Int64, `[9, 9, 9, 2, null, 0, 3, null, 1, 9]`), "n")
		for how, in := range map[string]arrow.RecordBatch{"sliced": sliced(t, rec, 3, 9), "imported-sliced": sliced(t, cImported(t, rec), 3, 9)} {
			out, err := function(t, m, "repeat").Explode(context.Background(), in)
			if err != nil {
				t.Fatalf("%s: %v", how, err)
			}
			want := `[{"f0":0,"row":0},{"f0":1,"row":0},{"f0":0,"row":3},{"f0":1,"row":3},{"f0":2,"row":3},{"f0":0,"row":5}]`
			if got := recordJSON(t, out); got != want {
				t.Errorf("%s: repeat = %s\nwant %s", how, got, want)
			}
			out.Release()
		}
		_, err := function(t, m, "not_iterable").Explode(context.Background(), batchOf(t, checkedAllocator(t), arrow.PrimitiveTypes.Int64, `[1]`))
		wantMessage(t, err, "TypeError: 'int' object is not iterable")
		stillAdds(t, m)
	})
}

// A Stream carries NULL arguments through as None and None results back
// as nil, in order, in both modes (process mode bundles rows into Arrow
// batches with validity bitmaps).
func TestHostileStreamNulls(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := hostileArrowModule(t)
		st, err := function(t, m, "ident_general_bigint").Stream(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		in := []any{int64(1), nil, nil, int64(4), nil, int64(6), int64(7), nil, int64(9), nil, int64(11)}
		go func() {
			for _, v := range in {
				if err := st.Send(v); err != nil {
					t.Error(err)
				}
			}
			st.Close()
		}()
		i := 0
		for r := range st.Results() {
			if r.Err != nil || r.Seq != int64(i) || r.Value != in[i] {
				t.Errorf("result %d = %+v, want %v", i, r, in[i])
			}
			i++
		}
		if i != len(in) {
			t.Errorf("%d results for %d rows", i, len(in))
		}
		stillAdds(t, m)
	})
}

// One sliced batch (unknown null counts) evaluated from many goroutines at
// once, through every kind of function: the same right values every time,
// and no data race on the batch the callers share (run with -race).
func TestHostileSharedSlicedBatchConcurrently(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := loadModule(t, Config{Concurrency: 4}, "hostile_arrow.py", hostileArrowSource)
		rec := pick(t, nullInputs(t, checkedAllocator(t))["sliced"], "v")
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 10 {
					name := []string{"ident_general_bigint", "ident_pandas_bigint", "ident_arrow_bigint"}[(g+i)%3]
					res, err := function(t, m, name).Eval(context.Background(), rec)
					if err != nil {
						t.Error(err)
						return
					}
					if got := jsonOf(t, res); got != nullColumns["bigint"] {
						t.Errorf("%s = %s", name, got)
					}
					res.Release()
				}
			}()
		}
		wg.Wait()
		stillAdds(t, m)
	})
}

// A 1M-row batch (row-wise, Pandas, Arrow) and a 100 MB string column
// (1000 strings of 100 KB), both with nulls and sliced: the right values.
func TestHostileHugeBatches(t *testing.T) {
	if testing.Short() {
		t.Skip("huge batches")
	}
	t.Cleanup(debug.FreeOSMemory) // later tests measure the resident set
	modes(t, func(t *testing.T) {
		m := loadModule(t, Config{}, "huge.py", `
import pyarrow.compute as pc
from pyudf import udf
add = udf(lambda a, b: a + b, input_types=['BIGINT', 'BIGINT'], result_type='BIGINT')
inc = udf(lambda x: None if x is None else x + 1, input_types=['BIGINT'], result_type='BIGINT')
inc_pandas = udf(lambda x: x + 1, input_types=['BIGINT'], result_type='BIGINT', func_type='pandas')
inc_arrow = udf(lambda x: pc.add(x, 1), input_types=['BIGINT'], result_type='BIGINT', func_type='arrow')
length = udf(lambda s: None if s is None else len(s), input_types=['STRING'], result_type='BIGINT')
length_arrow = udf(lambda s: pc.utf8_length(s), input_types=['STRING'], result_type='BIGINT', func_type='arrow')
`)
		mem := checkedAllocator(t)
		const n = 1 << 20
		b := array.NewInt64Builder(mem)
		for i := range n + 3 {
			if i%1000 == 7 {
				b.AppendNull()
			} else {
				b.Append(int64(i))
			}
		}
		col := b.NewArray()
		b.Release()
		rec := sliced(t, oneColumn(t, col), 3, n+3)
		col.Release()
		for _, name := range []string{"inc", "inc_pandas", "inc_arrow"} {
			res, err := function(t, m, name).Eval(context.Background(), rec)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			ints := res.(*array.Int64)
			bad := 0
			for i := range n {
				src := i + 3
				if src%1000 == 7 {
					if !ints.IsNull(i) {
						bad++
					}
				} else if ints.IsNull(i) || ints.Value(i) != int64(src+1) {
					bad++
				}
			}
			if res.Len() != n || bad != 0 {
				t.Errorf("%s over 1M rows: %d values, %d wrong", name, res.Len(), bad)
			}
			res.Release()
		}

		sb := array.NewStringBuilder(mem)
		big := strings.Repeat("0123456789", 10_000) // 100 KB
		for i := range 1001 {
			if i%100 == 50 {
				sb.AppendNull()
			} else {
				sb.Append(big[:len(big)-i])
			}
		}
		strs := sb.NewArray()
		sb.Release()
		srec := sliced(t, oneColumn(t, strs), 1, 1001)
		strs.Release()
		for _, name := range []string{"length", "length_arrow"} {
			res, err := function(t, m, name).Eval(context.Background(), srec)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			ints := res.(*array.Int64)
			bad := 0
			for i := range 1000 {
				src := i + 1
				if src%100 == 50 {
					if !ints.IsNull(i) {
						bad++
					}
				} else if ints.IsNull(i) || ints.Value(i) != int64(len(big)-src) {
					bad++
				}
			}
			if res.Len() != 1000 || bad != 0 {
				t.Errorf("%s over 100 MB of strings: %d values, %d wrong", name, res.Len(), bad)
			}
			res.Release()
		}
		stillAdds(t, m)
	})
}
