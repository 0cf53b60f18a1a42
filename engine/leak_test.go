package engine

import (
	"context"
	"testing"
	"time"

	"github.com/pyudf/pyudf/bridge"
)

// TestNoPythonObjectsLeak runs every kind of call, good and failing, many
// times and checks that Python's count of allocated memory blocks does not
// grow with the number of calls: no reference is leaked on any path.
func TestNoPythonObjectsLeak(t *testing.T) {
	m := loadModule(t, Config{}, "leaks.py", `
import gc, sys
from pyudf import udf
ident = udf(lambda x: x, input_types=['ARRAY<ROW<s STRING, m MAP<STRING, DECIMAL(10, 2)>, t TIMESTAMP_LTZ(6)>>'],
            result_type='ARRAY<ROW<s STRING, m MAP<STRING, DECIMAL(10, 2)>, t TIMESTAMP_LTZ(6)>>')
raises = udf(lambda x: 1 // x, input_types=['BIGINT'], result_type='BIGINT')
wrong = udf(lambda: "str", input_types=[], result_type='BIGINT')
unconvertible = udf(lambda: object(), input_types=[], result_type='STRING')
def spin():
    while True:
        pass
def blocks():
    gc.collect()
    return sys.getallocatedblocks()
`)
	ident, raises, wrong := function(t, m, "ident"), function(t, m, "raises"), function(t, m, "wrong")
	unconvertible, spin, blocks := function(t, m, "unconvertible"), function(t, m, "spin"), function(t, m, "blocks")
	value := []any{bridge.Row{"text", map[string]any{"k": "1.25"}, time.Unix(1700000000, 0)}, nil}
	ctx := context.Background()
	round := func(n int) {
		for range n {
			if _, err := ident.Call(ctx, value); err != nil {
				t.Fatal(err)
			}
			if _, err := raises.Call(ctx, int64(0)); err == nil {
				t.Fatal("no error from 1 // 0")
			}
			if _, err := wrong.Call(ctx); err == nil {
				t.Fatal("no conversion error")
			}
			if _, err := unconvertible.Call(ctx); err == nil {
				t.Fatal("no error for object()")
			}
			if _, err := ident.Call(ctx, "not a list"); err == nil {
				t.Fatal("no argument error")
			}
		}
	}
	count := func() int64 {
		v, err := blocks.Call(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return v.(int64)
	}
	round(200) // warm-up: caches, interned strings
	for range 5 {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Millisecond)
		if _, err := spin.Call(cctx); err == nil {
			t.Fatal("spin returned")
		}
		cancel()
	}
	before := count()
	round(3000)
	for range 20 {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Millisecond)
		spin.Call(cctx)
		cancel()
	}
	after := count()
	t.Logf("Python allocated blocks: %d before, %d after 15000 calls and 20 interruptions", before, after)
	if after-before > 1000 { // a leak on any path would add at least 3000
		t.Errorf("Python allocated blocks grew by %d over 15000 calls: a reference leaks", after-before)
	}
}
