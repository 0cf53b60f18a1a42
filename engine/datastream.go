package engine

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/pyudf/pyudf/bridge"
)

// NoTimestamp is the event time of an element that has none: its
// ctx.timestamp() is None. It is also the watermark and the processing time
// of an operator before the first advance (Flink's Long.MIN_VALUE).
const NoTimestamp int64 = math.MinInt64

// ErrNoKey is the error for an element without a key given to a keyed
// operator (a KeyedProcessFunction, a ReduceFunction, Keyed options).
var ErrNoKey = errors.New("pyudf: keyed operator: element without a key")

// OperatorOptions configures an operator opened with Module.Operator.
type OperatorOptions struct {
	// OutputType, if set, is the type every main output must fit (PyFlink's
	// output_type=); a value that does not fails the call with a
	// *bridge.ConversionError. Outputs reach Go by their Python types.
	OutputType *bridge.DataType
	// SideOutputs, if not nil, are the side-output tags the caller reads: a
	// function yielding another tag fails with a *bridge.ConversionError.
	// nil accepts every tag.
	SideOutputs []string
	// Keyed gives a function of a kind that is not keyed by itself (a
	// MapFunction, FlatMapFunction, FilterFunction, ProcessFunction,
	// BroadcastProcessFunction) keyed state and timers, as on a KeyedStream;
	// its elements then need keys.
	Keyed bool
	// What the function's runtime context reports: get_task_name (default:
	// the function's name), get_number_of_parallel_subtasks (default 1),
	// get_max_number_of_parallel_subtasks, get_index_of_this_subtask,
	// get_attempt_number.
	TaskName                                      string
	Parallelism, MaxParallelism, Subtask, Attempt int
}

// Output is what one call of an operator emitted.
type Output struct {
	// Main holds the main outputs, in the order they were emitted.
	Main []any
	// Side holds the side outputs by tag name (yield tag, value), each in
	// the order emitted.
	Side map[string][]any
	// Fired is the number of timers that fired (AdvanceWatermark,
	// AdvanceProcessingTime).
	Fired int
}

// All iterates over the main outputs.
func (o *Output) All() iter.Seq[any] {
	return func(yield func(any) bool) {
		for _, v := range o.Main {
			if !yield(v) {
				return
			}
		}
	}
}

// Operator is an opened PyFlink DataStream function: a MapFunction,
// FlatMapFunction, FilterFunction, ReduceFunction, ProcessFunction,
// KeyedProcessFunction, ProcessWindowFunction, BroadcastProcessFunction or
// KeyedBroadcastProcessFunction, with its keyed state (per key and state
// descriptor), broadcast state and timers kept in Python. The Go caller is
// the stream processor: it gives every element with its key and event time
// (Process), and owns both clocks: AdvanceWatermark fires the event-time
// timers due, AdvanceProcessingTime the processing-time ones. Snapshot and
// Restore checkpoint all of it.
//
// Calls run one at a time (the state, the current key and the outputs of
// a call are the instance's, as on Flink's task thread): a call waits for
// the one in progress, or for ctx to end.
//
// Each method is one crossing through the path of Function.Call (the
// engine's gate, cancellation by ctx, *bridge.PythonError for exceptions,
// *bridge.ConversionError for an output that does not fit its type). An
// exception leaves the state as the function left it (another key's is
// untouched) and the operator usable. It is safe for concurrent use. In process mode its state lives on one
// worker: if that worker dies, calls fail with ErrStateLost until Restore.
type Operator struct {
	name   string
	kind   string
	keyed  bool
	id     int64
	engine *Engine
	module *Module
	pin    *owner
	turn   chan struct{} // holds a token while a call runs: one at a time

	element, mapOne, mapRow, flatRows, filterRow, broadcast, watermark, processing, window, snapshot, restore, size *Function
}

// operatorKinds names the Python kinds for messages.
var operatorKinds = map[string]string{
	"map": "MapFunction", "flat_map": "FlatMapFunction", "filter": "FilterFunction",
	"reduce": "ReduceFunction", "process": "ProcessFunction", "keyed_process": "KeyedProcessFunction",
	"window": "ProcessWindowFunction", "broadcast": "BroadcastProcessFunction",
	"keyed_broadcast": "KeyedBroadcastProcessFunction",
}

