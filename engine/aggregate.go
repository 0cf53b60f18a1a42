package engine

import (
	"context"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/pyudf/pyudf/arrowconv"
	"github.com/pyudf/pyudf/bridge"
)

// Aggregate is an opened aggregate function (PyFlink's AggregateFunction,
// or udaf(...)) or table aggregate function (TableAggregateFunction, or
// udtaf(...)) with its accumulators, one per key, kept in Python. Keys are
// Go values that are hashable in Python: integers, strings, []byte, bools,
// times. It is safe for concurrent use; Close it to free every accumulator.
//
// Both kinds accumulate, retract, merge, snapshot and restore alike; they
// differ in a key's value. An aggregate function's is the one value its
// get_value returns. A table aggregate function's is the rows its emit_value
// yields: Value returns them as a []any with one bridge.Row per row (Rows
// returns the same rows as a []bridge.Row), each converted to the declared
// result type, a ROW (a result type of another kind is a row of one column
// f0 of that type; a bare value emitted for a one-column row is that row).
//
// Each method is one crossing, through the same path as Function.Call: the
// engine's gate, typed arguments, cancellation by ctx, *bridge.PythonError
// for exceptions.
type Aggregate struct {
	name   string
	id     int64
	engine *Engine
	module *Module
	inputs []*bridge.DataType // nil: undeclared
	result *bridge.DataType   // nil: undeclared
	pin    *owner             // thread mode: the instance's own thread (Config.Affinity), or nil
	table  bool               // a table aggregate function: a key's value is its rows

	accumulate, retract, merge, value, remove, size, batch, snapshot, restore *Function
	snapshotKey, restoreKey                                                   *Function
}

// Aggregate looks up an aggregate function of the module by name and opens
// it: its open(function_context) runs now. The same name returns the same
// Aggregate, with the same accumulators, until it is closed; a lookup after
// Close opens a fresh instance with no accumulators. This is the rule of
// Module.Function. Table aggregate functions open here too. A Pandas UDAF
// (udaf(..., func_type="pandas")) opens with Module.Function and runs with
// Function.Reduce.
func (m *Module) Aggregate(ctx context.Context, name string) (*Aggregate, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if a, ok := m.aggs[name]; ok {
		return a, nil
	}
	reply, err := m.open(ctx, name)
	if err != nil {
		return nil, err
	}
	a := &Aggregate{name: name, id: reply.Function, engine: m.engine, module: m, pin: reply.pin,
		table: reply.Kind == "table aggregate"}
	if (reply.Kind != "aggregate" && !a.table) || reply.FuncType != "general" {
		m.discard(ctx, name, reply)
		how := "open it with Module.Function"
		if reply.Kind == "aggregate" {
			how = "open it with Module.Function and run it with Function.Reduce"
		}
		return nil, fmt.Errorf("%w %q: %s: %s", ErrUnsupported, name, describeKind(reply.Kind, reply.FuncType), how)
	}
	if a.inputs, a.result, err = parseSignature(name, reply.InputTypes, reply.ResultType); err != nil {
		m.engine.closeFunction(name, a.id, a.pin)
		return nil, err
	}
	// Each Python method becomes a Function: its first argument is the key
	// (converted by its Go type), the rest are the declared inputs.
	keyed := append([]*bridge.DataType{nil}, a.inputs...)
	value := a.result
	if a.table && value != nil { // the rows emit_value yields
		value = &bridge.DataType{Kind: bridge.ArrayType, NotNull: true, Elem: value}
	}
	int64s := []*bridge.DataType{bridge.MustParseType("BIGINT"), bridge.MustParseType("BIGINT"), bridge.MustParseType("BIGINT")}
	methods := []struct {
		dst    **Function
		name   string
		inputs []*bridge.DataType
		result *bridge.DataType
	}{
		{&a.accumulate, "accumulate", keyed, nil},
		{&a.retract, "retract", keyed, nil},
		{&a.merge, "merge", nil, nil},
		{&a.value, "get_value", []*bridge.DataType{nil}, value},
		{&a.remove, "remove", []*bridge.DataType{nil}, bridge.MustParseType("BOOLEAN")},
		{&a.size, "size", []*bridge.DataType{}, bridge.MustParseType("BIGINT")},
		{&a.batch, "accumulate_batch", int64s, bridge.MustParseType("BIGINT")},
		{&a.snapshot, "snapshot", []*bridge.DataType{}, bridge.MustParseType("BYTES NOT NULL")},
		{&a.restore, "restore", []*bridge.DataType{bridge.MustParseType("BYTES NOT NULL")}, bridge.MustParseType("BIGINT")},
		{&a.snapshotKey, "snapshot_key", []*bridge.DataType{nil}, bridge.MustParseType("BYTES NOT NULL")},
		{&a.restoreKey, "restore_key", []*bridge.DataType{nil, bridge.MustParseType("BYTES NOT NULL")}, nil},
	}
	state := m.engine.backend.aggregateState(a.id)
	for _, meth := range methods {
		f := &Function{engine: m.engine, name: name + "." + meth.name, kind: "scalar",
			funcType: "general", inputs: meth.inputs, result: meth.result, module: m,
			id: a.id, method: meth.name, state: state, pin: a.pin}
		if err := m.engine.backend.bind(ctx, f, reply.Methods[meth.name]); err != nil {
			a.releaseMethods()
			m.engine.closeFunction(name, a.id, a.pin)
			return nil, err
		}
		*meth.dst = f
	}
	if a.inputs == nil {
		a.accumulate.inputs, a.retract.inputs = nil, nil // undeclared: any number of arguments
	}
	m.engine.mu.Lock()
	m.engine.aggs[a] = struct{}{}
	m.engine.mu.Unlock()
	m.aggs[name] = a
	return a, nil
}

