package pyudfbeam

import (
	"context"
	"fmt"
	"reflect"
	"sync/atomic"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/pyudf/pyudf/engine"
)

func init() {
	register.Combiner3[Accumulator, beam.T, beam.U](&AggregateFn{})
	beam.RegisterCoder(reflect.TypeOf(Accumulator{}), encodeAccumulator, decodeAccumulator)
}

// AggregateFn is a Beam CombineFn backed by a PyFlink AggregateFunction
// (udaf(...) or an AggregateFunction subclass): CreateAccumulator,
// AddInput, MergeAccumulators and ExtractOutput run the function's
// create_accumulator, accumulate, merge and get_value through an
// engine.Aggregate. An input's arguments are those of ScalarFn (a struct's
// exported fields, else the value). Build it with Aggregate or AggregatePerKey.
type AggregateFn struct {
	UDF UDF
	// Out is the Go type of the output elements.
	Out beam.EncodedType

	h   *handle
	agg *engine.Aggregate
}

// Accumulator is an AggregateFn's accumulator. Between runner stages it
// travels as State, the aggregate's snapshot of one key
// (engine.Aggregate.SnapshotKey: the Python accumulator, pickled). Inputs
// added within a bundle wait in Go and are accumulated in Python in one go
// when the accumulator is needed: encoded, merged or extracted.
type Accumulator struct {
	State []byte // nil: a fresh accumulator

	pending [][]any           // inputs not yet accumulated
	agg     *engine.Aggregate // the aggregate that accumulates pending
}

// maxPending bounds the inputs an accumulator holds in Go.
const maxPending = 256

// Aggregate combines all of col into one value with the aggregate function u.
func Aggregate(s beam.Scope, u UDF, out reflect.Type, col beam.PCollection) beam.PCollection {
	s = s.Scope("pyudf." + u.Function)
	return beam.Combine(s, &AggregateFn{UDF: u, Out: beam.EncodedType{T: out}}, col,
		beam.TypeDefinition{Var: beam.UType, T: out})
}

// AggregatePerKey combines the values of each key of the KV collection col
// with the aggregate function u.
func AggregatePerKey(s beam.Scope, u UDF, out reflect.Type, col beam.PCollection) beam.PCollection {
	s = s.Scope("pyudf." + u.Function)
	return beam.CombinePerKey(s, &AggregateFn{UDF: u, Out: beam.EncodedType{T: out}}, col,
		beam.TypeDefinition{Var: beam.UType, T: out})
}

// Setup starts (or shares) the worker process's engine and opens the aggregate.
func (f *AggregateFn) Setup(ctx context.Context) error {
	h, err := acquire(ctx, f.UDF)
	if err != nil {
		return err
	}
	agg, err := h.module.Aggregate(ctx, f.UDF.Function)
	if err != nil {
		h.release()
		return withTraceback(fmt.Errorf("pyudfbeam: opening aggregate %q: %w", f.UDF.Function, err))
	}
	f.h, f.agg = h, agg
	return nil
}

// Teardown releases the engine; the last DoFn of the process closes it.
func (f *AggregateFn) Teardown() error {
	h := f.h
	f.h, f.agg = nil, nil
	return h.release()
}

// CreateAccumulator returns a fresh accumulator (Python's
// create_accumulator runs when it is first needed).
func (f *AggregateFn) CreateAccumulator() Accumulator {
	return Accumulator{agg: f.agg}
}

// AddInput adds one input.
func (f *AggregateFn) AddInput(a Accumulator, in beam.T) (Accumulator, error) {
	a.agg = f.agg
	a.pending = append(a.pending, argsOf(in))
	if len(a.pending) < maxPending {
		return a, nil
	}
	return a.settle(context.Background())
}

