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

// needsRebuild reports whether d holds, at any depth, an array whose null
// count is unknown or a struct array with an offset (a slice of a struct
// column): see Exportable.
func needsRebuild(d arrow.ArrayData) bool {
	if d.NullN() == array.UnknownNullCount || (d.DataType().ID() == arrow.STRUCT && d.Offset() != 0) {
		return true
	}
	for _, child := range d.Children() {
		if needsRebuild(child) {
			return true
		}
	}
	return d.DataType().ID() == arrow.DICTIONARY && d.Dictionary() != nil && needsRebuild(d.Dictionary())
}

// rebuild returns d with every null count known and every struct array
// rebased to offset 0 (its children sliced to its rows, its validity bitmap
// copied from its offset into mem), sharing d's other buffers; d itself, with
// a reference of its own, when it needs neither. Release the result.
func rebuild(d arrow.ArrayData, mem memory.Allocator) arrow.ArrayData {
	if !needsRebuild(d) {
		d.Retain()
		return d
	}
	children := make([]arrow.ArrayData, len(d.Children()))
	offset, rebase := d.Offset(), d.DataType().ID() == arrow.STRUCT && d.Offset() != 0
	for i, child := range d.Children() {
		if rebase {
			child = array.NewSliceData(child, int64(offset), int64(offset+d.Len()))
			children[i] = rebuild(child, mem)
			child.Release()
		} else {
			children[i] = rebuild(child, mem)
		}
	}
	buffers, nulls := d.Buffers(), NullCount(d)
	if rebase {
		buffers = []*memory.Buffer{nil}
		if nulls > 0 {
			bitmap := memory.NewResizableBuffer(mem)
			bitmap.Resize((d.Len() + 7) / 8)
			bitutil.CopyBitmap(d.Buffers()[0].Bytes(), offset, d.Len(), bitmap.Bytes(), 0)
			buffers[0] = bitmap
			defer bitmap.Release()
		}
		offset = 0
	}
	out := array.NewData(d.DataType(), d.Len(), buffers, children, nulls, offset)
	for _, child := range children {
		child.Release()
	}
	if d.DataType().ID() == arrow.DICTIONARY && d.Dictionary() != nil {
		dict := rebuild(d.Dictionary(), mem)
		out.SetDictionary(dict)
		dict.Release()
	}
	return out
}

// Exportable is rec as arrow-go's C Data exporter and IPC writer can be given
// it, or rec itself (with a reference of its own) when it already is. Release
// the result. Two things in rec would go wrong there:
//
//   - an array whose null count is unknown (every slice): both ask
//     arrow.Array.NullN, which counts and writes the count into the ArrayData
//     the caller's batch shares, a data race when two goroutines pass the
//     same batch at once; the copy carries the count (NullCount) instead;
//   - a sliced struct column: the C Data export (v18.8.0) writes the struct's
//     offset and children already sliced by it, so the consumer applies the
//     offset twice, reads other rows and past the children's end; the copy is
//     rebased to offset 0.
//
// Only the ArrayData objects are new; the buffers are shared, except a
// rebased struct's validity bitmap, copied into DefaultAllocator's memory.
func Exportable(rec arrow.RecordBatch) arrow.RecordBatch {
	var cols []arrow.Array
	for i, col := range rec.Columns() {
		if !needsRebuild(col.Data()) {
			continue
		}
		if cols == nil {
			cols = append([]arrow.Array{}, rec.Columns()...)
			for _, c := range cols {
				c.Retain()
			}
		}
		d := rebuild(col.Data(), DefaultAllocator)
		cols[i].Release()
		cols[i] = array.MakeFromData(d)
		d.Release()
	}
	if cols == nil {
		rec.Retain()
		return rec
	}
	out := array.NewRecordBatch(rec.Schema(), cols, rec.NumRows())
	for _, c := range cols {
		c.Release()
	}
	return out
}
