package pyudfbeam

import (
	"context"
	"fmt"
	"reflect"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/pyudf/pyudf/arrowconv"
	"github.com/pyudf/pyudf/engine"
)

func init() {
	register.DoFn4x1[context.Context, beam.EventTime, beam.T, func(beam.EventTime, beam.U), error](&PandasFn{})
	register.Emitter2[beam.EventTime, beam.U]()
}

// PandasFn runs a vectorised UDF (udf(..., func_type="pandas") or "arrow";
// a general UDF works too, row-wise inside the one crossing) over each bundle:
// elements are buffered as the bundle arrives and sent to Python as one Arrow
// record batch when the bundle finishes (FinishBundle), or earlier when
// BatchSize elements are waiting. Each result keeps its element's event time
// but is emitted in the global window (FinishBundle has no element window):
// apply it to globally windowed input and window after it.
// The UDF must declare its input types; an element's arguments are those of
// ScalarFn. Build it with Pandas.
type PandasFn struct {
	UDF UDF
	// Out is the Go type of the output elements.
	Out beam.EncodedType
	// BatchSize caps a batch: 0 means the whole bundle.
	BatchSize int

	h     *handle
	fn    *engine.Function
	types []arrow.DataType
	rows  [][]any
	times []beam.EventTime
}

// Pandas applies the vectorised UDF u to col, one Arrow batch per bundle; out
// is the Go type of the results.
func Pandas(s beam.Scope, u UDF, out reflect.Type, col beam.PCollection) beam.PCollection {
	s = s.Scope("pyudf." + u.Function)
	return beam.ParDo(s, &PandasFn{UDF: u, Out: beam.EncodedType{T: out}}, col,
		beam.TypeDefinition{Var: beam.UType, T: out})
}

// Setup starts (or shares) the worker process's engine and opens the UDF.
func (f *PandasFn) Setup(ctx context.Context) error {
	h, fn, err := openFunction(ctx, f.UDF)
	if err != nil {
		return err
	}
	if fn.InputTypes() == nil {
		h.release()
		return fmt.Errorf("pyudfbeam: %q declares no input types: a batch needs them (input_types=...)", f.UDF.Function)
	}
	f.h, f.fn = h, fn
	f.types = make([]arrow.DataType, len(fn.InputTypes()))
	for i, t := range fn.InputTypes() {
		f.types[i] = arrowconv.ArrowType(t)
	}
	return nil
}

// ProcessElement buffers one element.
func (f *PandasFn) ProcessElement(ctx context.Context, ts beam.EventTime, elem beam.T, emit func(beam.EventTime, beam.U)) error {
	args := argsOf(elem)
	if len(args) != len(f.types) {
		return fmt.Errorf("pyudfbeam: %s: element %v has %d arguments, the UDF takes %d", f.UDF.Function, elem, len(args), len(f.types))
	}
	f.rows = append(f.rows, args)
	f.times = append(f.times, ts)
	if f.BatchSize > 0 && len(f.rows) >= f.BatchSize {
		return f.flush(ctx, emit)
	}
	return nil
}

// FinishBundle sends what the bundle buffered as one batch.
func (f *PandasFn) FinishBundle(ctx context.Context, emit func(beam.EventTime, beam.U)) error {
	return f.flush(ctx, emit)
}

func (f *PandasFn) flush(ctx context.Context, emit func(beam.EventTime, beam.U)) error {
	rows, times := f.rows, f.times
	f.rows, f.times = f.rows[:0], f.times[:0]
	if len(rows) == 0 {
		return nil
	}
	rec, err := buildBatch(f.fn.InputTypes(), f.types, rows)
	if err != nil {
		return fmt.Errorf("pyudfbeam: %s: %w", f.UDF.Function, err)
	}
	defer rec.Release()
	res, err := f.fn.Eval(ctx, rec)
	if err != nil {
		return withTraceback(fmt.Errorf("pyudfbeam: %s over a batch of %d elements: %w", f.UDF.Function, len(rows), err))
	}
	defer res.Release()
	for i := range rows {
		v, err := arrowValue(res, i)
		if err == nil {
			v, err = conform(v, f.Out.T)
		}
		if err != nil {
			return fmt.Errorf("pyudfbeam: %s: element %v: %w", f.UDF.Function, rows[i], err)
		}
		emit(times[i], v)
	}
	return nil
}

// Teardown releases the engine; the last DoFn of the process closes it.
func (f *PandasFn) Teardown() error {
	h := f.h
	f.h, f.fn = nil, nil
	return h.release()
}
