package engine

import (
	"context"
	"errors"
	"math"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/pyudf/pyudf/bridge"
)

// Hostile values: Go arguments and Python results that used to change
// silently, crash the host or read out of bounds. Each case asserts the exact
// value or the exact error, then that the engine still answers.

const valuesSource = `
import datetime, decimal, sys
import numpy as np
from pyudf import udf, DataTypes, Row

add = udf(lambda a, b: a + b, input_types=['BIGINT', 'BIGINT'], result_type='BIGINT')
dec0 = udf(lambda x: x, input_types=['DECIMAL(10, 0)'], result_type='DECIMAL(10, 0)')
dec52 = udf(lambda x: x, input_types=['DECIMAL(5, 2)'], result_type='DECIMAL(5, 2)')
dec52_repr = udf(lambda x: repr(x), input_types=['DECIMAL(5, 2)'], result_type='STRING')
dec52_of = udf(lambda s: None if s is None else decimal.Decimal(s), input_types=['STRING'], result_type='DECIMAL(5, 2)')
dec38 = udf(lambda x: x, input_types=['DECIMAL(38, 0)'], result_type='DECIMAL(38, 0)')
show = udf(lambda x: repr(x))
ident = udf(lambda x: x)
row_repr = udf(lambda r: repr(r), input_types=['ROW<a INT, b STRING>'], result_type='STRING')
date_repr = udf(lambda d: repr(d), input_types=['DATE'], result_type='STRING')
ts_repr = udf(lambda d: repr(d), input_types=['TIMESTAMP(3)'], result_type='STRING')
ltz_repr = udf(lambda d: repr(d), input_types=['TIMESTAMP_LTZ(3)'], result_type='STRING')
float_id = udf(lambda x: x, input_types=['FLOAT'], result_type='FLOAT')
huge_float = udf(lambda x: 1e300 if x == 1 else float(x), input_types=['BIGINT'], result_type='FLOAT')
str_len = udf(lambda s: len(s), input_types=['STRING'], result_type='BIGINT')
strs_len = udf(lambda s: sum(map(len, s)), input_types=['ARRAY<STRING>'], result_type='BIGINT')
deep_repr = udf(lambda x: "ok")

class Liar(int):
    def __str__(self):
        return "1"
    __repr__ = __str__
    def __index__(self):
        return 1
    def __float__(self):
        return 1.0
liar_big = udf(lambda: Liar(2**70), input_types=[], result_type='DECIMAL(38, 0)')
liar_big_dynamic = udf(lambda: Liar(2**70))
liar_for_bigint = udf(lambda: Liar(2**70), input_types=[], result_type='BIGINT')
liar_small = udf(lambda x: Liar(x), input_types=['BIGINT'], result_type='DOUBLE')

class LyingDecimal(decimal.Decimal):
    def __str__(self):
        return "1"
lying_decimal = udf(lambda: LyingDecimal("12.34"), input_types=[], result_type='DECIMAL(5, 2)')

class Elsewhere(datetime.datetime):
    def astimezone(self, tz=None):
        return "not a datetime"
    @property
    def tzinfo(self):
        return None
elsewhere = udf(lambda: Elsewhere(2024, 5, 6, 7, 8, 9, tzinfo=datetime.timezone(datetime.timedelta(hours=2))),
                input_types=[], result_type='TIMESTAMP_LTZ(3)')
elsewhere_dynamic = udf(lambda: Elsewhere(2024, 5, 6, 7, 8, 9, tzinfo=datetime.timezone(datetime.timedelta(hours=2))))

np_int = udf(lambda x: None if x is None else np.int64(x * 2), input_types=['BIGINT'], result_type='BIGINT')
np_float32 = udf(lambda x: None if x is None else np.float32(x) / 2, input_types=['BIGINT'], result_type='FLOAT')
np_bool = udf(lambda x: None if x is None else np.bool_(x > 1), input_types=['BIGINT'], result_type='BOOLEAN')
np_int_s = udf(lambda s: np.int64(len(s)), input_types=['STRING'], result_type='BIGINT')
bytes_for_string = udf(lambda x: b"raw", input_types=['BIGINT'], result_type='STRING')
bytes_for_string_s = udf(lambda s: b"raw", input_types=['STRING'], result_type='STRING')
float_for_bigint_s = udf(lambda s: 2.0, input_types=['STRING'], result_type='BIGINT')
bool_for_double = udf(lambda x: True, input_types=['BIGINT'], result_type='DOUBLE')
np_row = udf(lambda r: Row(x=np.int64(r[0] * 3)), input_types=['ROW<x BIGINT>'], result_type='ROW<x BIGINT>')

def deep_list(n):
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 1000000))
    out = []
    for _ in range(n):
        out = [out]
    return out
deep_result = udf(deep_list, input_types=['BIGINT'], result_type='ARRAY<ARRAY<BIGINT>>')
deep_dynamic = udf(deep_list)
def cyclic():
    l = []
    l.append(l)
    return l
cyclic_result = udf(cyclic)

class Clearing:
    """Converted through normalize (a numpy-looking class): empties the list that holds it."""
    __module__ = "numpy"
    def __init__(self, holder):
        self.holder = holder
    def tolist(self):
        self.holder.clear()
        self.holder.extend(range(1000))
        return 7
def mutate_list():
    out = [1, None, 3]
    out[1] = Clearing(out)
    return out
mutating_list = udf(mutate_list)
def mutate_dict():
    out = {"a": 1, "b": None}
    class DictClearing(Clearing):
        __module__ = "numpy"
        def tolist(self):
            out.clear()
            for i in range(1000):
                out["k%d" % i] = i
            return 7
    out["b"] = DictClearing(None)
    return out
mutating_dict = udf(mutate_dict)
specials = udf(lambda x: [float("nan"), float("inf"), -float("inf"), 1.0][x], input_types=['BIGINT'], result_type='FLOAT')
specials_s = udf(lambda s: [float("nan"), float("inf"), -float("inf"), 1.0][len(s)], input_types=['STRING'], result_type='DOUBLE')
surrogate = udf(lambda x: "\ud800", input_types=['BIGINT'], result_type='STRING')
`

