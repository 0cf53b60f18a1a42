package engine

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/pyudf/pyudf/bridge"
	"github.com/pyudf/pyudf/cgo"
)

// Function is one opened instance of a Python function. It is safe for
// concurrent use; Close it (or its Engine) to run its close().
type Function struct {
	engine   *Engine
	name     string
	id       int64 // the host's id for close
	obj      cgo.Object
	kind     string
	funcType string
	inputs   []*bridge.DataType // nil: not declared, converted by Go type
	result   *bridge.DataType   // nil: not declared, converted by Python type
	module   *Module
	closed   atomic.Bool // set inside the engine's gate
	pin      *owner      // thread mode: the thread of the instance's own (Config.Affinity), or nil
	shards   *shards     // sub-interpreter pool: the instance in each sub-interpreter, or nil

	method string    // process mode: which callable of function id ("": the function itself)
	state  *aggState // process mode: the worker holding an aggregate's accumulators
}

// aggState is where an aggregate's accumulators live in process mode: on
// one worker, as long as that worker process (generation gen) lives.
type aggState struct {
	worker int
	gen    atomic.Int64
}

// Function looks up a function of the module by name and opens it: its
// open(function_context) runs now. The same name returns the same Function
// until it is closed; a lookup after Close opens a fresh instance (the rule
// of Module.Aggregate too). Scalar, Pandas, Arrow and table functions and
// Pandas UDAFs open here; general aggregate functions open with
// Module.Aggregate.
func (m *Module) Function(ctx context.Context, name string) (*Function, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if f, ok := m.funcs[name]; ok {
		return f, nil
	}
	reply, err := m.open(ctx, name)
	if err != nil {
		return nil, err
	}
	if reply.Kind == "datastream" {
		m.discard(ctx, name, reply)
		return nil, fmt.Errorf("%w %q: a DataStream function: open it with Module.Operator", ErrUnsupported, name)
	}
	if (reply.Kind == "aggregate" && reply.FuncType != "pandas") || reply.Kind == "table aggregate" {
		m.discard(ctx, name, reply)
		return nil, fmt.Errorf("%w %q: %s: open it with Module.Aggregate",
			ErrUnsupported, name, describeKind(reply.Kind, reply.FuncType))
	}
	f := &Function{engine: m.engine, name: name, id: reply.Function, kind: reply.Kind,
		funcType: reply.FuncType, module: m, pin: reply.pin}
	if err := m.engine.backend.bind(ctx, f, reply.Object); err != nil {
		m.engine.closeFunction(name, f.id, f.pin)
		return nil, err
	}
	if err := f.declare(reply.InputTypes, reply.ResultType); err != nil {
		f.closed.Store(true)
		f.release()
		return nil, err
	}
	m.engine.mu.Lock()
	m.engine.funcs[f] = struct{}{}
	m.engine.mu.Unlock()
	m.funcs[name] = f
	return f, nil
}

// openReply is what the host says of a function it opened.
type openReply struct {
	Missing    bool             `json:"missing"`
	Function   int64            `json:"function"`
	Object     int64            `json:"object"`
	Methods    map[string]int64 `json:"methods"`
	Kind       string           `json:"kind"`
	FuncType   string           `json:"func_type"`
	InputTypes []string         `json:"input_types"`
	ResultType *string          `json:"result_type"`
	LifeCycle  bool             `json:"life_cycle"` // its class defines open or close
	Keyed      bool             `json:"keyed"`      // a DataStream operator with keyed state

	pin *owner // the thread open ran on, if the instance keeps it (Config.Affinity)
}

// open asks the host to open the module's attribute name. Unless
// Config.Affinity is AffinityNone, open runs on a thread of the instance's
// own, which the instance keeps if it has a life cycle (AffinityAuto) or
// always (AffinityInstance): reply.pin.
func (m *Module) open(ctx context.Context, name string) (*openReply, error) {
	return m.openWith(ctx, name, nil)
}

