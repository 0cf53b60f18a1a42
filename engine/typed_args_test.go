package engine

import (
	"fmt"
	"testing"
	"time"

	"github.com/pyudf/pyudf/bridge"
)

// Typed arguments (bridge.Date ... bridge.MapOf): a Go caller names the SQL
// type of a value the function declares no type for, and the same values
// work where the function declares that type.

const typedSource = `
import datetime
from pyudf import udf, Row

add = udf(lambda a, b: a + b, input_types=['BIGINT', 'BIGINT'], result_type='BIGINT')

def what(x):
    """type(x).__name__ and the value, as the undeclared function sees it."""
    if isinstance(x, Row):
        names = getattr(x, "_fields", None)
        return "Row %r %r" % (names, list(x))
    return "%s %r" % (type(x).__name__, x)
what = udf(what)
owner = udf(lambda r: r.owner + " " + str(r["id"]))
keys = udf(lambda m: list(m.keys()))

date_repr = udf(lambda d: repr(d), input_types=['DATE'], result_type='STRING')
time_repr = udf(lambda d: repr(d), input_types=['TIME(6)'], result_type='STRING')
ts_repr = udf(lambda d: repr(d), input_types=['TIMESTAMP(6)'], result_type='STRING')
ltz_repr = udf(lambda d: repr(d), input_types=['TIMESTAMP_LTZ(6)'], result_type='STRING')
row_repr = udf(lambda r: repr(r), input_types=['ROW<a INT, b STRING>'], result_type='STRING')
map_repr = udf(lambda m: repr(m), input_types=['MAP<STRING, BIGINT>'], result_type='STRING')
big = udf(lambda x: x, input_types=['BIGINT'], result_type='BIGINT')
`

func typedModule(t *testing.T) *Module {
	t.Helper()
	return loadModule(t, Config{}, "typed_args.py", typedSource)
}

// clock is 2024-03-01 23:30:15.123456789 in a zone 5 hours ahead of UTC:
// its date, wall clock and UTC instant all differ (UTC: 18:30 on the same day).
var clock = time.Date(2024, 3, 1, 23, 30, 15, 123456789, time.FixedZone("UTC+5", 5*3600))

func TestTypedArgsUndeclared(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := typedModule(t)
		for _, c := range []struct {
			arg  any
			want string
		}{
			{bridge.Date(clock), "date datetime.date(2024, 3, 1)"},
			{bridge.Time(bridge.TimeOfDay(clock)), "time datetime.time(23, 30, 15, 123456)"},
			{bridge.Time(0), "time datetime.time(0, 0)"},
			{bridge.Time(24*time.Hour - time.Microsecond), "time datetime.time(23, 59, 59, 999999)"},
			{bridge.Timestamp(clock), "datetime datetime.datetime(2024, 3, 1, 23, 30, 15, 123456)"},
			{bridge.TimestampLTZ(clock), "datetime datetime.datetime(2024, 3, 1, 18, 30, 15, 123456, tzinfo=datetime.timezone.utc)"},
			{clock, "datetime datetime.datetime(2024, 3, 1, 18, 30, 15, 123456, tzinfo=datetime.timezone.utc)"}, // unchanged default
			{bridge.RowOf([]string{"id", "owner"}, int64(7), "Ada"), "Row ['id', 'owner'] [7, 'Ada']"},
			{bridge.RowOf(nil, int64(7), "Ada"), "Row None [7, 'Ada']"},
			{bridge.Row{int64(7), "Ada"}, "Row None [7, 'Ada']"}, // a plain Row: a Row too, no longer a list
			{bridge.Row{}, "Row None []"},
			{[]any{int64(7), "Ada"}, "list [7, 'Ada']"}, // a slice stays a list
			{bridge.RowOf([]string{"d", "inner"}, bridge.Date(clock), bridge.Row{bridge.Time(time.Hour)}),
				"Row ['d', 'inner'] [datetime.date(2024, 3, 1), <Row(datetime.time(1, 0))>]"},
			{bridge.MapOf("b", int64(2), "a", int64(1), "c", nil), "dict {'b': 2, 'a': 1, 'c': None}"},
			{bridge.MapOf([]byte("k"), bridge.Date(clock), bridge.Date(clock), "v"),
				"dict {b'k': datetime.date(2024, 3, 1), datetime.date(2024, 3, 1): 'v'}"},
			{bridge.MapOf(), "dict {}"},
			{[]any{bridge.Date(clock), bridge.MapOf(int64(1), bridge.Timestamp(clock))},
				"list [datetime.date(2024, 3, 1), {1: datetime.datetime(2024, 3, 1, 23, 30, 15, 123456)}]"},
		} {
			if got := call(t, m, "what", c.arg); got != c.want {
				t.Errorf("what(%v) = %q, want %q", c.arg, got, c.want)
			}
		}
		// Named fields are read by name, as PyFlink code does; MapOf keeps its order.
		callWant(t, m, "owner", "Ada 7", bridge.RowOf([]string{"id", "owner"}, int64(7), "Ada"))
		callWant(t, m, "keys", []any{"z", "y", "x"}, bridge.MapOf("z", int64(1), "y", int64(2), "x", int64(3)))
		stillWorks(t, m)
	})
}

