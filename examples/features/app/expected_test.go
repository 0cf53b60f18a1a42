package app

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pyudf/pyudf/engine"
)

// want is the job's output computed on its own from the messages, in plain
// Go: no windows, no timers, no Python.
type want struct {
	features map[featureKey]string // (user, window end) -> visit sequence
	samples  map[string]Sample     // by trace_id
	bad      map[string]int64
	late     map[string]int64
}

// expected replays the rules: an event is late when its time is at or
// behind the watermark, which moves to max(event time) - bound - 1 ms after
// every every-th stream sequence, and to the end at the end; an event time
// beyond year 2262 or more than 24 h ahead of now is a bad record. A user's window
// [E-5m, E) (E a multiple of 30 s) is the sorted distinct items of the
// user's non-late clicks in it. An exposure (non-late, the first of its
// trace_id) is positive when a click of its trace_id is within
// [exposure, exposure+10m] and was either not late or arrived while the
// exposure's timer had not fired; its feature is its user's window ending at the
// last 30-s boundary at or before the exposure.
func expected(t *testing.T, msgs [][]byte, bound time.Duration, every uint64) want {
	t.Helper()
	return expectedAt(t, msgs, bound, every, time.Now())
}

// expectedAt is expected with the wall clock at now.
func expectedAt(t *testing.T, msgs [][]byte, bound time.Duration, every uint64, now time.Time) want {
	t.Helper()
	w := want{features: map[featureKey]string{}, samples: map[string]Sample{}, bad: map[string]int64{}, late: map[string]int64{}}
	wm, maxTS := int64(math.MinInt64), int64(math.MinInt64)
	type exp struct {
		user, item string
		ts         int64
	}
	exposures := map[string]exp{}
	var order []string
	clicks := map[string][]int64{}
	visits := map[string]map[int64][]string{} // user -> window end -> items
	const slide, size = int64(30_000), int64(300_000)
	for i, m := range msgs {
		seq := uint64(i + 1)
		var ev map[string]any
		var any_ any
		switch err := json.Unmarshal(m, &ev); {
		case err != nil && json.Unmarshal(m, &any_) == nil, err == nil && ev == nil:
			w.bad[ReasonNotObject]++
		case err != nil:
			w.bad[ReasonNotJSON]++
		default:
			s := func(k string) string { v, _ := ev[k].(string); return v }
			ts, _ := ev["event_time"].(float64)
			if s("type") == "" || s("trace_id") == "" || s("user_id") == "" || s("item_id") == "" || ts <= 0 {
				w.bad[ReasonMissingField]++
				break
			}
			at := int64(ts)
			if ts > 9_223_371_136_854 { // (MaxInt64 ns in ms, year 2262) - 15 minutes
				w.bad[ReasonEventTime]++
				break
			}
			if s("type") != "exposure" && s("type") != "click" {
				w.bad[ReasonUnknownType]++
				break
			}
			if at > now.Add(24*time.Hour).UnixMilli() {
				w.bad[ReasonEventTime]++ // more than a day ahead of the wall clock
				break
			}
			if at <= wm {
				w.late[s("type")]++
				// A late click still labels its exposure if that exposure's
				// timer (exposure + 10 min) has not fired at this watermark.
				if e, ok := exposures[s("trace_id")]; ok && s("type") == "click" && e.ts+600_000 > wm {
					clicks[s("trace_id")] = append(clicks[s("trace_id")], at)
				}
				break
			}
			maxTS = max(maxTS, at)
			if s("type") == "exposure" {
				if _, dup := exposures[s("trace_id")]; !dup {
					exposures[s("trace_id")] = exp{s("user_id"), s("item_id"), at}
					order = append(order, s("trace_id"))
				}
				break
			}
			clicks[s("trace_id")] = append(clicks[s("trace_id")], at)
			if visits[s("user_id")] == nil {
				visits[s("user_id")] = map[int64][]string{}
			}
			for end := at - at%slide + slide; end-size <= at; end += slide {
				visits[s("user_id")][end] = append(visits[s("user_id")][end], s("item_id"))
			}
		}
		if seq%every == 0 && maxTS != math.MinInt64 {
			wm = max(wm, maxTS-bound.Milliseconds()-1)
		}
	}
	for user, ends := range visits {
		for end, items := range ends {
			slices.Sort(items)
			w.features[featureKey{user, end}] = strings.Join(slices.Compact(items), "|")
		}
	}
	for _, tr := range order {
		e := exposures[tr]
		s := Sample{TraceID: tr, UserID: e.user, ItemID: e.item, ExposureTime: e.ts, FeatureWindowEnd: e.ts - e.ts%slide}
		for _, c := range clicks[tr] {
			if c >= e.ts && c <= e.ts+600_000 && (s.Label == 0 || c < s.ClickTime) {
				s.Label, s.ClickTime = 1, c
			}
		}
		s.VisitedItems = w.features[featureKey{e.user, s.FeatureWindowEnd}]
		w.samples[tr] = s
	}
	return w
}

