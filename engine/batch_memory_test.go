package engine

import (
	"context"
	"sync"
	"testing"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

const addressSource = `
import pyarrow as pa
from pyudf import udf

@udf(input_types=['BIGINT', 'STRING'], result_type='BIGINT', func_type='arrow')
def addresses(ints, strs):
    """The addresses of the buffers Python received: int values, string offsets, string data."""
    a = [ints.buffers()[1].address, strs.buffers()[1].address, strs.buffers()[2].address]
    return pa.array(a + [0] * (len(ints) - 3), pa.int64())
`

// A batch in C memory reaches Python without a copy: Python sees the very
// buffers Go built. A Go-heap batch is copied once.
func TestBatchCrossesWithoutCopy(t *testing.T) {
	m := loadModule(t, Config{}, "addresses.py", addressSource)
	f := function(t, m, "addresses")
	for _, c := range []struct {
		mem  memory.Allocator
		same bool
	}{{checkedAllocator(t), true}, {memory.NewGoAllocator(), false}} {
		rec := batchOf(t, c.mem, arrow.PrimitiveTypes.Int64, `[1, 2, 3, 4]`, arrow.BinaryTypes.String, `["a", "bc", "d", "e"]`)
		want := []int64{
			bufferAddress(rec.Column(0).Data().Buffers()[1]),
			bufferAddress(rec.Column(1).Data().Buffers()[1]),
			bufferAddress(rec.Column(1).Data().Buffers()[2]),
		}
		res, err := f.Eval(context.Background(), rec)
		if err != nil {
			t.Fatal(err)
		}
		got := res.(*array.Int64).Int64Values()[:3]
		for i := range want {
			if (got[i] == want[i]) != c.same {
				t.Errorf("%T buffer %d: Go %#x, Python %#x; same memory should be %v", c.mem, i, want[i], got[i], c.same)
			}
		}
		res.Release()
	}
}

func bufferAddress(b *memory.Buffer) int64 { return int64(uintptr(unsafe.Pointer(&b.Bytes()[0]))) }

// Results built by Python (here numpy-backed, whose release needs the GIL)
// are released from many goroutines while other evaluations run.
func TestResultsReleasedFromAnyGoroutine(t *testing.T) {
	m := batchModule(t)
	rec := batchOf(t, checkedAllocator(t), arrow.PrimitiveTypes.Int64, `[1, 2, 3]`, arrow.PrimitiveTypes.Int64, `[4, 5, 6]`)
	f := function(t, m, "add_pandas")
	results := make(chan arrow.Array, 64)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 50 {
				res, err := f.Eval(context.Background(), rec)
				if err != nil {
					t.Error(err)
					return
				}
				results <- res
			}
		})
	}
	var releasers sync.WaitGroup
	for range 8 {
		releasers.Go(func() {
			for res := range results {
				if res.(*array.Int64).Value(2) != 9 {
					t.Errorf("wrong result %v", res)
				}
				res.Release()
			}
		})
	}
	wg.Wait()
	close(results)
	releasers.Wait()
}
