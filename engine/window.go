package engine

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/pyudf/pyudf/arrowconv"
	"github.com/pyudf/pyudf/bridge"
)

// WindowKind is how rows are grouped in event time.
type WindowKind int

// The window kinds.
const (
	Tumbling WindowKind = iota // fixed, non-overlapping windows of Size
	Sliding                    // windows of Size starting every Slide
	Session                    // per key, rows closer than Gap share a window
)

// WindowSpec configures keyed event-time windows.
type WindowSpec struct {
	Kind  WindowKind
	Size  time.Duration // Tumbling, Sliding
	Slide time.Duration // Sliding
	Gap   time.Duration // Session
	// AllowedLateness keeps a window open after the watermark passed its end:
	// rows arriving meanwhile update it (the update fires again). Rows later
	// than that go to the side output (Windows.Late).
	AllowedLateness time.Duration
}

// Window is an event-time interval [Start, End).
type Window struct{ Start, End time.Time }

// WindowResult is one firing of one key's window.
type WindowResult struct {
	Key    any
	Window Window
	Value  any
	Update bool // a late row changed a window that had fired
}

// LateRow is a row that arrived after its windows were closed for good.
type LateRow struct {
	Key  any
	Time time.Time
	Args []any
}

// Windows aggregates rows per key and event-time window with a general
// aggregate function (NewWindows; a DataStream AggregateFunction too), a
// Pandas UDAF (NewPandasWindows) or a ProcessWindowFunction
// (NewProcessWindows). Feed
// rows with Add, advance event time with Watermark, which returns the
// windows it fires. Safe for concurrent use.
type Windows struct {
	spec   WindowSpec
	agg    *Aggregate // general UDAF: accumulators keyed by window
	pandas *Function  // Pandas UDAF: rows buffered per window, reduced on firing
	window *Operator  // ProcessWindowFunction: rows buffered per window, processed on firing

	mu        sync.Mutex
	watermark time.Time
	open      map[string]*windowState
	late      []LateRow
}

type windowState struct {
	key    any
	window Window
	rows   [][]any // Pandas and ProcessWindowFunction only
	fired  bool
	dirty  bool
}

// NewWindows drives a general aggregate function. Session windows need its merge.
func NewWindows(spec WindowSpec, agg *Aggregate) (*Windows, error) {
	if err := spec.check(); err != nil {
		return nil, err
	}
	if agg.table {
		return nil, fmt.Errorf("%w: NewWindows of %q, a table aggregate function: windows take aggregate functions; "+
			"drive a table aggregate with Aggregate.Accumulate and Aggregate.Rows", ErrUnsupported, agg.name)
	}
	return &Windows{spec: spec, agg: agg, open: map[string]*windowState{}}, nil
}

// NewPandasWindows drives a Pandas UDAF, which gets each window's rows at once.
func NewPandasWindows(spec WindowSpec, udaf *Function) (*Windows, error) {
	if err := spec.check(); err != nil {
		return nil, err
	}
	if udaf.kind != "aggregate" || udaf.funcType != "pandas" {
		return nil, udaf.wrongUse("NewPandasWindows")
	}
	if udaf.inputs == nil {
		return nil, fmt.Errorf("pyudf: function %q: Pandas windows need declared input types", udaf.name)
	}
	return &Windows{spec: spec, pandas: udaf, open: map[string]*windowState{}}, nil
}

// NewProcessWindows drives a ProcessWindowFunction (Module.Operator), whose
// process(key, context, elements) gets each window's elements at once when
// it fires: a row's one argument is the element, several a tuple of them.
// A firing's WindowResult.Value is what process yielded, a []any (side
// outputs are not kept). A DataStream AggregateFunction windows with
// NewWindows: Module.Aggregate opens it.
func NewProcessWindows(spec WindowSpec, fn *Operator) (*Windows, error) {
	if err := spec.check(); err != nil {
		return nil, err
	}
	if fn.kind != "window" {
		return nil, fn.wrongKind("NewProcessWindows", "window")
	}
	return &Windows{spec: spec, window: fn, open: map[string]*windowState{}}, nil
}

func (s WindowSpec) check() error {
	switch {
	case s.Kind == Tumbling && s.Size <= 0,
		s.Kind == Sliding && (s.Size <= 0 || s.Slide <= 0),
		s.Kind == Session && s.Gap <= 0,
		s.AllowedLateness < 0:
		return fmt.Errorf("pyudf: invalid window spec %+v", s)
	}
	return nil
}

func stateID(key any, start time.Time) string {
	return fmt.Sprintf("%T:%v@%d", key, key, start.UnixNano())
}

// checkTime refuses an event time whose windows would not fit in
// nanoseconds since the Unix epoch in an int64 (about the years 1678-2262):
// their starts are computed, and their state named, in those.
func (w *Windows) checkTime(t time.Time) error {
	span := max(w.spec.Size, w.spec.Gap) // a window reaches this far from t
	first, last := time.Unix(0, math.MinInt64).Add(span), time.Unix(0, math.MaxInt64).Add(-span)
	if t.Before(first) || t.After(last) {
		return fmt.Errorf("%w: %v: windows of %v take event times from %v to %v",
			ErrEventTime, t.UTC(), span, first.UTC(), last.UTC())
	}
	return nil
}

