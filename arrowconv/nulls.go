package arrowconv

import (
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
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

// hasSlicedStruct reports whether d holds, at any depth, a struct array with
// an offset (a slice of a struct column).
func hasSlicedStruct(d arrow.ArrayData) bool {
	if d.DataType().ID() == arrow.STRUCT && d.Offset() != 0 {
		return true
	}
	for _, child := range d.Children() {
		if hasSlicedStruct(child) {
			return true
		}
	}
	return d.DataType().ID() == arrow.DICTIONARY && d.Dictionary() != nil && hasSlicedStruct(d.Dictionary())
}

// unsliceStructs returns d with every struct array in it rebased to offset
// 0: its children sliced to its rows and its validity bitmap copied from its
// offset (into mem). arrow-go's C Data export of a sliced struct array
// (v18.8.0) writes the struct's offset and children already sliced by it, so
// a consumer applies the offset twice: it reads other rows, and past the end
// of the children. Arrays that hold no sliced struct are returned as they are
// (with a reference of their own). Release the result.
func unsliceStructs(d arrow.ArrayData, mem memory.Allocator) arrow.ArrayData {
	if !hasSlicedStruct(d) {
		d.Retain()
		return d
	}
	children := make([]arrow.ArrayData, len(d.Children()))
	offset, isStruct := d.Offset(), d.DataType().ID() == arrow.STRUCT
	for i, child := range d.Children() {
		if isStruct {
			child = array.NewSliceData(child, int64(offset), int64(offset+d.Len()))
			children[i] = unsliceStructs(child, mem)
			child.Release()
		} else {
			children[i] = unsliceStructs(child, mem)
		}
	}
	buffers := d.Buffers()
	nulls := d.NullN()
	if isStruct {
		buffers = []*memory.Buffer{nil}
		if NullCount(d) > 0 {
			bitmap := memory.NewResizableBuffer(mem)
			bitmap.Resize((d.Len() + 7) / 8)
			bitutil.CopyBitmap(d.Buffers()[0].Bytes(), offset, d.Len(), bitmap.Bytes(), 0)
			buffers[0] = bitmap
			defer bitmap.Release()
		}
		nulls, offset = NullCount(d), 0
	}
	out := array.NewData(d.DataType(), d.Len(), buffers, children, nulls, offset)
	for _, child := range children {
		child.Release()
	}
	if d.DataType().ID() == arrow.DICTIONARY && d.Dictionary() != nil {
		dict := unsliceStructs(d.Dictionary(), mem)
		out.SetDictionary(dict)
		dict.Release()
	}
	return out
}
