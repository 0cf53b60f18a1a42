package bridge

import (
	"errors"
	"math/big"
	"testing"
)

func TestParseTypeCanonicalSpelling(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"bigint", "BIGINT"},
		{"INTEGER NOT NULL", "INT NOT NULL"},
		{"BOOL NULL", "BOOLEAN"},
		{"DOUBLE PRECISION", "DOUBLE"},
		{"DECIMAL", "DECIMAL(10, 0)"},
		{"numeric(38,18)", "DECIMAL(38, 18)"},
		{"DEC(5)", "DECIMAL(5, 0)"},
		{"STRING", "STRING"},
		{"VARCHAR(2147483647)", "STRING"},
		{"VARCHAR", "VARCHAR(1)"},
		{"CHAR(3)", "CHAR(3)"},
		{"BYTES", "BYTES"},
		{"BINARY(16)", "BINARY(16)"},
		{"VARBINARY(8)", "VARBINARY(8)"},
		{"DATE", "DATE"},
		{"TIME", "TIME(0)"},
		{"TIME(3) WITHOUT TIME ZONE", "TIME(3)"},
		{"TIMESTAMP", "TIMESTAMP(6)"},
		{"TIMESTAMP(3) WITH LOCAL TIME ZONE", "TIMESTAMP_LTZ(3)"},
		{"TIMESTAMP_LTZ", "TIMESTAMP_LTZ(6)"},
		{"ARRAY<ARRAY<INT NOT NULL>>", "ARRAY<ARRAY<INT NOT NULL>>"},
		{"MAP<STRING, ARRAY<DOUBLE>> NOT NULL", "MAP<STRING, ARRAY<DOUBLE>> NOT NULL"},
		{"ROW<a INT, `b c` STRING, `d``e` ROW<x BIGINT>>", "ROW<a INT, `b c` STRING, `d``e` ROW<x BIGINT>>"},
		{"ROW(a INT, b STRING)", "ROW<a INT, b STRING>"},
		{"ROW<>", "ROW<>"},
	} {
		typ, err := ParseType(c.in)
		if err != nil {
			t.Errorf("ParseType(%q): %v", c.in, err)
			continue
		}
		if got := typ.String(); got != c.want {
			t.Errorf("ParseType(%q) = %s, want %s", c.in, got, c.want)
		}
		if again, err := ParseType(typ.String()); err != nil || again.String() != c.want {
			t.Errorf("re-parsing %s: %v, %v", c.want, again, err)
		}
	}
}

func TestParseTypeErrors(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", `invalid type "" at offset 0: expected a type, found the end`},
		{"BIGNT", `invalid type "BIGNT" at offset 0: unknown type "BIGNT"`},
		{"ARRAY<INT", `invalid type "ARRAY<INT" at offset 9: expected ">", found the end`},
		{"MAP<STRING>", `invalid type "MAP<STRING>" at offset 10: expected ",", found ">"`},
		{"DECIMAL(39, 2)", `invalid type "DECIMAL(39, 2)" at offset 0: DECIMAL precision must be 1 to 38 and scale 0 to the precision, not (39, 2)`},
		{"DECIMAL(5, 6)", `invalid type "DECIMAL(5, 6)" at offset 0: DECIMAL precision must be 1 to 38 and scale 0 to the precision, not (5, 6)`},
		{"TIMESTAMP(12)", `invalid type "TIMESTAMP(12)" at offset 0: TIMESTAMP precision must be 0 to 9, not 12`},
		{"ROW<a INT, a STRING>", `invalid type "ROW<a INT, a STRING>" at offset 11: duplicate field name "a"`},
		{"ROW<1a INT>", `invalid type "ROW<1a INT>" at offset 4: expected a field name, found "1a"`},
		{"INT INT", `invalid type "INT INT" at offset 4: unexpected "INT" after the type`},
		{"VARCHAR(x)", `invalid type "VARCHAR(x)" at offset 8: expected a number, found "x"`},
		{"ROW<`a INT>", "invalid type \"ROW<`a INT>\" at offset 4: unterminated `name`"},
	} {
		_, err := ParseType(c.in)
		var te *TypeError
		if !errors.As(err, &te) || err.Error() != c.want {
			t.Errorf("ParseType(%q) error = %v\n want %s", c.in, err, c.want)
		}
	}
}

func TestDec(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"12.340", "12.340"}, {"-0.5", "-0.5"}, {"7", "7"}, {"1E+3", "1000"},
		{"1.5E-3", "0.0015"}, {"-0.001", "-0.001"},
	} {
		d, err := ParseDec(c.in)
		if err != nil || d.String() != c.want {
			t.Errorf("ParseDec(%q) = %s, %v; want %s", c.in, d, err, c.want)
		}
	}
	for _, bad := range []string{"", "abc", "1/2", "NaN"} {
		if _, err := ParseDec(bad); err == nil {
			t.Errorf("ParseDec(%q) accepted", bad)
		}
	}
	typ := MustParseType("DECIMAL(4, 1)")
	for _, c := range []struct {
		in   string
		want string
		fits bool
	}{{"123.44", "123.4", true}, {"123.45", "123.5", true}, {"-999.94", "-999.9", true}, {"999.95", "1000.0", false}} {
		r, _ := new(big.Rat).SetString(c.in)
		d, fits := fitDec(r, typ)
		if d.String() != c.want || fits != c.fits {
			t.Errorf("fitDec(%s) = %s, %v; want %s, %v", c.in, d, fits, c.want, c.fits)
		}
	}
}

func TestValueKinds(t *testing.T) {
	type celsius float64
	for _, c := range []struct {
		in   any
		kind ValueKind
	}{
		{nil, KindNull}, {true, KindBool}, {int8(1), KindInt8}, {int16(1), KindInt16}, {int32(1), KindInt32},
		{7, KindInt64}, {uint32(7), KindInt64}, {float32(1), KindFloat32}, {1.0, KindFloat64},
		{"s", KindString}, {[]byte("b"), KindBytes}, {celsius(1), KindAny}, {^uint64(0), KindAny},
	} {
		if got := ValueOf(c.in).Kind(); got != c.kind {
			t.Errorf("ValueOf(%#v).Kind() = %d, want %d", c.in, got, c.kind)
		}
	}
	if got, _ := plainValue(ValueOf(celsius(1.5))); got.Kind() != KindFloat64 || got.AsFloat64() != 1.5 {
		t.Errorf("named float converts to %v", got)
	}
	if s := String("héllo"); s.AsString() != "héllo" || s.Any() != "héllo" {
		t.Errorf("String round trip: %v", s)
	}
}