func valuesModule(t *testing.T) *Module {
	t.Helper()
	return loadModule(t, Config{}, "hostile_values.py", valuesSource)
}

// wantConversion checks err is a *bridge.ConversionError whose message holds parts.
func wantConversion(t *testing.T, err error, parts ...string) {
	t.Helper()
	var ce *bridge.ConversionError
	if !errors.As(err, &ce) {
		t.Fatalf("got %T %v, want a *bridge.ConversionError", err, err)
	}
	wantMessage(t, err, parts...)
}

// wantPython checks err is a *bridge.PythonError whose message holds parts.
func wantPython(t *testing.T, err error, parts ...string) {
	t.Helper()
	var pe *bridge.PythonError
	if !errors.As(err, &pe) {
		t.Fatalf("got %T %v, want a *bridge.PythonError", err, err)
	}
	wantMessage(t, err, parts...)
}

func callWant(t *testing.T, m *Module, name string, want any, args ...any) {
	t.Helper()
	if got := call(t, m, name, args...); !sameValue(got, want) {
		t.Errorf("%s%v = %#v, want %#v", name, args, got, want)
	}
}

func callError(t *testing.T, m *Module, name string, args ...any) error {
	t.Helper()
	return callErr(t, function(t, m, name), args...)
}

func TestHostileDecNegativeScale(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := valuesModule(t)
		callWant(t, m, "dec0", bridge.Dec{Unscaled: big.NewInt(5000), Scale: 0},
			bridge.Dec{Unscaled: big.NewInt(5), Scale: -3})
		callWant(t, m, "show", "Decimal('5000')", bridge.Dec{Unscaled: big.NewInt(5), Scale: -3})
		err := callError(t, m, "dec0", bridge.Dec{Unscaled: big.NewInt(1), Scale: -1 << 40})
		wantConversion(t, err, "argument 1", "Dec scale -1099511627776 is outside -10000 to 10000")
		stillWorks(t, m)
	})
}

type unexportedRow struct {
	a int
	b string
}

type missingFieldRow struct {
	A int
	C string
}

type extraFieldRow struct {
	A     int
	B     string
	Extra float64
}

