package engine

import (
	"context"
	"fmt"
	"iter"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/pyudf/pyudf/arrowconv"
	"github.com/pyudf/pyudf/bridge"
)

// Rows calls a table function (PyFlink's TableFunction or udtf(...),
// generators included) on one row and iterates over the rows it produced,
// each a bridge.Row of the declared result fields. The rows are collected in
// one crossing; an error is yielded once, with a nil row.
func (f *Function) Rows(ctx context.Context, args ...any) iter.Seq2[bridge.Row, error] {
	return func(yield func(bridge.Row, error) bool) {
		if f.kind != "table" {
			yield(nil, f.wrongUse("Rows"))
			return
		}
		if err := f.checkArgs(len(args)); err != nil {
			yield(nil, err)
			return
		}
		var rows *bridge.DataType
		if f.result != nil {
			rows = &bridge.DataType{Kind: bridge.ArrayType, NotNull: true, Elem: f.result}
		}
		v, err := f.callIn(ctx, appendValues(nil, args...), f.inputs, rows)
		if err != nil {
			yield(nil, err)
			return
		}
		for _, r := range v.Any().([]any) {
			row, ok := r.(bridge.Row)
			if !ok { // undeclared result type: the row's values as a list
				row = bridge.Row(r.([]any))
			}
			if !yield(row, nil) {
				return
			}
		}
	}
}

// Explode runs a table function over every row of a batch in one crossing and
// returns the rows produced: a column "row" with the index of the input row
// that produced each, then the declared result fields.
func (f *Function) Explode(ctx context.Context, batch arrow.RecordBatch) (arrow.RecordBatch, error) {
	if f.kind != "table" {
		return nil, f.wrongUse("Explode")
	}
	if f.result == nil || f.result.Kind != bridge.RowType {
		return nil, fmt.Errorf("%w: function %q: Explode needs declared result types", ErrUnsupported, f.name)
	}
	if f.inputs != nil {
		if err := arrowconv.CheckSchema(batch.Schema(), f.inputs); err != nil {
			return nil, fmt.Errorf("pyudf: function %q: %w", f.name, err)
		}
	}
	fieldsType := arrowconv.ArrowType(f.result).(*arrow.StructType)
	outType := arrow.StructOf(append([]arrow.Field{{Name: "row", Type: arrow.PrimitiveTypes.Int64, Nullable: true}}, fieldsType.Fields()...)...)
	if batch.NumRows() == 0 {
		empty := array.MakeArrayOfNull(memory.DefaultAllocator, outType, 0)
		defer empty.Release()
		return array.RecordFromStructArray(empty.(*array.Struct), nil), nil
	}
	if f.closed.Load() {
		return nil, ErrClosed
	}
	res, _, err := f.engine.backend.eval(ctx, f, batch, "explode", fieldsType, true)
	if err != nil {
		return nil, err
	}
	defer res.Release()
	s, ok := res.(*array.Struct)
	if !ok || s.NumField() != outType.NumFields() {
		return nil, fmt.Errorf("pyudf: function %q: Explode got %s, want %s", f.name, res.DataType(), outType)
	}
	return array.RecordFromStructArray(s, nil), nil
}
