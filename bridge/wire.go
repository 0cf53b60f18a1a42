package bridge

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"strings"
	"time"
	"unicode/utf8"
)

// Wire tags: the Go half of the format cgo/convert.h describes. Each value is
// a tag byte and a payload in native byte order.
const (
	TagNull         = 0
	TagFalse        = 1
	TagTrue         = 2
	TagInt          = 3
	TagFloat        = 4
	TagStr          = 5
	TagBytes        = 6
	TagDecimal      = 7
	TagDate         = 8
	TagTime         = 9
	TagTimestamp    = 10
	TagTimestampUTC = 11
	TagList         = 12
	TagMap          = 13
	TagRow          = 14
	TagBigInt       = 15
	TagRowValues    = 16 // a ROW without field names: uint32 n, n values (arguments only)
)

var ne = binary.NativeEndian

// pythonNames names the Python type behind each tag, for error messages.
var pythonNames = [...]string{
	TagNull: "None", TagFalse: "bool", TagTrue: "bool", TagInt: "int", TagFloat: "float",
	TagStr: "str", TagBytes: "bytes", TagDecimal: "Decimal", TagDate: "date", TagTime: "time",
	TagTimestamp: "datetime", TagTimestampUTC: "datetime", TagList: "list", TagMap: "dict",
	TagRow: "Row", TagBigInt: "int", TagRowValues: "Row",
}

// MaxDepth is how deeply values may nest: a LIST, MAP or ROW counts one
// level, and a value inside MaxDepth containers is refused, both ways, with
// errDeep's text. The C shim (PYUDF_MAX_DEPTH in cgo/convert.h) and the
// process-mode codec (MAX_DEPTH in python/pyudf/_wire.py) use the same limit
// and the same words, so a cyclic Go value ([]any holding itself) or a
// 200K-deep Python list ends in an error, not a stack overflow.
const MaxDepth = 100

// errDeep is the error for a value nested deeper than MaxDepth.
var errDeep = convErr("nested deeper than %d levels (or cyclic)", MaxDepth)

// --- encoding arguments ------------------------------------------------------

// AppendArg appends v, converted to type t, to b. A nil t converts by v's Go
// type. Numbers, bools and strings append without allocating.
func AppendArg(b []byte, t *DataType, v Value) ([]byte, error) {
	// The commonest case first, small enough to be inlined into the caller.
	if n := len(b); t != nil && v.kind == KindInt64 && t.Kind == BigIntType && cap(b)-n >= 9 {
		b = b[:n+9]
		b[n] = TagInt
		ne.PutUint64(b[n+1:], v.num)
		return b, nil
	}
	return appendArg(b, t, v, 0)
}

// appendArg is AppendArg for a value inside depth containers.
func appendArg(b []byte, t *DataType, v Value, depth int) ([]byte, error) {
	if v.kind == KindAny {
		var err error
		if v, err = plainValue(v); err != nil {
			return b, err
		}
		if v.sql != 0 {
			return appendTyped(b, t, v, depth)
		}
	}
	if v.kind == KindNull {
		if t != nil && t.NotNull {
			return b, convErr("nil for %s", t)
		}
		return append(b, TagNull), nil
	}
	if t == nil {
		return appendDynamic(b, v, depth)
	}
	switch t.Kind {
	case BooleanType:
		if v.kind == KindBool {
			return appendBool(b, v.AsBool()), nil
		}
	case TinyIntType, SmallIntType, IntType, BigIntType:
		if isInt(v.kind) {
			if !intFits(v.AsInt64(), t.Kind) {
				return b, convErr("%d overflows %s", v.AsInt64(), t)
			}
			return appendInt(b, v.AsInt64()), nil
		}
		if i, ok := v.ptr.(*big.Int); ok && v.kind == KindAny {
			return b, convErr("%s overflows %s", i, t)
		}
	case FloatType, DoubleType:
		if isInt(v.kind) {
			return appendFloat(b, float64(v.AsInt64())), nil
		}
		if v.kind == KindFloat32 || v.kind == KindFloat64 {
			f := v.AsFloat64()
			if t.Kind == FloatType && floatOverflows(f) {
				return b, convErr("%v overflows %s", f, t)
			}
			return appendFloat(b, f), nil
		}
	case CharType, VarCharType:
		if v.kind == KindString {
			return appendStr(b, TagStr, v.AsString())
		}
	case BinaryType, VarBinaryType:
		if v.kind == KindBytes {
			return appendText(b, TagBytes, string(v.AsBytes())), nil
		}
	default:
		return appendComplex(b, t, v.Any(), depth)
	}
	return b, mismatch(v.Any(), t)
}

