package bridge

import (
	"fmt"
	"math/big"
	"strings"
	"time"
	"unicode/utf8"
)

// Typed values (see the package documentation): the Go caller names a
// value's SQL type instead of leaving it to the value's Go type. A typed
// Value is KindAny with sql set to the wire tag of its type.

// tagInvalid marks a Value whose constructor refused its input: ptr holds the error.
const tagInvalid = 0xff

// typedRow is what RowOf holds: field names (nil: an unnamed row) and values.
type typedRow struct {
	names  []string
	values Row
}

// typedMap is what MapOf holds: keys and values, alternating, in order.
type typedMap []any

// sqlNames and sqlKinds give, per wire tag a typed Value can carry, the SQL
// type it stands for.
var sqlNames = map[byte]string{
	TagDate: "DATE", TagTime: "TIME", TagTimestamp: "TIMESTAMP", TagTimestampUTC: "TIMESTAMP_LTZ",
	TagRow: "ROW", TagMap: "MAP",
}

var sqlKinds = map[byte]Kind{
	TagDate: DateType, TagTime: TimeType, TagTimestamp: TimestampType, TagTimestampUTC: TimestampLTZType,
	TagRow: RowType, TagMap: MapType,
}

func invalid(err error) Value { return Value{kind: KindAny, sql: tagInvalid, ptr: err} }

// because prefixes the reason of a ConversionError with what it is about.
func because(err error, about string) error {
	if ce, ok := err.(*ConversionError); ok {
		return &ConversionError{Function: ce.Function, Path: ce.Path, Row: ce.Row, Reason: about + ce.Reason}
	}
	return err
}

// Date is a DATE value: t's calendar date, as read in t's location. A
// function without declared input types receives a datetime.date (a
// time.Time passed as it is arrives as an aware datetime). Python's dates
// hold years 1 to 9999: a date outside them is an error when the call
// converts it.
func Date(t time.Time) Value {
	y, m, d := t.Date()
	return Value{kind: KindAny, sql: TagDate, ptr: time.Date(y, m, d, 0, 0, 0, 0, time.UTC)}
}

// Time is a TIME value: the time of day d after midnight, which must be at
// least 0 and less than 24 hours (else the call returns an error). Python
// receives a datetime.time, to the microsecond. For the clock of a
// time.Time, use Time(TimeOfDay(t)).
func Time(d time.Duration) Value { return Value{kind: KindAny, sql: TagTime, ptr: d} }

// Timestamp is a TIMESTAMP (without time zone) value: t's wall clock as read
// in t's location, which Python receives as a naive datetime, to the
// microsecond.
func Timestamp(t time.Time) Value {
	wall := time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
	return Value{kind: KindAny, sql: TagTimestamp, ptr: wall}
}

// TimestampLTZ is a TIMESTAMP_LTZ value: the instant t, which Python
// receives as an aware datetime in UTC, to the microsecond. It is what a
// time.Time passed as it is to a function without declared types becomes.
func TimestampLTZ(t time.Time) Value {
	return Value{kind: KindAny, sql: TagTimestampUTC, ptr: t.UTC()}
}

// RowOf is a ROW value of values, named by names: a function without
// declared input types receives a pyudf Row with those field names
// (row.owner, row["owner"], row.as_dict()), and a declared ROW<...> takes its
// fields by name (every declared field, no other). With names nil the row is
// unnamed, as Row(values) is: a Row without names in Python, its fields taken
// by position for a declared ROW.
//
// The names must be as many as the values, distinct, non-empty and valid
// UTF-8; otherwise the Value holds the error, which the call returns.
// RowOf copies both slices.
func RowOf(names []string, values ...any) Value {
	if names != nil {
		if len(names) != len(values) {
			return invalid(convErr("RowOf: %d names for %d values", len(names), len(values)))
		}
		seen := make(map[string]int, len(names))
		for i, name := range names {
			if name == "" {
				return invalid(convErr("RowOf: field %d has an empty name", i+1))
			}
			if !utf8.ValidString(name) {
				return invalid(because(invalidUTF8(name), fmt.Sprintf("RowOf field %d: ", i+1)))
			}
			if j, dup := seen[name]; dup {
				return invalid(convErr("RowOf: field name %q is given twice (fields %d and %d)", name, j+1, i+1))
			}
			seen[name] = i
		}
		names = append([]string(nil), names...)
	}
	return Value{kind: KindAny, sql: TagRow, ptr: typedRow{names: names, values: append(Row{}, values...)}}
}