// Name is the name the aggregate was looked up by.
func (a *Aggregate) Name() string { return a.name }

// InputTypes are the declared argument types (after the key), or nil.
func (a *Aggregate) InputTypes() []*bridge.DataType { return a.inputs }

// ResultType is the declared result type, or nil.
func (a *Aggregate) ResultType() *bridge.DataType { return a.result }

// Accumulate adds one row to the accumulator of key, creating it on first use.
func (a *Aggregate) Accumulate(ctx context.Context, key any, args ...any) error {
	return callKeyed(ctx, a.accumulate, key, args)
}

// Retract removes one row from the accumulator of key; the function must
// implement retract.
func (a *Aggregate) Retract(ctx context.Context, key any, args ...any) error {
	return callKeyed(ctx, a.retract, key, args)
}

// Merge merges the accumulators of from into that of into (as session
// windows do) and drops them; the function must implement merge.
func (a *Aggregate) Merge(ctx context.Context, into any, from ...any) error {
	return callKeyed(ctx, a.merge, into, from)
}

// callKeyed calls f(key, *args) without allocating for up to 7 numeric arguments.
func callKeyed(ctx context.Context, f *Function, key any, args []any) error {
	var small [8]bridge.Value
	_, err := f.CallValues(ctx, appendValues(append(small[:0], bridge.ValueOf(key)), args...)...)
	return err
}

// Value is the value of key's accumulator (of a fresh one if key has none),
// converted to the result type: for an aggregate function what get_value
// returns; for a table aggregate function the rows emit_value yields, as a
// []any of bridge.Row (never nil; see Aggregate and Rows).
func (a *Aggregate) Value(ctx context.Context, key any) (any, error) {
	v, err := a.value.Call(ctx, key)
	if err != nil || !a.table {
		return v, err
	}
	rows := v.([]any)
	for i, r := range rows {
		if list, ok := r.([]any); ok { // undeclared result type: the row's values as a list
			rows[i] = bridge.Row(list)
		}
	}
	return rows, nil
}

// Rows is Value of a table aggregate function, typed: the rows emit_value
// yields for key's accumulator. For an aggregate function it fails with
// ErrUnsupported (its value is one value: use Value).
func (a *Aggregate) Rows(ctx context.Context, key any) ([]bridge.Row, error) {
	if !a.table {
		return nil, fmt.Errorf("%w: Rows of aggregate %q, an aggregate function: use Value", ErrUnsupported, a.name)
	}
	v, err := a.Value(ctx, key)
	if err != nil {
		return nil, err
	}
	values := v.([]any)
	rows := make([]bridge.Row, len(values))
	for i, r := range values {
		rows[i] = r.(bridge.Row)
	}
	return rows, nil
}

// IsTable reports whether the function is a table aggregate function, whose
// value per key is rows (Rows) rather than one value.
func (a *Aggregate) IsTable() bool { return a.table }

// Remove drops key's accumulator and reports whether there was one.
func (a *Aggregate) Remove(ctx context.Context, key any) (bool, error) {
	v, err := a.remove.Call(ctx, key)
	return v == true, err
}

// Len is the number of keys with an accumulator.
func (a *Aggregate) Len(ctx context.Context) (int, error) {
	v, err := a.size.Call(ctx)
	if err != nil {
		return 0, err
	}
	return int(v.(int64)), nil
}