// windowStart is the start of the window of length step containing t,
// windows being aligned to the Unix epoch as Flink's are (offset 0: weeks
// start on a Thursday, 7-minute windows at 00:00 on 1 January 1970).
func windowStart(t time.Time, step time.Duration) time.Time {
	rem := t.UnixNano() % int64(step)
	if rem < 0 {
		rem += int64(step)
	}
	return t.Round(0).Add(-time.Duration(rem)) // Round(0): no monotonic reading
}

// windowsOf lists the non-session windows containing t.
func (w *Windows) windowsOf(t time.Time) []Window {
	size, slide := w.spec.Size, w.spec.Slide
	if w.spec.Kind == Tumbling {
		slide = size
	}
	last := windowStart(t, slide)
	var out []Window
	for start := last; start.After(t.Add(-size)); start = start.Add(-slide) {
		out = append(out, Window{start, start.Add(size)})
	}
	return out
}

// closed reports whether a window ending at end no longer takes rows.
func (w *Windows) closed(end time.Time) bool {
	return !w.watermark.IsZero() && !end.Add(w.spec.AllowedLateness).After(w.watermark)
}

// Add assigns a row to its windows and accumulates it. A row all of whose
// windows are closed goes to the side output instead. An event time too far
// from 1970 for its windows to be counted in nanoseconds (about the years
// 1678-2262) is refused with ErrEventTime.
func (w *Windows) Add(ctx context.Context, key any, t time.Time, args ...any) error {
	if err := w.checkTime(t); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.spec.Kind == Session {
		return w.addSession(ctx, key, t, args)
	}
	accepted := false
	for _, win := range w.windowsOf(t) {
		if w.closed(win.End) {
			continue
		}
		accepted = true
		if err := w.accumulate(ctx, key, win, args); err != nil {
			return err
		}
	}
	if !accepted {
		w.late = append(w.late, LateRow{Key: key, Time: t, Args: args})
	}
	return nil
}

func (w *Windows) accumulate(ctx context.Context, key any, win Window, args []any) error {
	id := stateID(key, win.Start)
	st := w.open[id]
	if st == nil {
		st = &windowState{key: key, window: win}
		w.open[id] = st
	}
	st.dirty = true
	if w.agg == nil {
		st.rows = append(st.rows, args)
		return nil
	}
	return w.agg.Accumulate(ctx, id, args...)
}

