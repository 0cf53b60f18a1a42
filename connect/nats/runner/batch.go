package runner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/pyudf/pyudf/arrowconv"
	"github.com/pyudf/pyudf/bridge"
	"github.com/pyudf/pyudf/engine"
)

// batchKind says whether batches of type t are supported.
func batchKind(t *bridge.DataType) bool {
	switch t.Kind {
	case bridge.BooleanType, bridge.TinyIntType, bridge.SmallIntType, bridge.IntType, bridge.BigIntType,
		bridge.FloatType, bridge.DoubleType, bridge.CharType, bridge.VarCharType, bridge.BinaryType, bridge.VarBinaryType:
		return true
	}
	return false
}

// checkBatchTypes refuses a function whose types batches do not carry.
func checkBatchTypes(f *engine.Function) error {
	in, out := f.InputTypes(), f.ResultType()
	if in == nil || out == nil {
		return fmt.Errorf("function %q must declare its input and result types", f.Name())
	}
	for i, t := range in {
		if !batchKind(t) {
			return fmt.Errorf("function %q: argument %d is a %s: batches take BOOLEAN, integer, FLOAT, DOUBLE, STRING and BYTES", f.Name(), i+1, t)
		}
	}
	if !batchKind(out) {
		return fmt.Errorf("function %q: its result is a %s: batches take BOOLEAN, integer, FLOAT, DOUBLE, STRING and BYTES", f.Name(), out)
	}
	return nil
}

// callBatch runs the function over the wave's messages as one record batch.
// A general function runs with per-row errors (EvalRowErrors); a Pandas or
// Arrow UDF over the whole batch (Eval) and, if that fails for the batch's
// content, once more for each message alone, so that only the messages that
// fail are dead-lettered.
func (r *Runner) callBatch(ctx context.Context, outs []outcome) error {
	f := r.cfg.Function
	if err := checkBatchTypes(f); err != nil {
		return fmt.Errorf("pyudf nats runner: %w", err)
	}
	rows := make([]int, 0, len(outs)) // outs' indexes in the batch
	rec, err := r.buildBatch(outs, &rows)
	if err != nil {
		return err
	}
	if len(rows) == 0 {
		return nil
	}
	defer rec.Release()
	res, errs, err := f.EvalRowErrors(ctx, rec)
	if errors.Is(err, engine.ErrUnsupported) && !errors.Is(err, engine.ErrClosed) {
		res, errs, err = nil, nil, nil
		res, err = f.Eval(ctx, rec)
		if err != nil && ErrorType(err) != ErrorTypeOther && len(rows) > 1 && ctx.Err() == nil {
			return r.callEach(ctx, outs, rows)
		}
	}
	if err != nil {
		for _, i := range rows {
			outs[i].err = err
			if cerr := r.classify(&outs[i]); cerr != nil {
				return cerr
			}
		}
		return nil
	}
	defer res.Release()
	var msgs *array.String
	if errs != nil {
		defer errs.Release()
		msgs, _ = errs.(*array.String)
	}
	for j, i := range rows {
		o := &outs[i]
		if msgs != nil && msgs.IsValid(j) {
			o.err = engine.RowErrorOf(f.Name(), -1, msgs.Value(j))
			o.errType = ErrorType(o.err)
			continue
		}
		o.result = arrowValue(res, j)
	}
	return nil
}

// callEach evaluates each of rows alone: the batch failed, and this finds
// which messages made it fail.
func (r *Runner) callEach(ctx context.Context, outs []outcome, rows []int) error {
	for _, i := range rows {
		one := []outcome{outs[i]}
		var idx []int
		rec, err := r.buildBatch(one, &idx)
		if err != nil {
			return err
		}
		res, err := r.cfg.Function.Eval(ctx, rec)
		rec.Release()
		o := &outs[i]
		if err != nil {
			o.err = err
			if cerr := r.classify(o); cerr != nil {
				return cerr
			}
			continue
		}
		o.result = arrowValue(res, 0)
		res.Release()
	}
	return nil
}

// buildBatch builds the record batch of the outcomes' arguments, leaving
// out (and dead-lettering) those that do not fit the input types; rows
// receives the outcomes' indexes in batch order.
func (r *Runner) buildBatch(outs []outcome, rows *[]int) (arrow.RecordBatch, error) {
	types := r.cfg.Function.InputTypes()
	builders := make([]array.Builder, len(types))
	fields := make([]arrow.Field, len(types))
	for j, t := range types {
		builders[j] = array.NewBuilder(arrowconv.DefaultAllocator, arrowconv.ArrowType(t))
		defer builders[j].Release()
		fields[j] = arrow.Field{Name: fmt.Sprintf("a%d", j), Type: arrowconv.ArrowType(t), Nullable: !t.NotNull}
	}
	for i := range outs {
		o := &outs[i]
		if o.err != nil {
			continue
		}
		if err := checkRow(o.args, types); err != nil {
			o.err = bridge.At(err, r.cfg.Function.Name(), "")
			o.errType = ErrorType(o.err)
			continue
		}
		for j, a := range o.args {
			appendValue(builders[j], a)
		}
		*rows = append(*rows, i)
	}
	cols := make([]arrow.Array, len(types))
	for j, b := range builders {
		cols[j] = b.NewArray()
		defer cols[j].Release()
	}
	return array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, int64(len(*rows))), nil
}