// openWith is open with extra fields in the host's request (a DataStream
// operator's options).
func (m *Module) openWith(ctx context.Context, name string, extra map[string]any) (*openReply, error) {
	e := m.engine
	if e.closed.Load() {
		return nil, ErrClosed
	}
	var pin *owner
	if e.backend.ownThreads() && e.cfg.Affinity != AffinityNone {
		pin = newOwner()
	}
	var reply openReply
	req := map[string]any{"op": "function", "engine": e.id, "module": m.id, "name": name}
	for k, v := range extra {
		req[k] = v
	}
	if err := e.backend.control(ctx, pin, "open", req, &reply); err != nil {
		pin.end()
		if pe, ok := err.(*bridge.PythonError); ok {
			pe.Function = name
		}
		return nil, err
	}
	if reply.Missing {
		pin.end()
		return nil, fmt.Errorf("%w %q in module %s", ErrUnknownFunction, name, m.name)
	}
	if pin != nil && !reply.LifeCycle && e.cfg.Affinity == AffinityAuto {
		pin.end() // nothing open made can be bound to its thread
		pin = nil
	}
	reply.pin = pin
	return &reply, nil
}

// discard undoes an open that will not be used: the registered objects are
// bound and unbound, and the host closes the function.
func (m *Module) discard(ctx context.Context, name string, reply *openReply) {
	keys := []int64{reply.Object}
	for _, k := range reply.Methods {
		keys = append(keys, k)
	}
	for _, k := range keys {
		f := &Function{engine: m.engine, name: name, id: reply.Function, pin: reply.pin}
		if k != 0 && m.engine.backend.bind(ctx, f, k) == nil {
			m.engine.backend.unbind(f)
		}
	}
	m.engine.closeFunction(name, reply.Function, reply.pin)
}

// declare parses the declared types and checks that this engine runs the function's kind.
func (f *Function) declare(inputs []string, result *string) error {
	var err error
	f.inputs, f.result, err = parseSignature(f.name, inputs, result)
	return err
}

// parseSignature parses the declared types of function name.
func parseSignature(name string, inputs []string, result *string) (in []*bridge.DataType, out *bridge.DataType, err error) {
	for i, ddl := range inputs {
		t, err := bridge.ParseType(ddl)
		if err != nil {
			return nil, nil, fmt.Errorf("pyudf: function %q: input type %d: %w", name, i+1, err)
		}
		in = append(in, t)
	}
	if result != nil {
		if out, err = bridge.ParseType(*result); err != nil {
			return nil, nil, fmt.Errorf("pyudf: function %q: result type: %w", name, err)
		}
	}
	return in, out, nil
}

// Name is the name the function was looked up by.
func (f *Function) Name() string { return f.name }

// InputTypes are the declared argument types, or nil when undeclared (then
// arguments convert by their Go type).
func (f *Function) InputTypes() []*bridge.DataType { return f.inputs }

// ResultType is the declared result type, or nil when undeclared (then the
// result converts by its Python type).
func (f *Function) ResultType() *bridge.DataType { return f.result }

// Call calls the function on one row and returns its result as a plain Go
// value (see package bridge for the types). Arguments convert to the declared
// input types.
func (f *Function) Call(ctx context.Context, args ...any) (any, error) {
	var small [8]bridge.Value
	v, err := f.CallValues(ctx, appendValues(small[:0], args...)...)
	if err != nil {
		return nil, err
	}
	return v.Any(), nil
}

// appendValues appends args, each wrapped with bridge.ValueOf, to dst.
func appendValues(dst []bridge.Value, args ...any) []bridge.Value {
	for _, a := range args {
		dst = append(dst, bridge.ValueOf(a))
	}
	return dst
}

// checkArgs refuses a call with another number of arguments than declared.
func (f *Function) checkArgs(n int) error {
	if f.inputs != nil && n != len(f.inputs) {
		return fmt.Errorf("%w: function %q takes %d arguments (%s), got %d",
			ErrArgumentCount, f.name, len(f.inputs), typeList(f.inputs), n)
	}
	return nil
}

