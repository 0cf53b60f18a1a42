package engine

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
)

const reduceSource = `
from pyflink.table import DataTypes
from pyflink.table.udf import AggregateFunction, udaf

mean = udaf(lambda v: v.mean(), input_types=['DOUBLE'], result_type='DOUBLE', func_type='pandas')
weighted = udaf(lambda v, w: (v * w).sum() / w.sum(), result_type='DOUBLE', func_type='pandas')
series_back = udaf(lambda v: v * 2, input_types=['DOUBLE'], result_type='DOUBLE', func_type='pandas')

# The seed articles' case: the items a user visited in a window, sorted, '|'-joined.
visited_pandas = udaf(lambda items: "|".join(sorted(set(items.dropna()))),
                      input_types=['STRING'], result_type='STRING', func_type='pandas')

class Visited(AggregateFunction):
    def create_accumulator(self):
        return set()
    def accumulate(self, acc, item):
        if item is not None:
            acc.add(item)
    def get_value(self, acc):
        return "|".join(sorted(acc))

visited = udaf(Visited(), input_types=['STRING'], result_type='STRING')
`

func TestPandasUDAFReduce(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := loadModule(t, Config{}, "reduce_udfs.py", reduceSource)
		mem := checkedAllocator(t)
		ctx := context.Background()
		v, err := function(t, m, "mean").Reduce(ctx, batchOf(t, mem, arrow.PrimitiveTypes.Float64, `[1, 2, null, 6]`))
		if err != nil || v != 3.0 {
			t.Errorf("mean = %v, %v", v, err)
		}
		v, err = function(t, m, "weighted").Reduce(ctx, batchOf(t, mem, arrow.PrimitiveTypes.Float64, `[1, 3]`,
			arrow.PrimitiveTypes.Int64, `[1, 3]`))
		if err != nil || v != 2.5 {
			t.Errorf("weighted = %v, %v", v, err)
		}
		_, err = function(t, m, "series_back").Reduce(ctx, batchOf(t, mem, arrow.PrimitiveTypes.Float64, `[1]`))
		wantMessage(t, err, "result: the Pandas UDAF's result must be a scalar, not Series")
		_, err = function(t, m, "mean").Reduce(ctx, batchOf(t, mem, arrow.BinaryTypes.String, `["x"]`))
		wantMessage(t, err, `column 0 ("c0") is utf8, the function's argument 1 is DOUBLE`)
		if _, err := function(t, m, "mean").Eval(ctx, batchOf(t, mem, arrow.PrimitiveTypes.Float64, `[1]`)); !errors.Is(err, ErrUnsupported) {
			t.Errorf("Eval of a Pandas UDAF: %v", err)
		}
		if _, err := function(t, m, "mean").Call(ctx, 1.0); !errors.Is(err, ErrUnsupported) {
			t.Errorf("Call of a Pandas UDAF: %v", err)
		}
	})
}

func TestVisitedItemsPandasAndGeneralAgree(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := loadModule(t, Config{}, "reduce_udfs.py", reduceSource)
		ctx := context.Background()
		windows := map[string]string{
			"alice": `["shoes", "hat", "shoes", null, "bag"]`,
			"bob":   `["laptop"]`,
		}
		general := openAggregate(t, m, "visited")
		mem := checkedAllocator(t)
		for user, items := range windows {
			rec := batchOf(t, mem, arrow.BinaryTypes.String, items)
			p, err := function(t, m, "visited_pandas").Reduce(ctx, rec)
			if err != nil {
				t.Fatal(err)
			}
			keys := make([]string, rec.NumRows())
			for i := range keys {
				keys[i] = `"` + user + `"`
			}
			keyed := batchOf(t, mem, arrow.BinaryTypes.String, "["+strings.Join(keys, ",")+"]", arrow.BinaryTypes.String, items)
			if err := general.AccumulateBatch(ctx, keyed, 0); err != nil {
				t.Fatal(err)
			}
			g := value(t, general, user)
			if p != g {
				t.Errorf("%s: pandas %q, general %q", user, p, g)
			}
		}
		if got := value(t, general, "alice"); got != "bag|hat|shoes" {
			t.Errorf("alice = %q", got)
		}
	})
}
