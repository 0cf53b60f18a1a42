package app

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/pyudf/pyudf/bridge"
	"github.com/pyudf/pyudf/engine"
)

// The job's constants (the seed article's).
const (
	WindowSize  = 5 * time.Minute  // the visit-sequence window
	WindowSlide = 30 * time.Second // its slide
	LabelWait   = 10 * time.Minute // how long an exposure waits for its click
	// EndOfInput is the watermark of a bounded run's end (Flink's
	// Long.MAX_VALUE): every window and every timer fires.
	EndOfInput int64 = math.MaxInt64
)

// Names in features.py.
const (
	UDAFName     = "visited_items"
	OperatorName = "SampleLabeller"
	LateTag      = "late-events"
)

// FeatureRow is one firing of a user's window: the visit sequence over
// [WindowStart, WindowEnd) (milliseconds since the epoch).
type FeatureRow struct {
	UserID                 string
	WindowStart, WindowEnd int64
	VisitedItems           string
}

// Sample is a labelled exposure joined with the user's feature as of the
// exposure: the window that ended at the last slide boundary at or before
// the exposure's event time (FeatureWindowEnd). ClickTime is 0 for a
// negative sample.
type Sample struct {
	TraceID, UserID, ItemID string
	ExposureTime            int64
	Label                   int
	ClickTime               int64
	VisitedItems            string
	FeatureWindowEnd        int64
}

// Delta is what processing a run of stream messages produced.
type Delta struct {
	Features []FeatureRow
	Samples  []Sample
	Bad      map[string]int64 // by reason
	Late     map[string]int64 // by event type
}

func newDelta() Delta { return Delta{Bad: map[string]int64{}, Late: map[string]int64{}} }

// Pipeline is the job's state machine, driven one stream message at a time:
// parse, label (the SampleLabeller operator), window the clicks (the
// visited_items Pandas UDAF on sliding windows), and advance the watermark
// every WatermarkEvery stream sequences to the largest event time seen
// minus the bound minus 1 ms (bounded out-of-orderness). Its output depends
// only on the messages and their stream sequences (and, for MaxAhead, the
// wall clock), never on how they were fetched, so a pipeline restored from
// a snapshot continues exactly; AdvanceToRecords between messages (an idle
// stream) is the one timing-dependent input.
type Pipeline struct {
	op    *engine.Operator
	udaf  *engine.Function
	win   *engine.Windows
	bound int64
	every uint64

	// MaxAhead is how far ahead of the wall clock (Now) an event time may
	// be; a later one is a bad record (ReasonEventTime), not the stream's
	// new maximum event time. 0: DefaultMaxAhead; negative: no wall-clock
	// check (MaxEventTime still holds).
	MaxAhead time.Duration
	// Now is the wall clock MaxAhead counts from; nil: time.Now.
	Now func() time.Time

	wm, maxTS int64
	visits    []visit               // accepted clicks still in an open window
	history   map[featureKey]string // fired windows a pending exposure may need
}

type visit struct {
	User, Item string
	TS         int64
}

type featureKey struct {
	User string
	End  int64
}

// Outcome says what happened to one message.
type Outcome struct {
	Bad  *BadRecordError // not an event
	Late *Event          // behind the watermark: to the side output
}

// NewPipeline drives op (SampleLabeller) and udaf (visited_items).
// bound is the out-of-orderness the watermark allows; every is how often
// (in stream sequences) it advances.
func NewPipeline(op *engine.Operator, udaf *engine.Function, bound time.Duration, every uint64) (*Pipeline, error) {
	if every == 0 {
		every = 100
	}
	p := &Pipeline{op: op, udaf: udaf, bound: bound.Milliseconds(), every: every,
		wm: engine.NoTimestamp, maxTS: engine.NoTimestamp, history: map[featureKey]string{}}
	return p, p.newWindows()
}

func (p *Pipeline) newWindows() error {
	w, err := engine.NewPandasWindows(engine.WindowSpec{Kind: engine.Sliding, Size: WindowSize, Slide: WindowSlide}, p.udaf)
	p.win = w
	return err
}

// Watermark is the current watermark (engine.NoTimestamp: none yet).
func (p *Pipeline) Watermark() int64 { return p.wm }

// Process handles the message of stream sequence seq. An error (not a bad
// record: the interpreter failed) leaves the pipeline part-way through the
// message: restore it from the last snapshot.
func (p *Pipeline) Process(ctx context.Context, seq uint64, data []byte, d *Delta) (Outcome, error) {
	out, err := p.process(ctx, data, d)
	if err == nil && seq%p.every == 0 {
		_, err = p.AdvanceToRecords(ctx, d)
	}
	return out, err
}