func TestTypedArgsDeclared(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := typedModule(t)
		callWant(t, m, "date_repr", "datetime.date(2024, 3, 1)", bridge.Date(clock))
		callWant(t, m, "time_repr", "datetime.time(23, 30, 15, 123456)", bridge.Time(bridge.TimeOfDay(clock)))
		callWant(t, m, "ts_repr", "datetime.datetime(2024, 3, 1, 23, 30, 15, 123456)", bridge.Timestamp(clock))
		callWant(t, m, "ltz_repr", "datetime.datetime(2024, 3, 1, 18, 30, 15, 123456, tzinfo=datetime.timezone.utc)",
			bridge.TimestampLTZ(clock))
		// By name, whatever the order given; unnamed: by position.
		callWant(t, m, "row_repr", "Row(a=1, b='x')", bridge.RowOf([]string{"b", "a"}, "x", int32(1)))
		callWant(t, m, "row_repr", "Row(a=1, b='x')", bridge.RowOf(nil, int32(1), "x"))
		callWant(t, m, "map_repr", "{'z': 1, 'a': 2}", bridge.MapOf("z", int64(1), "a", int64(2)))
		stillWorks(t, m)
	})
}

// A typed value passed for another declared type is refused, naming both.
func TestHostileTypedArgWrongDeclaredType(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := typedModule(t)
		for _, c := range []struct {
			fn   string
			arg  bridge.Value
			want string
		}{
			{"big", bridge.Date(clock), `function "big": argument 1: DATE 2024-03-01 is not a BIGINT`},
			{"big", bridge.Time(time.Hour), "argument 1: TIME 01:00:00 is not a BIGINT"},
			{"date_repr", bridge.Timestamp(clock), "argument 1: TIMESTAMP 2024-03-01 23:30:15.123456789 is not a DATE"},
			{"ts_repr", bridge.TimestampLTZ(clock), "argument 1: TIMESTAMP_LTZ 2024-03-01 18:30:15.123456789Z is not a TIMESTAMP(6)"},
			{"ltz_repr", bridge.Timestamp(clock), "argument 1: TIMESTAMP 2024-03-01 23:30:15.123456789 is not a TIMESTAMP_LTZ(6)"},
			{"ts_repr", bridge.Date(clock), "argument 1: DATE 2024-03-01 is not a TIMESTAMP(6)"},
			{"map_repr", bridge.RowOf(nil, int64(1)), "argument 1: ROW Row(1) is not a MAP<STRING, BIGINT>"},
			{"row_repr", bridge.MapOf("a", int32(1)), "argument 1: MAP map[a:1] is not a ROW<a INT, b STRING>"},
			{"row_repr", bridge.RowOf([]string{"a"}, int32(1)), `argument 1: RowOf has no field "b" of ROW<a INT, b STRING>`},
			{"row_repr", bridge.RowOf([]string{"a", "b", "c"}, int32(1), "x", true),
				`argument 1: RowOf field "c" is not a field of ROW<a INT, b STRING>`},
			{"row_repr", bridge.RowOf([]string{"a", "b"}, "one", "x"), `argument 1.a: Go string "one" is not a INT`},
			{"map_repr", bridge.MapOf("a", "one"), `argument 1[a]: Go string "one" is not a BIGINT`},
			{"map_repr", bridge.MapOf(int64(1), int64(1)), "argument 1[key 1]: Go int64 (1) is not a STRING"},
		} {
			err := callError(t, m, c.fn, c.arg)
			wantConversion(t, err, c.want)
		}
		stillWorks(t, m)
	})
}