func messages(n, badEvery, lateEvery int, seed uint64) [][]byte {
	g := NewGenerator(seed)
	g.BadEvery, g.LateEvery = badEvery, lateEvery
	out := make([][]byte, n)
	for i := range out {
		out[i] = g.Next()
	}
	return out
}

func modes() []engine.Mode { return []engine.Mode{engine.Thread, engine.Process} }

func newPipeline(t *testing.T, mode engine.Mode) *Pipeline {
	t.Helper()
	ctx := context.Background()
	eng, err := engine.New(ctx, engine.Config{Mode: mode})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	op, fn, err := Load(ctx, eng)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPipeline(op, fn, DefaultBound, DefaultWatermarkEvery)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// got collects deltas as the tables would hold them.
type got struct {
	features map[featureKey]string
	samples  map[string]Sample
	bad      map[string]int64
	late     map[string]int64
	firings  int
}

func newGot() *got {
	return &got{features: map[featureKey]string{}, samples: map[string]Sample{}, bad: map[string]int64{}, late: map[string]int64{}}
}

func (g *got) add(t *testing.T, d Delta) {
	t.Helper()
	for _, f := range d.Features {
		k := featureKey{f.UserID, f.WindowEnd}
		if _, dup := g.features[k]; dup {
			t.Errorf("window %v fired twice", k)
		}
		g.features[k] = f.VisitedItems
		g.firings++
	}
	for _, s := range d.Samples {
		if _, dup := g.samples[s.TraceID]; dup {
			t.Errorf("sample %s emitted twice", s.TraceID)
		}
		g.samples[s.TraceID] = s
	}
	for r, n := range d.Bad {
		g.bad[r] += n
	}
	for r, n := range d.Late {
		g.late[r] += n
	}
}

func compare(t *testing.T, w want, g *got) {
	t.Helper()
	if len(g.features) != len(w.features) {
		t.Errorf("%d feature windows, want %d", len(g.features), len(w.features))
	}
	n := 0
	for k, v := range w.features {
		if gv, ok := g.features[k]; (!ok || gv != v) && n < 5 {
			n++
			t.Errorf("feature %v = %q (present %v), want %q", k, gv, ok, v)
		}
	}
	if len(g.samples) != len(w.samples) {
		t.Errorf("%d samples, want %d", len(g.samples), len(w.samples))
	}
	n = 0
	for k, v := range w.samples {
		if gv := g.samples[k]; gv != v && n < 5 {
			n++
			t.Errorf("sample %s = %+v, want %+v", k, gv, v)
		}
	}
	if fmt.Sprint(g.bad) != fmt.Sprint(w.bad) || fmt.Sprint(g.late) != fmt.Sprint(w.late) {
		t.Errorf("bad %v late %v, want %v %v", g.bad, g.late, w.bad, w.late)
	}
}

// TestPipelineMatchesIndependentModel drives the pipeline directly (no
// broker, no database) in both modes, cut in the middle by a snapshot
// restored into a fresh engine.
func TestPipelineMatchesIndependentModel(t *testing.T) {
	msgs := messages(6000, 211, 97, 3)
	w := expected(t, msgs, DefaultBound, DefaultWatermarkEvery)
	var pos int
	for _, s := range w.samples {
		pos += s.Label
	}
	if len(w.samples) < 3000 || pos < 500 || len(w.late) != 2 || len(w.bad) != 3 || len(w.features) < 1000 {
		t.Fatalf("the generated data is too thin: %d samples, %d positive, late %v, bad %v, %d windows",
			len(w.samples), pos, w.late, w.bad, len(w.features))
	}
	for _, mode := range modes() {
		t.Run(mode.String(), func(t *testing.T) {
			ctx := context.Background()
			g := newGot()
			p := newPipeline(t, mode)
			for i, m := range msgs {
				d := newDelta()
				if _, err := p.Process(ctx, uint64(i+1), m, &d); err != nil {
					t.Fatal(err)
				}
				g.add(t, d)
				if i == len(msgs)/2 {
					snap, err := p.Snapshot(ctx)
					if err != nil {
						t.Fatal(err)
					}
					p = newPipeline(t, mode)
					if err := p.Restore(ctx, snap); err != nil {
						t.Fatal(err)
					}
				}
			}
			d := newDelta()
			if err := p.Advance(ctx, EndOfInput, &d); err != nil {
				t.Fatal(err)
			}
			g.add(t, d)
			compare(t, w, g)
		})
	}
}
