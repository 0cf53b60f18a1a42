package engine

import (
	"context"
	"fmt"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/pyudf/pyudf/arrowconv"
	"github.com/pyudf/pyudf/bridge"
)

func fmtValue(v any) string { return fmt.Sprint(v) }

// rowSource: PyFlink's WeightedAvg as its documentation writes it (a
// Row(0, 0) accumulator changed in place; result type DOUBLE, as the average
// is a float), and scalar UDFs that take and return Rows.
const rowSource = `
from pyflink.common import Row, RowKind
from pyflink.table import DataTypes
from pyflink.table.udf import AggregateFunction, TableFunction, udaf, udf, udtf


class WeightedAvg(AggregateFunction):

    def create_accumulator(self):
        # Row(sum, count)
        return Row(0, 0)

    def get_value(self, accumulator):
        if accumulator[1] == 0:
            return None
        else:
            return accumulator[0] / accumulator[1]

    def accumulate(self, accumulator, value, weight):
        accumulator[0] += value * weight
        accumulator[1] += weight

    def retract(self, accumulator, value, weight):
        accumulator[0] -= value * weight
        accumulator[1] -= weight

    def merge(self, accumulator, accumulators):
        for other_acc in accumulators:
            accumulator[0] += other_acc[0]
            accumulator[1] += other_acc[1]

    def get_result_type(self):
        return DataTypes.DOUBLE()

    def get_accumulator_type(self):
        return DataTypes.ROW([
            DataTypes.FIELD("f0", DataTypes.BIGINT()),
            DataTypes.FIELD("f1", DataTypes.BIGINT())])


weighted_avg = udaf(WeightedAvg(), input_types=[DataTypes.BIGINT(), DataTypes.BIGINT()])


class LastKind(AggregateFunction):
    """A named Row accumulator whose row kind tells the last change."""

    def create_accumulator(self):
        return Row(total=0, changes=0)

    def accumulate(self, acc, x):
        acc.set_row_kind(RowKind.UPDATE_AFTER)
        acc["total"] += x
        acc["changes"] += 1

    def retract(self, acc, x):
        acc.set_row_kind(RowKind.UPDATE_BEFORE)
        acc["total"] -= x
        acc["changes"] += 1

    def get_value(self, acc):
        return "%s %s total=%d changes=%d" % (str(acc.get_row_kind()), type(acc).__module__, acc.total, acc.changes)


last_kind = udaf(LastKind(), input_types=['BIGINT'], result_type='STRING')

PERSON = 'ROW<name STRING, age INT>'
Person = Row("name", "age")


@udf(input_types=[PERSON], result_type=PERSON)
def older(person):
    if person.age is not None:
        person[1] += 1       # item assignment on an argument
    person["name"] = person.name.upper()
    return person


@udf(input_types=[PERSON], result_type='STRING')
def describe(person):
    return "%r %s %s %d %s" % (person, person.as_dict(), "name" in person, len(person), type(person).__module__)


@udf(input_types=['STRING', 'INT'], result_type=PERSON)
def make_person(name, age):
    return Person(name, age)  # a Row factory


@udf(input_types=['STRING', 'INT'], result_type=PERSON)
def unnamed_person(name, age):
    return Row(name, age)     # by position


@udf(input_types=['STRING', 'INT'], result_type=PERSON)
def reordered_person(name, age):
    return Row(age=age, name=name)  # by name, in another order


def undeclared_row():
    return Row(a=1, b=Row(c="x"))


@udf(result_type='ROW<d STRING>')
def map_describe(row):
    row["n"] += 1
    return Row(d="%r %s" % (row, row.n))


@udtf(input_types=['BIGINT'], result_types=['BIGINT', 'STRING'])
def split(n):
    for i in range(n):
        yield Row(i, "r%d" % i)


@udf(input_types=['BIGINT'], result_type='ROW<a BIGINT>')
def bad_values(x):
    row = Row(a=x)
    row._values = x          # not a list: refused, not misread
    return row


class Shadowing(Row):
    __slots__ = ()

    @property
    def _fields(self):
        return ["wrong"]


def shadowing():
    row = Shadowing.from_fields(None, [1, 2])
    return row
`

func rowModule(t *testing.T) *Module {
	t.Helper()
	return loadModule(t, Config{}, "rows.py", rowSource)
}