// CallValues is Call without boxing: with numeric and bool arguments and
// result it allocates nothing.
func (f *Function) CallValues(ctx context.Context, args ...bridge.Value) (bridge.Value, error) {
	if f.funcType != "general" || f.kind != "scalar" {
		return bridge.Value{}, f.wrongUse("Call")
	}
	if err := f.checkArgs(len(args)); err != nil {
		return bridge.Value{}, err
	}
	// Each backend's call is made on its concrete type: through the backend
	// interface, escape analysis cannot see that args is only read during
	// the call, and the caller's variadic slice would be allocated on every
	// call (none of the backends keeps it).
	switch b := f.engine.backend.(type) {
	case *interpreter:
		return b.call(ctx, f, args, f.inputs, f.result)
	case *workers:
		return b.call(ctx, f, args, f.inputs, f.result)
	case *pool:
		return b.call(ctx, f, args, f.inputs, f.result)
	}
	return f.callIn(ctx, slices.Clone(args), f.inputs, f.result)
}

// wrongUse is the error for calling method on a function of another kind.
func (f *Function) wrongUse(method string) error {
	var use string
	switch {
	case f.kind == "table":
		use = "Rows or Explode"
	case f.kind == "aggregate":
		use = "Reduce"
	case f.funcType == "general":
		use = "Call, Eval, EvalRowErrors or Map"
	default:
		use = "Eval or Map"
	}
	return fmt.Errorf("%w: %s of function %q, %s: use %s", ErrUnsupported, method, f.name, describeKind(f.kind, f.funcType), use)
}

// describeKind names a kind of function with its article, for errors:
// "a scalar function", "an Arrow scalar function", "a Pandas aggregate function".
func describeKind(kind, funcType string) string {
	var flavour string
	switch funcType {
	case "general", "":
	case "pandas":
		flavour = "Pandas "
	case "arrow":
		flavour = "Arrow "
	default:
		flavour = funcType + " "
	}
	phrase := flavour + kind + " function"
	if strings.ContainsRune("aeiouAEIOU", rune(phrase[0])) {
		return "an " + phrase
	}
	return "a " + phrase
}

// callIn runs one call, the arguments converted to inputs (nil: by their Go
// types), the result to result (nil: by its Python type).
func (f *Function) callIn(ctx context.Context, args []bridge.Value, inputs []*bridge.DataType, result *bridge.DataType) (bridge.Value, error) {
	return f.engine.backend.call(ctx, f, args, inputs, result)
}

// appendArgs encodes args, converted to inputs (nil: by their Go types), onto buf.
func (f *Function) appendArgs(buf []byte, args []bridge.Value, inputs []*bridge.DataType) ([]byte, error) {
	var err error
	for i, a := range args {
		var t *bridge.DataType
		if inputs != nil {
			t = inputs[i]
		}
		if buf, err = bridge.AppendArg(buf, t, a); err != nil {
			return nil, bridge.At(err, f.name, argumentName(i))
		}
	}
	return buf, nil
}

var argumentNames = [...]string{"argument 1", "argument 2", "argument 3", "argument 4",
	"argument 5", "argument 6", "argument 7", "argument 8"}

func argumentName(i int) string {
	if i < len(argumentNames) {
		return argumentNames[i]
	}
	return fmt.Sprintf("argument %d", i+1)
}

func typeList(ts []*bridge.DataType) string {
	s := ""
	for i, t := range ts {
		if i > 0 {
			s += ", "
		}
		s += t.String()
	}
	return s
}

// Close waits for calls in progress, runs the function's close() and drops
// it. Later calls fail with ErrClosed.
func (f *Function) Close() error {
	first := false
	f.engine.backend.closing(func() { first = !f.closed.Swap(true) })
	if !first {
		return nil
	}
	f.module.mu.Lock()
	if f.module.funcs[f.name] == f {
		delete(f.module.funcs, f.name)
	}
	f.module.mu.Unlock()
	f.engine.mu.Lock()
	delete(f.engine.funcs, f)
	f.engine.mu.Unlock()
	return f.release()
}

// release drops the Python object and runs close().
func (f *Function) release() error {
	f.engine.backend.unbind(f)
	return f.engine.closeFunction(f.name, f.id, f.pin)
}

// closeFunction has the host run close() of the function it opened as id
// (and free an aggregate's accumulators), on pin if the instance has one,
// and then ends pin.
func (e *Engine) closeFunction(name string, id int64, pin *owner) error {
	defer pin.end()
	err := e.backend.control(context.Background(), pin, "close",
		map[string]any{"op": "function_close", "engine": e.id, "function": id}, nil)
	if pe, ok := err.(*bridge.PythonError); ok {
		pe.Function = name
	}
	return err
}
