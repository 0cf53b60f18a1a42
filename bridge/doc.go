// Package bridge converts between Go values and Python objects for pyudf: the
// SQL type system (DataType, parsed from Flink's DDL), the Value that carries
// one SQL value without allocating, the wire format that carries arguments
// into the C shim and results out of it, and the errors for Python
// exceptions and values that do not convert.
//
// Everything here is pure Go with no state: safe for concurrent use.
//
// The Go side of each SQL type:
//
//	SQL type            Go (arguments accept)               Go (results)     Python
//	BOOLEAN             bool                                bool             bool
//	TINYINT..BIGINT     any Go integer, range-checked       int8..int64      int
//	FLOAT, DOUBLE       float32, float64, integers          float32, float64 float
//	DECIMAL(p, s)       Dec, *big.Rat, string, integers     Dec              decimal.Decimal
//	CHAR, VARCHAR       string                              string           str
//	BINARY, VARBINARY   []byte                              []byte           bytes
//	DATE                time.Time (its date)                time.Time (UTC)  datetime.date
//	TIME(p)             time.Duration since midnight,       time.Duration    datetime.time
//	                    time.Time (its clock)
//	TIMESTAMP(p)        time.Time (its wall clock)          time.Time (UTC)  naive datetime
//	TIMESTAMP_LTZ(p)    time.Time (the instant)             time.Time (UTC)  aware datetime (UTC)
//	ARRAY<T>            any slice or array                  []any            list
//	MAP<K, V>           any map                             map[any]any      dict
//	ROW<...>            Row, []any, map[string]any, struct  Row              pyudf.Row
//
// NULL is Go nil and Python None everywhere. Python keeps microseconds, so
// TIME and TIMESTAMP lose nanoseconds on the way in.
//
// A function without declared input types converts each argument by its Go
// type: a time.Time becomes an aware datetime, a time.Duration a time, a
// slice a list, a map a dict, a Row an unnamed pyudf.Row, a struct a named
// one. The typed constructors make a Value of a stated SQL type instead:
//
//	constructor          SQL type        Python (undeclared)       Value.Any()
//	Date(t)              DATE            datetime.date             time.Time, UTC midnight
//	Time(d)              TIME            datetime.time             time.Duration
//	Timestamp(t)         TIMESTAMP       naive datetime            time.Time, the wall clock as UTC
//	TimestampLTZ(t)      TIMESTAMP_LTZ   aware datetime (UTC)      time.Time in UTC
//	RowOf(names, v...)   ROW             pyudf.Row with the names  Row
//	MapOf(k, v, ...)     MAP             dict, in the given order  map[any]any
//
// A function that declares its input types takes a typed Value for that same
// type only (DATE for DATE; a RowOf for a ROW, by field name) and refuses it,
// naming both types, for any other. A Value a constructor cannot make (RowOf
// with two fields of one name, MapOf with an odd number of arguments ...)
// holds the error, which the call it is passed to returns as a
// *ConversionError.
package bridge