// AdvanceToRecords moves the watermark to what the records so far allow,
// as Flink's BoundedOutOfOrdernessWatermarks does: the largest event time
// seen minus the bound minus 1 ms (an event exactly bound behind the
// largest is still on time). It reports whether the watermark moved.
// Process calls it every WatermarkEvery sequences; the App also calls it
// when the stream is idle (Config.IdleWatermark).
func (p *Pipeline) AdvanceToRecords(ctx context.Context, d *Delta) (bool, error) {
	if p.maxTS == engine.NoTimestamp || p.maxTS-p.bound-1 <= p.wm {
		return false, nil
	}
	return true, p.Advance(ctx, p.maxTS-p.bound-1, d)
}

func (p *Pipeline) process(ctx context.Context, data []byte, d *Delta) (Outcome, error) {
	ev, err := ParseEvent(data)
	if err != nil {
		var be *BadRecordError
		errors.As(err, &be)
		d.Bad[be.Reason]++
		return Outcome{Bad: be}, nil
	}
	if ahead := cmp.Or(p.MaxAhead, DefaultMaxAhead); ahead > 0 {
		now := time.Now
		if p.Now != nil {
			now = p.Now
		}
		if limit := now().Add(ahead); ev.EventTime > limit.UnixMilli() {
			be := &BadRecordError{ReasonEventTime, fmt.Sprintf("event_time %s (trace_id %q) is more than %v ahead of the wall clock",
				time.UnixMilli(ev.EventTime).UTC().Format(time.RFC3339Nano), clip(ev.TraceID), ahead)}
			d.Bad[be.Reason]++
			return Outcome{Bad: be}, nil
		}
	}
	value := map[string]any{"type": ev.Type, "trace_id": ev.TraceID, "user_id": ev.UserID, "item_id": ev.ItemID, "event_time": ev.EventTime}
	res, err := p.op.Process(ctx, ev.TraceID, value, ev.EventTime)
	if err != nil {
		return Outcome{}, fmt.Errorf("features: %s on trace_id %q: %w", OperatorName, ev.TraceID, err)
	}
	p.maxTS = max(p.maxTS, ev.EventTime)
	if len(res.Side[LateTag]) > 0 {
		d.Late[ev.Type]++
		return Outcome{Late: &ev}, nil
	}
	if ev.Type == Click {
		if err := p.win.Add(ctx, ev.UserID, time.UnixMilli(ev.EventTime), ev.ItemID); err != nil {
			return Outcome{}, fmt.Errorf("features: window of user %q: %w", ev.UserID, err)
		}
		p.visits = append(p.visits, visit{ev.UserID, ev.ItemID, ev.EventTime})
	}
	return Outcome{}, nil
}

// Advance moves the watermark to wm (if it is ahead): the windows that
// ended fire first (features), then the exposures' timers (samples, joined
// with the features as of their exposure).
func (p *Pipeline) Advance(ctx context.Context, wm int64, d *Delta) error {
	if wm <= p.wm {
		return nil
	}
	fired, err := p.win.Watermark(ctx, windowClock(wm))
	if err != nil {
		return fmt.Errorf("features: %s windows: %w", UDAFName, err)
	}
	for _, r := range fired {
		items, ok := r.Value.(string)
		if !ok {
			return fmt.Errorf("features: %s returned %T, not a string", UDAFName, r.Value)
		}
		user := r.Key.(string)
		f := FeatureRow{user, r.Window.Start.UnixMilli(), r.Window.End.UnixMilli(), items}
		d.Features = append(d.Features, f)
		p.history[featureKey{user, f.WindowEnd}] = items
	}
	p.win.Late() // empty: the operator sends events behind the watermark aside before they reach a window
	p.wm = wm
	size, slide := WindowSize.Milliseconds(), WindowSlide.Milliseconds()
	kept := p.visits[:0]
	for _, v := range p.visits {
		if floorTo(v.TS, slide)+size-1 > wm { // its last window is still open
			kept = append(kept, v)
		}
	}
	p.visits = kept
	res, err := p.op.AdvanceWatermark(ctx, wm)
	if err != nil {
		return fmt.Errorf("features: %s timers at watermark %d: %w", OperatorName, wm, err)
	}
	for _, v := range res.Main {
		s, err := sampleOf(v)
		if err != nil {
			return err
		}
		s.FeatureWindowEnd = floorTo(s.ExposureTime, slide)
		s.VisitedItems = p.history[featureKey{s.UserID, s.FeatureWindowEnd}]
		d.Samples = append(d.Samples, s)
	}
	// A timer still to fire is after wm: its exposure is after
	// wm-LabelWait, its feature window ends after wm-LabelWait-slide.
	if wm != EndOfInput {
		for k := range p.history {
			if k.End <= wm-LabelWait.Milliseconds()-slide {
				delete(p.history, k)
			}
		}
	} else {
		clear(p.history)
	}
	return nil
}

