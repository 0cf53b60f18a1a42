package engine

import (
	"context"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pyudf/pyudf/bridge"
)

// typeCase is one SQL type with a Go value, the repr Python must see for it,
// and a Python literal that must come back as that Go value.
type typeCase struct {
	ddl     string
	goValue any    // what Go sends
	want    any    // what Go gets back (nil: goValue)
	repr    string // repr() of the value inside Python
	literal string // Python expression for the same value
}

var zone = time.FixedZone("UTC+2", 2*3600)

var typeCases = []typeCase{
	{"BOOLEAN", true, nil, "True", "True"},
	{"BOOLEAN", false, nil, "False", "1 == 2"},
	{"TINYINT", int8(-128), nil, "-128", "-128"},
	{"SMALLINT", int16(32767), nil, "32767", "32767"},
	{"INT", int32(math.MinInt32), nil, "-2147483648", "-2**31"},
	{"BIGINT", int64(math.MaxInt64), nil, "9223372036854775807", "2**63 - 1"},
	{"FLOAT", float32(1.5), nil, "1.5", "1.5"},
	{"DOUBLE", 3.25, nil, "3.25", "3.25"},
	{"DECIMAL(10, 2)", bridge.Dec{Unscaled: big.NewInt(-1234), Scale: 2}, nil, "Decimal('-12.34')", "decimal.Decimal('-12.34')"},
	{"DECIMAL(38, 18)", "12345678901234567890.123456789012345678",
		bridge.Dec{Unscaled: mustBig("12345678901234567890123456789012345678"), Scale: 18},
		"Decimal('12345678901234567890.123456789012345678')",
		"decimal.Decimal('12345678901234567890.123456789012345678')"},
	{"STRING", "héllo 世界", nil, "'héllo 世界'", "'héllo 世界'"},
	{"VARCHAR(5)", "", nil, "''", "''"},
	{"BYTES", []byte{0, 1, 255}, nil, `b'\x00\x01\xff'`, `b'\x00\x01\xff'`},
	{"DATE", time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), nil, "datetime.date(2024, 2, 29)", "datetime.date(2024, 2, 29)"},
	{"TIME(6)", 13*time.Hour + 45*time.Minute + 30*time.Second + 123456*time.Microsecond, nil,
		"datetime.time(13, 45, 30, 123456)", "datetime.time(13, 45, 30, 123456)"},
	{"TIMESTAMP(6)", time.Date(2024, 1, 2, 3, 4, 5, 678900000, time.UTC), nil,
		"datetime.datetime(2024, 1, 2, 3, 4, 5, 678900)", "datetime.datetime(2024, 1, 2, 3, 4, 5, 678900)"},
	{"TIMESTAMP_LTZ(3)", time.Date(2024, 1, 2, 3, 4, 5, 0, zone), time.Date(2024, 1, 2, 1, 4, 5, 0, time.UTC),
		"datetime.datetime(2024, 1, 2, 1, 4, 5, tzinfo=datetime.timezone.utc)",
		"datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))"},
	{"ARRAY<BIGINT>", []int64{1, 2, 3}, []any{int64(1), int64(2), int64(3)}, "[1, 2, 3]", "[1, 2, 3]"},
	{"ARRAY<STRING>", []any{"a", nil}, nil, "['a', None]", "('a', None)"},
	{"MAP<STRING, BIGINT>", map[string]int64{"a": 1}, map[any]any{"a": int64(1)}, "{'a': 1}", "{'a': 1}"},
	{"MAP<INT, ARRAY<DOUBLE>>", map[int32][]float64{7: {0.5}}, map[any]any{int32(7): []any{0.5}}, "{7: [0.5]}", "{7: [0.5]}"},
	{"ROW<a INT, b STRING>", bridge.Row{int32(1), "x"}, nil, "Row(a=1, b='x')", "Row(a=1, b='x')"},
	{"ROW<a INT, b STRING>", map[string]any{"a": int32(2), "b": nil}, bridge.Row{int32(2), nil}, "Row(a=2, b=None)", "(2, None)"},
	{"ROW<id BIGINT, tags ARRAY<STRING>>", struct {
		ID   int64
		Tags []string `pyudf:"tags"`
	}{5, []string{"t"}}, bridge.Row{int64(5), []any{"t"}}, "Row(id=5, tags=['t'])", "{'id': 5, 'tags': ['t']}"},
	{"ARRAY<ROW<k STRING, v MAP<STRING, ARRAY<TIMESTAMP(3)>>>>",
		[]any{bridge.Row{"k1", map[string]any{"m": []any{time.Date(2020, 5, 6, 7, 8, 9, 0, time.UTC), nil}}}},
		[]any{bridge.Row{"k1", map[any]any{"m": []any{time.Date(2020, 5, 6, 7, 8, 9, 0, time.UTC), nil}}}},
		"[Row(k='k1', v={'m': [datetime.datetime(2020, 5, 6, 7, 8, 9), None]})]",
		"[Row(k='k1', v={'m': [datetime.datetime(2020, 5, 6, 7, 8, 9), None]})]"},
}

func mustBig(s string) *big.Int {
	n, ok := new(big.Int).SetString(s, 10)
	if !ok {
		panic(s)
	}
	return n
}

