package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/pyudf/pyudf/arrowconv"
	"github.com/pyudf/pyudf/bridge"
	"github.com/pyudf/pyudf/cgo"
	pyruntime "github.com/pyudf/pyudf/python"
)

// interpreter is thread mode's backend: the interpreter embedded in this
// process, entered through cgo on the caller's thread (or on an instance's
// own thread: Config.Affinity). Calls take a frame from the gate, which
// bounds how many are inside at once (Config.Concurrency).
type interpreter struct {
	gate *gate
}

func newInterpreter(ctx context.Context, cfg Config, log func(level int, logger, msg string)) (*interpreter, error) {
	if err := startInterpreter(ctx, cfg.Python); err != nil {
		return nil, err
	}
	cgo.SetLogFunc(log)
	return &interpreter{gate: newGate(cfg.Concurrency)}, nil
}

func (*interpreter) ownThreads() bool { return true }
func (*interpreter) bundles() int     { return 0 }
func (*interpreter) close()           {} // the interpreter lives as long as the process

func (in *interpreter) closing(fn func()) { in.gate.closeAll(fn) }

func (*interpreter) aggregateState(int64) *aggState { return nil }

func (*interpreter) control(ctx context.Context, pin *owner, op string, req map[string]any, reply any) error {
	fr := getFrame()
	defer putFrame(fr)
	return fr.control(ctx, pin, op, req, reply)
}

// bind takes the object the host registered under key.
func (*interpreter) bind(ctx context.Context, f *Function, key int64) error {
	fr := getFrame()
	defer putFrame(fr)
	obj, st := fr.Take(key)
	if st != cgo.OK {
		return fr.failure(ctx, st, f.name, "open")
	}
	f.obj = obj
	return nil
}

// unbind drops the object, on the instance's thread: its last reference may
// run Python code (__del__).
func (*interpreter) unbind(f *Function) { f.pin.on(f.obj.Release) }

// call runs one call on a frame lent by the gate.
func (in *interpreter) call(ctx context.Context, f *Function, args []bridge.Value, inputs []*bridge.DataType, result *bridge.DataType) (bridge.Value, error) {
	g := in.gate
	fr, err := g.enter(ctx, f.name)
	if err != nil {
		return bridge.Value{}, err
	}
	defer g.leave(fr)
	if f.closed.Load() {
		return bridge.Value{}, ErrClosed
	}
	buf, err := f.appendArgs(fr.Args(), args, inputs)
	if err != nil {
		return bridge.Value{}, err
	}
	var st cgo.Status
	switch {
	case f.pin != nil:
		if st, err = callOwn(ctx, f, fr, buf, len(args)); err != nil {
			return bridge.Value{}, err
		}
	case ctx.Done() == nil:
		st = fr.Call(f.obj, buf, len(args))
	default:
		st = fr.run(ctx, func() cgo.Status { return fr.Call(f.obj, buf, len(args)) })
	}
	return fr.value(ctx, st, f.name, result)
}

// callOwn is call's call on the instance's own thread. (A function of its
// own, so that call's variables do not escape to the heap on every call.)
func callOwn(ctx context.Context, f *Function, fr *frame, buf []byte, nargs int) (cgo.Status, error) {
	var st cgo.Status
	if err := f.pin.do(ctx, func() { st = fr.run(ctx, func() cgo.Status { return fr.Call(f.obj, buf, nargs) }) }); err != nil {
		return st, queuedTooLong(ctx, f.name)
	}
	return st, nil
}

// eval is a batch evaluation through the C Data Interface: row-wise over
// fixed-width columns in C alone (evalFixed), else with pyarrow (evalArrow),
// or a table function's rows (explode).
func (in *interpreter) eval(ctx context.Context, f *Function, batch arrow.RecordBatch, mode string, resultType arrow.DataType, nullable bool) (arrow.Array, arrow.Array, error) {
	switch {
	case mode == "explode":
		res, err := in.explode(ctx, f, batch, resultType)
		return res, nil, err
	case mode == "rows" && arrowconv.IsFixed(resultType) && allFixed(batch):
		return in.evalFixed(ctx, f, batch, resultType)
	}
	return in.evalArrow(ctx, f, batch, mode, resultType, nullable)
}

