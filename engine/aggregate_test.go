package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/pyudf/pyudf/bridge"
)

const aggregateSource = `
import gc
from pyflink.table import DataTypes
from pyflink.table.udf import AggregateFunction, udaf

class Acc:
    """A weighted-average accumulator (a class, so tests can count instances)."""
    def __init__(self):
        self.total = 0.0
        self.weight = 0

class WeightedAvg(AggregateFunction):
    def create_accumulator(self):
        return Acc()
    def accumulate(self, acc, value, weight):
        acc.total += value * weight
        acc.weight += weight
    def retract(self, acc, value, weight):
        acc.total -= value * weight
        acc.weight -= weight
    def merge(self, acc, accs):
        for other in accs:
            acc.total += other.total
            acc.weight += other.weight
    def get_value(self, acc):
        return None if acc.weight == 0 else acc.total / acc.weight
    def get_result_type(self):
        return DataTypes.DOUBLE()
    def get_accumulator_type(self):
        return DataTypes.ROW([DataTypes.FIELD("total", DataTypes.DOUBLE()), DataTypes.FIELD("weight", DataTypes.BIGINT())])

weighted_avg = udaf(WeightedAvg(), input_types=[DataTypes.DOUBLE(), DataTypes.BIGINT()])

class Count(AggregateFunction):
    def create_accumulator(self):
        return [0]
    def accumulate(self, acc, x: int):
        acc[0] += 1
    def get_value(self, acc):
        return acc[0]

count = udaf(Count(), result_type='BIGINT')

class Failing(AggregateFunction):
    def create_accumulator(self):
        return [0]
    def accumulate(self, acc, x):
        if x < 0:
            raise ValueError("negative input %d" % x)
        acc[0] += x
    def merge(self, acc, accs):
        raise RuntimeError("cannot merge")
    def get_value(self, acc):
        if acc[0] > 100:
            raise OverflowError("total %d too large" % acc[0])
        return acc[0]

failing = udaf(Failing(), input_types=['BIGINT'], result_type='BIGINT')

def live_accumulators():
    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o) is Acc)
`

func aggregateModule(t *testing.T) *Module {
	t.Helper()
	return loadModule(t, Config{}, "aggregates.py", aggregateSource)
}

func openAggregate(t *testing.T, m *Module, name string) *Aggregate {
	t.Helper()
	a, err := m.Aggregate(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

func value(t *testing.T, a *Aggregate, key any) any {
	t.Helper()
	v, err := a.Value(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestAggregateAccumulateRetractMerge(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := aggregateModule(t)
		a := openAggregate(t, m, "weighted_avg")
		if got := typeList(a.InputTypes()) + " -> " + a.ResultType().String(); got != "DOUBLE, BIGINT -> DOUBLE" {
			t.Errorf("signature %s", got)
		}
		ctx := context.Background()
		for _, r := range []struct {
			key    string
			value  float64
			weight int64
		}{{"a", 10, 1}, {"a", 20, 3}, {"b", 5, 2}, {"c", 1, 1}} {
			if err := a.Accumulate(ctx, r.key, r.value, r.weight); err != nil {
				t.Fatal(err)
			}
		}
		if got := value(t, a, "a"); got != 17.5 {
			t.Errorf("a = %v", got)
		}
		if err := a.Retract(ctx, "a", 20.0, int64(3)); err != nil {
			t.Fatal(err)
		}
		if got := value(t, a, "a"); got != 10.0 {
			t.Errorf("a after retract = %v", got)
		}
		if err := a.Merge(ctx, "a", "b", "c"); err != nil {
			t.Fatal(err)
		}
		if got := value(t, a, "a"); got != 5.25 {
			t.Errorf("merged a = %v, want (10+10+1)/4", got)
		}
		if n, err := a.Len(ctx); err != nil || n != 1 {
			t.Errorf("keys after merge: %d, %v", n, err)
		}
		if got := value(t, a, "never"); got != nil {
			t.Errorf("value of a key never seen = %v", got)
		}
		if removed, err := a.Remove(ctx, "a"); err != nil || !removed {
			t.Errorf("remove: %v %v", removed, err)
		}
		if err := a.Accumulate(ctx, "x", "not a number", int64(1)); err == nil {
			t.Error("a string for DOUBLE was accepted")
		}
	})
}

func TestAggregateBatchMatchesRows(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := aggregateModule(t)
		rows, batch := openAggregate(t, m, "weighted_avg"), openAggregate(t, m, "weighted_avg")
		keys := []string{"u1", "u2", "u1", "u3", "u2", "u1"}
		values := []float64{1, 2, 3, 4, 5, 6}
		weights := []int64{1, 2, 3, 1, 2, 3}
		for i := range keys {
			if err := rows.Accumulate(context.Background(), keys[i], values[i], weights[i]); err != nil {
				t.Fatal(err)
			}
		}
		k, _ := json.Marshal(keys)
		v, _ := json.Marshal(values)
		w, _ := json.Marshal(weights)
		rec := batchOf(t, checkedAllocator(t), arrow.PrimitiveTypes.Float64, string(v),
			arrow.BinaryTypes.String, string(k), arrow.PrimitiveTypes.Int64, string(w))
		if err := batch.AccumulateBatch(context.Background(), rec, 1); err != nil {
			t.Fatal(err)
		}
		for _, key := range []string{"u1", "u2", "u3"} {
			if r, b := value(t, rows, key), value(t, batch, key); r != b || r == nil {
				t.Errorf("%s: rows %v, batch %v", key, r, b)
			}
		}
	})
}

