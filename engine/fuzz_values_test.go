package engine

import (
	"context"
	"errors"
	"math"
	"math/big"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/pyudf/pyudf/bridge"
	"github.com/pyudf/pyudf/cgo"
)

// valueGen builds a Go value from fuzz bytes, and the value an undeclared
// identity UDF must give back for it.
type valueGen struct{ b []byte }

// refused reports whether v must be refused: a string that is not UTF-8, or
// a container at depth bridge.MaxDepth.
func refused(v any, depth int) bool {
	switch x := v.(type) {
	case string:
		return !utf8.ValidString(x)
	case []any:
		if depth >= bridge.MaxDepth {
			return true
		}
		for _, e := range x {
			if refused(e, depth+1) {
				return true
			}
		}
	case map[string]any:
		if depth >= bridge.MaxDepth {
			return true
		}
		for k, e := range x {
			if !utf8.ValidString(k) || refused(e, depth+1) {
				return true
			}
		}
	}
	return false
}

func (g *valueGen) byte() byte {
	if len(g.b) == 0 {
		return 0
	}
	c := g.b[0]
	g.b = g.b[1:]
	return c
}

func (g *valueGen) uint64() uint64 {
	var v uint64
	for range 8 {
		v = v<<8 | uint64(g.byte())
	}
	return v
}

func (g *valueGen) text() string {
	n := int(g.byte() % 16)
	if n > len(g.b) {
		n = len(g.b)
	}
	s := string(g.b[:n])
	g.b = g.b[n:]
	return s
}

func (g *valueGen) value(depth int) (in, want any) {
	switch g.byte() % 10 {
	case 0:
		return nil, nil
	case 1:
		v := g.byte()%2 == 1
		return v, v
	case 2:
		v := int64(g.uint64())
		return v, v
	case 3:
		v := math.Float64frombits(g.uint64())
		return v, v
	case 4:
		s := g.text()
		return s, s
	case 5:
		s := []byte(g.text())
		return s, s
	case 6:
		if depth >= 110 {
			return nil, nil
		}
		n := int(g.byte() % 4)
		in, want := make([]any, n), make([]any, n)
		for i := range n {
			in[i], want[i] = g.value(depth + 1)
		}
		return in, want
	case 7:
		if depth >= 110 {
			return nil, nil
		}
		n := int(g.byte() % 3)
		in, want := map[string]any{}, map[any]any{}
		for range n {
			k := g.text()
			in[k], want[k] = g.value(depth + 1)
		}
		return in, want
	case 8:
		y := 1 + int(uint16(g.byte())<<8|uint16(g.byte()))%9999
		tm := time.Date(y, time.Month(1+g.byte()%12), 1+int(g.byte()%28), int(g.byte()%24), int(g.byte()%60),
			int(g.byte()%60), int(g.uint64()%1e6)*1000, time.UTC)
		return tm, tm
	default:
		d := bridge.Dec{Unscaled: big.NewInt(int64(g.uint64())), Scale: int(g.byte()%40) - 10}
		return d, d
	}
}

// same compares a round-tripped value with the expected one: floats by
// bits (NaN is NaN), decimals by value, times by instant.
func same(got, want any) bool {
	switch w := want.(type) {
	case float64:
		g, ok := got.(float64)
		return ok && math.Float64bits(g) == math.Float64bits(w)
	case bridge.Dec:
		g, ok := got.(bridge.Dec)
		return ok && g.Equal(w)
	case time.Time:
		g, ok := got.(time.Time)
		return ok && g.Equal(w)
	case []byte:
		g, ok := got.([]byte)
		return ok && string(g) == string(w)
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if !same(g[i], w[i]) {
				return false
			}
		}
		return true
	case map[any]any:
		g, ok := got.(map[any]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for k, v := range w {
			if !same(g[k], v) {
				return false
			}
		}
		return true
	}
	return got == want
}

// Go -> wire -> Python -> wire -> Go through a real engine (thread mode, an
// identity UDF): the value comes back equal, or the call is refused with a
// *ConversionError saying why (a string that is not UTF-8, nesting past
// bridge.MaxDepth); never a crash, and the engine answers afterwards.
func FuzzRoundTrip(f *testing.F) {
	m := loadModule(f, Config{Mode: Thread}, "fuzz_ident.py", `
from pyudf import udf
ident = udf(lambda x: x)
add = udf(lambda a, b: a + b, input_types=['BIGINT', 'BIGINT'], result_type='BIGINT')
`)
	ident, err := m.Function(context.Background(), "ident")
	if err != nil {
		f.Fatal(err)
	}
	add, err := m.Function(context.Background(), "add")
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{"\x02\x00\x00\x00\x00\x00\x00\x00\x07", "\x06\x03\x04\x02hi\x03\x7f\xf8\x00\x00\x00\x00\x00\x01\x00",
		"\x07\x02\x01a\x09\x00\x00\x00\x00\x00\x00\x00\x05\x07\x01b\x05\x02\xff\x00", "\x08\x07\xe8\x04\x05\x06\x07\x08",
		"\x04\x02\xff\xfe", strings.Repeat("\x06\x01", 105)} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		g := &valueGen{b: data}
		in, want := g.value(0)
		got, err := ident.Call(context.Background(), in)
		switch {
		case refused(in, 0):
			var ce *bridge.ConversionError
			if !errors.As(err, &ce) {
				t.Fatalf("ident(%#v): %v, want a *ConversionError", in, err)
			}
		case err != nil:
			t.Fatalf("ident(%#v): %v", in, err)
		case !same(got, want):
			t.Fatalf("ident(%#v) = %#v, want %#v", in, got, want)
		}
		if v, err := add.Call(context.Background(), int64(2), int64(3)); err != nil || v != int64(5) {
			t.Fatalf("after ident: add(2, 3) = %v, %v", v, err)
		}
	})
}

// The C decoder on arbitrary bytes: values, or a Python exception; never a
// crash or a NULL without an exception.
func FuzzCDecoder(f *testing.F) {
	newEngine(f, Config{Mode: Thread}) // the interpreter
	for _, seed := range [][]byte{
		{bridge.TagInt, 1, 0, 0, 0, 0, 0, 0, 0},
		{bridge.TagList, 2, 0, 0, 0, bridge.TagStr, 1, 0, 0, 0, 'a', bridge.TagNull},
		{bridge.TagMap, 1, 0, 0, 0, bridge.TagList, 0, 0, 0, 0, bridge.TagNull},
		{bridge.TagRow, 1, 0, 0, 0, 1, 0, 0, 0, 0xff, bridge.TagTrue},
		{bridge.TagDecimal, 3, 0, 0, 0, 'N', 'a', 'N'},
		{bridge.TagBigInt, 3, 0, 0, 0, '1', '2', 'x'},
		{bridge.TagDate, 0xff, 0xff, 0xff, 0x7f, 13, 32},
		{bridge.TagList, 0xff, 0xff, 0xff, 0xff},
	} {
		f.Add(seed, uint8(1))
	}
	f.Fuzz(func(t *testing.T, data []byte, count uint8) {
		if rc := cgo.DecodeCheck(data, int(count%4)+1); rc == 2 {
			t.Fatalf("C decoder refused % x without an exception", data)
		}
	})
}