// MergeAccumulators merges b into a: with Python's merge when both carry
// state, else by moving the pending inputs of one onto the other.
func (f *AggregateFn) MergeAccumulators(a, b Accumulator) (Accumulator, error) {
	if a.State == nil || b.State == nil {
		if a.State == nil {
			a, b = b, a
		}
		if len(b.pending) == 0 {
			return a, nil
		}
		pending := make([][]any, 0, len(a.pending)+len(b.pending))
		out := Accumulator{State: a.State, pending: append(append(pending, a.pending...), b.pending...), agg: f.agg}
		if len(out.pending) < maxPending {
			return out, nil
		}
		return out.settle(context.Background())
	}
	ctx := context.Background()
	into, from := scratchKey(), scratchKey()
	defer f.agg.Remove(ctx, into)
	defer f.agg.Remove(ctx, from)
	a.agg, b.agg = f.agg, f.agg
	if err := a.load(ctx, into); err != nil {
		return Accumulator{}, err
	}
	if err := b.load(ctx, from); err != nil {
		return Accumulator{}, err
	}
	if err := f.agg.Merge(ctx, into, from); err != nil {
		return Accumulator{}, withTraceback(fmt.Errorf("pyudfbeam: %s: merge: %w", f.UDF.Function, err))
	}
	state, err := f.agg.SnapshotKey(ctx, into)
	if err != nil {
		return Accumulator{}, withTraceback(fmt.Errorf("pyudfbeam: %s: snapshot of an accumulator: %w", f.UDF.Function, err))
	}
	return Accumulator{State: state, agg: f.agg}, nil
}

// ExtractOutput is Python's get_value of the accumulator.
func (f *AggregateFn) ExtractOutput(a Accumulator) (beam.U, error) {
	ctx := context.Background()
	k := scratchKey()
	defer f.agg.Remove(ctx, k)
	a.agg = f.agg
	if err := a.load(ctx, k); err != nil {
		return nil, err
	}
	v, err := f.agg.Value(ctx, k)
	if err != nil {
		return nil, withTraceback(fmt.Errorf("pyudfbeam: %s: get_value: %w", f.UDF.Function, err))
	}
	out, err := conform(v, f.Out.T)
	if err != nil {
		return nil, fmt.Errorf("pyudfbeam: %s: %w", f.UDF.Function, err)
	}
	return out, nil
}

// scratch numbers the keys an AggregateFn borrows from its aggregate while
// it works on an accumulator; each is removed again before the method returns.
var scratch atomic.Int64

func scratchKey() int64 { return scratch.Add(1) }

// load makes a's accumulator, with its pending inputs added, that of key k.
func (a Accumulator) load(ctx context.Context, k int64) error {
	if a.State != nil {
		if err := a.agg.RestoreKey(ctx, k, a.State); err != nil {
			return withTraceback(fmt.Errorf("pyudfbeam: %s: restoring an accumulator: %w", a.agg.Name(), err))
		}
	}
	for _, args := range a.pending {
		if err := a.agg.Accumulate(ctx, k, args...); err != nil {
			return withTraceback(fmt.Errorf("pyudfbeam: %s: accumulate%v: %w", a.agg.Name(), args, err))
		}
	}
	return nil
}

// settle accumulates a's pending inputs into its State.
func (a Accumulator) settle(ctx context.Context) (Accumulator, error) {
	if len(a.pending) == 0 {
		return a, nil
	}
	k := scratchKey()
	defer a.agg.Remove(ctx, k)
	if err := a.load(ctx, k); err != nil {
		return Accumulator{}, err
	}
	state, err := a.agg.SnapshotKey(ctx, k)
	if err != nil {
		return Accumulator{}, withTraceback(fmt.Errorf("pyudfbeam: %s: snapshot of an accumulator: %w", a.agg.Name(), err))
	}
	return Accumulator{State: state, agg: a.agg}, nil
}

// encodeAccumulator is the accumulator's coder: its State once its pending
// inputs are in it; an empty encoding is a fresh accumulator.
func encodeAccumulator(a Accumulator) ([]byte, error) {
	a, err := a.settle(context.Background())
	if err != nil {
		return nil, err
	}
	if a.State == nil {
		return []byte{}, nil
	}
	return a.State, nil
}

func decodeAccumulator(b []byte) (Accumulator, error) {
	if len(b) == 0 {
		return Accumulator{}, nil
	}
	return Accumulator{State: append([]byte(nil), b...)}, nil
}
