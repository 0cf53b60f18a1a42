package engine

import (
	"context"
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/pyudf/pyudf/arrowconv"
	"github.com/pyudf/pyudf/bridge"
)

// Eval runs the function over a whole record batch in one crossing and
// returns the result column, an Arrow array of the declared result type
// (release it when done). The batch's columns are the arguments, in order.
// In thread and sub-interpreter mode its buffers are the interpreter's memory, freed on Release:
// a string or []byte taken from it (array.String's Value, for one) points
// there, so copy what must outlive the array (strings.Clone).
//
// How the function sees the batch depends on how it was declared: a general
// function is called once per row (the loop runs in C); a Pandas UDF
// (func_type="pandas") once with a pd.Series per column; an Arrow UDF
// (func_type="arrow") once with a pyarrow.Array per column. Batches whose
// buffers come from an arrowconv.Allocator cross without a copy; others are
// copied once into C memory.
func (f *Function) Eval(ctx context.Context, batch arrow.RecordBatch) (arrow.Array, error) {
	res, _, err := f.eval(ctx, batch, false, false)
	return res, err
}

// Map runs the function as PyFlink's row-based map over the batch and returns
// a record batch of the declared result ROW's fields. A general function gets
// one Row per row (fields by name: row.a, row["a"]) and returns a Row (or a
// tuple or dict); a Pandas one (func_type="pandas") gets the batch as one
// DataFrame and returns a DataFrame.
func (f *Function) Map(ctx context.Context, batch arrow.RecordBatch) (arrow.RecordBatch, error) {
	if f.result == nil || f.result.Kind != bridge.RowType {
		return nil, fmt.Errorf("%w: function %q: map needs a ROW result type, not %v", ErrUnsupported, f.name, f.result)
	}
	if f.funcType == "arrow" {
		return nil, fmt.Errorf("%w: function %q: map runs general and Pandas functions, not Arrow UDFs", ErrUnsupported, f.name)
	}
	res, _, err := f.eval(ctx, batch, false, true)
	if err != nil {
		return nil, err
	}
	defer res.Release()
	return array.RecordFromStructArray(res.(*array.Struct), nil), nil
}

// EvalRowErrors is Eval for general (row-wise) functions where a row whose
// call raises does not fail the batch: its result is null and its message
// ("ValueError: ...") is in errs, a STRING array that is null for good rows.
// A row whose result does not convert to the declared type is the same
// ("ConversionError: result: Python str is not a BIGINT"), where Eval fails
// the batch with a *bridge.ConversionError. RowErrorOf reads a message back
// as the error it stands for.
func (f *Function) EvalRowErrors(ctx context.Context, batch arrow.RecordBatch) (results, errs arrow.Array, err error) {
	if f.funcType != "general" {
		return nil, nil, fmt.Errorf("%w: function %q: per-row errors need a row-wise (general) function, not func_type %q",
			ErrUnsupported, f.name, f.funcType)
	}
	return f.eval(ctx, batch, true, false)
}

// RowErrorOf reads an EvalRowErrors message as the error of function at row
// (-1: not known): a *bridge.ConversionError for a row whose result did not
// convert ("ConversionError: result: Python str is not a BIGINT"), else the
// *bridge.PythonError the row raised ("ValueError: bad input"; the type is
// the qualified name, as "mymodule.parse.<locals>.BadRow"). The error holds a
// copy of message, which may alias the errs array's buffer.
func RowErrorOf(function string, row int, message string) error {
	message = strings.Clone(message)
	if rest, ok := strings.CutPrefix(message, "ConversionError: "); ok {
		path, reason, _ := strings.Cut(rest, ": ")
		return &bridge.ConversionError{Function: function, Path: path, Row: row, Reason: reason}
	}
	typ, msg, _ := strings.Cut(message, ": ")
	return &bridge.PythonError{Function: function, Op: "call", Row: row, Type: typ, Message: msg}
}

