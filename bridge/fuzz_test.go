package bridge_test

import (
	"errors"
	"testing"

	"github.com/pyudf/pyudf/bridge"
	"github.com/pyudf/pyudf/cgo"
)

// fuzzTypes are the declared types FuzzDecodeResult decodes as (nil: undeclared).
var fuzzTypes = func() []*bridge.DataType {
	out := []*bridge.DataType{nil}
	for _, ddl := range []string{"BIGINT", "TINYINT", "FLOAT", "DOUBLE", "BOOLEAN", "STRING", "BYTES",
		"DECIMAL(5, 2)", "DECIMAL(38, 0)", "DATE", "TIME(3)", "TIMESTAMP(6)", "TIMESTAMP_LTZ(3)",
		"ARRAY<BIGINT>", "MAP<STRING, DOUBLE>", "ROW<a INT, b STRING>", "ARRAY<ROW<x ARRAY<STRING>>>",
		"BIGINT NOT NULL"} {
		t, err := bridge.ParseType(ddl)
		if err != nil {
			panic(err)
		}
		out = append(out, t)
	}
	return out
}()

// The Go decoder on arbitrary bytes: a value or a *ConversionError, never a
// panic, an endless loop or an allocation the data cannot back.
func FuzzDecodeResult(f *testing.F) {
	f.Add([]byte{bridge.TagInt, 1, 0, 0, 0, 0, 0, 0, 0}, uint8(1))
	f.Add([]byte{bridge.TagList, 2, 0, 0, 0, bridge.TagInt, 1, 0, 0, 0, 0, 0, 0, 0, bridge.TagNull}, uint8(14))
	f.Add([]byte{bridge.TagMap, 1, 0, 0, 0, bridge.TagStr, 1, 0, 0, 0, 'k', bridge.TagFloat, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f}, uint8(15))
	f.Add([]byte{bridge.TagRow, 1, 0, 0, 0, 1, 0, 0, 0, 'a', bridge.TagInt, 7, 0, 0, 0, 0, 0, 0, 0}, uint8(16))
	f.Add([]byte{bridge.TagDecimal, 4, 0, 0, 0, '1', '.', '5', '5'}, uint8(8))
	f.Add([]byte{bridge.TagTimestampUTC, 0xe8, 0x07, 0, 0, 5, 6, 7, 8, 9, 0, 0, 0, 0}, uint8(13))
	f.Add([]byte{bridge.TagBigInt, 2, 0, 0, 0, '9', '9'}, uint8(3))
	f.Add([]byte{bridge.TagList, 0xff, 0xff, 0xff, 0xff}, uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, typ uint8) {
		dt := fuzzTypes[int(typ)%len(fuzzTypes)]
		v, rest, err := bridge.DecodeResult(data, dt)
		if err != nil {
			var ce *bridge.ConversionError
			if !errors.As(err, &ce) {
				t.Fatalf("DecodeResult(% x, %v): %T %v, want a *ConversionError", data, dt, err, err)
			}
			return
		}
		if len(rest) > len(data) {
			t.Fatalf("rest grew: %d > %d", len(rest), len(data))
		}
		_ = v.String()
	})
}

// The Go encoder's limit and the C codec's agree.
func TestMaxDepthMatchesC(t *testing.T) {
	if cgo.MaxDepth != bridge.MaxDepth {
		t.Fatalf("C nests %d levels, Go %d", cgo.MaxDepth, bridge.MaxDepth)
	}
}
