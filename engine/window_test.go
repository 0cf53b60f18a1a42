package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

const windowSource = `
from pyflink.table.udf import AggregateFunction, udaf

class Count(AggregateFunction):
    def create_accumulator(self):
        return [0]
    def accumulate(self, acc, *args):
        acc[0] += 1
    def retract(self, acc, *args):
        acc[0] -= 1
    def merge(self, acc, accs):
        acc[0] += sum(a[0] for a in accs)
    def get_value(self, acc):
        return acc[0]

count = udaf(Count(), result_type='BIGINT')

class CountNoMerge(AggregateFunction):
    def create_accumulator(self):
        return [0]
    def accumulate(self, acc, *args):
        acc[0] += 1
    def get_value(self, acc):
        return acc[0]

count_no_merge = udaf(CountNoMerge(), result_type='BIGINT')

class Visited(AggregateFunction):
    def create_accumulator(self):
        return set()
    def accumulate(self, acc, item):
        acc.add(item)
    def get_value(self, acc):
        return "|".join(sorted(acc))

visited = udaf(Visited(), input_types=['STRING'], result_type='STRING')
visited_pandas = udaf(lambda items: "|".join(sorted(set(items))),
                      input_types=['STRING'], result_type='STRING', func_type='pandas')
`

var t0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

func at(seconds int) time.Time { return t0.Add(time.Duration(seconds) * time.Second) }

func windowModule(t *testing.T) *Module {
	return loadModule(t, Config{}, "windows.py", windowSource)
}

func fire(t *testing.T, w *Windows, wm time.Time) []string {
	t.Helper()
	res, err := w.Watermark(context.Background(), wm)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range res {
		out = append(out, fmt.Sprintf("%v [%s,%s) %v%s", r.Key, r.Window.Start.Format("15:04:05"),
			r.Window.End.Format("15:04:05"), r.Value, map[bool]string{true: " update"}[r.Update]))
	}
	return out
}

func add(t *testing.T, w *Windows, key any, ts time.Time, args ...any) {
	t.Helper()
	if err := w.Add(context.Background(), key, ts, args...); err != nil {
		t.Fatal(err)
	}
}

func TestTumblingWindowsLatenessAndSideOutput(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := windowModule(t)
		w, err := NewWindows(WindowSpec{Kind: Tumbling, Size: time.Minute, AllowedLateness: 30 * time.Second}, openAggregate(t, m, "count"))
		if err != nil {
			t.Fatal(err)
		}
		add(t, w, "a", at(5))
		add(t, w, "a", at(50))
		add(t, w, "b", at(61))
		if got := fire(t, w, at(59)); got != nil {
			t.Errorf("fired before the window ended: %v", got)
		}
		if got, want := fire(t, w, at(60)), []string{"a [12:00:00,12:01:00) 2"}; !reflect.DeepEqual(got, want) {
			t.Errorf("at 60s: %v", got)
		}
		add(t, w, "a", at(10)) // late, but within the allowed lateness
		if got, want := fire(t, w, at(80)), []string{"a [12:00:00,12:01:00) 3 update"}; !reflect.DeepEqual(got, want) {
			t.Errorf("at 80s: %v", got)
		}
		if got := fire(t, w, at(90)); got != nil { // the window closes for good at 60s + 30s
			t.Errorf("at 90s: %v", got)
		}
		add(t, w, "a", at(20))
		if got, want := fire(t, w, at(120)), []string{"b [12:01:00,12:02:00) 1"}; !reflect.DeepEqual(got, want) {
			t.Errorf("at 120s: %v", got)
		}
		add(t, w, "c", at(30))
		late := w.Late()
		if len(late) != 2 || late[0].Key != "a" || late[1].Key != "c" || !late[1].Time.Equal(at(30)) {
			t.Errorf("side output %v", late)
		}
		if more := w.Late(); len(more) != 0 {
			t.Errorf("side output not drained: %v", more)
		}
	})
}

// The seed articles' case: for each user, the items visited in the last 5
// minutes, every 30 seconds, as a '|'-joined sorted string — computed with a
// general UDAF and with a Pandas UDAF, giving the same answers.
func TestSlidingVisitedItemsGeneralAndPandasAgree(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := windowModule(t)
		spec := WindowSpec{Kind: Sliding, Size: 5 * time.Minute, Slide: 30 * time.Second}
		general, err := NewWindows(spec, openAggregate(t, m, "visited"))
		if err != nil {
			t.Fatal(err)
		}
		pandas, err := NewPandasWindows(spec, function(t, m, "visited_pandas"))
		if err != nil {
			t.Fatal(err)
		}
		items := []string{"shoes", "hat", "laptop", "coffee", "bag"}
		var g, p []string
		for i := range 40 {
			user, ts, item := fmt.Sprintf("user-%d", i%3), at(i*17), items[i*7%len(items)]
			add(t, general, user, ts, item)
			add(t, pandas, user, ts, item)
			if i%5 == 4 {
				g = append(g, fire(t, general, ts)...)
				p = append(p, fire(t, pandas, ts)...)
			}
		}
		g = append(g, fire(t, general, at(3600))...)
		p = append(p, fire(t, pandas, at(3600))...)
		if len(g) < 40 || !reflect.DeepEqual(g, p) {
			t.Errorf("general (%d results) and pandas (%d results) differ:\n%v\n%v", len(g), len(p), g, p)
		}
		if g[0] != "user-0 [11:55:30,12:00:30) shoes" || g[1] != "user-1 [11:55:30,12:00:30) laptop" {
			t.Errorf("first results %q", g[:2])
		}
	})
}

