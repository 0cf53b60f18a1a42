package engine

import (
	"context"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/pyudf/pyudf/arrowconv"
	"github.com/pyudf/pyudf/bridge"
	"github.com/pyudf/pyudf/cgo"
)

// Eval runs the function over a whole record batch in one crossing and
// returns the result column, an Arrow array of the declared result type
// (release it when done). The batch's columns are the arguments, in order.
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
func (f *Function) EvalRowErrors(ctx context.Context, batch arrow.RecordBatch) (results, errs arrow.Array, err error) {
	if f.funcType != "general" {
		return nil, nil, fmt.Errorf("%w: function %q: per-row errors need a row-wise (general) function, not func_type %q",
			ErrUnsupported, f.name, f.funcType)
	}
	return f.eval(ctx, batch, true, false)
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

	var res, errs arrow.Array
	var err error
	switch {
	case f.engine.proc != nil:
		res, errs, err = f.evalRemote(ctx, batch, evalMode(f.funcType, rowErrors, asMap), resultType, !f.result.NotNull)
	case f.funcType == "general" && !rowErrors && !asMap && arrowconv.IsFixed(resultType) && allFixed(batch):
		return f.evalFixed(ctx, batch, resultType)
	default:
		res, errs, err = f.evalLocal(ctx, batch, rowErrors, asMap, resultType)
	}
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

// evalLocal is a batch evaluation in this process's interpreter, through the
// C Data Interface. Vectorized calls send the batch's schema and the result
// type only until the interpreter holds them (arrowconv.ExportBatch).
func (f *Function) evalLocal(ctx context.Context, batch arrow.RecordBatch, rowErrors, asMap bool, resultType arrow.DataType) (arrow.Array, arrow.Array, error) {
	var in, typ arrowconv.Exported
	var inSent, typSent arrowconv.Sent
	if f.funcType == "general" {
		in, typ = arrowconv.ExportRecordBatch(batch), arrowconv.ExportType(resultType, !f.result.NotNull)
	} else {
		in, inSent = arrowconv.ExportBatch(batch)
		typ, typSent = arrowconv.ExportResultType(resultType, !f.result.NotNull)
	}
	defer in.Free() // whatever Python did not take
	defer typ.Free()
	out, errOut := arrowconv.NewArrayStructs(), arrowconv.Exported{}
	b := cgo.Batch{In: in.ArrayAddr(), InSchema: in.SchemaAddr(), InID: inSent.ID,
		Type: typ.SchemaAddr(), TypeID: typSent.ID,
		Out: out.ArrayAddr(), OutSchema: out.SchemaAddr(), Rows: asMap}
	if rowErrors {
		errOut = arrowconv.NewArrayStructs()
		b.Err, b.ErrSchema = errOut.ArrayAddr(), errOut.SchemaAddr()
	}

	mode := cgo.VectorArrow
	switch {
	case f.funcType == "pandas" && asMap:
		mode = cgo.VectorPandasMap
	case f.funcType == "pandas":
		mode = cgo.VectorPandas
	}
	plain := 0 // the width of the result's values when it came out without a schema (cgo.Frame.PlainResult)
	failure := f.runBatch(ctx, true, func(fr *frame) cgo.Status {
		if f.funcType == "general" {
			return fr.EvalRows(f.obj, b)
		}
		st := fr.EvalVectorized(f.obj, mode, b)
		plain = fr.PlainResult()
		return st
	})
	if failure != nil {
		out.Free()
		errOut.Free()
		return nil, nil, failure
	}
	inSent.Confirm()
	typSent.Confirm()

	var res arrow.Array
	var err error
	if plain != 0 {
		res, err = arrowconv.ImportArrayOfType(out, resultType, plain)
	} else {
		res, err = arrowconv.ImportArray(out)
	}
	if err != nil {
		errOut.Free()
		return nil, nil, err
	}
	var errs arrow.Array
	if rowErrors {
		if errs, err = arrowconv.ImportArray(errOut); err != nil {
			res.Release()
			return nil, nil, err
		}
	}
	return res, errs, nil
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

// evalRemote is a batch evaluation on a worker: the batch and the result
// type go as Arrow IPC, the result (and per-row errors) come back the same way.
func (f *Function) evalRemote(ctx context.Context, batch arrow.RecordBatch, mode string, resultType arrow.DataType, nullable bool) (arrow.Array, arrow.Array, error) {
	if f.closed.Load() {
		return nil, nil, ErrClosed
	}
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
	rep, err := f.engine.proc.request(ctx, f, "eval", parts)
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

// callBatchRemote calls a function taking a batch (a Pandas UDAF, an
// aggregate's accumulate_batch) on a worker: the batch goes as Arrow IPC.
func (f *Function) callBatchRemote(ctx context.Context, batch arrow.RecordBatch, result *bridge.DataType, extra ...any) (bridge.Value, error) {
	if f.closed.Load() {
		return bridge.Value{}, ErrClosed
	}
	data, err := exportableIPC(batch)
	if err != nil {
		return bridge.Value{}, fmt.Errorf("pyudf: function %q: cannot write the batch as Arrow IPC: %w", f.name, err)
	}
	if extra == nil {
		extra = []any{}
	}
	return f.callWorker(ctx, map[string]any{"op": "call_batch", "extra": extra}, data, result)
}

// exportableIPC writes a batch a caller passed as Arrow IPC, without writing
// into it (arrowconv.Exportable).
func exportableIPC(batch arrow.RecordBatch) ([]byte, error) {
	batch = arrowconv.Exportable(batch)
	defer batch.Release()
	return ipcBatch(batch)
}

func allFixed(batch arrow.RecordBatch) bool {
	for _, col := range batch.Columns() {
		if !arrowconv.IsFixed(col.DataType()) {
			return false
		}
	}
	return true
}

// evalFixed is row-wise evaluation over fixed-width columns: the C loop reads
// the Arrow buffers and writes the result buffers itself, with no pyarrow in
// between.
func (f *Function) evalFixed(ctx context.Context, batch arrow.RecordBatch, resultType arrow.DataType) (arrow.Array, arrow.Array, error) {
	cols, release := arrowconv.FixedColumns(batch)
	defer release()
	res := arrowconv.NewFixedResult(resultType, int(batch.NumRows()))
	var nulls int64
	failure := f.runBatch(ctx, false, func(fr *frame) cgo.Status { // the C loop needs no pyarrow
		var st cgo.Status
		nulls, st = fr.EvalRowsFixed(f.obj, cols, int(batch.NumRows()), res.Column())
		return st
	})
	if failure != nil {
		res.Release()
		return nil, nil, failure
	}
	if nulls > 0 && f.result.NotNull {
		res.Release()
		return nil, nil, &bridge.ConversionError{Function: f.name, Path: "result", Row: -1,
			Reason: fmt.Sprintf("%d None results for %s", nulls, f.result)}
	}
	return res.Array(nulls), nil, nil
}

func fieldTypes(row *bridge.DataType) []*bridge.DataType {
	out := make([]*bridge.DataType, len(row.Fields))
	for i, f := range row.Fields {
		out[i] = f.Type
	}
	return out
}

// runBatch runs one batch call on a frame lent by the gate; a failure names
// the row that raised, if one did. pyarrow says the call needs the batch
// modules (imported once, outside any deadline: batchesReady); the C loop over
// fixed-width columns does not. A context that is done already runs nothing.
func (f *Function) runBatch(ctx context.Context, pyarrow bool, call func(fr *frame) cgo.Status) error {
	if err := ctx.Err(); err != nil {
		return queuedTooLong(ctx, f.name)
	}
	if pyarrow {
		if err := batchesReady(f.name); err != nil {
			return err
		}
	}
	g := f.engine.gate
	fr, err := g.enter(ctx, f.name)
	if err != nil {
		return err
	}
	defer g.leave(fr)
	if f.closed.Load() {
		return ErrClosed
	}
	var st cgo.Status
	if err := f.pin.do(ctx, func() { st = fr.run(ctx, func() cgo.Status { return call(fr) }) }); err != nil {
		return queuedTooLong(ctx, f.name)
	}
	if st == cgo.OK {
		return nil
	}
	err = fr.failure(ctx, st, f.name, "eval")
	switch e := err.(type) {
	case *bridge.PythonError:
		e.Row = fr.Row()
	case *bridge.ConversionError:
		if e.Row < 0 {
			e.Row = fr.Row()
		}
	}
	return err
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
	if f.engine.proc != nil {
		v, err := f.callBatchRemote(ctx, batch, f.result)
		if err != nil {
			return nil, err
		}
		return v.Any(), nil
	}
	in := arrowconv.ExportRecordBatch(batch)
	defer in.Free()
	v, err := f.callIn(ctx, []bridge.Value{bridge.Int64(int64(in.ArrayAddr())), bridge.Int64(int64(in.SchemaAddr()))}, nil, f.result)
	if err != nil {
		return nil, err
	}
	return v.Any(), nil
}
