package engine

import (
	"context"
	"reflect"
	"testing"

	"github.com/pyudf/pyudf/bridge"
)

// dataViewSource is an aggregate whose accumulator holds PyFlink's data views
// and whose results are the views themselves (issue 12, "Compatibility").
const dataViewSource = `
from pyflink.common import Row
from pyflink.table import AggregateFunction, DataTypes, ListView, MapView
from pyflink.table.udf import udaf

class Tags(AggregateFunction):
    def create_accumulator(self):
        return Row(ListView(), MapView())

    def accumulate(self, acc, tag):
        acc[0].add(tag)
        acc[1].put(tag, (acc[1].get(tag) if acc[1].contains(tag) else 0) + 1)

    def get_value(self, acc):
        return Row(acc[0], acc[1])

    def get_result_type(self):
        return DataTypes.ROW([DataTypes.FIELD("seen", DataTypes.ARRAY(DataTypes.STRING())),
                              DataTypes.FIELD("counts", DataTypes.MAP(DataTypes.STRING(), DataTypes.BIGINT()))])

tags = udaf(Tags())
`

// TestDataViewAccumulator: a ListView / MapView in an accumulator survives
// Snapshot/Restore (pickled) and converts to Go like a list / dict.
func TestDataViewAccumulator(t *testing.T) {
	modes(t, func(t *testing.T) {
		ctx := context.Background()
		a := openAggregate(t, loadModule(t, Config{}, "data_views", dataViewSource), "tags")
		for _, tag := range []string{"red", "blue", "red"} {
			if err := a.Accumulate(ctx, "k", tag); err != nil {
				t.Fatal(err)
			}
		}
		snapshot, err := a.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		b := openAggregate(t, loadModule(t, Config{}, "data_views", dataViewSource), "tags")
		if n, err := b.Restore(ctx, snapshot); err != nil || n != 1 {
			t.Fatalf("Restore = %d, %v; want 1 key", n, err)
		}
		if err := b.Accumulate(ctx, "k", "green"); err != nil {
			t.Fatal(err)
		}
		got, err := b.Value(ctx, "k")
		if err != nil {
			t.Fatal(err)
		}
		want := bridge.Row{[]any{"red", "blue", "red", "green"},
			map[any]any{"red": int64(2), "blue": int64(1), "green": int64(1)}}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("Value = %#v, want %#v", got, want)
		}
	})
}