func TestAggregateKeyColumnOfUnsupportedType(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := aggregateModule(t)
		a := openAggregate(t, m, "count")
		rec := batchOf(t, checkedAllocator(t), arrow.ListOf(arrow.PrimitiveTypes.Int64), `[[1], [2]]`, arrow.PrimitiveTypes.Int64, `[1, 2]`)
		err := a.AccumulateBatch(context.Background(), rec, 0)
		wantMessage(t, err, `aggregate "count": key column 0 ("c0") is list<item: int64, nullable>; keys must be integers, strings`)
		if err := a.AccumulateBatch(context.Background(), rec, 5); err == nil {
			t.Error("key column 5 of 2 accepted")
		}
		valid := batchOf(t, checkedAllocator(t), arrow.BinaryTypes.String, `["a", "b", "a"]`, arrow.PrimitiveTypes.Int64, `[1, 2, 3]`)
		if err := a.AccumulateBatch(context.Background(), valid, 0); err != nil {
			t.Fatalf("a valid batch after the errors: %v", err)
		}
		if got := value(t, a, "a"); got != int64(2) {
			t.Errorf("count of a = %v", got)
		}
	})
}

func TestAggregateExceptions(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := aggregateModule(t)
		a := openAggregate(t, m, "failing")
		ctx := context.Background()
		var pe *bridge.PythonError
		err := a.Accumulate(ctx, "k", int64(-1))
		if !errors.As(err, &pe) || pe.Type != "ValueError" {
			t.Fatalf("accumulate: %v", err)
		}
		wantMessage(t, err, `function "failing.accumulate": ValueError: negative input -1`)
		if err := a.Accumulate(ctx, "k", int64(101)); err != nil {
			t.Fatal(err)
		}
		_, err = a.Value(ctx, "k")
		wantMessage(t, err, `function "failing.get_value": OverflowError: total 101 too large`)
		err = a.Merge(ctx, "k", "other")
		wantMessage(t, err, `function "failing.merge": RuntimeError: cannot merge`)
		err = a.Retract(ctx, "k", int64(1))
		wantMessage(t, err, "NotImplementedError: Failing does not implement retract")
		c := openAggregate(t, m, "count")
		err = c.Merge(ctx, "a", "b")
		wantMessage(t, err, "NotImplementedError: Count does not implement merge")
		if err := c.Accumulate(ctx, "a", int64(1)); err != nil {
			t.Errorf("engine unusable after the errors: %v", err)
		}
	})
}

func TestAggregateRestoreRejectsBadSnapshots(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := aggregateModule(t)
		a := openAggregate(t, m, "count")
		ctx := context.Background()
		for i := range 3 {
			if err := a.Accumulate(ctx, i, int64(i)); err != nil {
				t.Fatal(err)
			}
		}
		good, err := a.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for name, data := range map[string][]byte{"garbage": []byte("not a snapshot at all"), "truncated": good[:len(good)/2], "empty": {}} {
			_, err := a.Restore(ctx, data)
			var pe *bridge.PythonError
			if !errors.As(err, &pe) || pe.Type != "ValueError" {
				t.Errorf("%s: want a ValueError, got %v", name, err)
			}
			wantMessage(t, err, "not a pyudf aggregate snapshot")
		}
		if n, err := a.Len(ctx); err != nil || n != 3 {
			t.Errorf("state after failed restores: %d keys, %v", n, err)
		}
	})
}

