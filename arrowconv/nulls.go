package arrowconv

import (
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
)

// NullCount is the number of nulls among d's rows. arrow.ArrayData.NullN is
// array.UnknownNullCount (-1) for every slice (array.NewSlice,
// RecordBatch.NewSlice) and for arrays imported through the C Data Interface
// from a producer that did not count (Arrow C++ exports slices so); then the
// count is taken from the validity bitmap, from d's offset on, whatever its
// alignment. d itself is not changed (arrow.Array.NullN caches the count in
// the shared ArrayData, a data race when two goroutines ask at once).
//
// Ask this, never NullN() > 0 or NullN() == 0, before skipping a bitmap.
func NullCount(d arrow.ArrayData) int {
	if n := d.NullN(); n != array.UnknownNullCount {
		return n
	}
	if d.DataType().ID() == arrow.NULL {
		return d.Len()
	}
	bufs := d.Buffers()
	if len(bufs) == 0 || bufs[0] == nil || bufs[0].Len() == 0 {
		return 0 // no bitmap: every row is valid
	}
	return d.Len() - bitutil.CountSetBits(bufs[0].Bytes(), d.Offset(), d.Len())
}