// floatOverflows reports whether finite f becomes an infinity as a float32.
// NaN and the infinities themselves pass: they are FLOAT values too.
func floatOverflows(f float64) bool {
	return !math.IsInf(f, 0) && math.IsInf(float64(float32(f)), 0)
}

func isInt(k ValueKind) bool { return k >= KindInt8 && k <= KindInt64 }

func intFits(v int64, k Kind) bool {
	switch k {
	case TinyIntType:
		return v >= math.MinInt8 && v <= math.MaxInt8
	case SmallIntType:
		return v >= math.MinInt16 && v <= math.MaxInt16
	case IntType:
		return v >= math.MinInt32 && v <= math.MaxInt32
	}
	return true
}

// plainValue turns named basic types (type Celsius float64) into their kinds,
// leaves typed Values (Date ... MapOf) as they are,
// follows pointers (at most MaxDepth of them: a pointer to itself is an
// error, not an endless loop), and makes a *big.Int that fits an int64 one.
func plainValue(v Value) (Value, error) {
	for range MaxDepth {
		if v.sql != 0 { // a typed Value (or a pointer to one): as it is
			return v, nil
		}
		switch x := v.ptr.(type) {
		case *big.Int:
			if x == nil {
				return Null(), nil
			}
			if x.IsInt64() {
				return Int64(x.Int64()), nil
			}
			return v, nil
		case big.Int:
			return ValueOf(&x), nil
		case *big.Rat, time.Duration:
			if rv := reflect.ValueOf(x); rv.Kind() == reflect.Pointer && rv.IsNil() {
				return Null(), nil
			}
			return v, nil
		}
		rv := reflect.ValueOf(v.ptr)
		switch rv.Kind() {
		case reflect.Bool:
			return Bool(rv.Bool()), nil
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			return Int64(rv.Int()), nil
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			if rv.Uint() <= math.MaxInt64 {
				return Int64(int64(rv.Uint())), nil
			}
		case reflect.Float32, reflect.Float64:
			return Float64(rv.Float()), nil
		case reflect.String:
			return ValueOf(rv.String()), nil
		case reflect.Pointer, reflect.Interface:
			if rv.IsNil() {
				return Null(), nil
			}
			if v = ValueOf(rv.Elem().Interface()); v.kind != KindAny {
				return v, nil
			}
			continue
		case reflect.Slice:
			if rv.Type().Elem().Kind() == reflect.Uint8 {
				return Bytes(rv.Bytes()), nil
			}
			if rv.IsNil() {
				return Null(), nil
			}
		case reflect.Map:
			if rv.IsNil() {
				return Null(), nil
			}
		}
		return v, nil
	}
	return v, errDeep
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, TagTrue)
	}
	return append(b, TagFalse)
}

func appendInt(b []byte, v int64) []byte {
	return ne.AppendUint64(append(b, TagInt), uint64(v))
}

func appendFloat(b []byte, v float64) []byte {
	return ne.AppendUint64(append(b, TagFloat), math.Float64bits(v))
}

// appendText appends a length-prefixed string; tag 0 means no tag (ROW field names).
func appendText(b []byte, tag byte, s string) []byte {
	if tag != 0 {
		b = append(b, tag)
	}
	return append(ne.AppendUint32(b, uint32(len(s))), s...)
}

// appendStr appends a STRING (or, tag 0, a ROW field name), which must be
// valid UTF-8: Python's str holds text, and a Go string may hold any bytes.
func appendStr(b []byte, tag byte, s string) ([]byte, error) {
	if !utf8.ValidString(s) {
		return b, invalidUTF8(s)
	}
	return appendText(b, tag, s), nil
}

func invalidUTF8(s string) error {
	i := 0
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n <= 1 {
			break
		}
		i += n
	}
	return convErr("Go string %s is not valid UTF-8 (byte %d of %d)", shorten(fmt.Sprintf("%q", s)), i, len(s))
}

// shorten cuts a long text for an error message.
func shorten(s string) string {
	if len(s) > 80 {
		return s[:60] + "..." + s[len(s)-10:]
	}
	return s
}

// Python's dates hold years 1 to 9999 (datetime.MINYEAR, MAXYEAR).
const minYear, maxYear = 1, 9999

func appendDate(b []byte, tag byte, y int, m time.Month, d int) ([]byte, error) {
	if y < minYear || y > maxYear {
		return b, convErr("year %d is outside Python's dates (years %d to %d)", y, minYear, maxYear)
	}
	b = ne.AppendUint32(append(b, tag), uint32(int32(y)))
	return append(b, byte(m), byte(d)), nil
}