func TestAggregateCloseFreesAccumulators(t *testing.T) {
	sharedModes(t, func(t *testing.T) {
		// One worker in process mode, so that live_accumulators counts where they live.
		m := loadModule(t, Config{Workers: 1}, "aggregates.py", aggregateSource)
		a, err := m.Aggregate(context.Background(), "weighted_avg")
		if err != nil {
			t.Fatal(err)
		}
		for i := range 1000 {
			if err := a.Accumulate(context.Background(), i, 1.0, int64(1)); err != nil {
				t.Fatal(err)
			}
		}
		if got := call(t, m, "live_accumulators"); got != int64(1000) {
			t.Fatalf("live accumulators before Close: %v", got)
		}
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		if got := call(t, m, "live_accumulators"); got != int64(0) {
			t.Errorf("live accumulators after Close: %v", got)
		}
		if err := a.Accumulate(context.Background(), 1, 1.0, int64(1)); !errors.Is(err, ErrClosed) {
			t.Errorf("accumulate after Close: %v", err)
		}
		if _, err := m.Function(context.Background(), "weighted_avg"); !errors.Is(err, ErrUnsupported) {
			t.Errorf("opening an aggregate as a scalar function: %v", err)
		}
		if _, err := m.Aggregate(context.Background(), "live_accumulators"); !errors.Is(err, ErrUnsupported) {
			t.Errorf("opening a scalar function as an aggregate: %v", err)
		}
	})
}

// The checkpoint test: snapshot mid-stream, restore in a fresh process, feed
// the rest; the results equal an uninterrupted run's.
var aggregateEvents = func() (keys []string, values []float64, weights []int64) {
	for i := range 200 {
		keys = append(keys, fmt.Sprintf("user-%d", i%7))
		values = append(values, float64(i%13)+0.5)
		weights = append(weights, int64(1+i%3))
	}
	return
}

func feed(a *Aggregate, from, to int) error {
	keys, values, weights := aggregateEvents()
	for i := from; i < to; i++ {
		if err := a.Accumulate(context.Background(), keys[i], values[i], weights[i]); err != nil {
			return err
		}
	}
	return nil
}

func results(a *Aggregate) (map[string]any, error) {
	out := map[string]any{}
	for i := range 7 {
		key := fmt.Sprintf("user-%d", i)
		v, err := a.Value(context.Background(), key)
		if err != nil {
			return nil, err
		}
		out[key] = v
	}
	return out, nil
}

func init() {
	childScenarios["aggregate_restore"] = func() error {
		ctx := context.Background()
		e, err := New(ctx, Config{})
		if err != nil {
			return err
		}
		m, err := e.LoadSource(ctx, "aggregates.py", aggregateSource)
		if err != nil {
			return err
		}
		a, err := m.Aggregate(ctx, "weighted_avg")
		if err != nil {
			return err
		}
		dir := os.Getenv("PYUDF_CHILD_DIR")
		snapshot, err := os.ReadFile(filepath.Join(dir, "snapshot"))
		if err != nil {
			return err
		}
		if _, err := a.Restore(ctx, snapshot); err != nil {
			return err
		}
		if err := feed(a, 120, 200); err != nil {
			return err
		}
		res, err := results(a)
		if err != nil {
			return err
		}
		b, _ := json.Marshal(res)
		return os.WriteFile(filepath.Join(dir, "results.json"), b, 0o644)
	}
}

func TestAggregateSnapshotRestoreInFreshProcess(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := aggregateModule(t)
		whole, part := openAggregate(t, m, "weighted_avg"), openAggregate(t, m, "weighted_avg")
		if err := feed(whole, 0, 200); err != nil {
			t.Fatal(err)
		}
		want, err := results(whole)
		if err != nil {
			t.Fatal(err)
		}
		if err := feed(part, 0, 120); err != nil {
			t.Fatal(err)
		}
		snapshot, err := part.Snapshot(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "snapshot"), snapshot, 0o644); err != nil {
			t.Fatal(err)
		}
		runChild(t, "aggregate_restore", "PYUDF_CHILD_DIR="+dir)
		b, err := os.ReadFile(filepath.Join(dir, "results.json"))
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		wantJSON, _ := json.Marshal(want)
		gotJSON, _ := json.Marshal(got)
		if string(gotJSON) != string(wantJSON) {
			t.Errorf("restored run: %s\nuninterrupted: %s", gotJSON, wantJSON)
		}
	})
}
