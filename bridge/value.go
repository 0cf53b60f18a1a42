package bridge

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"
	"unsafe"
)

// ValueKind tells what a Value holds.
type ValueKind uint8

// The kinds of Value. Numbers, bools, strings and byte slices are held without
// a heap allocation; everything else is KindAny.
const (
	KindNull ValueKind = iota
	KindBool
	KindInt8
	KindInt16
	KindInt32
	KindInt64
	KindFloat32
	KindFloat64
	KindString
	KindBytes
	KindAny
)

// Value is one SQL value on the Go side, like slog.Value: a small struct that
// holds numbers, bools and strings without allocating, so a row call with
// numeric arguments and result allocates nothing.
type Value struct {
	kind ValueKind
	sql  byte // KindAny: the wire tag a typed constructor (Date ... MapOf) chose, or 0: by Go type
	num  uint64
	ptr  any // *byte for strings and bytes; the value itself for KindAny
}

type stringptr *byte
type bytesptr *byte

// Null is SQL NULL (Python None).
func Null() Value { return Value{} }

// Bool returns a BOOLEAN value.
func Bool(v bool) Value {
	if v {
		return Value{kind: KindBool, num: 1}
	}
	return Value{kind: KindBool}
}

// Int64 returns an integer value (any integer SQL type that it fits).
func Int64(v int64) Value { return Value{kind: KindInt64, num: uint64(v)} }

// Float64 returns a floating-point value.
func Float64(v float64) Value { return Value{kind: KindFloat64, num: math.Float64bits(v)} }

// String returns a STRING value.
func String(s string) Value {
	return Value{kind: KindString, num: uint64(len(s)), ptr: stringptr(unsafe.StringData(s))}
}

// Bytes returns a BYTES value. The slice is not copied.
func Bytes(b []byte) Value {
	if b == nil {
		b = []byte{}
	}
	return Value{kind: KindBytes, num: uint64(len(b)), ptr: bytesptr(unsafe.SliceData(b))}
}

func intValue(kind ValueKind, v int64) Value { return Value{kind: kind, num: uint64(v)} }

// ValueOf wraps a Go value: nil, bool, the integer and float types, string
// and []byte get their own kinds; any other value (time.Time, Decimal, Row,
// slices, maps, structs ...) is KindAny and converted by its declared type.
func ValueOf(v any) Value {
	switch x := v.(type) {
	case nil:
		return Null()
	case Value:
		return x
	case bool:
		return Bool(x)
	case int:
		return Int64(int64(x))
	case int8:
		return intValue(KindInt8, int64(x))
	case int16:
		return intValue(KindInt16, int64(x))
	case int32:
		return intValue(KindInt32, int64(x))
	case int64:
		return Int64(x)
	case uint8:
		return Int64(int64(x))
	case uint16:
		return Int64(int64(x))
	case uint32:
		return Int64(int64(x))
	case uint:
		if uint64(x) <= math.MaxInt64 {
			return Int64(int64(x))
		}
	case uint64:
		if x <= math.MaxInt64 {
			return Int64(int64(x))
		}
	case float32:
		return Value{kind: KindFloat32, num: math.Float64bits(float64(x))}
	case float64:
		return Float64(x)
	case string:
		return String(x)
	case []byte:
		return Bytes(x)
	}
	return Value{kind: KindAny, ptr: v}
}

// Kind tells what v holds.
func (v Value) Kind() ValueKind { return v.kind }

// IsNull reports whether v is NULL.
func (v Value) IsNull() bool { return v.kind == KindNull }

// AsBool returns the value of a KindBool Value.
func (v Value) AsBool() bool { return v.num != 0 }

// AsInt64 returns the value of an integer Value (KindInt8 to KindInt64).
func (v Value) AsInt64() int64 { return int64(v.num) }

// AsFloat64 returns the value of a KindFloat32 or KindFloat64 Value.
func (v Value) AsFloat64() float64 { return math.Float64frombits(v.num) }

// AsString returns the value of a KindString Value.
func (v Value) AsString() string {
	if v.kind != KindString {
		return ""
	}
	return unsafe.String(v.ptr.(stringptr), int(v.num))
}

// AsBytes returns the value of a KindBytes Value.
func (v Value) AsBytes() []byte {
	if v.kind != KindBytes {
		return nil
	}
	return unsafe.Slice((*byte)(v.ptr.(bytesptr)), int(v.num))
}

