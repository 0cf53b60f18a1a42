package pyudfbeam

import (
	"fmt"
	"math"
	"reflect"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/pyudf/pyudf/arrowconv"
	"github.com/pyudf/pyudf/bridge"
)

// buildBatch makes a record batch of rows, one column per declared input
// type. Column types: BOOLEAN, TINYINT..BIGINT, FLOAT, DOUBLE, STRING and
// BYTES; nil is NULL.
func buildBatch(decl []*bridge.DataType, types []arrow.DataType, rows [][]any) (arrow.RecordBatch, error) {
	fields := make([]arrow.Field, len(types))
	cols := make([]arrow.Array, len(types))
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	for j, t := range types {
		fields[j] = arrow.Field{Name: fmt.Sprintf("f%d", j), Type: t, Nullable: true}
		b := array.NewBuilder(arrowconv.DefaultAllocator, t)
		b.Reserve(len(rows))
		for i, row := range rows {
			if err := appendValue(b, row[j]); err != nil {
				b.Release()
				return nil, fmt.Errorf("element %v: argument %d: %w (declared %s)", rows[i], j+1, err, decl[j])
			}
		}
		cols[j] = b.NewArray()
		b.Release()
	}
	return array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, int64(len(rows))), nil
}

func appendValue(b array.Builder, x any) error {
	if x == nil {
		b.AppendNull()
		return nil
	}
	v := reflect.ValueOf(x)
	switch b := b.(type) {
	case *array.BooleanBuilder:
		if v.Kind() == reflect.Bool {
			b.Append(v.Bool())
			return nil
		}
	case *array.Int8Builder:
		if n, ok := intIn(v, math.MinInt8, math.MaxInt8); ok {
			b.Append(int8(n))
			return nil
		}
	case *array.Int16Builder:
		if n, ok := intIn(v, math.MinInt16, math.MaxInt16); ok {
			b.Append(int16(n))
			return nil
		}
	case *array.Int32Builder:
		if n, ok := intIn(v, math.MinInt32, math.MaxInt32); ok {
			b.Append(int32(n))
			return nil
		}
	case *array.Int64Builder:
		if n, ok := intIn(v, math.MinInt64, math.MaxInt64); ok {
			b.Append(n)
			return nil
		}
	case *array.Float32Builder:
		if v.Kind() == reflect.Float32 {
			b.Append(float32(v.Float()))
			return nil
		}
	case *array.Float64Builder:
		if isFloat(v.Kind()) {
			b.Append(v.Float())
			return nil
		}
	case *array.StringBuilder:
		if v.Kind() == reflect.String {
			b.Append(v.String())
			return nil
		}
	case *array.BinaryBuilder:
		if v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Uint8 {
			b.Append(v.Bytes())
			return nil
		}
	default:
		return fmt.Errorf("column type %v is not supported by pyudfbeam batches", b.Type())
	}
	return fmt.Errorf("Go %T (%v) does not fit an Arrow %v column", x, x, b.Type())
}

// intIn is v as an int64 if v is an integer within [lo, hi].
func intIn(v reflect.Value, lo, hi int64) (int64, bool) {
	switch {
	case v.CanInt():
		n := v.Int()
		return n, n >= lo && n <= hi
	case v.CanUint() && v.Kind() != reflect.Uintptr:
		n := v.Uint()
		return int64(n), n <= uint64(hi)
	}
	return 0, false
}

// arrowValue is row i of a result array as a Go value (nil for NULL).
func arrowValue(a arrow.Array, i int) (any, error) {
	if a.IsNull(i) {
		return nil, nil
	}
	switch a := a.(type) {
	case *array.Boolean:
		return a.Value(i), nil
	case *array.Int8:
		return int64(a.Value(i)), nil
	case *array.Int16:
		return int64(a.Value(i)), nil
	case *array.Int32:
		return int64(a.Value(i)), nil
	case *array.Int64:
		return a.Value(i), nil
	case *array.Float32:
		return float64(a.Value(i)), nil
	case *array.Float64:
		return a.Value(i), nil
	case *array.String: // copied: Eval's results are released (freed) after
		return strings.Clone(a.Value(i)), nil
	case *array.LargeString:
		return strings.Clone(a.Value(i)), nil
	case *array.Binary:
		return append([]byte(nil), a.Value(i)...), nil
	case *array.LargeBinary:
		return append([]byte(nil), a.Value(i)...), nil
	}
	return nil, fmt.Errorf("result column type %v is not supported by pyudfbeam batches", a.DataType())
}
