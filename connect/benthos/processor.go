// Package benthos is a Benthos (github.com/redpanda-data/benthos/v4) batch
// processor, registered as "pyudf", that runs a PyFlink-style Python UDF
// over each message batch through pyudf's engine.
//
// Import it for its side effect, next to the Benthos components you use:
//
//	import _ "github.com/pyudf/pyudf/connect/benthos"
//
// A general (row-wise) UDF runs over the whole batch in one crossing, the
// per-row loop in C (engine.Function.EvalRowErrors): a row whose call raises
// gets the Python error on its message (Message.SetError), one whose result
// does not convert a *bridge.ConversionError, so that Benthos' catch, try
// and dead-letter outputs handle it, and the other rows go on. A
// Pandas or Arrow UDF gets the batch as one Arrow record batch, also in one
// crossing; if it raises, every message of the batch carries the error.
//
// Everything that can be checked before the first message is checked when the
// processor is built (at stream start-up): the source loads, the function
// exists and runs batches, and the number of arguments matches the
// function's declared input types.
package benthos

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/redpanda-data/benthos/v4/public/bloblang"
	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/pyudf/pyudf/bridge"
	"github.com/pyudf/pyudf/engine"
)

func init() {
	if err := service.RegisterBatchProcessor("pyudf", ConfigSpec(), newFromConfig); err != nil {
		panic(err)
	}
}

// processor is one pyudf processor instance (Benthos builds one per
// pipeline thread); each has an engine of its own.
type processor struct {
	eng     *engine.Engine
	fn      *engine.Function
	name    string
	rowWise bool               // a general UDF: EvalRowErrors; else Eval (Pandas, Arrow)
	args    *argSource         // how a message becomes the call's arguments
	result  *bloblang.Executor // result_map, or nil: the result replaces the message
	inputs  []*bridge.DataType // the columns' SQL types
}

func newFromConfig(conf *service.ParsedConfig, _ *service.Resources) (service.BatchProcessor, error) {
	c, err := parseConfig(conf)
	if err != nil {
		return nil, err
	}
	return newProcessor(context.Background(), c)
}

// newProcessor starts an engine, loads the UDF and checks, on empty batches,
// everything that can be checked before the first message.
func newProcessor(ctx context.Context, c *config) (_ *processor, err error) {
	eng, err := engine.New(ctx, c.engine)
	if err != nil {
		return nil, fmt.Errorf("pyudf: starting the engine (mode %s): %w", c.engine.Mode, err)
	}
	defer func() {
		if err != nil {
			eng.Close()
		}
	}()
	var mod *engine.Module
	switch {
	case c.file != "":
		mod, err = eng.LoadFile(ctx, c.file)
	case c.module != "":
		mod, err = eng.Import(ctx, c.module)
	default:
		mod, err = eng.LoadSource(ctx, "pyudf_benthos_script", c.script)
	}
	if err != nil {
		return nil, fmt.Errorf("pyudf: loading %s: %w", c.sourceName(), err)
	}
	fn, err := mod.Function(ctx, c.function)
	if err != nil {
		return nil, fmt.Errorf("pyudf: function %q of %s: %w", c.function, c.sourceName(), err)
	}
	p := &processor{eng: eng, fn: fn, name: c.function, args: c.args, result: c.resultMap}
	if p.inputs, err = c.args.inputTypes(fn); err != nil {
		return nil, err
	}
	if err := p.probe(ctx); err != nil {
		return nil, err
	}
	// Batches cross through pyarrow: import it now rather than in the first
	// batch (a second or more of latency, on a slow machine).
	if _, err := eng.LoadSource(ctx, "pyudf_benthos_warm", "import pyarrow\n"); err != nil {
		return nil, fmt.Errorf("pyudf: importing pyarrow: %w", err)
	}
	return p, nil
}