// typeModule defines, for case i, ident_i (T -> T), repr_i (T -> STRING) and
// make_i (() -> T, returning the case's Python literal).
func typeModule(t *testing.T, cases []typeCase) *Module {
	var src strings.Builder
	src.WriteString("import datetime, decimal\nfrom pyudf import udf, Row\n")
	for i, c := range cases {
		fmt.Fprintf(&src, "ident_%d = udf(lambda x: x, input_types=[%q], result_type=%q)\n", i, c.ddl, c.ddl)
		fmt.Fprintf(&src, "repr_%d = udf(lambda x: repr(x), input_types=[%q], result_type='STRING')\n", i, c.ddl)
		fmt.Fprintf(&src, "make_%d = udf(lambda: %s, input_types=[], result_type=%q)\n", i, c.literal, c.ddl)
	}
	return loadModule(t, Config{}, "types_cases.py", src.String())
}

func call(t *testing.T, m *Module, name string, args ...any) any {
	t.Helper()
	f, err := m.Function(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	v, err := f.Call(context.Background(), args...)
	if err != nil {
		t.Fatalf("%s%v: %v", name, args, err)
	}
	return v
}

func TestTypeRoundTrip(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := typeModule(t, typeCases)
		for i, c := range typeCases {
			t.Run(fmt.Sprintf("%d_%s", i, c.ddl), func(t *testing.T) {
				want := c.want
				if want == nil {
					want = c.goValue
				}
				// Go -> Python: the value Python sees.
				if got := call(t, m, fmt.Sprintf("repr_%d", i), c.goValue); got != c.repr {
					t.Errorf("Python sees %v, want %s", got, c.repr)
				}
				// Go -> Python -> Go.
				if got := call(t, m, fmt.Sprintf("ident_%d", i), c.goValue); !sameValue(got, want) {
					t.Errorf("round trip gave %#v, want %#v", got, want)
				}
				// Python -> Go.
				if got := call(t, m, fmt.Sprintf("make_%d", i)); !sameValue(got, want) {
					t.Errorf("Python literal %s gave %#v, want %#v", c.literal, got, want)
				}
				// NULL both ways.
				if got := call(t, m, fmt.Sprintf("ident_%d", i), nil); got != nil {
					t.Errorf("nil came back as %#v", got)
				}
				if got := call(t, m, fmt.Sprintf("repr_%d", i), nil); got != "None" {
					t.Errorf("nil is %v in Python, want None", got)
				}
			})
		}
	})
}

// sameValue is reflect.DeepEqual, except that times and decimals compare as values.
func sameValue(a, b any) bool {
	switch x := a.(type) {
	case time.Time:
		y, ok := b.(time.Time)
		return ok && x.Equal(y)
	case bridge.Dec:
		y, ok := b.(bridge.Dec)
		return ok && x.Equal(y) && x.Scale == y.Scale
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameValue(x[i], y[i]) {
				return false
			}
		}
		return true
	case bridge.Row:
		y, ok := b.(bridge.Row)
		return ok && sameValue([]any(x), []any(y))
	case map[any]any:
		y, ok := b.(map[any]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			if !sameValue(v, y[k]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}

// Without declared types, values convert by their Go and Python types.
func TestUndeclaredTypes(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := loadModule(t, Config{}, "untyped.py", `
import datetime, decimal
def echo(x):
    return x
def kinds(*args):
    return [type(a).__name__ for a in args]
def big():
    return 2**70
`)
		when := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
		got := call(t, m, "kinds", true, 1, 2.5, "s", []byte("b"), when, []int{1}, map[string]int{"a": 1},
			bridge.Dec{Unscaled: big.NewInt(5), Scale: 1}, nil)
		want := []any{"bool", "int", "float", "str", "bytes", "datetime", "list", "dict", "Decimal", "NoneType"}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Python types %v, want %v", got, want)
		}
		for _, v := range []any{true, int64(-3), 2.5, "s", []byte("b"), []any{int64(1), "x"}, map[any]any{"a": int64(1)}} {
			if got := call(t, m, "echo", v); !sameValue(got, v) {
				t.Errorf("echo(%#v) = %#v", v, got)
			}
		}
		if got := call(t, m, "echo", when); !sameValue(got, when) {
			t.Errorf("echo(time) = %v", got)
		}
		if got, ok := call(t, m, "big").(*big.Int); !ok || got.String() != "1180591620717411303424" {
			t.Errorf("2**70 came back as %#v", got)
		}
	})
}

func TestResultConversions(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := loadModule(t, Config{}, "results.py", `
import numpy as np
from pyudf import udf
int_for_double = udf(lambda: 3, input_types=[], result_type='DOUBLE')
numpy_int = udf(lambda: np.int64(7), input_types=[], result_type='BIGINT')
numpy_array = udf(lambda: np.array([1.5, 2.5]), input_types=[], result_type='ARRAY<DOUBLE>')
rounded = udf(lambda: 1.005, input_types=[], result_type='DECIMAL(5, 1)')
float_arg = udf(lambda x: x * 2, input_types=['DOUBLE'], result_type='DOUBLE')
`)
		if got := call(t, m, "int_for_double"); got != 3.0 {
			t.Errorf("int for DOUBLE = %#v", got)
		}
		if got := call(t, m, "numpy_int"); got != int64(7) {
			t.Errorf("numpy int64 = %#v", got)
		}
		if got := call(t, m, "numpy_array"); !sameValue(got, []any{1.5, 2.5}) {
			t.Errorf("numpy array = %#v", got)
		}
		if got := call(t, m, "rounded").(bridge.Dec); got.String() != "1.0" {
			t.Errorf("1.005 as DECIMAL(5, 1) = %s", got)
		}
		if got := call(t, m, "float_arg", 4); got != 8.0 {
			t.Errorf("int argument for DOUBLE: %#v", got)
		}
	})
}
