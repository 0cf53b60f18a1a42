package engine

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"

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

// argBuffers holds the encoded arguments of row calls between calls.
var argBuffers = sync.Pool{New: func() any { return new([]byte) }}

func (p *workers) call(ctx context.Context, f *Function, args []bridge.Value, inputs []*bridge.DataType, result *bridge.DataType) (bridge.Value, error) {
	if f.closed.Load() {
		return bridge.Value{}, ErrClosed
	}
	buf := argBuffers.Get().(*[]byte)
	defer func() {
		if cap(*buf) <= 64<<10 { // an outsized call's buffer is not kept
			argBuffers.Put(buf)
		}
	}()
	var err error
	if *buf, err = f.appendArgs((*buf)[:0], args, inputs); err != nil {
		return bridge.Value{}, err
	}
	return p.callValue(ctx, f, &request{op: opCall, count: uint32(len(args)), data: [3][]byte{*buf}}, result)
}

// callBatch sends the batch as Arrow IPC.
func (p *workers) callBatch(ctx context.Context, f *Function, batch arrow.RecordBatch, result *bridge.DataType, extra ...int64) (bridge.Value, error) {
	data, err := exportableIPC(batch)
	if err != nil {
		return bridge.Value{}, fmt.Errorf("pyudf: function %q: cannot write the batch as Arrow IPC: %w", f.name, err)
	}
	extras := make([]byte, 0, 8*len(extra))
	for _, x := range extra {
		extras = binary.LittleEndian.AppendUint64(extras, uint64(x))
	}
	return p.callValue(ctx, f, &request{op: opCallBatch, count: uint32(len(extra)), data: [3][]byte{extras, data}}, result)
}

// callValue sends req for f (op, count and data set) to a worker and decodes
// the encoded value it returns as result.
func (p *workers) callValue(ctx context.Context, f *Function, req *request, result *bridge.DataType) (bridge.Value, error) {
	req.function, req.method = f.id, f.method
	var v bridge.Value
	err := p.request(ctx, f, "call", req, func(body []byte) error {
		var err error
		if v, _, err = bridge.DecodeResult(body, result); err != nil {
			return bridge.At(err, f.name, "result")
		}
		return nil
	})
	return v, err
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
	if len(data) > 1<<32-1 {
		return nil, nil, fmt.Errorf("pyudf: function %q: a batch of %d bytes is over the 4 GiB a worker message may hold", f.name, len(data))
	}
	modeField := make([]byte, pad8(1+len(mode))) // u8 len(mode) | mode | zeros
	modeField[0] = byte(len(mode))
	copy(modeField[1:], mode)
	req := &request{op: opEval, function: f.id, method: f.method, count: uint32(len(data)),
		data: [3][]byte{modeField, data, typ}}
	var rec arrow.RecordBatch
	err = p.request(ctx, f, "eval", req, func(body []byte) error {
		var err error
		if rec, err = ipcRead(body); err != nil { // copies the batch out of body
			return fmt.Errorf("pyudf: function %q: unreadable result: %w", f.name, err)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
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