// Operator looks up a DataStream function of the module by name (a class
// or an instance) and opens it: its open(runtime_context) runs now. Each
// call opens a new instance with state and timers of its own (a parallel
// subtask, say); Close it, or its Engine, to run close(). A DataStream
// AggregateFunction opens with Module.Aggregate (and windows with
// NewWindows); Table API functions open with Module.Function.
func (m *Module) Operator(ctx context.Context, name string, opts OperatorOptions) (*Operator, error) {
	info := map[string]any{"keyed": opts.Keyed, "task_name": opts.TaskName, "parallelism": opts.Parallelism,
		"max_parallelism": opts.MaxParallelism, "subtask": opts.Subtask, "attempt": opts.Attempt}
	if opts.OutputType != nil {
		info["output_type"] = typeWire(opts.OutputType)
	}
	if opts.SideOutputs != nil {
		info["side_outputs"] = opts.SideOutputs
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	reply, err := m.openWith(ctx, name, map[string]any{"datastream": info})
	if err != nil {
		return nil, err
	}
	o := &Operator{name: name, kind: reply.FuncType, keyed: reply.Keyed, id: reply.Function,
		engine: m.engine, module: m, pin: reply.pin, turn: make(chan struct{}, 1)}
	state := m.engine.backend.aggregateState(o.id)
	bytesType := bridge.MustParseType("BYTES NOT NULL")
	bigint := bridge.MustParseType("BIGINT NOT NULL")
	rowType := opts.OutputType
	if rowType != nil && rowType.Kind != bridge.RowType {
		rowType = &bridge.DataType{Kind: bridge.RowType, Fields: []bridge.Field{{Name: "f0", Type: rowType}}}
	}
	methods := []struct {
		dst    **Function
		name   string // the host's method
		kind   string
		inputs []*bridge.DataType
		result *bridge.DataType
	}{
		{&o.element, "element", "scalar", nil, nil},
		{&o.mapOne, "map", "scalar", nil, nil},
		{&o.mapRow, "map_row", "scalar", nil, opts.OutputType},
		{&o.flatRows, "flat_rows", "table", nil, rowType},
		{&o.filterRow, "filter_row", "scalar", nil, bridge.MustParseType("BOOLEAN NOT NULL")},
		{&o.broadcast, "broadcast", "scalar", nil, nil},
		{&o.watermark, "watermark", "scalar", nil, nil},
		{&o.processing, "processing_time", "scalar", nil, nil},
		{&o.window, "window", "scalar", nil, nil},
		{&o.snapshot, "snapshot", "scalar", []*bridge.DataType{}, bytesType},
		{&o.restore, "restore", "scalar", []*bridge.DataType{bytesType}, bigint},
		{&o.size, "size", "scalar", []*bridge.DataType{}, bigint},
	}
	for _, meth := range methods {
		f := &Function{engine: m.engine, name: name + "." + meth.name, kind: meth.kind,
			funcType: "general", inputs: meth.inputs, result: meth.result, module: m,
			id: o.id, method: meth.name, state: state, pin: o.pin}
		if err := m.engine.backend.bind(ctx, f, reply.Methods[meth.name]); err != nil {
			o.releaseMethods()
			m.engine.closeFunction(name, o.id, o.pin)
			return nil, err
		}
		*meth.dst = f
	}
	m.engine.mu.Lock()
	m.engine.ops[o] = struct{}{}
	m.engine.mu.Unlock()
	return o, nil
}

// typeWire is t as the host reads it (pyudf.typeinfo.from_wire).
func typeWire(t *bridge.DataType) map[string]any {
	w := map[string]any{"kind": t.Kind.String(), "not_null": t.NotNull}
	switch t.Kind {
	case bridge.ArrayType:
		w["elem"] = typeWire(t.Elem)
	case bridge.MapType:
		w["key"], w["value"] = typeWire(t.Key), typeWire(t.Value)
	case bridge.RowType:
		fields := make([]any, len(t.Fields))
		for i, f := range t.Fields {
			fields[i] = []any{f.Name, typeWire(f.Type)}
		}
		w["fields"] = fields
	}
	return w
}

// Name is the name the operator was looked up by.
func (o *Operator) Name() string { return o.name }

// Kind is the function's PyFlink class: "KeyedProcessFunction", "MapFunction" ...
func (o *Operator) Kind() string { return operatorKinds[o.kind] }

// Keyed reports whether elements need keys (and state and timers are per key).
func (o *Operator) Keyed() bool { return o.keyed }

func (o *Operator) wrongKind(method string, want ...string) error {
	names := make([]string, len(want))
	for i, k := range want {
		names[i] = operatorKinds[k]
	}
	return fmt.Errorf("%w: %s of operator %q, a %s: %s runs a %s", ErrUnsupported, method, o.name, o.Kind(),
		method, strings.Join(names, " or a "))
}

// lock takes the operator's turn, or fails when ctx ends first.
func (o *Operator) lock(ctx context.Context) error {
	if err := sendContext(ctx, o.turn); err != nil {
		return fmt.Errorf("pyudf: operator %q cancelled while waiting for its call in progress: %w", o.name, err)
	}
	return nil
}

func (o *Operator) unlock() { <-o.turn }

// call runs f(args...) in the operator's turn.
func (o *Operator) call(ctx context.Context, f *Function, args ...bridge.Value) (bridge.Value, error) {
	if err := o.lock(ctx); err != nil {
		return bridge.Value{}, err
	}
	defer o.unlock()
	return f.CallValues(ctx, args...)
}

// callAny is call with Go values, returning the result as a Go value.
func (o *Operator) callAny(ctx context.Context, f *Function, args ...any) (any, error) {
	v, err := o.call(ctx, f, appendValues(nil, args...)...)
	if err != nil {
		return nil, err
	}
	return v.Any(), nil
}

func (o *Operator) is(kinds ...string) bool {
	for _, k := range kinds {
		if o.kind == k {
			return true
		}
	}
	return false
}

// Process runs one element through the function (map, flat_map, filter,
// a running reduce per key, process_element) and returns what it emitted.
// key is the element's key (Go values that are hashable in Python:
// integers, strings, []byte, bools, times), required for a keyed operator
// and ignored otherwise; eventTime is its timestamp in milliseconds
// (ctx.timestamp()), or NoTimestamp.
func (o *Operator) Process(ctx context.Context, key, value any, eventTime int64) (*Output, error) {
	if o.kind == "window" {
		return nil, o.wrongKind("Process", "map", "flat_map", "filter", "reduce", "process", "keyed_process", "broadcast", "keyed_broadcast")
	}
	if o.keyed && key == nil {
		return nil, fmt.Errorf("%w: Process of operator %q (%s) needs a key", ErrNoKey, o.name, o.Kind())
	}
	if !o.keyed {
		key = nil
	}
	v, err := o.call(ctx, o.element, bridge.ValueOf(key), bridge.ValueOf(value), bridge.Int64(eventTime))
	if err != nil {
		return nil, err
	}
	return decodeOutput(o.name, v.Any())
}

// Map runs a MapFunction on one element (no key: use Process on a keyed
// stream) and returns its result.
func (o *Operator) Map(ctx context.Context, value any) (any, error) {
	if o.kind != "map" {
		return nil, o.wrongKind("Map", "map")
	}
	return o.callAny(ctx, o.mapOne, value)
}

// FlatMap runs a FlatMapFunction on one element and returns what it yielded.
func (o *Operator) FlatMap(ctx context.Context, value any) ([]any, error) {
	if o.kind != "flat_map" {
		return nil, o.wrongKind("FlatMap", "flat_map")
	}
	v, err := o.callAny(ctx, o.mapOne, value)
	if err != nil {
		return nil, err
	}
	out, _ := v.([]any)
	return out, nil
}

// Filter runs a FilterFunction on one element.
func (o *Operator) Filter(ctx context.Context, value any) (bool, error) {
	if o.kind != "filter" {
		return false, o.wrongKind("Filter", "filter")
	}
	v, err := o.callAny(ctx, o.mapOne, value)
	return v == true, err
}

// MapBatch runs a MapFunction over every row of a batch in one crossing
// and returns the results, an array of OutputOptions.OutputType (required).
// The function gets a row's one column as the value, or a tuple of its
// columns.
func (o *Operator) MapBatch(ctx context.Context, batch arrow.RecordBatch) (arrow.Array, error) {
	if o.kind != "map" {
		return nil, o.wrongKind("MapBatch", "map")
	}
	if o.mapRow.result == nil {
		return nil, fmt.Errorf("%w: operator %q: MapBatch needs OperatorOptions.OutputType", ErrUnsupported, o.name)
	}
	if err := o.lock(ctx); err != nil {
		return nil, err
	}
	defer o.unlock()
	return o.mapRow.Eval(ctx, batch)
}

// FilterBatch runs a FilterFunction over every row of a batch in one
// crossing: a BOOLEAN array, true for the rows to keep.
func (o *Operator) FilterBatch(ctx context.Context, batch arrow.RecordBatch) (arrow.Array, error) {
	if o.kind != "filter" {
		return nil, o.wrongKind("FilterBatch", "filter")
	}
	if err := o.lock(ctx); err != nil {
		return nil, err
	}
	defer o.unlock()
	return o.filterRow.Eval(ctx, batch)
}

// FlatMapBatch runs a FlatMapFunction over every row of a batch in one
// crossing and returns the rows it yielded: a column "row" with the index of
// the input row, then the fields of OutputType (a ROW, or one field f0).
func (o *Operator) FlatMapBatch(ctx context.Context, batch arrow.RecordBatch) (arrow.RecordBatch, error) {
	if o.kind != "flat_map" {
		return nil, o.wrongKind("FlatMapBatch", "flat_map")
	}
	if o.flatRows.result == nil {
		return nil, fmt.Errorf("%w: operator %q: FlatMapBatch needs OperatorOptions.OutputType", ErrUnsupported, o.name)
	}
	if err := o.lock(ctx); err != nil {
		return nil, err
	}
	defer o.unlock()
	return o.flatRows.Explode(ctx, batch)
}

// ProcessBroadcast runs one element of the broadcast side through
// process_broadcast_element, which may write broadcast state (seen by every
// key from the next element on; process_element sees it read-only).
func (o *Operator) ProcessBroadcast(ctx context.Context, value any, eventTime int64) (*Output, error) {
	if !o.is("broadcast", "keyed_broadcast") {
		return nil, o.wrongKind("ProcessBroadcast", "broadcast", "keyed_broadcast")
	}
	v, err := o.callAny(ctx, o.broadcast, value, eventTime)
	if err != nil {
		return nil, err
	}
	return decodeOutput(o.name, v)
}

// AdvanceWatermark moves event time to watermark (it never moves back) and
// fires every event-time timer at or before it, in timestamp order (timers
// of one timestamp in the order registered), each on_timer with its key as
// the current key; timers registered meanwhile that are due fire too. A
// timer registered at or before the current watermark fires on the next
// advance, as in Flink. See advance for an on_timer that raises.
func (o *Operator) AdvanceWatermark(ctx context.Context, watermark int64) (*Output, error) {
	return o.advance(ctx, o.watermark, watermark)
}

// AdvanceProcessingTime moves the processing-time clock, which the caller
// owns, to now in milliseconds (it never moves back) and fires the
// processing-time timers due, as AdvanceWatermark does. State time-to-live
// counts on this clock. See advance for an on_timer that raises.
func (o *Operator) AdvanceProcessingTime(ctx context.Context, now int64) (*Output, error) {
	return o.advance(ctx, o.processing, now)
}

// advance moves a clock with f and returns what the timers due emitted.
// If an on_timer raises, the call returns what the timers before it
// emitted and an error wrapping its *bridge.PythonError (or
// *bridge.ConversionError) that names the timer; that timer is spent, the
// ones after it stay registered and fire on the next advance.
func (o *Operator) advance(ctx context.Context, f *Function, t int64) (*Output, error) {
	v, err := o.call(ctx, f, bridge.Int64(t))
	if err != nil {
		return nil, err
	}
	out, err := decodeOutput(o.name, v.Any())
	if err != nil {
		return nil, err
	}
	parts := v.Any().([]any)
	if len(parts) < 4 {
		return out, nil
	}
	failure, ok := parts[3].([]any)
	if !ok || len(failure) != 5 {
		return out, fmt.Errorf("pyudf: operator %q: unexpected timer failure %v", o.name, parts[3])
	}
	ts, _ := failure[0].(int64)
	key, _ := failure[1].(string)
	typ, _ := failure[2].(string)
	msg, _ := failure[3].(string)
	tb, _ := failure[4].(string)
	cause := bridge.FromPython(o.name, "on_timer", -1, typ, msg, tb)
	return out, fmt.Errorf("pyudf: operator %q: on_timer(%d) of key %s: %w", o.name, ts, key, cause)
}

// ProcessWindow runs a ProcessWindowFunction's process(key, context,
// elements) for the window [start, end) in milliseconds of key, with
// watermark as the context's current watermark. NewProcessWindows drives it.
func (o *Operator) ProcessWindow(ctx context.Context, key any, start, end, watermark int64, elements []any) (*Output, error) {
	if o.kind != "window" {
		return nil, o.wrongKind("ProcessWindow", "window")
	}
	if key == nil {
		return nil, fmt.Errorf("%w: ProcessWindow of operator %q needs a key", ErrNoKey, o.name)
	}
	if elements == nil {
		elements = []any{}
	}
	v, err := o.callAny(ctx, o.window, key, start, end, watermark, elements)
	if err != nil {
		return nil, err
	}
	return decodeOutput(o.name, v)
}

// Snapshot serialises every keyed and broadcast state value and every
// timer, with the clocks, for a checkpoint; values whose time to live has
// passed are left out.
func (o *Operator) Snapshot(ctx context.Context) ([]byte, error) {
	v, err := o.callAny(ctx, o.snapshot)
	if err != nil {
		return nil, err
	}
	return v.([]byte), nil
}

// Restore replaces every state value and timer with a snapshot's (made by
// an operator of the same function) and returns the number of keys with
// state. Values whose time to live has passed are not restored. Bytes that
// are not such a snapshot (garbage, truncated, another function's) fail
// with a *bridge.PythonError (ValueError) and leave the state as it was.
func (o *Operator) Restore(ctx context.Context, snapshot []byte) (int, error) {
	v, err := o.callAny(ctx, o.restore, snapshot)
	if err != nil {
		return 0, err
	}
	return int(v.(int64)), nil
}

// Len is the number of keys with a value in some state.
func (o *Operator) Len(ctx context.Context) (int, error) {
	v, err := o.callAny(ctx, o.size)
	if err != nil {
		return 0, err
	}
	return int(v.(int64)), nil
}

func (o *Operator) all() []*Function {
	return []*Function{o.element, o.mapOne, o.mapRow, o.flatRows, o.filterRow, o.broadcast, o.watermark, o.processing,
		o.window, o.snapshot, o.restore, o.size}
}

func (o *Operator) releaseMethods() {
	for _, f := range o.all() {
		if f != nil {
			o.engine.backend.unbind(f)
		}
	}
}

// Close waits for calls in progress, drops the state and timers and runs
// the function's close(). Later calls fail with ErrClosed.
func (o *Operator) Close() error {
	first := false
	o.engine.backend.closing(func() {
		first = !o.element.closed.Load()
		for _, f := range o.all() {
			f.closed.Store(true)
		}
	})
	if !first {
		return nil
	}
	o.engine.mu.Lock()
	delete(o.engine.ops, o)
	o.engine.mu.Unlock()
	o.releaseMethods()
	return o.engine.closeFunction(o.name, o.id, o.pin)
}

// decodeOutput reads the host's (main, side[, fired]) reply; nil is nothing emitted.
func decodeOutput(name string, v any) (*Output, error) {
	if v == nil {
		return &Output{}, nil
	}
	parts, ok := v.([]any)
	if !ok || len(parts) < 2 {
		return nil, fmt.Errorf("pyudf: operator %q: unexpected reply %T", name, v)
	}
	out := &Output{}
	out.Main, _ = parts[0].([]any)
	if side, _ := parts[1].([]any); len(side) > 0 {
		out.Side = map[string][]any{}
		for _, pair := range side {
			p, ok := pair.([]any)
			if !ok || len(p) != 2 {
				return nil, fmt.Errorf("pyudf: operator %q: unexpected side output %v", name, pair)
			}
			tag, _ := p[0].(string)
			out.Side[tag] = append(out.Side[tag], p[1])
		}
	}
	if len(parts) > 2 {
		n, _ := parts[2].(int64)
		out.Fired = int(n)
	}
	return out, nil
}
