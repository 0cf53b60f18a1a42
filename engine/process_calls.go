package engine

import (
	"context"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/pyudf/pyudf/arrowconv"
	"github.com/pyudf/pyudf/bridge"
)

// The process backend's calls: each is one request to a worker (request in
// process.go), the arguments encoded as for the C shim, batches as Arrow IPC.

func (*workers) ownThreads() bool { return false } // a worker runs its instances on its one thread

func (p *workers) bundles() int { return 2 * len(p.list) }

func (*workers) closing(fn func()) { fn() } // a request checks Function.closed before it is sent

// bind has nothing to fetch: a worker names the function by its id.
func (*workers) bind(context.Context, *Function, int64) error { return nil }
func (*workers) unbind(*Function)                             {}

// aggregateState places aggregate id's accumulators on one worker, as long
// as that worker process lives.
func (p *workers) aggregateState(id int64) *aggState {
	state := &aggState{worker: int(uint64(id) % uint64(len(p.list)))}
	state.gen.Store(p.list[state.worker].gen.Load())
	return state
}

func (p *workers) call(ctx context.Context, f *Function, args []bridge.Value, inputs []*bridge.DataType, result *bridge.DataType) (bridge.Value, error) {
	if f.closed.Load() {
		return bridge.Value{}, ErrClosed
	}
	buf, err := f.appendArgs(nil, args, inputs)
	if err != nil {
		return bridge.Value{}, err
	}
	return p.callValue(ctx, f, map[string]any{"op": "call", "nargs": len(args)}, buf, result)
}

// callBatch sends the batch as Arrow IPC.
func (p *workers) callBatch(ctx context.Context, f *Function, batch arrow.RecordBatch, result *bridge.DataType, extra ...int64) (bridge.Value, error) {
	data, err := exportableIPC(batch)
	if err != nil {
		return bridge.Value{}, fmt.Errorf("pyudf: function %q: cannot write the batch as Arrow IPC: %w", f.name, err)
	}
	if extra == nil {
		extra = []int64{}
	}
	return p.callValue(ctx, f, map[string]any{"op": "call_batch", "extra": extra}, data, result)
}

// callValue sends a request for f (header plus payload) to a worker and
// decodes the encoded value it returns as result.
func (p *workers) callValue(ctx context.Context, f *Function, header map[string]any, payload []byte, result *bridge.DataType) (bridge.Value, error) {
	header["function"], header["method"] = f.id, f.method
	parts, err := message(header, payload)
	if err != nil {
		return bridge.Value{}, err
	}
	rep, err := p.request(ctx, f, "call", parts)
	if err != nil {
		return bridge.Value{}, err
	}
	if len(rep.payloads) != 1 {
		return bridge.Value{}, fmt.Errorf("pyudf: function %q: the worker's reply holds %d payloads", f.name, len(rep.payloads))
	}
	v, _, err := bridge.DecodeResult(rep.payloads[0], result)
	if err != nil {
		return bridge.Value{}, bridge.At(err, f.name, "result")
	}
	return v, nil
}

// eval sends the batch and the result type as Arrow IPC; the result (and
// per-row errors) come back the same way.
func (p *workers) eval(ctx context.Context, f *Function, batch arrow.RecordBatch, mode string, resultType arrow.DataType, nullable bool) (arrow.Array, arrow.Array, error) {
	data, err := exportableIPC(batch)
	if err != nil {
		return nil, nil, fmt.Errorf("pyudf: function %q: cannot write the batch as Arrow IPC: %w", f.name, err)
	}
	empty := array.MakeArrayOfNull(memory.DefaultAllocator, resultType, 0)
	typeRec := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "result", Type: resultType, Nullable: nullable}}, nil),
		[]arrow.Array{empty}, 0)
	typ, err := ipcBatch(typeRec)
	typeRec.Release()
	empty.Release()
	if err != nil {
		return nil, nil, err
	}
	parts, err := message(map[string]any{"op": "eval", "function": f.id, "method": f.method, "mode": mode}, data, typ)
	if err != nil {
		return nil, nil, err
	}
	rep, err := p.request(ctx, f, "eval", parts)
	if err != nil {
		return nil, nil, err
	}
	if len(rep.payloads) != 1 {
		return nil, nil, fmt.Errorf("pyudf: function %q: the worker's reply holds %d payloads", f.name, len(rep.payloads))
	}
	rec, err := ipcRead(rep.payloads[0])
	if err != nil {
		return nil, nil, fmt.Errorf("pyudf: function %q: unreadable result: %w", f.name, err)
	}
	defer rec.Release()
	res := rec.Column(0)
	res.Retain()
	var errs arrow.Array
	if rec.NumCols() > 1 {
		errs = rec.Column(1)
		errs.Retain()
	}
	return res, errs, nil
}

// exportableIPC writes a batch a caller passed as Arrow IPC, without writing
// into it (arrowconv.Exportable).
func exportableIPC(batch arrow.RecordBatch) ([]byte, error) {
	batch = arrowconv.Exportable(batch)
	defer batch.Release()
	return ipcBatch(batch)
}