// probe decides between row-wise and whole-batch evaluation by evaluating an
// empty batch (no crossing): it fails, at start-up, for what cannot run over
// a batch (aggregates, table functions, no declared result type, input types
// that do not match).
func (p *processor) probe(ctx context.Context) error {
	cols := newColumns(p.inputs)
	rec := cols.record()
	defer rec.Release()
	res, errs, err := p.fn.EvalRowErrors(ctx, rec)
	if err == nil {
		res.Release()
		errs.Release()
		p.rowWise = true
		return nil
	}
	res2, err2 := p.fn.Eval(ctx, rec)
	if err2 != nil {
		if errors.Is(err, engine.ErrUnsupported) && !errors.Is(err2, engine.ErrUnsupported) {
			err = err2
		}
		return fmt.Errorf("pyudf: function %q cannot run over a message batch: %w", p.name, err)
	}
	res2.Release()
	return nil
}

// ProcessBatch runs the UDF over the batch in one crossing.
func (p *processor) ProcessBatch(ctx context.Context, batch service.MessageBatch) ([]service.MessageBatch, error) {
	out := batch.Copy()
	cols := newColumns(p.inputs)
	rows := make([]int, 0, len(out)) // the message of each row of the record batch
	var exec *service.MessageBatchBloblangExecutor
	if p.args.mapping != nil {
		exec = out.BloblangExecutor(p.args.mapping)
	}
	for i, msg := range out {
		if err := p.args.appendRow(cols, out, exec, i); err != nil {
			msg.SetError(fmt.Errorf("pyudf: function %q: %w", p.name, err))
			continue
		}
		rows = append(rows, i)
	}
	if len(rows) == 0 {
		cols.release()
		return []service.MessageBatch{out}, nil
	}
	rec := cols.record()
	defer rec.Release()

	var res, errs arrow.Array
	var err error
	if p.rowWise {
		res, errs, err = p.fn.EvalRowErrors(ctx, rec)
	} else {
		res, err = p.fn.Eval(ctx, rec)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, err // shutting down: Benthos retries or nacks the batch
		}
		err = fmt.Errorf("pyudf: function %q over a batch of %d: %w", p.name, len(rows), err)
		for _, i := range rows {
			out[i].SetError(err)
		}
		return []service.MessageBatch{out}, nil
	}
	defer res.Release()
	var errText *array.String
	if errs != nil {
		defer errs.Release()
		errText = errs.(*array.String)
	}

	dropped := false
	for r, i := range rows {
		msg := out[i]
		if errText != nil && errText.IsValid(r) {
			// The text lives in the errs array's C memory: copy it out.
			text := strings.Clone(errText.Value(r))
			var ce *bridge.ConversionError
			if errors.As(engine.RowErrorOf(p.name, r, text), &ce) {
				msg.SetError(ce) // the UDF returned a value of the wrong type
			} else {
				msg.SetError(&RowError{Function: p.name, Message: text})
			}
			continue
		}
		if p.result == nil {
			setResult(msg, res, r)
			continue
		}
		from := msg.Copy()
		from.SetStructured(resultValue(res, r))
		mapped, err := msg.BloblangMutateFrom(p.result, from)
		if err != nil {
			msg.SetError(fmt.Errorf("pyudf: result_map: %w", err))
			continue
		}
		if mapped == nil { // root = deleted(): the message is filtered
			out[i] = nil
			dropped = true
			continue
		}
		out[i] = mapped
	}
	if dropped {
		out = slices.DeleteFunc(out, func(m *service.Message) bool { return m == nil })
	}
	return []service.MessageBatch{out}, nil
}

// Close closes the function (its close() runs) and the engine.
func (p *processor) Close(ctx context.Context) error {
	return p.eng.Close()
}

// RowError is the error a message carries when the UDF raised for its row:
// Message is Python's "ValueError: ..." text.
type RowError struct {
	Function string
	Message  string
}

func (e *RowError) Error() string {
	return fmt.Sprintf("pyudf: function %q raised %s", e.Function, e.Message)
}