// evalArrow is a batch evaluation with pyarrow on the Python side.
// Vectorized calls send the batch's schema and the result type only until
// the interpreter holds them (arrowconv.ExportBatch).
func (in *interpreter) evalArrow(ctx context.Context, f *Function, batch arrow.RecordBatch, mode string, resultType arrow.DataType, nullable bool) (arrow.Array, arrow.Array, error) {
	rowWise := f.funcType == "general"
	var inp, typ arrowconv.Exported
	var inSent, typSent arrowconv.Sent
	if rowWise {
		inp, typ = arrowconv.ExportRecordBatch(batch), arrowconv.ExportType(resultType, nullable)
	} else {
		inp, inSent = arrowconv.ExportBatch(batch)
		typ, typSent = arrowconv.ExportResultType(resultType, nullable)
	}
	defer inp.Free() // whatever Python did not take
	defer typ.Free()
	out, errOut := arrowconv.NewArrayStructs(), arrowconv.Exported{}
	b := cgo.Batch{In: inp.ArrayAddr(), InSchema: inp.SchemaAddr(), InID: inSent.ID,
		Type: typ.SchemaAddr(), TypeID: typSent.ID,
		Out: out.ArrayAddr(), OutSchema: out.SchemaAddr(), Rows: mode == "map"}
	if mode == "rows_errors" {
		errOut = arrowconv.NewArrayStructs()
		b.Err, b.ErrSchema = errOut.ArrayAddr(), errOut.SchemaAddr()
	}
	vector := cgo.VectorArrow
	switch mode {
	case "pandas":
		vector = cgo.VectorPandas
	case "pandas_map":
		vector = cgo.VectorPandasMap
	}
	plain := 0 // the width of the result's values when it came out without a schema (cgo.Frame.PlainResult)
	failure := in.runBatch(ctx, f, true, func(fr *frame) cgo.Status {
		if rowWise {
			return fr.EvalRows(f.obj, b)
		}
		st := fr.EvalVectorized(f.obj, vector, b)
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
	if mode == "rows_errors" {
		if errs, err = arrowconv.ImportArray(errOut); err != nil {
			res.Release()
			return nil, nil, err
		}
	}
	return res, errs, nil
}

// evalFixed is row-wise evaluation over fixed-width columns: the C loop reads
// the Arrow buffers and writes the result buffers itself, with no pyarrow in
// between.
func (in *interpreter) evalFixed(ctx context.Context, f *Function, batch arrow.RecordBatch, resultType arrow.DataType) (arrow.Array, arrow.Array, error) {
	cols, release := arrowconv.FixedColumns(batch)
	defer release()
	res := arrowconv.NewFixedResult(resultType, int(batch.NumRows()))
	var nulls int64
	failure := in.runBatch(ctx, f, false, func(fr *frame) cgo.Status { // the C loop needs no pyarrow
		var st cgo.Status
		nulls, st = fr.EvalRowsFixed(f.obj, cols, int(batch.NumRows()), res.Column())
		return st
	})
	if failure != nil {
		res.Release()
		return nil, nil, failure
	}
	return res.Array(nulls), nil, nil
}

// explode runs a table function over the batch: its rows in a struct array
// of the row index and fieldsType's fields.
func (in *interpreter) explode(ctx context.Context, f *Function, batch arrow.RecordBatch, fieldsType arrow.DataType) (arrow.Array, error) {
	inp := arrowconv.ExportRecordBatch(batch)
	defer inp.Free()
	typ := arrowconv.ExportType(fieldsType, true)
	defer typ.Free()
	out := arrowconv.NewArrayStructs()
	b := cgo.Batch{In: inp.ArrayAddr(), InSchema: inp.SchemaAddr(), Type: typ.SchemaAddr(),
		Out: out.ArrayAddr(), OutSchema: out.SchemaAddr()}
	if err := in.runBatch(ctx, f, true, func(fr *frame) cgo.Status { return fr.EvalVectorized(f.obj, cgo.VectorExplode, b) }); err != nil {
		out.Free()
		return nil, err
	}
	return arrowconv.ImportArray(out)
}

// callBatch passes the batch by the addresses of its C Data Interface
// structs, then extra.
func (in *interpreter) callBatch(ctx context.Context, f *Function, batch arrow.RecordBatch, result *bridge.DataType, extra ...int64) (bridge.Value, error) {
	if err := batchesReady(f.name); err != nil {
		return bridge.Value{}, err
	}
	exp := arrowconv.ExportRecordBatch(batch)
	defer exp.Free()
	args := []bridge.Value{bridge.Int64(int64(exp.ArrayAddr())), bridge.Int64(int64(exp.SchemaAddr()))}
	for _, x := range extra {
		args = append(args, bridge.Int64(x))
	}
	return in.call(ctx, f, args, nil, result)
}

// runBatch runs one batch call on a frame lent by the gate; a failure names
// the row that raised, if one did. pyarrow says the call needs the batch
// modules (imported once, outside any deadline: batchesReady); the C loop over
// fixed-width columns does not. A context that is done already runs nothing.
func (in *interpreter) runBatch(ctx context.Context, f *Function, pyarrow bool, call func(fr *frame) cgo.Status) error {
	if err := ctx.Err(); err != nil {
		return queuedTooLong(ctx, f.name)
	}
	if pyarrow {
		if err := batchesReady(f.name); err != nil {
			return err
		}
	}
	g := in.gate
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

func allFixed(batch arrow.RecordBatch) bool {
	for _, col := range batch.Columns() {
		if !arrowconv.IsFixed(col.DataType()) {
			return false
		}
	}
	return true
}

func startInterpreter(ctx context.Context, python string) error {
	interpMu.Lock()
	defer interpMu.Unlock()
	exe, err := resolvePython(ctx, configuredPython(python))
	if err != nil {
		return err
	}
	if interpPython != "" {
		if exe != "" && exe != interpPython {
			return fmt.Errorf("pyudf: this process already runs Python %s; an engine cannot use %s", interpPython, exe)
		}
		return nil
	}
	sources, err := json.Marshal(pyruntime.Sources())
	if err != nil {
		return err
	}
	if exc := cgo.Init(exe, pyruntime.Bootstrap(), string(sources)); exc != nil {
		return &bridge.PythonError{Op: "start interpreter", Row: -1, Type: exc.Type,
			Message: exc.Message, Traceback: exc.Traceback}
	}
	interpPython = exe
	if interpPython == "" {
		interpPython = "(libpython " + cgo.LinkedVersion + ")"
	}
	return nil
}

// resolvePython asks the interpreter for its real path and checks its version
// against the libpython this package was linked with.
func resolvePython(ctx context.Context, python string) (string, error) {
	if python == "" {
		return "", nil
	}
	out, err := exec.CommandContext(ctx, python, "-c",
		`import sys; print(sys.executable); print("%d.%d" % sys.version_info[:2])`).Output()
	if err != nil {
		return "", fmt.Errorf("pyudf: cannot run Python interpreter %q: %w", python, err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 {
		return "", fmt.Errorf("pyudf: %q does not behave like a Python interpreter", python)
	}
	if lines[1] != cgo.LinkedVersion {
		return "", fmt.Errorf("pyudf: %s is Python %s, but pyudf was built against libpython %s (set PYTHON= when building)",
			lines[0], lines[1], cgo.LinkedVersion)
	}
	return lines[0], nil
}