type taggedRow struct {
	First  int    `pyudf:"a"`
	Second string `pyudf:"b"`
	Note   string `pyudf:"-"`
	cache  int    `pyudf:"-"`
}

func TestHostileStructFieldsNeverBecomeNull(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := valuesModule(t)
		err := callError(t, m, "row_repr", unexportedRow{1, "x"})
		wantConversion(t, err, "argument 1", "Go engine.unexportedRow field a is unexported")
		err = callError(t, m, "row_repr", missingFieldRow{1, "x"})
		wantConversion(t, err, "argument 1", `Go engine.missingFieldRow has no field for ROW<a INT, b STRING>'s field "b"`)
		err = callError(t, m, "row_repr", extraFieldRow{1, "x", 2})
		wantConversion(t, err, "argument 1", "Go engine.extraFieldRow field Extra is not a field of ROW<a INT, b STRING>")
		err = callError(t, m, "show", unexportedRow{1, "x"})
		wantConversion(t, err, "argument 1", "field a is unexported")
		callWant(t, m, "row_repr", "Row(a=1, b='x')", taggedRow{First: 1, Second: "x", Note: "left out", cache: 3})
		stillWorks(t, m)
	})
}

func TestHostileRowMapKeys(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := valuesModule(t)
		err := callError(t, m, "row_repr", map[string]any{"a": 1, "b": "x", "zz": 2})
		wantConversion(t, err, "argument 1", `map key "zz" is not a field of ROW<a INT, b STRING>`)
		err = callError(t, m, "row_repr", map[string]any{"a": 1})
		wantConversion(t, err, "argument 1", `map has no key for ROW<a INT, b STRING>'s field "b"`)
		callWant(t, m, "row_repr", "Row(a=1, b=None)", map[string]any{"a": 1, "b": nil})
		stillWorks(t, m)
	})
}

func TestHostileYearsOutsidePythonDates(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := valuesModule(t)
		far := time.Date(1<<32+2024, 5, 6, 7, 8, 9, 0, time.UTC)
		for _, name := range []string{"date_repr", "ts_repr", "ltz_repr", "show"} {
			err := callError(t, m, name, far)
			wantConversion(t, err, "argument 1", "year 4294969320 is outside Python's dates (years 1 to 9999)")
		}
		err := callError(t, m, "date_repr", time.Date(0, 12, 31, 0, 0, 0, 0, time.UTC))
		wantConversion(t, err, "year 0 is outside")
		callWant(t, m, "date_repr", "datetime.date(9999, 12, 31)", time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC))
		stillWorks(t, m)
	})
}

func TestHostileFloatOutsideFLOAT(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := valuesModule(t)
		err := callError(t, m, "float_id", 1e300)
		wantConversion(t, err, "argument 1", "1e+300 overflows FLOAT")
		for _, v := range []float64{math.Inf(1), math.Inf(-1), math.MaxFloat32} {
			callWant(t, m, "float_id", float32(v), v)
		}
		if got := call(t, m, "float_id", math.NaN()); !math.IsNaN(float64(got.(float32))) {
			t.Errorf("NaN came back as %v", got)
		}
		err = callError(t, m, "huge_float", int64(1))
		wantConversion(t, err, "result", "1e+300 overflows FLOAT")
		// Eval, the C loop (thread) and pyarrow (process): refused the same way.
		rec := batchOf(t, checkedAllocator(t), arrow.PrimitiveTypes.Int64, `[2, 1]`)
		_, err = function(t, m, "huge_float").Eval(context.Background(), rec)
		wantConversion(t, err, "row 1: result: 1e+300 overflows FLOAT")
		stillWorks(t, m)
	})
}