// MapOf is a MAP value of alternating keys and values: MapOf(k1, v1, k2, v2).
// Python receives a dict with the entries in that order; a declared
// MAP<K, V> converts each key to K and each value to V, in that order too.
// Keys may be any single value, including those a Go map cannot hold or
// order ([]byte, a Date), but not a container (slice, map, struct, Row: Python
// cannot use a list or dict as a key). An odd number of arguments, a
// container key or a key given twice makes the Value hold the error, which
// the call returns. MapOf copies its arguments.
func MapOf(keysAndValues ...any) Value {
	if len(keysAndValues)%2 != 0 {
		return invalid(convErr("MapOf: %d arguments, not key-value pairs (the last key has no value)", len(keysAndValues)))
	}
	seen := make(map[any]int, len(keysAndValues)/2)
	for i := 0; i < len(keysAndValues); i += 2 {
		key, err := mapKey(keysAndValues[i])
		if err != nil {
			return invalid(because(err, fmt.Sprintf("MapOf key %d: ", i/2+1)))
		}
		if j, dup := seen[key]; dup {
			return invalid(convErr("MapOf: key %v is given twice (entries %d and %d)", key, j+1, i/2+1))
		}
		seen[key] = i / 2
	}
	return Value{kind: KindAny, sql: TagMap, ptr: typedMap(append([]any(nil), keysAndValues...))}
}

// mapKey is key as a comparable Go value (a []byte as a string, a typed
// time value as its time.Time or time.Duration), or an error if key is no
// single value.
func mapKey(key any) (any, error) {
	v := ValueOf(key)
	if v.kind == KindAny {
		var err error
		if v, err = plainValue(v); err != nil {
			return nil, err
		}
	}
	if v.kind != KindAny {
		if b, ok := v.Any().([]byte); ok {
			return string(b), nil
		}
		return v.Any(), nil
	}
	switch v.sql {
	case 0:
	case tagInvalid:
		return nil, v.ptr.(error)
	case TagRow, TagMap:
		return nil, convErr("a %s cannot be a MAP key (keys are single values)", sqlNames[v.sql])
	default:
		return v.Any(), nil
	}
	switch v.ptr.(type) {
	case time.Time, time.Duration, Dec, *big.Int, *big.Rat:
		return v.ptr, nil
	}
	return nil, convErr("Go %T cannot be a MAP key (keys are single values: Python cannot use a list or dict as a key)", key)
}

// typedAny is Any for a typed Value: the Go value a result of its type decodes to.
func (v Value) typedAny() any {
	switch x := v.ptr.(type) {
	case typedRow:
		return x.values
	case typedMap:
		out := make(map[any]any, len(x)/2)
		for i := 0; i < len(x); i += 2 {
			k, _ := mapKey(x[i]) // checked by MapOf
			out[k] = ValueOf(x[i+1]).Any()
		}
		return out
	}
	return v.ptr
}

// typedString is String for a typed Value.
func (v Value) typedString() string {
	switch x := v.ptr.(type) {
	case error:
		return "!invalid(" + x.Error() + ")"
	case time.Time:
		switch v.sql {
		case TagDate:
			return x.Format("2006-01-02")
		case TagTimestamp:
			return x.Format("2006-01-02 15:04:05.999999999")
		}
		return x.Format("2006-01-02 15:04:05.999999999Z07:00")
	case time.Duration:
		if x < 0 || x >= 24*time.Hour {
			return x.String()
		}
		return time.Time{}.Add(x).Format("15:04:05.999999999")
	case typedRow:
		var b strings.Builder
		b.WriteString("Row(")
		for i, f := range x.values {
			if i > 0 {
				b.WriteString(", ")
			}
			if x.names != nil {
				b.WriteString(x.names[i] + "=")
			}
			b.WriteString(ValueOf(f).String())
		}
		return b.String() + ")"
	case typedMap:
		var b strings.Builder
		b.WriteString("map[")
		for i := 0; i < len(x); i += 2 {
			if i > 0 {
				b.WriteString(" ")
			}
			b.WriteString(ValueOf(x[i]).String() + ":" + ValueOf(x[i+1]).String())
		}
		return b.String() + "]"
	}
	return fmt.Sprint(v.ptr)
}