// windowClock is the watermark as engine.Windows takes it: Windows closes
// [s, e) when the watermark reaches e, Flink when it reaches e-1 (the
// window's maxTimestamp).
func windowClock(wm int64) time.Time {
	if wm == EndOfInput {
		return time.UnixMilli(wm)
	}
	return time.UnixMilli(wm + 1)
}

func floorTo(t, d int64) int64 { return t - ((t%d)+d)%d }

// sampleOf reads SampleLabeller's output Row(trace_id, user_id, item_id,
// exposure_time, label, click_time).
func sampleOf(v any) (Sample, error) {
	var f []any
	switch r := v.(type) {
	case bridge.Row:
		f = r
	case []any:
		f = r
	}
	bad := func() (Sample, error) {
		return Sample{}, fmt.Errorf("features: %s emitted %v (%T), not Row(trace_id, user_id, item_id, exposure_time, label, click_time)", OperatorName, v, v)
	}
	if len(f) != 6 {
		return bad()
	}
	var s Sample
	var ok [5]bool
	s.TraceID, ok[0] = f[0].(string)
	s.UserID, ok[1] = f[1].(string)
	s.ItemID, ok[2] = f[2].(string)
	s.ExposureTime, ok[3] = f[3].(int64)
	label, ok4 := f[4].(int64)
	s.Label, ok[4] = int(label), ok4 && (label == 0 || label == 1)
	if f[5] != nil {
		if s.ClickTime, ok4 = f[5].(int64); !ok4 {
			return bad()
		}
	}
	for _, o := range ok {
		if !o {
			return bad()
		}
	}
	return s, nil
}

// snapshot is the pipeline's checkpointed state.
type snapshot struct {
	Operator  []byte // SampleLabeller's keyed state, timers and clocks
	Watermark int64
	MaxTS     int64
	Visits    []visit
	History   []historyEntry
}

type historyEntry struct {
	User  string
	End   int64
	Items string
}

// Snapshot serialises the state: the operator's snapshot, the clicks
// still in open windows, the fired windows pending samples may need, and
// the clocks.
func (p *Pipeline) Snapshot(ctx context.Context) ([]byte, error) {
	op, err := p.op.Snapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("features: snapshot of %s: %w", OperatorName, err)
	}
	s := snapshot{Operator: op, Watermark: p.wm, MaxTS: p.maxTS, Visits: p.visits}
	for k, v := range p.history {
		s.History = append(s.History, historyEntry{k.User, k.End, v})
	}
	return json.Marshal(s)
}

// Restore replaces the state with a snapshot's. The windows are rebuilt:
// the watermark first (the closed windows have fired), then the clicks of
// the open ones again.
func (p *Pipeline) Restore(ctx context.Context, data []byte) error {
	var s snapshot
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("features: the checkpoint's snapshot: %w", err)
	}
	if _, err := p.op.Restore(ctx, s.Operator); err != nil {
		return fmt.Errorf("features: restoring %s: %w", OperatorName, err)
	}
	if err := p.newWindows(); err != nil {
		return err
	}
	if s.Watermark != engine.NoTimestamp {
		if _, err := p.win.Watermark(ctx, windowClock(s.Watermark)); err != nil {
			return err
		}
	}
	for _, v := range s.Visits {
		if err := p.win.Add(ctx, v.User, time.UnixMilli(v.TS), v.Item); err != nil {
			return err
		}
	}
	if late := p.win.Late(); len(late) > 0 {
		return fmt.Errorf("features: the checkpoint's snapshot holds %d clicks of closed windows", len(late))
	}
	p.wm, p.maxTS, p.visits = s.Watermark, s.MaxTS, s.Visits
	p.history = map[featureKey]string{}
	for _, h := range s.History {
		p.history[featureKey{h.User, h.End}] = h.Items
	}
	return nil
}

// Load starts nothing: it loads features.py into eng and opens the UDAF and
// a fresh SampleLabeller.
func Load(ctx context.Context, eng *engine.Engine) (*engine.Operator, *engine.Function, error) {
	mod, err := eng.LoadSource(ctx, "features.py", pythonSource)
	if err != nil {
		return nil, nil, err
	}
	fn, err := mod.Function(ctx, UDAFName)
	if err != nil {
		return nil, nil, err
	}
	op, err := mod.Operator(ctx, OperatorName, engine.OperatorOptions{SideOutputs: []string{LateTag}})
	if err != nil {
		return nil, nil, err
	}
	return op, fn, nil
}

// Defaults of the watermark.
const (
	DefaultBound          = 5 * time.Second // bounded out-of-orderness
	DefaultWatermarkEvery = 100             // stream sequences between watermark advances
	DefaultMaxAhead       = 24 * time.Hour  // Pipeline.MaxAhead
)