func appendClock(b []byte, h, m, s, us int) []byte {
	return ne.AppendUint32(append(b, byte(h), byte(m), byte(s)), uint32(us))
}

func appendTimestamp(b []byte, tag byte, t time.Time) ([]byte, error) {
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	b, err := appendDate(b, tag, y, mo, d)
	if err != nil {
		return b, err
	}
	return appendClock(b, h, mi, s, t.Nanosecond()/1000), nil
}

func appendComplex(b []byte, t *DataType, x any, depth int) ([]byte, error) {
	switch t.Kind {
	case DecimalType:
		r, ok, err := ratOf(x)
		if err != nil {
			return b, err
		}
		if !ok {
			break
		}
		d, fits := fitDec(r, t)
		if !fits {
			return b, convErr("%s does not fit %s", shorten(r.FloatString(t.Scale)), t)
		}
		return appendText(b, TagDecimal, d.String()), nil
	case DateType:
		if tm, ok := x.(time.Time); ok {
			y, m, d := tm.Date()
			return appendDate(b, TagDate, y, m, d)
		}
	case TimeType:
		d, ok := x.(time.Duration)
		if tm, isTime := x.(time.Time); isTime {
			d, ok = TimeOfDay(tm), true
		}
		if !ok {
			break
		}
		if d < 0 || d >= 24*time.Hour {
			return b, convErr("%v is not a time of day for %s", d, t)
		}
		us := int(d / time.Microsecond)
		return appendClock(append(b, TagTime), us/3600e6, us/60e6%60, us/1e6%60, us%1e6), nil
	case TimestampType:
		if tm, ok := x.(time.Time); ok {
			return appendTimestamp(b, TagTimestamp, tm)
		}
	case TimestampLTZType:
		if tm, ok := x.(time.Time); ok {
			return appendTimestamp(b, TagTimestampUTC, tm.UTC())
		}
	case ArrayType:
		rv := reflect.ValueOf(x)
		if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
			break
		}
		if depth >= MaxDepth {
			return b, errDeep
		}
		b = ne.AppendUint32(append(b, TagList), uint32(rv.Len()))
		var err error
		for i := range rv.Len() {
			if b, err = appendArg(b, t.Elem, ValueOf(rv.Index(i).Interface()), depth+1); err != nil {
				return b, errAt(err, fmt.Sprintf("[%d]", i))
			}
		}
		return b, nil
	case MapType:
		rv := reflect.ValueOf(x)
		if rv.Kind() != reflect.Map {
			break
		}
		if depth >= MaxDepth {
			return b, errDeep
		}
		b = ne.AppendUint32(append(b, TagMap), uint32(rv.Len()))
		var err error
		for it := rv.MapRange(); it.Next(); {
			key := it.Key().Interface()
			if b, err = appendArg(b, t.Key, ValueOf(key), depth+1); err != nil {
				return b, errAt(err, fmt.Sprintf("[key %v]", key))
			}
			if b, err = appendArg(b, t.Value, ValueOf(it.Value().Interface()), depth+1); err != nil {
				return b, errAt(err, fmt.Sprintf("[%v]", key))
			}
		}
		return b, nil
	case RowType:
		fields, ok, err := rowFields(x, t)
		if err != nil {
			return b, err
		}
		if !ok {
			break
		}
		if len(fields) != len(t.Fields) {
			return b, convErr("%d values for %s, which has %d fields", len(fields), t, len(t.Fields))
		}
		if depth >= MaxDepth {
			return b, errDeep
		}
		b = ne.AppendUint32(append(b, TagRow), uint32(len(fields)))
		for i, f := range t.Fields {
			if b, err = appendStr(b, 0, f.Name); err != nil {
				return b, err
			}
			if b, err = appendArg(b, f.Type, ValueOf(fields[i]), depth+1); err != nil {
				return b, errAt(err, "."+f.Name)
			}
		}
		return b, nil
	}
	return b, mismatch(x, t)
}

// maxDecScale bounds the scale of a Dec (either sign): 10^scale is computed.
const maxDecScale = 10000

