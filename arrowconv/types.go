package arrowconv

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/pyudf/pyudf/bridge"
)

// ArrowType is the Arrow type of a SQL type, as Flink maps them: TIME as
// microseconds (what Python keeps), TIMESTAMP(p) in seconds (p = 0),
// milliseconds (1–3), microseconds (4–6) or nanoseconds (7–9), TIMESTAMP_LTZ
// the same in UTC.
func ArrowType(t *bridge.DataType) arrow.DataType {
	switch t.Kind {
	case bridge.BooleanType:
		return arrow.FixedWidthTypes.Boolean
	case bridge.TinyIntType:
		return arrow.PrimitiveTypes.Int8
	case bridge.SmallIntType:
		return arrow.PrimitiveTypes.Int16
	case bridge.IntType:
		return arrow.PrimitiveTypes.Int32
	case bridge.BigIntType:
		return arrow.PrimitiveTypes.Int64
	case bridge.FloatType:
		return arrow.PrimitiveTypes.Float32
	case bridge.DoubleType:
		return arrow.PrimitiveTypes.Float64
	case bridge.DecimalType:
		return &arrow.Decimal128Type{Precision: int32(t.Precision), Scale: int32(t.Scale)}
	case bridge.CharType, bridge.VarCharType:
		return arrow.BinaryTypes.String
	case bridge.BinaryType, bridge.VarBinaryType:
		return arrow.BinaryTypes.Binary
	case bridge.DateType:
		return arrow.FixedWidthTypes.Date32
	case bridge.TimeType:
		return arrow.FixedWidthTypes.Time64us
	case bridge.TimestampType:
		return &arrow.TimestampType{Unit: timeUnit(t.Precision)}
	case bridge.TimestampLTZType:
		return &arrow.TimestampType{Unit: timeUnit(t.Precision), TimeZone: "UTC"}
	case bridge.ArrayType:
		return arrow.ListOfField(arrow.Field{Name: "item", Type: ArrowType(t.Elem), Nullable: !t.Elem.NotNull})
	case bridge.MapType:
		m := arrow.MapOf(ArrowType(t.Key), ArrowType(t.Value))
		m.SetItemNullable(!t.Value.NotNull)
		return m
	case bridge.RowType:
		fields := make([]arrow.Field, len(t.Fields))
		for i, f := range t.Fields {
			fields[i] = arrow.Field{Name: f.Name, Type: ArrowType(f.Type), Nullable: !f.Type.NotNull}
		}
		return arrow.StructOf(fields...)
	}
	panic(fmt.Sprintf("arrowconv: no Arrow type for %s", t))
}

func timeUnit(precision int) arrow.TimeUnit {
	switch {
	case precision == 0:
		return arrow.Second
	case precision <= 3:
		return arrow.Millisecond
	case precision <= 6:
		return arrow.Microsecond
	}
	return arrow.Nanosecond
}

// Accepts reports whether a column of Arrow type got can be passed where the
// SQL type want is declared: the exact Arrow type, or an equivalent encoding
// (large or dictionary-encoded strings and binaries, any integer width that
// fits, any time unit).
func Accepts(got arrow.DataType, want *bridge.DataType) bool {
	if dict, ok := got.(*arrow.DictionaryType); ok {
		got = dict.ValueType
	}
	if arrow.TypeEqual(got, ArrowType(want)) {
		return true
	}
	switch want.Kind {
	case bridge.CharType, bridge.VarCharType:
		return got.ID() == arrow.STRING || got.ID() == arrow.LARGE_STRING || got.ID() == arrow.STRING_VIEW
	case bridge.BinaryType, bridge.VarBinaryType:
		return got.ID() == arrow.BINARY || got.ID() == arrow.LARGE_BINARY || got.ID() == arrow.BINARY_VIEW
	case bridge.SmallIntType:
		return got.ID() == arrow.INT8 || got.ID() == arrow.UINT8
	case bridge.IntType:
		return got.ID() == arrow.INT8 || got.ID() == arrow.INT16 || got.ID() == arrow.UINT8 || got.ID() == arrow.UINT16
	case bridge.BigIntType:
		switch got.ID() {
		case arrow.INT8, arrow.INT16, arrow.INT32, arrow.UINT8, arrow.UINT16, arrow.UINT32:
			return true
		}
	case bridge.DoubleType:
		return got.ID() == arrow.FLOAT32
	case bridge.TimeType:
		return got.ID() == arrow.TIME32 || got.ID() == arrow.TIME64
	case bridge.TimestampType, bridge.TimestampLTZType:
		ts, ok := got.(*arrow.TimestampType)
		return ok && (ts.TimeZone == "") == (want.Kind == bridge.TimestampType)
	case bridge.ArrayType:
		if l, ok := got.(arrow.ListLikeType); ok && (got.ID() == arrow.LIST || got.ID() == arrow.LARGE_LIST) {
			return Accepts(l.Elem(), want.Elem)
		}
	case bridge.RowType:
		s, ok := got.(*arrow.StructType)
		if !ok || s.NumFields() != len(want.Fields) {
			return false
		}
		for i, f := range want.Fields {
			if s.Field(i).Name != f.Name || !Accepts(s.Field(i).Type, f.Type) {
				return false
			}
		}
		return true
	}
	return false
}

// CheckSchema checks a batch's columns against a function's declared input
// types, naming the first column that does not fit.
func CheckSchema(schema *arrow.Schema, want []*bridge.DataType) error {
	if schema.NumFields() != len(want) {
		return fmt.Errorf("the batch has %d columns, the function takes %d arguments", schema.NumFields(), len(want))
	}
	for i, f := range schema.Fields() {
		if !Accepts(f.Type, want[i]) {
			return fmt.Errorf("column %d (%q) is %s, the function's argument %d is %s (Arrow %s)",
				i, f.Name, f.Type, i+1, want[i], ArrowType(want[i]))
		}
	}
	return nil
}
