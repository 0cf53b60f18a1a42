package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/cdata"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/pyudf/pyudf/arrowconv"
	"github.com/pyudf/pyudf/bridge"
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

// cImported passes rec through the C Data Interface, the way a batch from
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
func nullInputs(t *testing.T, mem memory.Allocator) map[string]arrow.RecordBatch {
	full := nullsBatch(t, mem)
	return map[string]arrow.RecordBatch{
		"sliced":          sliced(t, full, 3, 14),
		"sliced-imported": cImported(t, sliced(t, full, 3, 14)),
		"imported-sliced": sliced(t, cImported(t, full), 3, 14),
	}
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

var (
	_ = errors.New
	_ = bridge.Int64
)