func ratOf(x any) (*big.Rat, bool, error) {
	switch d := x.(type) {
	case Dec:
		if d.Scale > maxDecScale || d.Scale < -maxDecScale {
			return nil, false, convErr("Dec scale %d is outside -%d to %d", d.Scale, maxDecScale, maxDecScale)
		}
		return d.Rat(), true, nil
	case *big.Rat:
		return d, true, nil
	case *big.Int:
		return new(big.Rat).SetInt(d), true, nil
	case string:
		dec, err := ParseDec(d)
		return dec.Rat(), err == nil, nil
	}
	v, err := plainValue(ValueOf(x))
	if err != nil {
		return nil, false, err
	}
	if isInt(v.kind) {
		return new(big.Rat).SetInt64(v.AsInt64()), true, nil
	}
	if i, ok := v.ptr.(*big.Int); ok {
		return new(big.Rat).SetInt(i), true, nil
	}
	if v.kind == KindFloat64 && !math.IsInf(v.AsFloat64(), 0) && !math.IsNaN(v.AsFloat64()) {
		return new(big.Rat).SetFloat64(v.AsFloat64()), true, nil
	}
	return nil, false, nil
}

// rowFields returns a ROW value's fields in t's order: from a Row or slice
// (by position), a map[string]any (by name: a key for every field and no
// other) or a struct (see structFields).
func rowFields(x any, t *DataType) ([]any, bool, error) {
	switch r := x.(type) {
	case Row:
		return r, true, nil
	case []any:
		return r, true, nil
	case map[string]any:
		out := make([]any, len(t.Fields))
		index := make(map[string]int, len(t.Fields))
		for i, f := range t.Fields {
			index[f.Name] = i
		}
		for k, v := range r {
			i, ok := index[k]
			if !ok {
				return nil, false, convErr("map key %q is not a field of %s", k, t)
			}
			out[i] = v
		}
		if len(r) != len(t.Fields) {
			for _, f := range t.Fields {
				if _, ok := r[f.Name]; !ok {
					return nil, false, convErr("map has no key for %s's field %q", t, f.Name)
				}
			}
		}
		return out, true, nil
	}
	rv := reflect.ValueOf(x)
	if rv.Kind() != reflect.Struct {
		return nil, false, nil
	}
	names, values, err := structFields(rv)
	if err != nil {
		return nil, false, err
	}
	out, used := make([]any, len(t.Fields)), make([]bool, len(names))
	for i, f := range t.Fields {
		j := matchField(names, f.Name)
		if j < 0 {
			return nil, false, convErr("Go %s has no field for %s's field %q (name a field %s or tag it `pyudf:%q`)",
				rv.Type(), t, f.Name, f.Name, f.Name)
		}
		out[i], used[j] = values[j], true
	}
	for j, name := range names {
		if !used[j] {
			return nil, false, convErr("Go %s field %s is not a field of %s (tag it `pyudf:\"-\"` to leave it out)",
				rv.Type(), name, t)
		}
	}
	return out, true, nil
}

// matchField is the index of the struct field for ROW field name: its tag
// or, untagged, its Go name (case-insensitively); -1 if none.
func matchField(names []string, name string) int {
	for j, n := range names {
		if n == name {
			return j
		}
	}
	for j, n := range names {
		if strings.EqualFold(n, name) {
			return j
		}
	}
	return -1
}

// structFields lists a struct's fields as a ROW: each field's `pyudf` tag or
// Go name, and its value. Every field goes across except `_` and fields
// tagged `pyudf:"-"`; an unexported one is an error (reflection cannot read
// it), never a silent NULL.
func structFields(rv reflect.Value) (names []string, values []any, err error) {
	rt := rv.Type()
	for i := range rt.NumField() {
		sf := rt.Field(i)
		tag, _, _ := strings.Cut(sf.Tag.Get("pyudf"), ",")
		if tag == "-" || sf.Name == "_" {
			continue
		}
		if !sf.IsExported() {
			return nil, nil, convErr("Go %s field %s is unexported: export it or tag it `pyudf:\"-\"`", rt, sf.Name)
		}
		if tag == "" {
			tag = sf.Name
		}
		names, values = append(names, tag), append(values, rv.Field(i).Interface())
	}
	return names, values, nil
}

