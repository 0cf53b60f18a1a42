package app

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pyudf/pyudf/engine"
	"github.com/pyudf/pyudf/examples/appkit/apptest"
	"github.com/pyudf/pyudf/examples/appkit/pgtest"
)

var noon = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func ev(typ, trace, user, item string, at time.Duration) []byte {
	return fmt.Appendf(nil, `{"type":%q,"trace_id":%q,"user_id":%q,"item_id":%q,"event_time":%d}`, typ, trace, user, item, noon.Add(at).UnixMilli())
}

// TestFeaturesNoLeakage: a sample carries its user's feature as of the
// exposure. Alice visits a, is shown b (her feature then: "a"), clicks b
// and then visits z: her later windows say "a|b|z", the sample still "a".
func TestFeaturesNoLeakage(t *testing.T) {
	m := time.Minute
	msgs := [][]byte{
		ev(Exposure, "t0", "alice", "a", 5*time.Second),
		ev(Click, "t0", "alice", "a", 10*time.Second), // a visit of a
		ev(Exposure, "t1", "alice", "b", m+5*time.Second),
		ev(Click, "t1", "alice", "b", 2*m), // labels t1 positive, and is a visit of b
		ev(Exposure, "t2", "alice", "z", 2*m+30*time.Second),
		ev(Click, "t2", "alice", "z", 3*m), // a later visit
		ev(Exposure, "t3", "bob", "q", 20*m),
	}
	js := apptest.Broker(t, DefaultStream, DefaultSubject)
	last := publish(t, js, msgs)
	sink := sqliteSink(t, "")
	a, _ := newApp(t, engine.Thread, Config{JS: js, Sink: sink, StopAt: last})
	runToEnd(t, a)
	samples, err := sink.Samples(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s := samples["t1"]
	want := Sample{TraceID: "t1", UserID: "alice", ItemID: "b", ExposureTime: noon.Add(m + 5*time.Second).UnixMilli(), Label: 1,
		ClickTime: noon.Add(2 * m).UnixMilli(), VisitedItems: "a", FeatureWindowEnd: noon.Add(m).UnixMilli()}
	if s != want {
		t.Errorf("sample t1 = %+v, want %+v", s, want)
	}
	var latest string
	if err := sink.DB().QueryRow(`SELECT visited_items FROM user_feature WHERE user_id = 'alice'`).Scan(&latest); err != nil {
		t.Fatal(err)
	}
	var later string
	if err := sink.DB().QueryRow(`SELECT visited_items FROM user_feature_history WHERE user_id = 'alice' AND window_end = ?`,
		noon.Add(3*m+30*time.Second).UnixMilli()).Scan(&later); err != nil {
		t.Fatal(err)
	}
	if later != "a|b|z" || latest != "z" {
		t.Errorf("alice's window ending 12:03:30 is %q (want a|b|z), her latest %q (want z)", later, latest)
	}
	if s := samples["t0"]; s.Label != 1 || s.VisitedItems != "" {
		t.Errorf("sample t0 (no visits before it) = %+v", s)
	}
	if s := samples["t2"]; s.Label != 1 || s.VisitedItems != "a|b" {
		t.Errorf("sample t2 = %+v, want label 1 and the feature a|b (the window ending 12:02:30)", s)
	}
	compare(t, expected(t, msgs, DefaultBound, DefaultWatermarkEvery), func() *got {
		g := newGot()
		hist, _ := sink.FeatureHistory(context.Background())
		for _, f := range hist {
			g.features[featureKey{f.UserID, f.WindowEnd}] = f.VisitedItems
		}
		g.samples = samples
		return g
	}())
}

// TestHostileFeaturesBadRecords: each kind of bad record is counted under
// its reason (valid JSON that is not an object under its own), logged
// once, and skipped; the good events around them are
// processed; a click without an exposure and a second exposure of a
// trace_id change nothing.
func TestHostileFeaturesBadRecords(t *testing.T) {
	bad := map[string][]string{
		ReasonNotJSON:      {`exposure,t9,u1,i1,1`, `{"type":`, "\x00\xff\xfe", ``},
		ReasonNotObject:    {`[1,2,3]`, ` null`, `"exposure"`, `42`, `true`},
		ReasonUnknownType:  {string(ev("purchase", "t9", "alice", "a", 0)), string(ev("EXPOSURE", "t9", "alice", "a", 0))},
		ReasonMissingField: {`{"type":"click","trace_id":"t9","user_id":"alice","event_time":1}`, string(ev(Click, "", "alice", "a", 0)), string(ev(Exposure, "t9", "alice", "", 0)), `{"type":"click","trace_id":"t9","user_id":"alice","item_id":"a","event_time":0}`, `{}`},
		ReasonBadField:     {`{"type":"click","trace_id":"t9","user_id":"alice","item_id":"a","event_time":"soon"}`, `{"type":1,"trace_id":"t9","user_id":"alice","item_id":"a","event_time":1}`, `{"type":"click","trace_id":"t9","user_id":"alice","item_id":"a","event_time":1.5}`},
	}
	var msgs [][]byte
	i := 0
	total := 0
	for _, reason := range []string{ReasonNotJSON, ReasonNotObject, ReasonUnknownType, ReasonMissingField, ReasonBadField} {
		total += len(bad[reason])
		for _, b := range bad[reason] {
			msgs = append(msgs, ev(Exposure, fmt.Sprintf("g%d", i), "alice", "a", time.Duration(i)*time.Second), []byte(b))
			i++
		}
	}
	msgs = append(msgs, ev(Click, "nobody", "bob", "x", 30*time.Second), // no exposure: forgotten after 10 minutes
		ev(Exposure, "g0", "bob", "y", 31*time.Second)) // g0 again: the first exposure counts
	js := apptest.Broker(t, DefaultStream, DefaultSubject)
	last := publish(t, js, msgs)
	sink := sqliteSink(t, "")
	a, logs := newApp(t, engine.Thread, Config{JS: js, Sink: sink, StopAt: last})
	runToEnd(t, a)
	counts, err := sink.Counts(context.Background(), "feature_bad_record")
	if err != nil {
		t.Fatal(err)
	}
	for reason, lines := range bad {
		if counts[reason] != int64(len(lines)) {
			t.Errorf("reason %q counted %d, want %d", reason, counts[reason], len(lines))
		}
		if n := strings.Count(logs.String(), "reason=\""+reason+"\""); n != 1 {
			t.Errorf("reason %q logged %d times, want once", reason, n)
		}
	}
	samples, err := sink.Samples(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(samples) != i || samples["g0"].UserID != "alice" {
		t.Errorf("%d samples (want %d, one per good exposure), g0 %+v", len(samples), i, samples["g0"])
	}
	if st := a.Stats(); st.Bad != int64(total) || st.Records != int64(len(msgs)) {
		t.Errorf("stats %+v", st)
	}
	if n, err := a.cfg.Pipeline.op.Len(context.Background()); err != nil || n != 0 {
		t.Errorf("the operator keeps %d keys after the end of input (%v), want none", n, err)
	}
}

// TestHostileFeaturesFarFutureEventTime: an event time far ahead (two days
// past the wall clock, year 3000, MaxInt64) is a bad record under
// ReasonEventTime, not the stream's new maximum: the watermark does not
// jump, later good events are neither late nor lost, and nothing overflows.
func TestHostileFeaturesFarFutureEventTime(t *testing.T) {
	now := noon.Add(time.Hour) // the wall clock the pipeline sees
	msgs := [][]byte{
		ev(Exposure, "t0", "alice", "a", 0),
		ev(Exposure, "t1", "bob", "b", time.Second),
		ev(Click, "t0", "alice", "a", 2*time.Second),
		ev(Click, "t1", "bob", "b", 48*time.Hour), // two days ahead of the wall clock
		[]byte(`{"type":"exposure","trace_id":"t9","user_id":"eve","item_id":"x","event_time":32503680000000}`),      // year 3000
		[]byte(`{"type":"exposure","trace_id":"t9","user_id":"eve","item_id":"x","event_time":9223372036854775807}`), // MaxInt64
	}
	for i := 2; i < 40; i++ { // good events after the hostile ones, 20 s apart
		at := time.Duration(i) * 20 * time.Second
		msgs = append(msgs, ev(Exposure, fmt.Sprintf("t%d", 10+i), "carol", fmt.Sprintf("i%d", i), at),
			ev(Click, fmt.Sprintf("t%d", 10+i), "carol", fmt.Sprintf("i%d", i), at+time.Second))
	}
	js := apptest.Broker(t, DefaultStream, DefaultSubject)
	last := publish(t, js, msgs)
	sink := sqliteSink(t, "")
	a, logs := newApp(t, engine.Thread, Config{JS: js, Sink: sink, StopAt: last})
	a.cfg.Pipeline.Now = func() time.Time { return now }
	a.cfg.Pipeline.every = 5 // the watermark moves often: a jump would make the events after it late
	runToEnd(t, a)
	counts, err := sink.Counts(context.Background(), "feature_bad_record")
	if err != nil {
		t.Fatal(err)
	}
	late, err := sink.Counts(context.Background(), "feature_late_event")
	if err != nil {
		t.Fatal(err)
	}
	if counts[ReasonEventTime] != 3 || len(counts) != 1 || len(late) != 0 {
		t.Errorf("bad records %v, late %v: want 3 %q and nothing late", counts, late, ReasonEventTime)
	}
	if !strings.Contains(logs.String(), "ahead of the wall clock") {
		t.Errorf("the far-future event was not logged with its reason:\n%s", logs.String())
	}
	samples, err := sink.Samples(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(samples) != 40 || samples["t0"].Label != 1 || samples["t1"].Label != 0 || samples["t49"].Label != 1 {
		t.Errorf("%d samples (want 40: t0, t1 and carol's 38), t0 %+v t1 %+v t49 %+v", len(samples), samples["t0"], samples["t1"], samples["t49"])
	}
	w := expectedAt(t, msgs, DefaultBound, 5, now)
	g := newGot()
	hist, _ := sink.FeatureHistory(context.Background())
	for _, f := range hist {
		g.features[featureKey{f.UserID, f.WindowEnd}] = f.VisitedItems
	}
	g.samples, g.bad, g.late = samples, counts, late
	compare(t, w, g)
}

// TestHostileFeaturesPostgresDown runs the app against a real PostgreSQL
// server, stops the server mid-run and starts it again: the app retries
// with back-off, resumes, and the tables are exact.
func TestHostileFeaturesPostgresDown(t *testing.T) {
	pg := pgtest.Start(t)
	msgs := messages(6000, 499, 89, 14)
	js := apptest.Broker(t, DefaultStream, DefaultSubject)
	last := publish(t, js, msgs)
	sink, err := OpenSink(context.Background(), pg.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	a, logs := newApp(t, engine.Thread, Config{JS: js, Sink: sink, StopAt: last, FetchSize: 100})
	done := runInBackground(a)
	apptest.WaitFor(t, "a first commit", func() bool { return a.Stats().Committed > 0 })
	pg.Stop()
	apptest.WaitFor(t, "failed commits", func() bool { return a.Stats().Retries >= 2 })
	pg.Restart()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	checkTables(t, sink, msgs)
	if !strings.Contains(logs.String(), "the sink is back") {
		t.Errorf("no recovery logged:\n%s", logs.String())
	}
}