// PyFlink's WeightedAvg, unchanged: Row(0, 0) accumulators changed in place
// by accumulate, retract and merge, and snapshotted and restored.
func TestRowWeightedAvgFromPyFlinkDocs(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := rowModule(t)
		a := openAggregate(t, m, "weighted_avg")
		ctx := context.Background()
		for _, r := range []struct {
			key           string
			value, weight int64
		}{{"a", 10, 1}, {"a", 20, 3}, {"b", 5, 2}, {"c", 1, 1}} {
			if err := a.Accumulate(ctx, r.key, r.value, r.weight); err != nil {
				t.Fatal(err)
			}
		}
		if got := value(t, a, "a"); got != 17.5 {
			t.Errorf("a = %v, want (10+60)/4", got)
		}
		if err := a.Retract(ctx, "a", int64(20), int64(3)); err != nil {
			t.Fatal(err)
		}
		if got := value(t, a, "a"); got != 10.0 {
			t.Errorf("a after retract = %v", got)
		}
		snapshot, err := a.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Merge(ctx, "a", "b", "c"); err != nil {
			t.Fatal(err)
		}
		if got := value(t, a, "a"); got != 5.25 {
			t.Errorf("merged a = %v, want (10+10+1)/4", got)
		}
		if got := value(t, a, "never"); got != nil {
			t.Errorf("empty accumulator = %v, want nil (count 0)", got)
		}

		// A fresh instance restores the snapshot taken before the merge; the
		// restored Rows are still mutable accumulators.
		b := openAggregate(t, m, "weighted_avg")
		if n, err := b.Restore(ctx, snapshot); err != nil || n != 3 {
			t.Fatalf("Restore = %d, %v; want 3 keys", n, err)
		}
		for key, want := range map[string]any{"a": 10.0, "b": 5.0, "c": 1.0} {
			if got := value(t, b, key); got != want {
				t.Errorf("restored %s = %v, want %v", key, got, want)
			}
		}
		if err := b.Accumulate(ctx, "a", int64(40), int64(1)); err != nil {
			t.Fatal(err)
		}
		if err := b.Merge(ctx, "a", "b"); err != nil {
			t.Fatal(err)
		}
		if got := value(t, b, "a"); got != 60.0/4 {
			t.Errorf("restored a after accumulate and merge = %v, want (10+40+10)/4", got)
		}
	})
}

// A Row's row kind (and its names) survive Snapshot and Restore.
func TestRowKindSurvivesSnapshot(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := rowModule(t)
		a := openAggregate(t, m, "last_kind")
		ctx := context.Background()
		for _, x := range []int64{5, 7} {
			if err := a.Accumulate(ctx, "k", x); err != nil {
				t.Fatal(err)
			}
		}
		if err := a.Retract(ctx, "k", int64(2)); err != nil {
			t.Fatal(err)
		}
		if err := a.Accumulate(ctx, "up", int64(1)); err != nil {
			t.Fatal(err)
		}
		snapshot, err := a.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		b := openAggregate(t, m, "last_kind")
		if _, err := b.Restore(ctx, snapshot); err != nil {
			t.Fatal(err)
		}
		for key, want := range map[string]string{
			"k":  "-U pyudf.row total=10 changes=3",
			"up": "+U pyudf.row total=1 changes=1",
		} {
			if got := value(t, b, key); got != want {
				t.Errorf("restored %s = %q, want %q", key, got, want)
			}
		}
	})
}

// Row arguments and results of scalar UDFs through Call: a bridge.Row in
// arrives as a named Row the UDF may change; Rows made positionally, by
// name in any order and by a factory all come back as the declared ROW.
func TestRowCallArgumentsAndResults(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := rowModule(t)
		for _, c := range []struct {
			name string
			args []any
			want string
		}{
			{"older", []any{bridge.Row{"ann", int32(41)}}, "[ANN 42]"},
			{"describe", []any{bridge.Row{"bo", int32(7)}}, "Row(name='bo', age=7) {'name': 'bo', 'age': 7} True 2 pyudf.row"},
			{"make_person", []any{"cy", int32(3)}, "[cy 3]"},
			{"unnamed_person", []any{"di", int32(4)}, "[di 4]"},
			{"reordered_person", []any{"ed", int32(5)}, "[ed 5]"},
			{"undeclared_row", nil, "[1 [x]]"},
		} {
			got := call(t, m, c.name, c.args...)
			if s := fmtValue(got); s != c.want {
				t.Errorf("%s = %s, want %s", c.name, s, c.want)
			}
		}
		if got := call(t, m, "make_person", "fy", int32(6)); len(got.(bridge.Row)) != 2 {
			t.Errorf("make_person = %#v, want a bridge.Row", got)
		}
	})
}