// appendDynamic converts by Go type, for functions without declared types.
func appendDynamic(b []byte, v Value, depth int) ([]byte, error) {
	switch {
	case v.kind == KindBool:
		return appendBool(b, v.AsBool()), nil
	case isInt(v.kind):
		return appendInt(b, v.AsInt64()), nil
	case v.kind == KindFloat32 || v.kind == KindFloat64:
		return appendFloat(b, v.AsFloat64()), nil
	case v.kind == KindString:
		return appendStr(b, TagStr, v.AsString())
	case v.kind == KindBytes:
		return appendText(b, TagBytes, string(v.AsBytes())), nil
	}
	switch x := v.ptr.(type) {
	case time.Time:
		return appendTimestamp(b, TagTimestampUTC, x.UTC())
	case time.Duration:
		return appendComplex(b, &DataType{Kind: TimeType}, x, depth)
	case Dec:
		if x.Scale > maxDecScale || x.Scale < -maxDecScale {
			return b, convErr("Dec scale %d is outside -%d to %d", x.Scale, maxDecScale, maxDecScale)
		}
		return appendText(b, TagDecimal, x.String()), nil
	case *big.Rat:
		return appendText(b, TagDecimal, x.FloatString(18)), nil
	case *big.Int:
		return appendText(b, TagBigInt, x.String()), nil
	case Row:
		return appendRowValues(b, x, depth)
	}
	rv := reflect.ValueOf(v.ptr)
	var err error
	switch rv.Kind() {
	case reflect.Slice, reflect.Array, reflect.Map, reflect.Struct:
		if depth >= MaxDepth {
			return b, errDeep
		}
	}
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		b = ne.AppendUint32(append(b, TagList), uint32(rv.Len()))
		for i := range rv.Len() {
			if b, err = appendArg(b, nil, ValueOf(rv.Index(i).Interface()), depth+1); err != nil {
				return b, errAt(err, fmt.Sprintf("[%d]", i))
			}
		}
		return b, nil
	case reflect.Map:
		b = ne.AppendUint32(append(b, TagMap), uint32(rv.Len()))
		for it := rv.MapRange(); it.Next(); {
			if b, err = appendArg(b, nil, ValueOf(it.Key().Interface()), depth+1); err == nil {
				b, err = appendArg(b, nil, ValueOf(it.Value().Interface()), depth+1)
			}
			if err != nil {
				return b, errAt(err, fmt.Sprintf("[%v]", it.Key().Interface()))
			}
		}
		return b, nil
	case reflect.Struct:
		names, values, err := structFields(rv)
		if err != nil {
			return b, err
		}
		b = ne.AppendUint32(append(b, TagRow), uint32(len(names)))
		for i, name := range names {
			if b, err = appendStr(b, 0, name); err != nil {
				return b, err
			}
			if b, err = appendArg(b, nil, ValueOf(values[i]), depth+1); err != nil {
				return b, errAt(err, "."+name)
			}
		}
		return b, nil
	}
	return b, convErr("cannot convert Go %T to a Python value", v.ptr)
}

// --- decoding results --------------------------------------------------------

// The result rule: which Python results convert to which declared type. Every
// path that brings a row-wise result to Go applies it — Call (cgo/convert.c's
// encoder, then DecodeResult), row-wise Eval over fixed-width columns
// (store_result in cgo/call.c), Eval, EvalRowErrors and Map through pyarrow
// (python/pyudf/_results.py), and the same in process mode (_wire.py) — so a
// result is accepted or refused the same way whichever path it takes:
//
//	None                 NULL (refused for NOT NULL)
//	BOOLEAN              bool
//	TINYINT..BIGINT      int, not bool (a subclass by its digits), range-checked
//	FLOAT, DOUBLE        float, int (not bool); FLOAT refuses a finite value beyond float32
//	STRING               str (not bytes)
//	BYTES                bytes, bytearray (not str)
//	DECIMAL(p, s)        Decimal, int, finite float: rounded half away from zero
//	                     to s digits (Flink's HALF_UP), refused beyond p digits
//	DATE                 date, datetime (its date, in UTC when aware)
//	TIME                 time
//	TIMESTAMP[_LTZ]      datetime (an aware one as its UTC instant)
//	ARRAY                list, tuple
//	MAP                  dict, or a list of (key, value) pairs
//	ROW                  a named Row or dict (by name: every field, no other),
//	                     a list, tuple or unnamed Row (by position, every field)
//
// Any other object goes once through pyudf._host.normalize (numpy scalars and
// arrays, pandas NA, sets, PyFlink's Row) and then through the same checks.
// Containers nest at most MaxDepth levels.

// DecodeResult reads one value from b as type t (nil: as Python gave it) and
// returns it with the rest of b. Numbers and bools decode without allocating.
func DecodeResult(b []byte, t *DataType) (Value, []byte, error) {
	// The commonest case first, small enough to be inlined into the caller.
	if len(b) >= 9 && b[0] == TagInt && t != nil && t.Kind == BigIntType {
		return Int64(int64(ne.Uint64(b[1:9]))), b[9:], nil
	}
	return decodeResult(b, t, 0)
}

