package engine

import (
	"context"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/pyudf/pyudf/bridge"
)

// backend is one way of running Python: the interpreter embedded in this
// process (interpreter.go) or worker processes (process.go). Engine, Module,
// Function, Aggregate and Stream check their arguments, convert types and
// keep their bookkeeping; every crossing into Python goes through the
// engine's backend, and nothing else asks which one it is.
type backend interface {
	// control runs one request of the host's control plane (_host.control:
	// load code, open and close functions, metrics) and decodes its reply
	// into reply (nil: ignore it). pin, if not nil, is the thread of the
	// function instance the request is about (Config.Affinity).
	control(ctx context.Context, pin *owner, op string, req map[string]any, reply any) error
	// ownThreads reports whether instances may get threads of their own
	// (Config.Affinity): only where calls run on the caller's thread.
	ownThreads() bool

	// bind readies f for calls: key is the object the host registered for
	// it (the function, or one method of an aggregate). unbind undoes bind.
	bind(ctx context.Context, f *Function, key int64) error
	unbind(f *Function)
	// aggregateState is where the accumulators of aggregate id live, shared
	// by its methods' Functions (nil: in the one interpreter).
	aggregateState(id int64) *aggState

	// call runs f on one row: args converted to inputs (nil: by their Go
	// types), the result to result (nil: by its Python type).
	call(ctx context.Context, f *Function, args []bridge.Value, inputs []*bridge.DataType, result *bridge.DataType) (bridge.Value, error)
	// eval runs f over a batch in one crossing, as mode says (evalMode, or
	// "explode" for a table function), and returns the result column of
	// resultType and, for "rows_errors", the per-row errors.
	eval(ctx context.Context, f *Function, batch arrow.RecordBatch, mode string, resultType arrow.DataType, nullable bool) (res, errs arrow.Array, err error)
	// callBatch calls f with a whole batch and extra integer arguments
	// after it (a Pandas UDAF, an aggregate's accumulate_batch).
	callBatch(ctx context.Context, f *Function, batch arrow.RecordBatch, result *bridge.DataType, extra ...int64) (bridge.Value, error)

	// closing runs fn while no call of the backend is in progress and none
	// can start: a Function's close barrier.
	closing(fn func())
	// bundles is how many bundles of rows a Stream keeps in flight, or 0
	// when a Stream calls row by row.
	bundles() int
	// close ends the backend (the engine's own part of it).
	close()
}