// AccumulateBatch accumulates every row of a record batch in one crossing:
// column keyColumn holds the keys, the other columns (in order) the
// arguments. Rows are grouped by key in Python.
func (a *Aggregate) AccumulateBatch(ctx context.Context, batch arrow.RecordBatch, keyColumn int) error {
	schema := batch.Schema()
	if keyColumn < 0 || keyColumn >= schema.NumFields() {
		return fmt.Errorf("pyudf: aggregate %q: key column %d is not in a batch of %d columns", a.name, keyColumn, schema.NumFields())
	}
	if key := schema.Field(keyColumn); !isKeyType(key.Type) {
		return fmt.Errorf("pyudf: aggregate %q: key column %d (%q) is %s; keys must be integers, strings, binary, booleans, dates or timestamps",
			a.name, keyColumn, key.Name, key.Type)
	}
	if a.inputs != nil {
		fields := append(append([]arrow.Field{}, schema.Fields()[:keyColumn]...), schema.Fields()[keyColumn+1:]...)
		if err := arrowconv.CheckSchema(arrow.NewSchema(fields, nil), a.inputs); err != nil {
			return fmt.Errorf("pyudf: aggregate %q: %w (not counting the key column)", a.name, err)
		}
	}
	if batch.NumRows() == 0 {
		return nil
	}
	if a.batch.closed.Load() {
		return ErrClosed
	}
	_, err := a.engine.backend.callBatch(ctx, a.batch, batch, a.batch.result, int64(keyColumn))
	return err
}

func isKeyType(t arrow.DataType) bool {
	if d, ok := t.(*arrow.DictionaryType); ok {
		t = d.ValueType
	}
	switch t.ID() {
	case arrow.BOOL, arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.UINT8, arrow.UINT16,
		arrow.UINT32, arrow.UINT64, arrow.STRING, arrow.LARGE_STRING, arrow.BINARY, arrow.LARGE_BINARY,
		arrow.DATE32, arrow.DATE64, arrow.TIMESTAMP:
		return true
	}
	return false
}

// Snapshot serialises every accumulator (pickle), for a checkpoint.
func (a *Aggregate) Snapshot(ctx context.Context) ([]byte, error) {
	v, err := a.snapshot.Call(ctx)
	if err != nil {
		return nil, err
	}
	return v.([]byte), nil
}

// Restore replaces every accumulator with a snapshot's and returns the number
// of keys. Bytes that are not a snapshot fail with a *bridge.PythonError and
// leave the state as it was.
func (a *Aggregate) Restore(ctx context.Context, snapshot []byte) (int, error) {
	v, err := a.restore.Call(ctx, snapshot)
	if err != nil {
		return 0, err
	}
	return int(v.(int64)), nil
}

// SnapshotKey serialises the accumulator of key alone (a fresh one if key
// has none) in Snapshot's form: a snapshot of that one key, which Restore
// also accepts. The state is left as it was. With RestoreKey it lets one
// accumulator travel on its own (a Beam CombineFn's accumulator does).
func (a *Aggregate) SnapshotKey(ctx context.Context, key any) ([]byte, error) {
	v, err := a.snapshotKey.Call(ctx, key)
	if err != nil {
		return nil, err
	}
	return v.([]byte), nil
}

// RestoreKey makes the one accumulator of a one-key snapshot (SnapshotKey's,
// of any key) that of key, replacing any it had; other keys are kept. Bytes
// that are not such a snapshot fail with a *bridge.PythonError (ValueError)
// and leave the state as it was.
func (a *Aggregate) RestoreKey(ctx context.Context, key any, snapshot []byte) error {
	_, err := a.restoreKey.Call(ctx, key, snapshot)
	return err
}

func (a *Aggregate) all() []*Function {
	return []*Function{a.accumulate, a.retract, a.merge, a.value, a.remove, a.size, a.batch, a.snapshot, a.restore,
		a.snapshotKey, a.restoreKey}
}

func (a *Aggregate) releaseMethods() {
	for _, f := range a.all() {
		if f != nil {
			a.engine.backend.unbind(f)
		}
	}
}

// Close waits for calls in progress, frees every accumulator and runs the
// function's close(). Later calls fail with ErrClosed.
func (a *Aggregate) Close() error {
	first := false
	a.engine.backend.closing(func() {
		first = !a.accumulate.closed.Load()
		for _, f := range a.all() {
			f.closed.Store(true)
		}
	})
	if !first {
		return nil
	}
	a.module.mu.Lock()
	if a.module.aggs[a.name] == a {
		delete(a.module.aggs, a.name)
	}
	a.module.mu.Unlock()
	a.engine.mu.Lock()
	delete(a.engine.aggs, a)
	a.engine.mu.Unlock()
	a.releaseMethods()
	return a.engine.closeFunction(a.name, a.id, a.pin)
}