// Any returns v as a plain Go value: nil, bool, int8 ... int64, float32,
// float64, string, []byte, or the KindAny value. For a Value of a typed
// constructor it is the Go value a result of that SQL type decodes to
// (Date: time.Time at UTC midnight, RowOf: Row, MapOf: map[any]any ...), or
// the error of a constructor that refused its input.
func (v Value) Any() any {
	switch v.kind {
	case KindBool:
		return v.AsBool()
	case KindInt8:
		return int8(v.num)
	case KindInt16:
		return int16(v.num)
	case KindInt32:
		return int32(v.num)
	case KindInt64:
		return int64(v.num)
	case KindFloat32:
		return float32(v.AsFloat64())
	case KindFloat64:
		return v.AsFloat64()
	case KindString:
		return v.AsString()
	case KindBytes:
		return v.AsBytes()
	case KindAny:
		if v.sql != 0 {
			return v.typedAny()
		}
		return v.ptr
	}
	return nil
}

// String formats v for messages.
func (v Value) String() string {
	if v.kind == KindNull {
		return "<nil>"
	}
	if v.sql != 0 {
		return v.typedString()
	}
	return fmt.Sprint(v.Any())
}

// Row is the Go value of a ROW type: its fields in declared order.
type Row []any

// Dec is the Go value of a DECIMAL type: Unscaled × 10^-Scale.
type Dec struct {
	Unscaled *big.Int
	Scale    int
}

// ParseDec reads a decimal number such as "-12.340" or "1E+3".
func ParseDec(s string) (Dec, error) {
	r, ok := new(big.Rat).SetString(strings.TrimSpace(s))
	if !ok || strings.ContainsAny(s, "/") {
		return Dec{}, fmt.Errorf("%q is not a decimal number", s)
	}
	// Keep the digits written: the scale is the fractional digits less the exponent.
	mantissa, exp := strings.ToLower(strings.TrimSpace(s)), 0
	if i := strings.IndexByte(mantissa, 'e'); i >= 0 {
		exp, _ = strconv.Atoi(mantissa[i+1:])
		mantissa = mantissa[:i]
	}
	scale := 0
	if i := strings.IndexByte(mantissa, '.'); i >= 0 {
		scale = len(mantissa) - i - 1
	}
	scale = max(scale-exp, 0)
	d, _ := decFromRat(r, scale)
	return d, nil
}

// decFromRat rounds r half away from zero to scale digits; exact reports
// whether no digit was lost.
func decFromRat(r *big.Rat, scale int) (Dec, bool) {
	num := new(big.Int).Mul(r.Num(), new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil))
	q, m := new(big.Int).QuoRem(num, r.Denom(), new(big.Int))
	if m.Sign() != 0 {
		if new(big.Int).Mul(new(big.Int).Abs(m), big.NewInt(2)).Cmp(r.Denom()) >= 0 {
			q.Add(q, big.NewInt(int64(num.Sign())))
		}
	}
	return Dec{Unscaled: q, Scale: scale}, m.Sign() == 0
}

// Rat returns d as an exact fraction. A negative Scale multiplies:
// Dec{Unscaled: 5, Scale: -3} is 5000.
func (d Dec) Rat() *big.Rat {
	u := d.Unscaled
	if u == nil {
		u = new(big.Int)
	}
	if d.Scale < 0 {
		return new(big.Rat).SetInt(new(big.Int).Mul(u, pow10(-d.Scale)))
	}
	return new(big.Rat).SetFrac(u, pow10(d.Scale))
}

func pow10(n int) *big.Int { return new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil) }

// String spells d with exactly Scale fractional digits ("12.30").
func (d Dec) String() string {
	u := d.Unscaled
	if u == nil {
		u = new(big.Int)
	}
	digits := new(big.Int).Abs(u).String()
	sign := ""
	if u.Sign() < 0 {
		sign = "-"
	}
	if d.Scale <= 0 {
		return sign + digits + strings.Repeat("0", -d.Scale)
	}
	if len(digits) <= d.Scale {
		digits = strings.Repeat("0", d.Scale-len(digits)+1) + digits
	}
	return sign + digits[:len(digits)-d.Scale] + "." + digits[len(digits)-d.Scale:]
}

// Equal reports whether d and e are the same number (whatever their scales).
func (d Dec) Equal(e Dec) bool { return d.Rat().Cmp(e.Rat()) == 0 }

// fitDec rounds r to DECIMAL(p, s) and reports whether it fits p digits.
func fitDec(r *big.Rat, t *DataType) (Dec, bool) {
	d, _ := decFromRat(r, t.Scale)
	limit := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(t.Precision)), nil)
	return d, new(big.Int).Abs(d.Unscaled).Cmp(limit) < 0
}

// TimeOfDay converts a clock reading to the Go value of TIME: time since midnight.
func TimeOfDay(t time.Time) time.Duration {
	h, m, s := t.Clock()
	return time.Duration(h)*time.Hour + time.Duration(m)*time.Minute +
		time.Duration(s)*time.Second + time.Duration(t.Nanosecond())
}
