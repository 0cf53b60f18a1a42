package pyudfbeam

import (
	"context"
	"fmt"
	"reflect"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/pyudf/pyudf/engine"
)

func init() {
	register.DoFn3x1[context.Context, beam.T, func(beam.U), error](&ScalarFn{})
	register.Emitter1[beam.U]()
}

// ScalarFn calls a scalar UDF once per element (one row call, one crossing
// into Python) and emits its result converted to Out. An element's
// arguments are its exported fields if it is a struct, else the element.
// Build it with Scalar, which also binds the output type.
type ScalarFn struct {
	UDF UDF
	// Out is the Go type of the output elements.
	Out beam.EncodedType

	h  *handle
	fn *engine.Function
}

// Scalar applies the scalar UDF u to every element of col; out is the Go type
// of the results (reflect.TypeOf("") for a STRING UDF, int64 for BIGINT).
func Scalar(s beam.Scope, u UDF, out reflect.Type, col beam.PCollection) beam.PCollection {
	s = s.Scope("pyudf." + u.Function)
	return beam.ParDo(s, &ScalarFn{UDF: u, Out: beam.EncodedType{T: out}}, col,
		beam.TypeDefinition{Var: beam.UType, T: out})
}

// Setup starts (or shares) the worker process's engine and opens the UDF.
func (f *ScalarFn) Setup(ctx context.Context) error {
	h, fn, err := openFunction(ctx, f.UDF)
	f.h, f.fn = h, fn
	return err
}

// ProcessElement calls the UDF on one element.
func (f *ScalarFn) ProcessElement(ctx context.Context, elem beam.T, emit func(beam.U)) error {
	v, err := f.fn.Call(ctx, argsOf(elem)...)
	if err != nil {
		return withTraceback(fmt.Errorf("pyudfbeam: %s(%v): %w", f.UDF.Function, elem, err))
	}
	out, err := conform(v, f.Out.T)
	if err != nil {
		return fmt.Errorf("pyudfbeam: %s(%v): %w", f.UDF.Function, elem, err)
	}
	emit(out)
	return nil
}

// Teardown releases the engine; the last DoFn of the process closes it.
func (f *ScalarFn) Teardown() error {
	h := f.h
	f.h, f.fn = nil, nil
	return h.release()
}

// openFunction acquires the engine of u and looks its function up.
func openFunction(ctx context.Context, u UDF) (*handle, *engine.Function, error) {
	h, err := acquire(ctx, u)
	if err != nil {
		return nil, nil, err
	}
	fn, err := h.module.Function(ctx, u.Function)
	if err != nil {
		h.release()
		return nil, nil, withTraceback(fmt.Errorf("pyudfbeam: opening %q: %w", u.Function, err))
	}
	return h, fn, nil
}
