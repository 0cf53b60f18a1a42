package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/cdata"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/pyudf/pyudf/arrowconv"
	"github.com/pyudf/pyudf/bridge"
	"github.com/pyudf/pyudf/engine"
)

// readerSource reads a data file with pyarrow, inside the embedded
// interpreter, casts its columns to the function's declared input types and
// exports it through the C Data Interface into structs Go allocated.
const readerSource = `
import pyarrow as pa
import pyarrow.csv
import pyarrow.parquet
from pyudf import udf

@udf(input_types=['STRING', 'BIGINT', 'BIGINT', 'BIGINT'], result_type='BIGINT')
def read(path, array_addr, schema_addr, want_addr):
    name = path.rsplit("/", 1)[-1]
    if path.lower().endswith((".parquet", ".pq")):
        table = pyarrow.parquet.read_table(path)
    else:
        table = pyarrow.csv.read_csv(path)
    if want_addr:
        want = pa.Schema._import_from_c(want_addr)
        if table.num_columns != len(want):
            raise ValueError("%s has %d column%s (%s); the function takes %d argument%s" % (
                name, table.num_columns, "" if table.num_columns == 1 else "s",
                ", ".join(table.column_names), len(want), "" if len(want) == 1 else "s"))
        columns = []
        for i, (column, field) in enumerate(zip(table.columns, want)):
            if column.type != field.type:
                try:
                    column = column.cast(field.type)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                    raise ValueError("%s: column %d (%s): cannot read %s as %s: %s" % (
                        name, i + 1, table.column_names[i], column.type, field.type, exc)) from None
            columns.append(column)
        table = pa.table(columns, names=table.column_names)
    batches = table.combine_chunks().to_batches()
    batch = batches[0] if batches else pa.RecordBatch.from_pylist([], schema=table.schema)
    batch._export_to_c(array_addr, schema_addr)
    return batch.num_rows
`

// read reads a CSV or Parquet file as one record batch, its columns of the
// types inputs declares (nil: as pyarrow reads them).
func (s *session) read(ctx context.Context, path string, inputs []*bridge.DataType) (arrow.RecordBatch, error) {
	ext := strings.ToLower(filepath.Ext(path))
	if ext != ".csv" && ext != ".parquet" && ext != ".pq" {
		return nil, usageErr("%s: want a .csv or .parquet file", path)
	}
	if err := checkFile(path); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, runErr("%s: %v", path, err)
	}
	reader := s.eng
	if s.opts.mode != engine.Thread { // the batch crosses in memory: read it in this process
		if s.reader, err = engine.New(ctx, s.config(engine.Thread)); err != nil {
			return nil, runErr("cannot start Python: %v", err)
		}
		reader = s.reader
	}
	mod, err := reader.LoadSource(ctx, "pyudf_cli_reader.py", readerSource)
	if err != nil {
		return nil, runErr("cannot read %s: pyarrow: %v", path, err)
	}
	f, err := mod.Function(ctx, "read")
	if err != nil {
		return nil, runErr("cannot read %s: %v", path, err)
	}
	out := arrowconv.NewArrayStructs()
	defer out.Free()
	var want uintptr
	if inputs != nil {
		fields := make([]arrow.Field, len(inputs))
		for i, t := range inputs {
			fields[i] = arrow.Field{Name: fmt.Sprintf("f%d", i), Type: arrowconv.ArrowType(t), Nullable: !t.NotNull}
		}
		target := arrowconv.NewArrayStructs()
		defer target.Free()
		cdata.ExportArrowSchema(arrow.NewSchema(fields, nil), target.Schema)
		want = target.SchemaAddr()
	}
	if _, err := f.Call(ctx, abs, int64(out.ArrayAddr()), int64(out.SchemaAddr()), int64(want)); err != nil {
		if pe, ok := err.(*bridge.PythonError); ok {
			return nil, runErr("cannot read %s: %s", path, exceptionLine(pe))
		}
		return nil, runErr("cannot read %s: %v", path, err)
	}
	rec, err := cdata.ImportCRecordBatch(out.Array, out.Schema)
	if err != nil {
		return nil, runErr("cannot read %s: %v", path, err)
	}
	return rec, nil
}