// decodeResult is DecodeResult for a value inside depth containers.
func decodeResult(b []byte, t *DataType, depth int) (Value, []byte, error) {
	if len(b) == 0 {
		return Value{}, b, errMalformed
	}
	tag, b := b[0], b[1:]
	if tag == TagNull {
		if t != nil && t.NotNull {
			return Value{}, b, convErr("None for %s", t)
		}
		return Null(), b, nil
	}
	if t == nil {
		return decodeDynamic(tag, b, depth)
	}
	switch t.Kind {
	case BooleanType:
		if tag == TagTrue || tag == TagFalse {
			return Bool(tag == TagTrue), b, nil
		}
	case TinyIntType, SmallIntType, IntType, BigIntType:
		switch tag {
		case TagInt:
			v, rest, err := readInt(b)
			if err == nil && !intFits(v, t.Kind) {
				err = convErr("%d overflows %s", v, t)
			}
			return intValue(intKinds[t.Kind], v), rest, err
		case TagBigInt:
			text, rest, err := readText(b)
			if err == nil {
				err = convErr("%s overflows %s", text, t)
			}
			return Value{}, rest, err
		}
	case FloatType, DoubleType:
		var f float64
		var rest []byte
		var err error
		switch tag {
		case TagFloat:
			f, rest, err = readFloat(b)
		case TagInt:
			var i int64
			i, rest, err = readInt(b)
			f = float64(i)
		case TagBigInt: // an int beyond int64 rounds, as float(i) does in Python
			var text string
			if text, rest, err = readText(b); err == nil {
				bf, ok := new(big.Float).SetString(text)
				if !ok {
					return Value{}, rest, errMalformed
				}
				if f, _ = bf.Float64(); math.IsInf(f, 0) {
					err = convErr("%s overflows %s", shorten(text), t)
				}
			}
		default:
			return Value{}, b, typeMismatch(tag, t)
		}
		if t.Kind == FloatType {
			if err == nil && floatOverflows(f) {
				err = convErr("%v overflows %s", f, t)
			}
			return Value{kind: KindFloat32, num: math.Float64bits(float64(float32(f)))}, rest, err
		}
		return Float64(f), rest, err
	case CharType, VarCharType:
		if tag == TagStr {
			s, rest, err := readText(b)
			return String(s), rest, err
		}
	case BinaryType, VarBinaryType:
		if tag == TagBytes {
			s, rest, err := readText(b)
			return Bytes([]byte(s)), rest, err
		}
	default:
		x, rest, err := decodeComplex(tag, b, t, depth)
		return Value{kind: KindAny, ptr: x}, rest, err
	}
	return Value{}, b, typeMismatch(tag, t)
}

var intKinds = [...]ValueKind{TinyIntType: KindInt8, SmallIntType: KindInt16, IntType: KindInt32, BigIntType: KindInt64}

func decodeComplex(tag byte, b []byte, t *DataType, depth int) (any, []byte, error) {
	switch t.Kind {
	case DecimalType:
		var r *big.Rat
		var text string
		var rest []byte
		var err error
		switch tag {
		case TagDecimal, TagBigInt:
			text, rest, err = readText(b)
			r, _ = new(big.Rat).SetString(text)
			if err == nil && r == nil {
				err = convErr("Decimal %s is not a number for %s", text, t)
			}
		case TagInt:
			var i int64
			i, rest, err = readInt(b)
			r = new(big.Rat).SetInt64(i)
		case TagFloat:
			var f float64
			f, rest, err = readFloat(b)
			if r = new(big.Rat); err == nil && r.SetFloat64(f) == nil {
				err = convErr("float %v is not a number for %s", f, t)
			}
		default:
			return nil, b, typeMismatch(tag, t)
		}
		if err != nil {
			return nil, rest, err
		}
		d, fits := fitDec(r, t)
		if !fits {
			return nil, rest, convErr("%s does not fit %s", shorten(r.FloatString(t.Scale)), t)
		}
		return d, rest, nil
	case DateType:
		if tag == TagDate || tag == TagTimestamp || tag == TagTimestampUTC {
			tm, rest, err := readTimestamp(b, tag != TagDate)
			y, m, d := tm.Date()
			return time.Date(y, m, d, 0, 0, 0, 0, time.UTC), rest, err
		}
	case TimeType:
		if tag == TagTime {
			return readClock(b)
		}
	case TimestampType, TimestampLTZType:
		if tag == TagTimestamp || tag == TagTimestampUTC {
			return readTimestamp(b, true)
		}
	case ArrayType:
		if tag == TagList {
			return decodeList(b, t.Elem, depth)
		}
	case MapType:
		if tag == TagMap {
			return decodeMap(b, t.Key, t.Value, depth)
		}
		if tag == TagList {
			return decodePairs(b, t, depth)
		}
	case RowType:
		return decodeRow(tag, b, t, depth)
	}
	return nil, b, typeMismatch(tag, t)
}