// Retract removes a row (a retraction from upstream) from every open window
// containing t, through the aggregate function's retract; it needs a general
// aggregate function. Windows it changes fire again as updates.
func (w *Windows) Retract(ctx context.Context, key any, t time.Time, args ...any) error {
	if w.window != nil {
		return fmt.Errorf("%w: retract in windows of ProcessWindowFunction %q", ErrUnsupported, w.window.name)
	}
	if w.agg == nil {
		return fmt.Errorf("%w: retract in windows of Pandas UDAF %q", ErrUnsupported, w.pandas.name)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for id, st := range w.open {
		if sameKey(st.key, key) && !t.Before(st.window.Start) && t.Before(st.window.End) && !w.closed(st.window.End) {
			if err := w.agg.Retract(ctx, id, args...); err != nil {
				return err
			}
			st.dirty = true
		}
	}
	return nil
}

// addSession puts the row in a session of its own and merges every session
// of the key that it touches into one.
func (w *Windows) addSession(ctx context.Context, key any, t time.Time, args []any) error {
	win := Window{t, t.Add(w.spec.Gap)}
	if w.closed(win.End) {
		w.late = append(w.late, LateRow{Key: key, Time: t, Args: args})
		return nil
	}
	var touching []*windowState
	for _, st := range w.open {
		if sameKey(st.key, key) && st.window.Start.Before(win.End) && win.Start.Before(st.window.End) {
			touching = append(touching, st)
		}
	}
	if len(touching) == 0 {
		return w.accumulate(ctx, key, win, args)
	}
	for _, st := range touching {
		win.Start = minTime(win.Start, st.window.Start)
		win.End = maxTime(win.End, st.window.End)
	}
	intoID := stateID(key, win.Start)
	var from []any
	for _, st := range touching {
		if id := stateID(key, st.window.Start); id != intoID {
			from = append(from, id)
		}
	}
	if w.agg != nil && len(from) > 0 { // first, so that a failed merge changes nothing
		if err := w.agg.Merge(ctx, intoID, from...); err != nil {
			return err
		}
	}
	merged := &windowState{key: key, window: win, dirty: true}
	for _, st := range touching {
		delete(w.open, stateID(key, st.window.Start))
		merged.rows = append(merged.rows, st.rows...)
		merged.fired = merged.fired || st.fired
	}
	w.open[intoID] = merged
	return w.accumulate(ctx, key, win, args)
}

func sameKey(a, b any) bool { return fmt.Sprintf("%T:%v", a, a) == fmt.Sprintf("%T:%v", b, b) }

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Watermark advances event time to wm: every window that ended at or before
// wm and changed since it last fired fires (sorted by window end, then key),
// and windows past their allowed lateness are dropped.
func (w *Windows) Watermark(ctx context.Context, wm time.Time) ([]WindowResult, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if wm.After(w.watermark) {
		w.watermark = wm
	}
	var due []*windowState
	for _, st := range w.open {
		if !st.window.End.After(w.watermark) && st.dirty {
			due = append(due, st)
		}
	}
	slices.SortFunc(due, func(a, b *windowState) int {
		if c := a.window.End.Compare(b.window.End); c != 0 {
			return c
		}
		return strings.Compare(fmt.Sprint(a.key), fmt.Sprint(b.key))
	})
	var out []WindowResult
	for _, st := range due {
		v, err := w.value(ctx, st)
		if err != nil {
			return out, err
		}
		out = append(out, WindowResult{Key: st.key, Window: st.window, Value: v, Update: st.fired})
		st.fired, st.dirty = true, false
	}
	for id, st := range w.open {
		if w.closed(st.window.End) {
			delete(w.open, id)
			if w.agg != nil {
				if _, err := w.agg.Remove(ctx, id); err != nil {
					return out, err
				}
			}
		}
	}
	return out, nil
}

func (w *Windows) value(ctx context.Context, st *windowState) (any, error) {
	if w.agg != nil {
		return w.agg.Value(ctx, stateID(st.key, st.window.Start))
	}
	if w.window != nil {
		elements := make([]any, len(st.rows))
		for i, args := range st.rows {
			if elements[i] = args; len(args) == 1 {
				elements[i] = args[0]
			}
		}
		out, err := w.window.ProcessWindow(ctx, st.key, st.window.Start.UnixMilli(), st.window.End.UnixMilli(),
			w.watermark.UnixMilli(), elements)
		if err != nil {
			return nil, err
		}
		return out.Main, nil
	}
	batch, err := rowsBatch(w.pandas.inputs, st.rows)
	if err != nil {
		return nil, fmt.Errorf("pyudf: function %q: window %v: %w", w.pandas.name, st.window, err)
	}
	defer batch.Release()
	return w.pandas.Reduce(ctx, batch)
}

// Late drains the side output: rows that arrived after their windows closed.
func (w *Windows) Late() []LateRow {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.late
	w.late = nil
	return out
}

// rowsBatch builds a record batch (C memory) of rows of scalar values.
func rowsBatch(types []*bridge.DataType, rows [][]any) (arrow.RecordBatch, error) {
	fields := make([]arrow.Field, len(types))
	cols := make([]arrow.Array, len(types))
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	for j, t := range types {
		b := array.NewBuilder(arrowconv.DefaultAllocator, arrowconv.ArrowType(t))
		for i, row := range rows {
			if len(row) != len(types) {
				b.Release()
				return nil, fmt.Errorf("row %d has %d values, the function takes %d", i, len(row), len(types))
			}
			if err := appendScalar(b, row[j]); err != nil {
				b.Release()
				return nil, fmt.Errorf("row %d, argument %d: %w", i, j+1, err)
			}
		}
		cols[j] = b.NewArray()
		b.Release()
		fields[j] = arrow.Field{Name: fmt.Sprintf("a%d", j), Type: cols[j].DataType(), Nullable: true}
	}
	return array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, int64(len(rows))), nil
}

func appendScalar(b array.Builder, x any) error {
	if x == nil {
		b.AppendNull()
		return nil
	}
	v := bridge.ValueOf(x)
	switch bb := b.(type) {
	case *array.StringBuilder:
		if v.Kind() == bridge.KindString {
			bb.Append(v.AsString())
			return nil
		}
	case *array.Int64Builder:
		if k := v.Kind(); k >= bridge.KindInt8 && k <= bridge.KindInt64 {
			bb.Append(v.AsInt64())
			return nil
		}
	case *array.Int32Builder:
		if k := v.Kind(); k >= bridge.KindInt8 && k <= bridge.KindInt32 {
			bb.Append(int32(v.AsInt64()))
			return nil
		}
	case *array.Float64Builder:
		if k := v.Kind(); k == bridge.KindFloat64 || k == bridge.KindFloat32 {
			bb.Append(v.AsFloat64())
			return nil
		}
	case *array.BooleanBuilder:
		if v.Kind() == bridge.KindBool {
			bb.Append(v.AsBool())
			return nil
		}
	default:
		return fmt.Errorf("Pandas windows support STRING, BIGINT, INT, DOUBLE and BOOLEAN arguments, not %s", b.Type())
	}
	return fmt.Errorf("Go %T is not a %s", x, b.Type())
}