// appendTyped is appendArg for a typed Value: converted to t, which must be
// the value's own SQL type, or (t nil) as that type.
func appendTyped(b []byte, t *DataType, v Value, depth int) ([]byte, error) {
	if v.sql == tagInvalid {
		return b, v.ptr.(error)
	}
	if t != nil && t.Kind != sqlKinds[v.sql] {
		return b, convErr("%s %s is not a %s", sqlNames[v.sql], v, t)
	}
	switch x := v.ptr.(type) {
	case typedRow:
		return appendRowOf(b, t, x, depth)
	case typedMap:
		var kt, vt *DataType
		if t != nil {
			kt, vt = t.Key, t.Value
		}
		return appendPairs(b, kt, vt, x, depth)
	}
	if t == nil {
		t = &DataType{Kind: sqlKinds[v.sql]}
	}
	return appendComplex(b, t, v.ptr, depth)
}

// appendRowOf appends a RowOf value as t (nil: as its own names say).
func appendRowOf(b []byte, t *DataType, r typedRow, depth int) ([]byte, error) {
	if t == nil {
		if r.names == nil {
			return appendRowValues(b, r.values, depth)
		}
		if depth >= MaxDepth {
			return b, errDeep
		}
		b = ne.AppendUint32(append(b, TagRow), uint32(len(r.values)))
		var err error
		for i, name := range r.names {
			b = appendText(b, 0, name) // checked by RowOf
			if b, err = appendArg(b, nil, ValueOf(r.values[i]), depth+1); err != nil {
				return b, errAt(err, "."+name)
			}
		}
		return b, nil
	}
	if r.names == nil {
		return appendComplex(b, t, r.values, depth)
	}
	// By name: put the values in t's field order.
	index := make(map[string]int, len(r.names))
	for i, name := range r.names {
		index[name] = i
	}
	ordered := make(Row, len(t.Fields))
	for i, f := range t.Fields {
		j, ok := index[f.Name]
		if !ok {
			return b, convErr("RowOf has no field %q of %s", f.Name, t)
		}
		ordered[i] = r.values[j]
		delete(index, f.Name)
	}
	for _, name := range r.names {
		if _, extra := index[name]; extra {
			return b, convErr("RowOf field %q is not a field of %s", name, t)
		}
	}
	return appendComplex(b, t, ordered, depth)
}

// appendRowValues appends an unnamed ROW (a Row or RowOf(nil, ...)) for a
// function without declared types: a pyudf Row without field names.
func appendRowValues(b []byte, values Row, depth int) ([]byte, error) {
	if depth >= MaxDepth {
		return b, errDeep
	}
	b = ne.AppendUint32(append(b, TagRowValues), uint32(len(values)))
	var err error
	for i, x := range values {
		if b, err = appendArg(b, nil, ValueOf(x), depth+1); err != nil {
			return b, errAt(err, fmt.Sprintf("[%d]", i))
		}
	}
	return b, nil
}

// appendPairs appends a MapOf value, its keys converted to kt and its values
// to vt (nil: by their Go types), in the order given.
func appendPairs(b []byte, kt, vt *DataType, pairs typedMap, depth int) ([]byte, error) {
	if depth >= MaxDepth {
		return b, errDeep
	}
	b = ne.AppendUint32(append(b, TagMap), uint32(len(pairs)/2))
	var err error
	for i := 0; i < len(pairs); i += 2 {
		key := ValueOf(pairs[i])
		if b, err = appendArg(b, kt, key, depth+1); err != nil {
			return b, errAt(err, fmt.Sprintf("[key %v]", key))
		}
		if b, err = appendArg(b, vt, ValueOf(pairs[i+1]), depth+1); err != nil {
			return b, errAt(err, fmt.Sprintf("[%v]", key))
		}
	}
	return b, nil
}