// readCount reads the element count of a container at depth, which holds
// n values of at least size bytes each: a count the data cannot hold is
// malformed (and is not allocated).
func readCount(b []byte, depth, size int) (int, []byte, error) {
	if depth >= MaxDepth {
		return 0, b, errDeep
	}
	n, rest, err := readLen(b)
	if err == nil && n > len(rest)/size {
		return 0, b, errMalformed
	}
	return n, rest, err
}

func decodeList(b []byte, elem *DataType, depth int) ([]any, []byte, error) {
	n, b, err := readCount(b, depth, 1)
	if err != nil {
		return nil, b, err
	}
	out := make([]any, n)
	for i := range out {
		var v Value
		if v, b, err = decodeResult(b, elem, depth+1); err != nil {
			return nil, b, errAt(err, fmt.Sprintf("[%d]", i))
		}
		out[i] = v.Any()
	}
	return out, b, nil
}

func decodeMap(b []byte, kt, vt *DataType, depth int) (map[any]any, []byte, error) {
	n, b, err := readCount(b, depth, 2)
	if err != nil {
		return nil, b, err
	}
	out := make(map[any]any, n)
	for range n {
		var k, v Value
		if k, b, err = decodeResult(b, kt, depth+1); err != nil {
			return nil, b, errAt(err, "[key]")
		}
		key := k.Any()
		if key != nil && !reflect.TypeOf(key).Comparable() {
			return nil, b, convErr("dict key %v (%T) cannot be a Go map key", key, key)
		}
		if _, ok := key.([]byte); ok {
			key = string(key.([]byte))
		}
		if v, b, err = decodeResult(b, vt, depth+1); err != nil {
			return nil, b, errAt(err, fmt.Sprintf("[%v]", key))
		}
		out[key] = v.Any()
	}
	return out, b, nil
}

// decodePairs reads a MAP given as a list of (key, value) pairs, the way
// pyarrow hands a MAP argument to a row-wise UDF.
func decodePairs(b []byte, t *DataType, depth int) (map[any]any, []byte, error) {
	n, b, err := readCount(b, depth, 1)
	if err != nil {
		return nil, b, err
	}
	out := make(map[any]any, n)
	for i := range n {
		var m int
		if len(b) == 0 || b[0] != TagList {
			return nil, b, convErr("a %s given as a list holds (key, value) pairs", t)
		}
		if m, b, err = readCount(b[1:], depth+1, 1); err == nil && m != 2 {
			err = convErr("a %s given as a list holds (key, value) pairs, not %d values", t, m)
		}
		var k, v Value
		if err == nil {
			k, b, err = decodeResult(b, t.Key, depth+2)
		}
		if err == nil {
			v, b, err = decodeResult(b, t.Value, depth+2)
		}
		if err != nil {
			return nil, b, errAt(err, fmt.Sprintf("[%d]", i))
		}
		key := k.Any()
		if key != nil && !reflect.TypeOf(key).Comparable() {
			return nil, b, convErr("dict key %v (%T) cannot be a Go map key", key, key)
		}
		if bs, ok := key.([]byte); ok {
			key = string(bs)
		}
		out[key] = v.Any()
	}
	return out, b, nil
}

// decodeRow accepts a Row with names (matched by name), a list or tuple (by
// position) and a dict (by name).
func decodeRow(tag byte, b []byte, t *DataType, depth int) (Row, []byte, error) {
	if tag != TagRow && tag != TagList && tag != TagMap {
		return nil, b, typeMismatch(tag, t)
	}
	n, b, err := readCount(b, depth, 1)
	if err != nil {
		return nil, b, err
	}
	if tag == TagList {
		if n != len(t.Fields) {
			return nil, b, convErr("%d values for %s, which has %d fields", n, t, len(t.Fields))
		}
		out := make(Row, n)
		for i, f := range t.Fields {
			var v Value
			if v, b, err = decodeResult(b, f.Type, depth+1); err != nil {
				return nil, b, errAt(err, "."+f.Name)
			}
			out[i] = v.Any()
		}
		return out, b, nil
	}
	// By name: read the (name, value) pairs, then place them.
	byName := make(map[string]int, len(t.Fields))
	for i, f := range t.Fields {
		byName[f.Name] = i
	}
	out, seen := make(Row, len(t.Fields)), make([]bool, len(t.Fields))
	for range n {
		var name string
		if tag == TagRow {
			name, b, err = readText(b)
		} else if len(b) > 0 && b[0] == TagStr {
			name, b, err = readText(b[1:])
		} else {
			err = convErr("dict keys for %s must be str field names", t)
		}
		if err != nil {
			return nil, b, err
		}
		i, ok := byName[name]
		if !ok {
			return nil, b, convErr("field %q is not in %s", name, t)
		}
		var v Value
		if v, b, err = decodeResult(b, t.Fields[i].Type, depth+1); err != nil {
			return nil, b, errAt(err, "."+name)
		}
		out[i], seen[i] = v.Any(), true
	}
	for i, f := range t.Fields {
		if !seen[i] {
			return nil, b, convErr("field %q of %s is missing", f.Name, t)
		}
	}
	return out, b, nil
}