// Row arguments of row-wise batch UDFs: Map passes each row as a named Row
// the UDF may change; Eval passes a struct column's values as named Rows, as
// Call does; a UDTF may yield Rows.
func TestRowEvalAndMap(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := rowModule(t)
		mem := checkedAllocator(t)
		in := renamed(t, batchOf(t, mem, arrow.BinaryTypes.String, `["a", null]`, arrow.PrimitiveTypes.Int64, `[1, 2]`), "s", "n")
		out, err := function(t, m, "map_describe").Map(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		if got := recordJSON(t, out); got != `[{"d":"Row(s='a', n=2) 2"},{"d":"Row(s=None, n=3) 3"}]` {
			t.Errorf("map_describe = %s", got)
		}
		out.Release()

		person := arrow.StructOf(arrow.Field{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
			arrow.Field{Name: "age", Type: arrow.PrimitiveTypes.Int32, Nullable: true})
		people := batchOf(t, mem, person, `[{"name": "ann", "age": 41}, {"name": "bo", "age": null}, {"name": "cy", "age": 7}]`)
		if got := eval(t, m, "older", people); got != `[{"age":42,"name":"ANN"}
,{"age":null,"name":"BO"}
,{"age":8,"name":"CY"}
]` {
			t.Errorf("older = %s", got)
		}
		if got := eval(t, m, "describe", batchOf(t, mem, person, `[{"name": "bo", "age": 7}]`)); got != `["Row(name='bo', age=7) {'name': 'bo', 'age': 7} True 2 pyudf.row"]` {
			t.Errorf("describe = %s", got)
		}
		rows := collect(t, function(t, m, "split"), int64(2))
		if s := fmtValue(rows); s != "[[0 r0] [1 r1]]" {
			t.Errorf("split = %s", s)
		}
	})
}

// A Row whose _values is not a list is refused with a clear error (not read
// as something else), in both modes, and the engine works afterwards.
func TestHostileRowValuesNotAList(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := rowModule(t)
		_, err := function(t, m, "bad_values").Call(context.Background(), int64(3))
		wantConversion(t, err, "Row values must be a list, not int") // a bad result, not the UDF raising
		if got := call(t, m, "make_person", "ok", int32(1)); fmtValue(got) != "[ok 1]" {
			t.Errorf("after the error: %v", got)
		}
	})
}

// A Row subclass that shadows _fields with a property: the converters read
// Row's own slot (unset: an unnamed row), never the subclass's attribute.
func TestHostileRowSubclassShadowsFields(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := rowModule(t)
		if got := fmtValue(call(t, m, "shadowing")); got != "[1 2]" {
			t.Errorf("shadowing = %s, want the values as a list", got)
		}
		if got := call(t, m, "make_person", "ok", int32(1)); fmtValue(got) != "[ok 1]" {
			t.Errorf("after: %v", got)
		}
	})
}

const rowBenchSource = `
from pyflink.table import DataTypes, Row
from pyflink.table.udf import udf

@udf(result_type='ROW<id BIGINT, twice BIGINT>')
def widen(row):
    return Row(id=row.id, twice=row[1] * 2)

@udf(input_types=['ROW<id BIGINT, n BIGINT>'], result_type='ROW<id BIGINT, twice BIGINT>')
def widen_call(row):
    return Row(id=row.id, twice=row[1] * 2)
`

// BenchmarkMapRows64K: Map over a 64K-row batch, one Row built per row
// (fields read by name and index) and one Row returned per row.
func BenchmarkMapRows64K(b *testing.B) {
	m := loadModule(b, Config{}, "row_bench.py", rowBenchSource)
	f, err := m.Function(context.Background(), "widen")
	if err != nil {
		b.Fatal(err)
	}
	const rows = 64 * 1024
	ab := array.NewInt64Builder(arrowconv.DefaultAllocator)
	for i := range rows {
		ab.Append(int64(i))
	}
	col := ab.NewArray()
	ab.Release()
	schema := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}, {Name: "n", Type: arrow.PrimitiveTypes.Int64}}, nil)
	rec := array.NewRecordBatch(schema, []arrow.Array{col, col}, rows)
	col.Release()
	defer rec.Release()
	b.SetBytes(rows)
	for b.Loop() {
		out, err := f.Map(context.Background(), rec)
		if err != nil {
			b.Fatal(err)
		}
		out.Release()
	}
}

// BenchmarkCallRowArg: one row call with a ROW argument and a ROW result.
func BenchmarkCallRowArg(b *testing.B) {
	m := loadModule(b, Config{}, "row_bench.py", rowBenchSource)
	f, err := m.Function(context.Background(), "widen_call")
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		v, err := f.Call(ctx, bridge.Row{int64(i), int64(1)})
		if err != nil {
			b.Fatal(err)
		}
		if r, ok := v.(bridge.Row); !ok || r[1] != int64(2) {
			b.Fatal(v)
		}
	}
}