func TestSessionWindowsMerge(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := windowModule(t)
		first := openAggregate(t, m, "count")
		w, err := NewWindows(WindowSpec{Kind: Session, Gap: 30 * time.Second}, first)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []int{0, 20, 100, 75} {
			add(t, w, "u", at(s))
		}
		add(t, w, "v", at(10))
		if got, want := fire(t, w, at(60)), []string{"v [12:00:10,12:00:40) 1", "u [12:00:00,12:00:50) 2"}; !reflect.DeepEqual(got, want) {
			t.Errorf("at 60s: %v", got)
		}
		// The same name is the same instance until it is closed: a fresh one for w2.
		if err := first.Close(); err != nil {
			t.Fatal(err)
		}
		w2, err := NewWindows(WindowSpec{Kind: Session, Gap: 30 * time.Second}, openAggregate(t, m, "count"))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []int{0, 20, 100, 75, 48} { // 48 joins [0,50) and [75,130)
			add(t, w2, "u", at(s))
		}
		if got, want := fire(t, w2, at(200)), []string{"u [12:00:00,12:02:10) 5"}; !reflect.DeepEqual(got, want) {
			t.Errorf("merged session: %v", got)
		}
		noMerge, err := NewWindows(WindowSpec{Kind: Session, Gap: 30 * time.Second}, openAggregate(t, m, "count_no_merge"))
		if err != nil {
			t.Fatal(err)
		}
		add(t, noMerge, "u", at(0))                          // [0s, 30s)
		add(t, noMerge, "u", at(50))                         // [50s, 80s)
		err = noMerge.Add(context.Background(), "u", at(25)) // bridges both: needs merge
		wantMessage(t, err, "NotImplementedError: CountNoMerge does not implement merge")
		if got, want := fire(t, noMerge, at(100)), []string{"u [12:00:00,12:00:30) 1", "u [12:00:50,12:01:20) 1"}; !reflect.DeepEqual(got, want) {
			t.Errorf("after the failed merge the sessions are unchanged: %v", got)
		}
	})
}

