package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pyudf/pyudf/bridge"
	"github.com/pyudf/pyudf/cgo"
)

// frame is what one call needs: its C-side buffers and the id of its calls.
// Frames are pooled, so a call in steady state allocates nothing.
type frame struct{ *cgo.Frame }

func newFrame() *frame { return &frame{cgo.NewFrame()} }

// frames serves the control path; row calls use their gate's frames.
var frames = sync.Pool{New: func() any { return newFrame() }}

func getFrame() *frame { return frames.Get().(*frame) }

func putFrame(fr *frame) {
	fr.Trim() // the call is over: an outsized call's buffers shrink now
	frames.Put(fr)
}

// interruptEvery is how often a cancelled call that is still running gets
// Cancelled raised again.
const interruptEvery = 10 * time.Millisecond

// run performs one call on fr, interrupting it if ctx ends first: Cancelled is
// raised in it, and again every interruptEvery until it ends, since a UDF may
// swallow it (see cgo.Frame.Interrupt). An interrupted call ends Cancelled.
func (fr *frame) run(ctx context.Context, call func() cgo.Status) cgo.Status {
	if ctx.Done() == nil {
		return call()
	}
	if ctx.Err() != nil {
		return cgo.Cancelled
	}
	id := fr.NextCall()
	var returned atomic.Bool
	stop := context.AfterFunc(ctx, func() {
		for !returned.Load() && fr.Interrupt(id) {
			time.Sleep(interruptEvery)
		}
	})
	defer func() { // also when call panics before reaching C (out of C memory)
		returned.Store(true)
		stop()
		fr.Skip(id)
	}()
	return call()
}

// batchesImported: the batch calls' Python side is imported (batchesReady).
var batchesImported atomic.Bool

// batchesReady imports the batch calls' Python side (pyarrow, pandas, numpy)
// on first use, outside any deadline: a cancellation that lands inside
// numpy's import leaves numpy unimportable for the life of the process.
func batchesReady(function string) error {
	if batchesImported.Load() {
		return nil
	}
	fr := getFrame()
	defer putFrame(fr)
	if st := fr.ImportBatches(); st != cgo.OK {
		return fr.failure(context.Background(), st, function, "eval")
	}
	batchesImported.Store(true)
	return nil
}

// control runs one request of the host's control plane on fr, on pin's
// thread (nil: this one), and decodes its reply into reply (nil: ignore it).
func (fr *frame) control(ctx context.Context, pin *owner, op string, req map[string]any, reply any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	var st cgo.Status
	if err := pin.do(ctx, func() { st = fr.run(ctx, func() cgo.Status { return fr.Control(body) }) }); err != nil {
		return fmt.Errorf("pyudf: %s: %w", op, err)
	}
	if st != cgo.OK {
		return fr.failure(ctx, st, "", op)
	}
	if reply == nil {
		return nil
	}
	return json.Unmarshal(fr.Out(), reply)
}

// value is a row call's outcome: its failure (st not OK), else its encoded
// result decoded as result (nil: by its Python type).
func (fr *frame) value(ctx context.Context, st cgo.Status, function string, result *bridge.DataType) (bridge.Value, error) {
	if st != cgo.OK {
		return bridge.Value{}, fr.failure(ctx, st, function, "call")
	}
	v, _, err := bridge.DecodeResult(fr.Out(), result)
	if err != nil {
		return bridge.Value{}, bridge.At(err, function, "result")
	}
	return v, nil
}

// failure turns a failed call's status into the error to return.
func (fr *frame) failure(ctx context.Context, st cgo.Status, function, op string) error {
	if st == cgo.Cancelled {
		err := ctx.Err()
		if err == nil {
			err = context.Canceled
		}
		if function != "" {
			return fmt.Errorf("pyudf: function %q interrupted: %w", function, err)
		}
		return fmt.Errorf("pyudf: %s interrupted: %w", op, err)
	}
	exc := fr.Err()
	return bridge.FromPython(function, op, -1, exc.Type, exc.Message, exc.Traceback)
}