func TestHostileDecimalRoundsHalfUpAsFlink(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := valuesModule(t)
		d := func(s string) bridge.Dec {
			v, err := bridge.ParseDec(s)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		for in, want := range map[string]string{"1.005": "1.01", "-1.005": "-1.01", "1.004": "1.00", "2.675": "2.68", "999.994": "999.99"} {
			if got := call(t, m, "dec52", in).(bridge.Dec); got.String() != want {
				t.Errorf("DECIMAL(5, 2) argument %s arrived as %s, want %s", in, got, want)
			}
			if got := call(t, m, "dec52_of", in).(bridge.Dec); got.String() != want {
				t.Errorf("DECIMAL(5, 2) result %s came back as %s, want %s", in, got, want)
			}
		}
		callWant(t, m, "dec52_repr", "Decimal('1.01')", d("1.005"))
		err := callError(t, m, "dec52", "999.995")
		wantConversion(t, err, "argument 1", "1000.00 does not fit DECIMAL(5, 2)") // 999.995 rounded
		err = callError(t, m, "dec52_of", "1000")
		wantConversion(t, err, "result", "1000.00 does not fit DECIMAL(5, 2)")
		// Eval (a STRING column: the pyarrow path) rounds and refuses the same.
		rec := batchOf(t, checkedAllocator(t), arrow.BinaryTypes.String, `["1.005", "-2.675", null]`)
		if got := eval(t, m, "dec52_of", rec); got != `["1.01","-2.68",null]` {
			t.Errorf("Eval rounded to %s", got)
		}
		bad := batchOf(t, checkedAllocator(t), arrow.BinaryTypes.String, `["1", "1000"]`)
		_, err = function(t, m, "dec52_of").Eval(context.Background(), bad)
		wantConversion(t, err, "row 1: result: 1000.00 does not fit DECIMAL(5, 2)")
		stillWorks(t, m)
	})
}

func TestHostileIntSubclassWithLyingMethods(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := valuesModule(t)
		want := new(big.Int).Lsh(big.NewInt(1), 70)
		if got := call(t, m, "liar_big").(bridge.Dec); got.Unscaled.Cmp(want) != 0 || got.Scale != 0 {
			t.Errorf("Liar(2**70) as DECIMAL(38, 0) = %s, want %s", got, want)
		}
		if got, ok := call(t, m, "liar_big_dynamic").(*big.Int); !ok || got.Cmp(want) != 0 {
			t.Errorf("Liar(2**70) undeclared = %v, want %s", got, want)
		}
		err := callError(t, m, "liar_for_bigint")
		wantConversion(t, err, "result", "1180591620717411303424 overflows BIGINT")
		callWant(t, m, "liar_small", float64(41), int64(41))
		rec := batchOf(t, checkedAllocator(t), arrow.PrimitiveTypes.Int64, `[41, 5]`)
		if got := eval(t, m, "liar_small", rec); got != `[41,5]` {
			t.Errorf("Eval of Liar(x) as DOUBLE = %s", got)
		}
		stillWorks(t, m)
	})
}

func TestHostileDecimalSubclassWithLyingStr(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := valuesModule(t)
		if got := call(t, m, "lying_decimal").(bridge.Dec); got.String() != "12.34" {
			t.Errorf("LyingDecimal('12.34') = %s", got)
		}
		stillWorks(t, m)
	})
}

func TestHostileDatetimeSubclassWithLyingAstimezone(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := valuesModule(t)
		want := time.Date(2024, 5, 6, 5, 8, 9, 0, time.UTC)
		for _, name := range []string{"elsewhere", "elsewhere_dynamic"} {
			if got := call(t, m, name).(time.Time); !got.Equal(want) {
				t.Errorf("%s = %v, want %v", name, got, want)
			}
		}
		stillWorks(t, m)
	})
}