// Windows start where Flink's do: aligned to the Unix epoch, not to Go's
// zero time (a week from a Thursday, not a Monday), before 1970 too. An
// event time whose windows cannot be counted in int64 nanoseconds is refused,
// and the windows go on.
func TestWindowsAlignToTheEpoch(t *testing.T) {
	m := windowModule(t)
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, c := range []struct {
		size       time.Duration
		row        string
		start, end string
	}{
		{7 * 24 * time.Hour, "2026-12-01T12:00:00Z", "2026-11-26T00:00:00Z", "2026-12-03T00:00:00Z"},
		{7 * time.Minute, "2026-12-01T12:00:00Z", "2026-12-01T11:57:00Z", "2026-12-01T12:04:00Z"},
		{7 * time.Minute, "1969-12-31T23:59:00Z", "1969-12-31T23:53:00Z", "1970-01-01T00:00:00Z"},
	} {
		w, err := NewWindows(WindowSpec{Kind: Tumbling, Size: c.size}, openAggregate(t, m, "count"))
		if err != nil {
			t.Fatal(err)
		}
		add(t, w, "a", utc(c.row))
		res, err := w.Watermark(context.Background(), utc(c.end))
		if err != nil {
			t.Fatal(err)
		}
		if len(res) != 1 || !res[0].Window.Start.Equal(utc(c.start)) || !res[0].Window.End.Equal(utc(c.end)) || res[0].Value != int64(1) {
			t.Errorf("%v windows, a row at %s: fired %+v, want [%s, %s) 1", c.size, c.row, res, c.start, c.end)
		}
	}
	for _, spec := range []WindowSpec{{Kind: Tumbling, Size: time.Minute}, {Kind: Session, Gap: time.Hour}} {
		w, err := NewWindows(spec, openAggregate(t, m, "count"))
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []time.Time{utc("2300-01-01T00:00:00Z"), utc("1600-01-01T00:00:00Z"), time.Unix(0, math.MaxInt64).Add(-spec.Gap / 2)} {
			err := w.Add(context.Background(), "a", bad)
			if !errors.Is(err, ErrEventTime) || !strings.Contains(err.Error(), bad.UTC().String()) {
				t.Errorf("%+v: a row at %v: %v", spec, bad, err)
			}
		}
		add(t, w, "a", utc("2026-12-01T12:00:30Z"))
		if res, err := w.Watermark(context.Background(), utc("2026-12-01T14:00:00Z")); err != nil || len(res) != 1 || res[0].Value != int64(1) {
			t.Errorf("%+v: after the refused rows, fired %+v, %v; want the one row's window", spec, res, err)
		}
		edges, err := NewWindows(spec, openAggregate(t, m, "count"))
		if err != nil {
			t.Fatal(err)
		}
		span := max(spec.Size, spec.Gap)
		first, last := time.Unix(0, math.MinInt64).Add(span), time.Unix(0, math.MaxInt64).Add(-span)
		for at, ok := range map[time.Time]bool{first: true, last: true, first.Add(-1): false, last.Add(1): false} {
			if err := edges.Add(context.Background(), "a", at); (err == nil) != ok {
				t.Errorf("%+v: a row at %v: %v, want accepted %v", spec, at, err, ok)
			}
		}
	}
	// Sliding windows: 21 minutes every 7, the slide aligned to the epoch.
	w, err := NewWindows(WindowSpec{Kind: Sliding, Size: 21 * time.Minute, Slide: 7 * time.Minute}, openAggregate(t, m, "count"))
	if err != nil {
		t.Fatal(err)
	}
	add(t, w, "a", utc("2026-12-01T12:00:00Z"))
	if got, want := fire(t, w, utc("2026-12-01T12:18:00Z")), []string{"a [11:43:00,12:04:00) 1", "a [11:50:00,12:11:00) 1", "a [11:57:00,12:18:00) 1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("sliding windows of a row at 12:00: %v, want %v", got, want)
	}
}

func TestWindowSpecErrors(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := windowModule(t)
		agg := openAggregate(t, m, "count")
		for _, spec := range []WindowSpec{{Kind: Tumbling}, {Kind: Sliding, Size: time.Minute}, {Kind: Session}, {Kind: Tumbling, Size: 1, AllowedLateness: -1}} {
			if _, err := NewWindows(spec, agg); err == nil {
				t.Errorf("spec %+v accepted", spec)
			}
		}
		if _, err := NewPandasWindows(WindowSpec{Kind: Tumbling, Size: time.Minute}, function(t, m, "visited_pandas")); err != nil {
			t.Errorf("a Pandas UDAF refused: %v", err)
		}
		e := m.engine
		sm, err := e.LoadSource(context.Background(), "scalar.py", "def f(x):\n    return x\n")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := NewPandasWindows(WindowSpec{Kind: Tumbling, Size: time.Minute}, function(t, sm, "f")); !errors.Is(err, ErrUnsupported) {
			t.Errorf("a scalar function for Pandas windows: %v", err)
		}
	})
}

func TestWindowRetraction(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := windowModule(t)
		w, err := NewWindows(WindowSpec{Kind: Sliding, Size: time.Minute, Slide: 30 * time.Second}, openAggregate(t, m, "count"))
		if err != nil {
			t.Fatal(err)
		}
		add(t, w, "a", at(40))
		add(t, w, "a", at(45))
		if got, want := fire(t, w, at(60)), []string{"a [12:00:00,12:01:00) 2"}; !reflect.DeepEqual(got, want) {
			t.Errorf("at 60s: %v", got)
		}
		if err := w.Retract(context.Background(), "a", at(45)); err != nil {
			t.Fatal(err)
		}
		if got, want := fire(t, w, at(90)), []string{"a [12:00:30,12:01:30) 1"}; !reflect.DeepEqual(got, want) {
			t.Errorf("at 90s, after retracting the 45s row: %v", got)
		}
		noRetract, err := NewWindows(WindowSpec{Kind: Tumbling, Size: time.Minute}, openAggregate(t, m, "count_no_merge"))
		if err != nil {
			t.Fatal(err)
		}
		add(t, noRetract, "a", at(1))
		wantMessage(t, noRetract.Retract(context.Background(), "a", at(1)), "NotImplementedError: CountNoMerge does not implement retract")
		pw, err := NewPandasWindows(WindowSpec{Kind: Tumbling, Size: time.Minute}, function(t, m, "visited_pandas"))
		if err != nil {
			t.Fatal(err)
		}
		if err := pw.Retract(context.Background(), "a", at(1), "x"); !errors.Is(err, ErrUnsupported) {
			t.Errorf("retract with a Pandas UDAF: %v", err)
		}
	})
}