// Values no constructor can make: each call fails with the reason, and the
// next call works.
func TestHostileTypedArgsBadInput(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := typedModule(t)
		for _, c := range []struct {
			fn   string
			arg  any
			want string
		}{
			{"what", bridge.Time(24 * time.Hour), "argument 1: 24h0m0s is not a time of day for TIME(0)"},
			{"what", bridge.Time(-time.Nanosecond), "argument 1: -1ns is not a time of day for TIME(0)"},
			{"time_repr", bridge.Time(25 * time.Hour), "argument 1: 25h0m0s is not a time of day for TIME(6)"},
			{"what", bridge.Date(time.Date(0, 12, 31, 0, 0, 0, 0, time.UTC)), "argument 1: year 0 is outside Python's dates (years 1 to 9999)"},
			{"date_repr", bridge.Date(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)), "argument 1: year 10000 is outside Python's dates"},
			{"what", bridge.Timestamp(time.Date(-5, 1, 1, 0, 0, 0, 0, time.UTC)), "argument 1: year -5 is outside Python's dates"},
			{"what", bridge.TimestampLTZ(time.Time{}.Add(-time.Hour)), "argument 1: year 0 is outside Python's dates"},
			{"what", bridge.RowOf([]string{"a", "b", "a"}, 1, 2, 3), `argument 1: RowOf: field name "a" is given twice (fields 1 and 3)`},
			{"row_repr", bridge.RowOf([]string{"a", "a"}, 1, 2), `argument 1: RowOf: field name "a" is given twice`},
			{"what", bridge.RowOf([]string{"a"}, 1, 2), "argument 1: RowOf: 1 names for 2 values"},
			{"what", bridge.RowOf([]string{"a", ""}, 1, 2), "argument 1: RowOf: field 2 has an empty name"},
			{"what", bridge.RowOf([]string{"\xff"}, 1), `argument 1: RowOf field 1: Go string "\xff" is not valid UTF-8`},
			{"what", bridge.MapOf("a", 1, "b"), "argument 1: MapOf: 3 arguments, not key-value pairs"},
			{"map_repr", bridge.MapOf("a"), "argument 1: MapOf: 1 arguments, not key-value pairs"},
			{"what", bridge.MapOf("a", 1, "a", 2), "argument 1: MapOf: key a is given twice (entries 1 and 2)"},
			{"what", bridge.MapOf([]any{1}, 2), "argument 1: MapOf key 1: Go []interface {} cannot be a MAP key"},
			{"what", bridge.MapOf("k", 1, map[string]int{}, 2), "argument 1: MapOf key 2: Go map[string]int cannot be a MAP key"},
			{"what", bridge.MapOf(bridge.RowOf(nil, 1), 2), "argument 1: MapOf key 1: a ROW cannot be a MAP key"},
			{"what", bridge.MapOf(bridge.MapOf(), 2), "argument 1: MapOf key 1: a MAP cannot be a MAP key"},
			{"what", bridge.MapOf(bridge.MapOf("x"), 2), "argument 1: MapOf key 1: MapOf: 1 arguments"},
			// A bad value nested in a good one: its path.
			{"what", bridge.RowOf([]string{"when"}, bridge.Time(-time.Second)), "argument 1.when: -1s is not a time of day"},
			{"what", []any{1, bridge.MapOf("x", 1, "y")}, "argument 1[1]: MapOf: 3 arguments"},
			{"what", bridge.MapOf("k", bridge.Row{make(chan int)}), "argument 1[k][0]: cannot convert Go chan int to a Python value"},
		} {
			err := callError(t, m, c.fn, c.arg)
			wantConversion(t, err, c.want)
		}
		stillWorks(t, m)
	})
}

// Typed containers count towards the depth limit like any other: 100
// levels go across, 101 are refused.
func TestHostileTypedArgsDepth(t *testing.T) {
	nest := func(n int, wrap func(any) any) any {
		var v any = int64(1)
		for range n {
			v = wrap(v)
		}
		return v
	}
	wraps := map[string]func(any) any{
		"Row":       func(v any) any { return bridge.Row{v} },
		"RowOf":     func(v any) any { return bridge.RowOf([]string{"f"}, v) },
		"unnamed":   func(v any) any { return bridge.RowOf(nil, v) },
		"MapOf":     func(v any) any { return bridge.MapOf("k", v) },
		"alternate": func(v any) any { return []any{bridge.MapOf(int64(0), bridge.Row{v})} },
	}
	modes(t, func(t *testing.T) {
		m := typedModule(t)
		for name, wrap := range wraps {
			t.Run(name, func(t *testing.T) {
				levels := bridge.MaxDepth
				if name == "alternate" { // three levels a step
					levels = bridge.MaxDepth / 3
				}
				if got := call(t, m, "what", nest(levels, wrap)); got == nil {
					t.Fatalf("%d levels: nil", levels)
				}
				err := callError(t, m, "what", nest(levels+1, wrap))
				wantConversion(t, err, "argument 1", fmt.Sprintf("nested deeper than %d levels", bridge.MaxDepth))
				stillWorks(t, m)
			})
		}
	})
}