// numpy scalars are accepted by every path, as Call accepts them.
func TestHostileNumpyScalarsEveryPath(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := valuesModule(t)
		callWant(t, m, "np_int", int64(6), int64(3))
		callWant(t, m, "np_float32", float32(1.5), int64(3))
		callWant(t, m, "np_bool", true, int64(3))
		mem := checkedAllocator(t)
		ints := batchOf(t, mem, arrow.PrimitiveTypes.Int64, `[1, 3, null]`)
		for name, want := range map[string]string{"np_int": `[2,6,null]`, "np_float32": `[0.5,1.5,null]`, "np_bool": `[false,true,null]`} {
			if got := eval(t, m, name, ints); got != want {
				t.Errorf("Eval %s = %s, want %s", name, got, want)
			}
		}
		strs := batchOf(t, mem, arrow.BinaryTypes.String, `["ab", "abcd"]`)
		if got := eval(t, m, "np_int_s", strs); got != `[2,4]` {
			t.Errorf("Eval np_int_s (the pyarrow path) = %s", got)
		}
		res, errs, err := function(t, m, "np_int_s").EvalRowErrors(context.Background(), strs)
		if err != nil {
			t.Fatal(err)
		}
		if got := jsonOf(t, res); got != `[2,4]` || errs.NullN() != 2 {
			t.Errorf("EvalRowErrors np_int_s = %s, %s", got, jsonOf(t, errs))
		}
		res.Release()
		errs.Release()
		rows := renamed(t, batchOf(t, mem, arrow.PrimitiveTypes.Int64, `[1, 2]`), "x")
		if got := mapJSON(t, m, "np_row", rows); got != `[{"x":3},{"x":6}]` {
			t.Errorf("Map np_row = %s", got)
		}
		stillWorks(t, m)
	})
}

// A result Call refuses is refused by every Eval path too (EvalRowErrors
// refuses the row, not the batch).
func TestHostileResultsCallRefusesEvalRefuses(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := valuesModule(t)
		wantConversion(t, callError(t, m, "bytes_for_string", int64(1)), "result", "Python bytes is not a STRING")
		wantConversion(t, callError(t, m, "bool_for_double", int64(1)), "result", "Python bool is not a DOUBLE")
		wantConversion(t, callError(t, m, "float_for_bigint_s", "s"), "result", "Python float is not a BIGINT")
		mem := checkedAllocator(t)
		ints := batchOf(t, mem, arrow.PrimitiveTypes.Int64, `[1]`)
		strs := batchOf(t, mem, arrow.BinaryTypes.String, `["s"]`)
		for _, c := range []struct {
			name string
			rec  arrow.RecordBatch
			want string
		}{
			{"bytes_for_string", ints, "result: Python bytes is not a STRING"},
			{"bytes_for_string_s", strs, "result: Python bytes is not a STRING"},
			{"bool_for_double", ints, "result: Python bool is not a DOUBLE"},
			{"float_for_bigint_s", strs, "result: Python float is not a BIGINT"},
		} {
			_, err := function(t, m, c.name).Eval(context.Background(), c.rec)
			wantConversion(t, err, "row 0: "+c.want)
			res, errs, err := function(t, m, c.name).EvalRowErrors(context.Background(), c.rec)
			if err != nil {
				t.Fatalf("EvalRowErrors %s: %v", c.name, err)
			}
			if msg := errs.ValueStr(0); res.IsValid(0) || msg != "ConversionError: "+c.want {
				t.Errorf("EvalRowErrors %s: result %s, message %q; want null and %q", c.name, res.ValueStr(0), msg, "ConversionError: "+c.want)
			}
			res.Release()
			errs.Release()
		}
		stillWorks(t, m)
	})
}

func TestHostileInvalidUTF8Argument(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := valuesModule(t)
		bad := "ok\xff\xfe"
		wantConversion(t, callError(t, m, "str_len", bad), "argument 1", `Go string "ok\xff\xfe" is not valid UTF-8 (byte 2 of 4)`)
		wantConversion(t, callError(t, m, "strs_len", []string{"a", bad}), "argument 1[1]", "is not valid UTF-8")
		wantConversion(t, callError(t, m, "show", map[string]any{bad: 1}), "argument 1", "is not valid UTF-8")
		wantConversion(t, callError(t, m, "str_len", "\xed\xa0\x80"), "is not valid UTF-8") // a surrogate
		callWant(t, m, "str_len", int64(1), "é")
		stillWorks(t, m)
	})
}

// An Arrow STRING column holding invalid UTF-8 (arrow-go does not check) is a
// clear error from pyarrow, not a crash.
func TestHostileInvalidUTF8ArrowColumn(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := valuesModule(t)
		b := array.NewStringBuilder(checkedAllocator(t))
		b.Append("fine")
		b.Append("bad\xff")
		col := b.NewArray()
		b.Release()
		rec := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true}}, nil),
			[]arrow.Array{col}, 2)
		col.Release()
		defer rec.Release()
		_, err := function(t, m, "str_len").Eval(context.Background(), rec)
		if modeOf(t.Name()) == Process {
			// The IPC reader in the worker validates nothing either: pyarrow's to_pylist refuses the bytes.
			wantMessage(t, err, "UnicodeDecodeError")
		} else {
			wantPython(t, err, "UnicodeDecodeError")
		}
		stillWorks(t, m)
	})
}

