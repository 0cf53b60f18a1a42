package app

import (
	"context"
	"testing"
	"time"
)

// feed runs msgs through p (stream sequences from 1) and then the
// end-of-input watermark, and collects what came out.
func feed(t *testing.T, p *Pipeline, msgs [][]byte) (*got, []Outcome) {
	t.Helper()
	ctx := context.Background()
	g := newGot()
	var outs []Outcome
	for i, m := range msgs {
		d := newDelta()
		out, err := p.Process(ctx, uint64(i+1), m, &d)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, out)
		g.add(t, d)
	}
	d := newDelta()
	if err := p.Advance(ctx, EndOfInput, &d); err != nil {
		t.Fatal(err)
	}
	g.add(t, d)
	return g, outs
}

// TestPipelineWatermarkIsFlinks: the watermark is Flink's
// BoundedOutOfOrdernessWatermarks, max event time - bound - 1 ms: an event
// exactly bound behind the largest is on time, one a millisecond older is
// late.
func TestPipelineWatermarkIsFlinks(t *testing.T) {
	p := newPipeline(t, modes()[0])
	p.every = 1
	msgs := [][]byte{
		ev(Exposure, "t0", "alice", "a", time.Minute),
		ev(Exposure, "t1", "alice", "b", time.Minute-DefaultBound),                  // exactly bound behind: on time
		ev(Exposure, "t2", "alice", "c", time.Minute-DefaultBound-time.Millisecond), // late
	}
	g, outs := feed(t, p, msgs)
	if outs[1].Late != nil || outs[2].Late == nil {
		t.Errorf("outcomes %+v %+v: want t1 on time, t2 late", outs[1], outs[2])
	}
	if want := noon.Add(time.Minute - DefaultBound).UnixMilli(); len(g.samples) != 2 || g.samples["t1"].ExposureTime != want {
		t.Errorf("samples %+v, want t0 and t1", g.samples)
	}
	compare(t, expected(t, msgs, DefaultBound, 1), g)
}

// TestPipelineLateClickLabelsPendingExposure: a click behind the watermark
// goes to the side output and stays out of the windows, but it still
// labels its exposure when that exposure's timer has not fired: the click
// came within the 10 minutes (Flink's KeyedProcessFunction receives late
// elements). A late click after the timer fired labels nothing.
func TestPipelineLateClickLabelsPendingExposure(t *testing.T) {
	p := newPipeline(t, modes()[0])
	p.every = 1
	m := time.Minute
	msgs := [][]byte{
		ev(Exposure, "t0", "alice", "a", 0),
		ev(Exposure, "t1", "bob", "b", 0),
		ev(Exposure, "tx", "carol", "x", 2*m),         // the watermark moves to 12:01:54.999
		ev(Click, "t0", "alice", "a", 30*time.Second), // late, t0's timer (12:10) pending: labels t0
		ev(Exposure, "ty", "carol", "y", 11*m),        // t0's and t1's timers fire
		ev(Click, "t1", "bob", "b", 9*m),              // late, t1's timer has fired: labels nothing
	}
	g, outs := feed(t, p, msgs)
	if outs[3].Late == nil || outs[5].Late == nil {
		t.Fatalf("outcomes %+v: want the clicks late", outs)
	}
	if s := g.samples["t0"]; s.Label != 1 || s.ClickTime != noon.Add(30*time.Second).UnixMilli() {
		t.Errorf("sample t0 = %+v, want label 1 by the late click at 12:00:30", s)
	}
	if s := g.samples["t1"]; s.Label != 0 {
		t.Errorf("sample t1 = %+v, want label 0 (its click came after its timer fired)", s)
	}
	if len(g.features) != 0 || g.late["click"] != 2 {
		t.Errorf("features %v (want none: late clicks stay out of the windows), late %v", g.features, g.late)
	}
	compare(t, expected(t, msgs, DefaultBound, 1), g)
}