// checkRow checks that args fit types before any is appended, so that a
// row is appended whole or not at all.
func checkRow(args []any, types []*bridge.DataType) error {
	if len(args) != len(types) {
		return fmt.Errorf("%w: %d arguments, the function takes %d", engine.ErrArgumentCount, len(args), len(types))
	}
	for j, a := range args {
		if err := fits(a, types[j]); err != nil {
			return &bridge.ConversionError{Path: fmt.Sprintf("argument %d", j+1), Row: -1, Reason: err.Error()}
		}
	}
	return nil
}

// fits says why a does not fit t, or nil.
func fits(a any, t *bridge.DataType) error {
	if a == nil {
		if t.NotNull {
			return fmt.Errorf("NULL for %s", t)
		}
		return nil
	}
	v := bridge.ValueOf(a)
	k := v.Kind()
	isInt := k >= bridge.KindInt8 && k <= bridge.KindInt64
	switch t.Kind {
	case bridge.BooleanType:
		if k == bridge.KindBool {
			return nil
		}
	case bridge.TinyIntType, bridge.SmallIntType, bridge.IntType, bridge.BigIntType:
		if isInt {
			lo, hi := intRange(t.Kind)
			if n := v.AsInt64(); n < lo || n > hi {
				return fmt.Errorf("%d does not fit %s", n, t)
			}
			return nil
		}
	case bridge.FloatType, bridge.DoubleType:
		if k == bridge.KindFloat64 || k == bridge.KindFloat32 || isInt {
			return nil
		}
	case bridge.CharType, bridge.VarCharType:
		if k == bridge.KindString {
			if !utf8.ValidString(v.AsString()) {
				return fmt.Errorf("Go string is not valid UTF-8 for %s", t)
			}
			return nil
		}
	case bridge.BinaryType, bridge.VarBinaryType:
		if k == bridge.KindBytes || k == bridge.KindString {
			return nil
		}
	}
	return fmt.Errorf("Go %T is not a %s", a, t)
}

func intRange(k bridge.Kind) (int64, int64) {
	switch k {
	case bridge.TinyIntType:
		return math.MinInt8, math.MaxInt8
	case bridge.SmallIntType:
		return math.MinInt16, math.MaxInt16
	case bridge.IntType:
		return math.MinInt32, math.MaxInt32
	}
	return math.MinInt64, math.MaxInt64
}

// appendValue appends a, checked by fits, to b.
func appendValue(b array.Builder, a any) {
	if a == nil {
		b.AppendNull()
		return
	}
	v := bridge.ValueOf(a)
	switch b := b.(type) {
	case *array.BooleanBuilder:
		b.Append(v.AsBool())
	case *array.Int8Builder:
		b.Append(int8(v.AsInt64()))
	case *array.Int16Builder:
		b.Append(int16(v.AsInt64()))
	case *array.Int32Builder:
		b.Append(int32(v.AsInt64()))
	case *array.Int64Builder:
		b.Append(v.AsInt64())
	case *array.Float32Builder:
		b.Append(float32(asFloat(v)))
	case *array.Float64Builder:
		b.Append(asFloat(v))
	case *array.StringBuilder:
		b.Append(v.AsString())
	case *array.BinaryBuilder:
		if v.Kind() == bridge.KindString {
			b.AppendString(v.AsString())
		} else {
			b.Append(v.AsBytes())
		}
	}
}

func asFloat(v bridge.Value) float64 {
	if k := v.Kind(); k >= bridge.KindInt8 && k <= bridge.KindInt64 {
		return float64(v.AsInt64())
	}
	return v.AsFloat64()
}

// arrowValue is element i of a result array as a Go value.
func arrowValue(a arrow.Array, i int) any {
	if a.IsNull(i) {
		return nil
	}
	switch a := a.(type) {
	case *array.Boolean:
		return a.Value(i)
	case *array.Int8:
		return a.Value(i)
	case *array.Int16:
		return a.Value(i)
	case *array.Int32:
		return a.Value(i)
	case *array.Int64:
		return a.Value(i)
	case *array.Float32:
		return a.Value(i)
	case *array.Float64:
		return a.Value(i)
	case *array.String: // copies: the array's buffers are released after
		return strings.Clone(a.Value(i))
	case *array.LargeString:
		return strings.Clone(a.Value(i))
	case *array.Binary:
		return bytes.Clone(a.Value(i))
	}
	return nil
}