func nested(n int) any {
	var v any = int64(1)
	for range n {
		v = []any{v}
	}
	return v
}

func TestHostileDeepAndCyclicGoArguments(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := valuesModule(t)
		deep := "nested deeper than 100 levels (or cyclic)"
		callWant(t, m, "deep_repr", "ok", nested(bridge.MaxDepth))
		wantConversion(t, callError(t, m, "deep_repr", nested(bridge.MaxDepth+1)), "argument 1", deep)
		wantConversion(t, callError(t, m, "deep_repr", nested(100_000)), "argument 1", deep)
		self := []any{nil}
		self[0] = self
		wantConversion(t, callError(t, m, "deep_repr", self), "argument 1", deep)
		loop := map[string]any{}
		loop["me"] = loop
		wantConversion(t, callError(t, m, "deep_repr", loop), "argument 1", deep)
		type pointer *pointer
		p := new(pointer)
		*p = p
		wantConversion(t, callError(t, m, "deep_repr", p), "argument 1", deep)
		stillWorks(t, m)
	})
}

func TestHostileDeepAndCyclicPythonResults(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := valuesModule(t)
		deep := "nested deeper than 100 levels (or cyclic)"
		wantConversion(t, callError(t, m, "deep_dynamic", int64(200_000)), "result: "+deep)
		wantConversion(t, callError(t, m, "deep_result", int64(200_000)), "result: "+deep)
		wantConversion(t, callError(t, m, "cyclic_result"), "result: "+deep)
		got := call(t, m, "deep_dynamic", int64(bridge.MaxDepth-1))
		for range bridge.MaxDepth - 1 {
			got = got.([]any)[0]
		}
		if l, ok := got.([]any); !ok || len(l) != 0 {
			t.Errorf("99 levels: innermost %#v", got)
		}
		stillWorks(t, m)
	})
}

// Converting an item may run Python code that changes the container: the
// encoder works on a copy, so the result is the container as it was.
func TestHostileContainerMutatedWhileConverted(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := valuesModule(t)
		callWant(t, m, "mutating_list", []any{int64(1), int64(7), int64(3)})
		callWant(t, m, "mutating_dict", map[any]any{"a": int64(1), "b": int64(7)})
		stillWorks(t, m)
	})
}

func TestHostileBigIntArguments(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := valuesModule(t)
		big70 := new(big.Int).Lsh(big.NewInt(1), 70)
		callWant(t, m, "show", "1180591620717411303424", big70)
		if got, ok := call(t, m, "ident", big70).(*big.Int); !ok || got.Cmp(big70) != 0 {
			t.Errorf("ident(2^70) = %v", got)
		}
		callWant(t, m, "show", "42", big.NewInt(42))
		wantConversion(t, callError(t, m, "add", big70, int64(1)), "argument 1", "1180591620717411303424 overflows BIGINT")
		callWant(t, m, "add", int64(43), big.NewInt(42), int64(1))
		if got := call(t, m, "dec38", big70).(bridge.Dec); got.Unscaled.Cmp(big70) != 0 {
			t.Errorf("DECIMAL(38, 0) of 2^70 = %s", got)
		}
		stillWorks(t, m)
	})
}

func TestHostileResultRowMissingField(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := loadModule(t, Config{}, "rows_missing.py", `
from pyudf import udf, Row
add = udf(lambda a, b: a + b, input_types=['BIGINT', 'BIGINT'], result_type='BIGINT')
as_dict = udf(lambda: {"a": 1}, input_types=[], result_type='ROW<a INT, b STRING>')
as_row = udf(lambda: Row(a=1), input_types=[], result_type='ROW<a INT, b STRING>')
full = udf(lambda: {"a": 1, "b": None}, input_types=[], result_type='ROW<a INT, b STRING>')
`)
		for _, name := range []string{"as_dict", "as_row"} {
			wantConversion(t, callError(t, m, name), "result", `field "b" of ROW<a INT, b STRING> is missing`)
		}
		callWant(t, m, "full", bridge.Row{int32(1), nil})
		stillWorks(t, m)
	})
}