// eval runs one batch evaluation: asMap for PyFlink's map (rows in, ROW out).
func (f *Function) eval(ctx context.Context, batch arrow.RecordBatch, rowErrors, asMap bool) (arrow.Array, arrow.Array, error) {
	if f.kind != "scalar" {
		return nil, nil, f.wrongUse("batch evaluation")
	}
	if f.result == nil {
		return nil, nil, fmt.Errorf("%w: function %q declares no result type; batch evaluation needs one",
			ErrUnsupported, f.name)
	}
	if want := f.inputs; want != nil {
		if asMap && len(want) == 1 && want[0].Kind == bridge.RowType {
			want = fieldTypes(want[0]) // map's one argument is the row: check its fields
		}
		if err := arrowconv.CheckSchema(batch.Schema(), want); err != nil {
			return nil, nil, fmt.Errorf("pyudf: function %q: %w", f.name, err)
		}
	}
	resultType := arrowconv.ArrowType(f.result)
	if batch.NumRows() == 0 {
		var errs arrow.Array
		if rowErrors {
			errs = array.MakeArrayOfNull(memory.DefaultAllocator, arrow.BinaryTypes.String, 0)
		}
		return array.MakeArrayOfNull(memory.DefaultAllocator, resultType, 0), errs, nil
	}

	if f.closed.Load() {
		return nil, nil, ErrClosed
	}
	res, errs, err := f.engine.backend.eval(ctx, f, batch, evalMode(f.funcType, rowErrors, asMap), resultType, !f.result.NotNull)
	if err != nil {
		return nil, nil, err
	}
	if !arrow.TypeEqual(res.DataType(), resultType) || int64(res.Len()) != batch.NumRows() {
		err = fmt.Errorf("pyudf: function %q returned %d values of %s for %d rows of %s",
			f.name, res.Len(), res.DataType(), batch.NumRows(), resultType)
		res.Release()
		if errs != nil {
			errs.Release()
		}
		return nil, nil, err
	}
	if f.result.NotNull && res.NullN() > errsN(errs) {
		err := &bridge.ConversionError{Function: f.name, Path: "result", Row: -1,
			Reason: fmt.Sprintf("%d None results for %s", res.NullN()-errsN(errs), f.result)}
		res.Release()
		if errs != nil {
			errs.Release()
		}
		return nil, nil, err
	}
	return res, errs, nil
}

// errsN is the number of rows with an error message (their result is null).
func errsN(errs arrow.Array) int {
	if errs == nil {
		return 0
	}
	return errs.Len() - errs.NullN()
}

// evalMode names a batch evaluation for a process-mode worker.
func evalMode(funcType string, rowErrors, asMap bool) string {
	switch {
	case funcType == "general" && rowErrors:
		return "rows_errors"
	case funcType == "general" && asMap:
		return "map"
	case funcType == "general":
		return "rows"
	case funcType == "pandas" && asMap:
		return "pandas_map"
	}
	return funcType // pandas, arrow
}

func fieldTypes(row *bridge.DataType) []*bridge.DataType {
	out := make([]*bridge.DataType, len(row.Fields))
	for i, f := range row.Fields {
		out[i] = f.Type
	}
	return out
}

// Reduce runs a Pandas UDAF (udaf(..., func_type="pandas")) over a batch —
// a window's rows, say — in one crossing: each column arrives as a pd.Series,
// and the function's scalar result comes back converted to the declared
// result type.
func (f *Function) Reduce(ctx context.Context, batch arrow.RecordBatch) (any, error) {
	if f.kind != "aggregate" || f.funcType != "pandas" {
		return nil, f.wrongUse("Reduce")
	}
	if f.inputs != nil {
		if err := arrowconv.CheckSchema(batch.Schema(), f.inputs); err != nil {
			return nil, fmt.Errorf("pyudf: function %q: %w", f.name, err)
		}
	}
	if f.closed.Load() {
		return nil, ErrClosed
	}
	v, err := f.engine.backend.callBatch(ctx, f, batch, f.result)
	if err != nil {
		return nil, err
	}
	return v.Any(), nil
}
