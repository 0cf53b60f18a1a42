package arrowconv

import (
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// NullCount counts from the bitmap when the count is unknown (every slice),
// at every offset, byte-aligned or not, and does not write the count into
// the shared ArrayData.
func TestNullCountOfSlices(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	arr, _, err := array.FromJSON(mem, arrow.PrimitiveTypes.Int64,
		strings.NewReader(`[null, 1, 2, null, 4, 5, 6, 7, 8, null, 10, 11, 12, 13, 14, 15, 16, null]`))
	if err != nil {
		t.Fatal(err)
	}
	defer arr.Release()
	for from := 0; from <= arr.Len(); from++ {
		for to := from; to <= arr.Len(); to++ {
			s := array.NewSlice(arr, int64(from), int64(to))
			want := 0
			for i := from; i < to; i++ {
				if arr.IsNull(i) {
					want++
				}
			}
			if got := NullCount(s.Data()); got != want {
				t.Errorf("slice [%d, %d): NullCount %d, want %d", from, to, got, want)
			}
			if s.Data().NullN() != array.UnknownNullCount && to > from {
				t.Errorf("slice [%d, %d): NullCount wrote the count into the shared data", from, to)
			}
			s.Release()
		}
	}
	noBitmap := array.NewData(arrow.PrimitiveTypes.Int64, 2, []*memory.Buffer{nil, memory.NewBufferBytes(make([]byte, 16))}, nil, array.UnknownNullCount, 0)
	defer noBitmap.Release()
	if got := NullCount(noBitmap); got != 0 {
		t.Errorf("no bitmap, unknown count: NullCount %d, want 0", got)
	}
	nulls := array.NewNull(3)
	defer nulls.Release()
	nullSlice := array.NewSlice(nulls, 1, 3)
	defer nullSlice.Release()
	if got := NullCount(nullSlice.Data()); got != 2 {
		t.Errorf("a slice of a NULL array: NullCount %d, want 2", got)
	}
}
