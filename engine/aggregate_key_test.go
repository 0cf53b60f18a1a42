package engine

import (
	"context"
	"errors"
	"testing"

	"github.com/pyudf/pyudf/bridge"
)

// One accumulator travels on its own: SnapshotKey in one aggregate,
// RestoreKey under another key in a second instance (in process mode perhaps
// on another worker) that keeps its other keys; Merge then combines it as any
// other key.
func TestAggregateSnapshotKeyRestoreKeyMovesOneAccumulator(t *testing.T) {
	modes(t, func(t *testing.T) {
		ctx := context.Background()
		m := loadModule(t, Config{}, "aggregates.py", aggregateSource+
			"\nweighted_avg_2 = udaf(WeightedAvg(), input_types=[DataTypes.DOUBLE(), DataTypes.BIGINT()])\n")
		src := openAggregate(t, m, "weighted_avg")
		dst := openAggregate(t, m, "weighted_avg_2")
		for _, row := range []struct {
			key string
			v   float64
			w   int64
		}{{"a", 1, 1}, {"a", 3, 1}, {"b", 100, 1}} {
			if err := src.Accumulate(ctx, row.key, row.v, row.w); err != nil {
				t.Fatal(err)
			}
		}
		one, err := src.SnapshotKey(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		if n, err := src.Len(ctx); err != nil || n != 2 {
			t.Fatalf("source after SnapshotKey: %d keys, %v", n, err)
		}
		if err := dst.Accumulate(ctx, "kept", 10.0, int64(1)); err != nil {
			t.Fatal(err)
		}
		if err := dst.RestoreKey(ctx, "moved", one); err != nil {
			t.Fatal(err)
		}
		if got := value(t, dst, "moved"); got != 2.0 {
			t.Errorf("moved accumulator's value: %v, want 2", got)
		}
		if err := dst.Merge(ctx, "moved", "kept"); err != nil {
			t.Fatal(err)
		}
		if got := value(t, dst, "moved"); got != 14.0/3 {
			t.Errorf("after merge: %v, want 14/3", got)
		}
		// A key with no accumulator snapshots as a fresh one, and creates none.
		fresh, err := src.SnapshotKey(ctx, "none")
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := src.Len(ctx); n != 2 {
			t.Errorf("SnapshotKey of an absent key created one: %d keys", n)
		}
		if err := dst.RestoreKey(ctx, "moved", fresh); err != nil {
			t.Fatal(err)
		}
		if got := value(t, dst, "moved"); got != nil {
			t.Errorf("restored fresh accumulator's value: %v, want nil", got)
		}
	})
}

func TestHostileAggregateRestoreKeyRejectsOtherSnapshots(t *testing.T) {
	modes(t, func(t *testing.T) {
		ctx := context.Background()
		a := openAggregate(t, aggregateModule(t), "count")
		for i := range 2 {
			if err := a.Accumulate(ctx, i, int64(i)); err != nil {
				t.Fatal(err)
			}
		}
		whole, err := a.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for name, tc := range map[string]struct {
			data []byte
			msg  string
		}{
			"two keys": {whole, "one-key pyudf aggregate snapshot was expected, this one holds 2 keys"},
			"garbage":  {[]byte("not a snapshot"), "not a pyudf aggregate snapshot"},
			"empty":    {[]byte{}, "not a pyudf aggregate snapshot"},
		} {
			err := a.RestoreKey(ctx, 0, tc.data)
			var pe *bridge.PythonError
			if !errors.As(err, &pe) || pe.Type != "ValueError" {
				t.Errorf("%s: want a ValueError, got %v", name, err)
			}
			wantMessage(t, err, tc.msg)
		}
		// The state is as it was, and the aggregate still works.
		if n, err := a.Len(ctx); err != nil || n != 2 {
			t.Errorf("state after failed RestoreKeys: %d keys, %v", n, err)
		}
		if err := a.Accumulate(ctx, 0, int64(5)); err != nil {
			t.Fatal(err)
		}
		if got := value(t, a, 0); got != int64(2) {
			t.Errorf("count of key 0 after failed RestoreKeys: %v, want 2", got)
		}
	})
}