// eval runs function name over the data file and prints the head of the
// result (stdout) and the rate (stderr).
func (s *session) eval(ctx context.Context, name, path string, stdout, stderr io.Writer) error {
	info, err := s.describe(ctx, name)
	if err != nil {
		return err
	}
	rec, err := s.read(ctx, path, info.InputTypes)
	if err != nil {
		return err
	}
	defer rec.Release()
	ctx, cancel := s.running(ctx)
	defer cancel()
	start := time.Now()
	switch {
	case info.Kind == "scalar":
		f, err := s.mod.Function(ctx, name)
		if err != nil {
			return openErr(name, err)
		}
		if err := s.warmUp(rec, func(one arrow.RecordBatch) error {
			res, err := f.Eval(ctx, one)
			if err == nil {
				res.Release()
			}
			return err
		}); err != nil {
			return rowErr(err, path)
		}
		start = time.Now()
		res, err := f.Eval(ctx, rec)
		if err != nil {
			return rowErr(err, path)
		}
		elapsed := time.Since(start)
		defer res.Release()
		cols := append(append([]arrow.Array{}, rec.Columns()...), res)
		names := append(fieldNames(rec.Schema()), name)
		printTable(stdout, names, cols, s.opts.head)
		rate(stderr, rec.NumRows(), elapsed)
	case info.Kind == "table":
		f, err := s.mod.Function(ctx, name)
		if err != nil {
			return openErr(name, err)
		}
		if err := s.warmUp(rec, func(one arrow.RecordBatch) error {
			out, err := f.Explode(ctx, one)
			if err == nil {
				out.Release()
			}
			return err
		}); err != nil {
			return rowErr(err, path)
		}
		start = time.Now()
		out, err := f.Explode(ctx, rec)
		if err != nil {
			return rowErr(err, path)
		}
		elapsed := time.Since(start)
		defer out.Release()
		printTable(stdout, fieldNames(out.Schema()), out.Columns(), s.opts.head)
		rate(stderr, rec.NumRows(), elapsed)
	case info.Kind == "aggregate" && info.FuncType == "pandas":
		f, err := s.mod.Function(ctx, name)
		if err != nil {
			return openErr(name, err)
		}
		if err := s.warmUp(rec, func(one arrow.RecordBatch) error {
			_, err := f.Reduce(ctx, one)
			return err
		}); err != nil {
			return rowErr(err, path)
		}
		start = time.Now()
		v, err := f.Reduce(ctx, rec)
		if err != nil {
			return callErr(err)
		}
		elapsed := time.Since(start)
		fmt.Fprintln(stdout, formatValue(v, f.ResultType(), true))
		rate(stderr, rec.NumRows(), elapsed)
	default: // an aggregate or table aggregate function, every row under one key
		a, err := s.mod.Aggregate(ctx, name)
		if err != nil {
			return openErr(name, err)
		}
		if err := s.warmUp(rec, func(one arrow.RecordBatch) error { // under a key of its own, removed after
			keyed := withKey(one, 1)
			defer keyed.Release()
			if err := a.AccumulateBatch(ctx, keyed, 0); err != nil {
				return err
			}
			_, err := a.Remove(ctx, int64(1))
			return err
		}); err != nil {
			return rowErr(err, path)
		}
		keyed := withKey(rec, 0)
		defer keyed.Release()
		start = time.Now()
		if err := a.AccumulateBatch(ctx, keyed, 0); err != nil {
			return rowErr(err, path)
		}
		if a.IsTable() {
			rows, err := a.Rows(ctx, int64(0))
			if err != nil {
				return callErr(err)
			}
			elapsed := time.Since(start)
			printHeader(stdout, a.ResultType())
			for i, row := range rows {
				if i == s.opts.head {
					break
				}
				fmt.Fprintln(stdout, formatRow(row, a.ResultType()))
			}
			rate(stderr, rec.NumRows(), elapsed)
			return nil
		}
		v, err := a.Value(ctx, int64(0))
		if err != nil {
			return callErr(err)
		}
		elapsed := time.Since(start)
		fmt.Fprintln(stdout, formatValue(v, a.ResultType(), true))
		rate(stderr, rec.NumRows(), elapsed)
	}
	return nil
}

// warmUp runs fn once over the first row of rec, untimed, so that the
// timed run does not count first-call costs (imports, process-mode
// workers' first batch): unless -warmup=false.
func (s *session) warmUp(rec arrow.RecordBatch, fn func(one arrow.RecordBatch) error) error {
	if !s.opts.warmup || rec.NumRows() == 0 {
		return nil
	}
	one := rec.NewSlice(0, 1)
	defer one.Release()
	return fn(one)
}

// rowErr is callErr, with the data file's row a Python exception was
// raised in after its traceback.
func rowErr(err error, path string) error {
	var pe *bridge.PythonError
	if errors.As(err, &pe) && pe.Row >= 0 {
		return &failure{code: exitFailure, msg: err.Error(),
			trace: strings.TrimRight(pe.Traceback, "\n") + fmt.Sprintf("\n(row %d of %s)", pe.Row+1, path)}
	}
	return callErr(err)
}

// withKey is rec with a first column "key" holding key in every row: one group.
func withKey(rec arrow.RecordBatch, key int64) arrow.RecordBatch {
	b := array.NewInt64Builder(memory.DefaultAllocator)
	defer b.Release()
	for range rec.NumRows() {
		b.Append(key)
	}
	col := b.NewArray()
	defer col.Release()
	fields := append([]arrow.Field{{Name: "key", Type: arrow.PrimitiveTypes.Int64}}, rec.Schema().Fields()...)
	cols := append([]arrow.Array{col}, rec.Columns()...)
	return array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, rec.NumRows())
}

func fieldNames(s *arrow.Schema) []string {
	names := make([]string, s.NumFields())
	for i, f := range s.Fields() {
		names[i] = f.Name
	}
	return names
}

// printTable prints the first head rows of the columns, tab-separated,
// under their names, and "... N more rows" for the rest.
func printTable(w io.Writer, names []string, cols []arrow.Array, head int) {
	fmt.Fprintln(w, strings.Join(names, "\t"))
	n := 0
	if len(cols) > 0 {
		n = cols[0].Len()
	}
	cells := make([]string, len(cols))
	for i := 0; i < n && i < head; i++ {
		for j, c := range cols {
			cells[j] = cell(c, i)
		}
		fmt.Fprintln(w, strings.Join(cells, "\t"))
	}
	if n > head {
		fmt.Fprintf(w, "... %d more rows\n", n-head)
	}
}

func rate(w io.Writer, rows int64, elapsed time.Duration) {
	perSecond := float64(rows) / max(elapsed.Seconds(), 1e-9)
	fmt.Fprintf(w, "%d rows in %s: %.0f rows/s\n", rows, elapsed.Round(time.Microsecond), perSecond)
}

// cell is row i of column c as printed: NULL or Arrow's text of the value.
func cell(c arrow.Array, i int) string {
	if c.IsNull(i) {
		return null
	}
	return c.ValueStr(i)
}