func decodeDynamic(tag byte, b []byte, depth int) (Value, []byte, error) {
	switch tag {
	case TagFalse, TagTrue:
		return Bool(tag == TagTrue), b, nil
	case TagInt:
		v, rest, err := readInt(b)
		return Int64(v), rest, err
	case TagFloat:
		f, rest, err := readFloat(b)
		return Float64(f), rest, err
	case TagStr:
		s, rest, err := readText(b)
		return String(s), rest, err
	case TagBytes:
		s, rest, err := readText(b)
		return Bytes([]byte(s)), rest, err
	case TagBigInt:
		s, rest, err := readText(b)
		i, _ := new(big.Int).SetString(s, 10)
		return ValueOf(i), rest, err
	case TagDecimal:
		s, rest, err := readText(b)
		if err != nil {
			return Value{}, rest, err
		}
		d, err := ParseDec(s)
		if err != nil {
			return Value{}, rest, convErr("Decimal %s is not a number", s)
		}
		return ValueOf(d), rest, nil
	case TagDate:
		tm, rest, err := readTimestamp(b, false)
		return ValueOf(tm), rest, err
	case TagTime:
		d, rest, err := readClock(b)
		return ValueOf(d), rest, err
	case TagTimestamp, TagTimestampUTC:
		tm, rest, err := readTimestamp(b, true)
		return ValueOf(tm), rest, err
	case TagList:
		l, rest, err := decodeList(b, nil, depth)
		return ValueOf(l), rest, err
	case TagMap:
		m, rest, err := decodeMap(b, nil, nil, depth)
		return ValueOf(m), rest, err
	case TagRow:
		n, rest, err := readCount(b, depth, 5)
		row := make(Row, 0, n)
		for i := 0; err == nil && i < n; i++ {
			var v Value
			if _, rest, err = readText(rest); err == nil {
				v, rest, err = decodeResult(rest, nil, depth+1)
			}
			row = append(row, v.Any())
		}
		return ValueOf(row), rest, err
	}
	return Value{}, b, errMalformed
}

var errMalformed = convErr("malformed result data")

func readInt(b []byte) (int64, []byte, error) {
	if len(b) < 8 {
		return 0, b, errMalformed
	}
	return int64(ne.Uint64(b)), b[8:], nil
}

func readFloat(b []byte) (float64, []byte, error) {
	i, rest, err := readInt(b)
	return math.Float64frombits(uint64(i)), rest, err
}

func readLen(b []byte) (int, []byte, error) {
	if len(b) < 4 {
		return 0, b, errMalformed
	}
	return int(ne.Uint32(b)), b[4:], nil
}

func readText(b []byte) (string, []byte, error) {
	n, b, err := readLen(b)
	if err != nil || len(b) < n {
		return "", b, errMalformed
	}
	return string(b[:n]), b[n:], nil
}

func readClock(b []byte) (time.Duration, []byte, error) {
	if len(b) < 7 || b[0] > 23 || b[1] > 59 || b[2] > 59 || ne.Uint32(b[3:]) > 999999 {
		return 0, b, errMalformed
	}
	d := time.Duration(b[0])*time.Hour + time.Duration(b[1])*time.Minute +
		time.Duration(b[2])*time.Second + time.Duration(ne.Uint32(b[3:]))*time.Microsecond
	return d, b[7:], nil
}

// readTimestamp reads DATE fields, and the clock fields too when withClock.
func readTimestamp(b []byte, withClock bool) (time.Time, []byte, error) {
	if len(b) < 6 {
		return time.Time{}, b, errMalformed
	}
	y, m, d := int(int32(ne.Uint32(b))), time.Month(b[4]), int(b[5])
	if y < minYear || y > maxYear || m < 1 || m > 12 || d < 1 || d > 31 {
		return time.Time{}, b, errMalformed
	}
	b = b[6:]
	var clock time.Duration
	var err error
	if withClock {
		clock, b, err = readClock(b)
	}
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Add(clock), b, err
}