// Go's wire decoder meets data no Python encoder writes (see also FuzzDecodeResult).
func TestHostileMalformedResultData(t *testing.T) {
	for _, b := range [][]byte{
		{bridge.TagList, 0xff, 0xff, 0xff, 0xff},                // 4G items in 4 bytes
		{bridge.TagDate, 0, 0, 0, 0, 13, 40},                    // year 0, month 13
		{bridge.TagTime, 25, 0, 0, 0, 0, 0, 0},                  // hour 25
		{bridge.TagRow, 0xff, 0xff, 0xff, 0x7f},                 // a huge ROW
		{bridge.TagStr, 10, 0, 0, 0, 'a'},                       // truncated text
		{bridge.TagMap, 1, 0, 0, 0, bridge.TagList, 0, 0, 0, 0}, // an unhashable key
	} {
		_, _, err := bridge.DecodeResult(b, nil)
		var ce *bridge.ConversionError
		if !errors.As(err, &ce) {
			t.Errorf("DecodeResult(% x) = %v, want a ConversionError", b, err)
		}
	}
	deep := make([]byte, 0, 5*(bridge.MaxDepth+1)+1)
	for range bridge.MaxDepth + 1 {
		deep = append(deep, bridge.TagList, 1, 0, 0, 0)
	}
	deep = append(deep, bridge.TagNull)
	if _, _, err := bridge.DecodeResult(deep, nil); err == nil || !strings.Contains(err.Error(), "nested deeper than 100 levels") {
		t.Errorf("101 levels decoded: %v", err)
	}
}

// NaN and the infinities are FLOAT and DOUBLE values: they pass on every path.
func TestHostileNaNAndInfinitiesPass(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := valuesModule(t)
		if got := call(t, m, "specials", int64(0)).(float32); !math.IsNaN(float64(got)) {
			t.Errorf("NaN came back as %v", got)
		}
		callWant(t, m, "specials", float32(math.Inf(1)), int64(1))
		callWant(t, m, "specials", float32(math.Inf(-1)), int64(2))
		mem := checkedAllocator(t)
		res, err := function(t, m, "specials").Eval(context.Background(), batchOf(t, mem, arrow.PrimitiveTypes.Int64, `[0, 1, 2, 3]`))
		if err != nil {
			t.Fatal(err)
		}
		f := res.(*array.Float32)
		if !math.IsNaN(float64(f.Value(0))) || !math.IsInf(float64(f.Value(1)), 1) || !math.IsInf(float64(f.Value(2)), -1) || f.Value(3) != 1 || f.NullN() != 0 {
			t.Errorf("Eval (fixed-width) specials = %v", f)
		}
		res.Release()
		res, err = function(t, m, "specials_s").Eval(context.Background(), batchOf(t, mem, arrow.BinaryTypes.String, `["", "a", "ab", "abc"]`))
		if err != nil {
			t.Fatal(err)
		}
		d := res.(*array.Float64)
		if !math.IsNaN(d.Value(0)) || !math.IsInf(d.Value(1), 1) || !math.IsInf(d.Value(2), -1) || d.Value(3) != 1 {
			t.Errorf("Eval (pyarrow) specials = %v", d)
		}
		res.Release()
		stillWorks(t, m)
	})
}

// A str that cannot be UTF-8 (a lone surrogate) is refused as a STRING result.
func TestHostileSurrogateStringResult(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := valuesModule(t)
		wantConversion(t, callError(t, m, "surrogate", int64(1)), "result: ", "surrogates not allowed")
		_, err := function(t, m, "surrogate").Eval(context.Background(), batchOf(t, checkedAllocator(t), arrow.PrimitiveTypes.Int64, `[1]`))
		wantConversion(t, err, "result: ", "surrogates not allowed")
		stillWorks(t, m)
	})
}
