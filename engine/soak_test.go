//go:build !race

package engine

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/pyudf/pyudf/bridge"
)

// rss is the process's resident set size in bytes.
func rss(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Fatal(err)
	}
	pages, err := strconv.ParseInt(strings.Fields(string(b))[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return pages * int64(os.Getpagesize())
}

// TestSoakTenMillionCalls: 10 million row calls (one in ten with strings)
// grow the resident set by less than 5 MB after warm-up.
func TestSoakTenMillionCalls(t *testing.T) {
	m := loadModule(t, Config{}, "soak.py", `
from pyudf import udf
add = udf(lambda a, b: a + b, input_types=['BIGINT', 'BIGINT'], result_type='BIGINT')
upper = udf(lambda s: s.upper(), input_types=['STRING'], result_type='STRING')
`)
	add, upper := function(t, m, "add"), function(t, m, "upper")
	ctx := context.Background()
	run := func(n int) {
		for i := range n {
			v, err := add.CallValues(ctx, bridge.Int64(int64(i)), bridge.Int64(1))
			if err != nil || v.AsInt64() != int64(i)+1 {
				t.Fatalf("add(%d, 1) = %v, %v", i, v, err)
			}
			if i%10 == 0 {
				if v, err := upper.CallValues(ctx, bridge.String("payload-string")); err != nil || v.AsString() != "PAYLOAD-STRING" {
					t.Fatalf("upper = %v, %v", v, err)
				}
			}
		}
	}
	run(1_000_000) // warm-up: pools, thread states, allocator arenas
	before := rss(t)
	run(10_000_000)
	growth := rss(t) - before
	t.Logf("RSS %d MB -> growth %d KB over 10M calls", before>>20, growth>>10)
	if growth >= 5<<20 {
		t.Errorf("RSS grew %d KB over 10M calls, want under 5 MB", growth>>10)
	}
}
