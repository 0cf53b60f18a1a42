package engine

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/pyudf/pyudf/bridge"
	"github.com/pyudf/pyudf/cgo"
)

// The string crossing's fast paths (cgo/convert.c: an ASCII argument copied
// 8 bytes at a time into a compact ASCII str, a compact ASCII result read in
// place) must give what the general paths give, at every length and
// wherever a non-ASCII character sits.
const stringsSource = `
from pyudf import udf

class Text(str):
    pass

echo = udf(lambda s: s, input_types=['STRING'], result_type='STRING')
codes = udf(lambda s: [ord(c) for c in s], input_types=['STRING'], result_type='ARRAY<BIGINT>')
is_ascii = udf(lambda s: s.isascii(), input_types=['STRING'], result_type='BOOLEAN')
sub = udf(lambda s: Text(s), input_types=['STRING'], result_type='STRING')
add = udf(lambda a, b: a + b, input_types=['BIGINT', 'BIGINT'], result_type='BIGINT')
`

func TestStringsEveryLengthAndPosition(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := loadModule(t, Config{}, "strings.py", stringsSource)
		ctx := context.Background()
		echo, codes, isASCII, sub := function(t, m, "echo"), function(t, m, "codes"),
			function(t, m, "is_ascii"), function(t, m, "sub")
		// ASCII's edges (NUL, DEL) inside; lengths across two 8-byte words and a tail.
		base := "\x00abcdefgh\x7fijklmnopqrstuvwxyz0123"
		check := func(s string) {
			t.Helper()
			if v, err := echo.CallValues(ctx, bridge.String(s)); err != nil || v.AsString() != s {
				t.Fatalf("echo(%q) = %q, %v", s, v.AsString(), err)
			}
			if v, err := sub.CallValues(ctx, bridge.String(s)); err != nil || v.AsString() != s {
				t.Fatalf("sub(%q) = %q, %v", s, v.AsString(), err)
			}
			ascii := !strings.ContainsFunc(s, func(r rune) bool { return r >= 0x80 })
			if v, err := isASCII.CallValues(ctx, bridge.String(s)); err != nil || v.AsBool() != ascii {
				t.Fatalf("is_ascii(%q) = %v, %v; want %v", s, v.AsBool(), err, ascii)
			}
			var want []any
			for _, r := range s {
				want = append(want, int64(r))
			}
			got, err := codes.Call(ctx, s)
			if err != nil || !slices.Equal(got.([]any), want) {
				t.Fatalf("codes(%q) = %v, %v; want %v", s, got, err, want)
			}
		}
		for n := 0; n <= len(base); n++ {
			check(base[:n])
			for p := 0; p < n; p++ {
				check(base[:p] + "é" + base[p+1:n])
			}
			check(base[:n] + "€")
			check(base[:n] + "😀")
		}
		stillWorks(t, m)
	})
}

// Bytes the Go side never sends (it refuses invalid UTF-8 first:
// TestHostileInvalidUTF8Argument) are still refused by the C decoder, with
// an exception, wherever they sit in a text the ASCII fast path starts on.
func TestHostileInvalidUTF8InCDecoder(t *testing.T) {
	m := loadModule(t, Config{Mode: Thread}, "strings.py", stringsSource)
	str := func(s string) []byte {
		b, _ := bridge.AppendArg(nil, nil, bridge.String("x")) // tag and length, then the bytes
		b = b[:1]
		return append(append(b, byte(len(s)), 0, 0, 0), s...)
	}
	long := strings.Repeat("abcdefgh", 3)
	for _, bad := range []string{"\xffa", "ab\xc3", "\xed\xa0\x80", "\xc3\x28", long[:17] + "\x80" + long[18:], long + "\xfe"} {
		if rc := cgo.DecodeCheck(str(bad), 1); rc != 1 {
			t.Errorf("the C decoder on STRING %q: %d, want 1 (refused with an exception)", bad, rc)
		}
	}
	for _, good := range []string{"", "a", "ab", long, long + "é", "\x00\x7f"} {
		if rc := cgo.DecodeCheck(str(good), 1); rc != 0 {
			t.Errorf("the C decoder on STRING %q: %d, want 0 (decoded)", good, rc)
		}
	}
	stillWorks(t, m)
}
