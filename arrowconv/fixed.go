package arrowconv

import (
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/pyudf/pyudf/cgo"
)

// fixedTypes are the Arrow types the C row loop reads and writes directly.
var fixedTypes = map[arrow.Type]int32{
	arrow.BOOL: cgo.ColBool, arrow.INT8: cgo.ColInt8, arrow.INT16: cgo.ColInt16,
	arrow.INT32: cgo.ColInt32, arrow.INT64: cgo.ColInt64, arrow.UINT8: cgo.ColUint8,
	arrow.UINT16: cgo.ColUint16, arrow.UINT32: cgo.ColUint32, arrow.FLOAT32: cgo.ColFloat32,
	arrow.FLOAT64: cgo.ColFloat64,
}

// IsFixed reports whether the C row loop handles type t directly.
func IsFixed(t arrow.DataType) bool {
	_, ok := fixedTypes[t.ID()]
	return ok
}

func bufAddr(b *memory.Buffer) uintptr {
	if b == nil || b.Len() == 0 {
		return 0
	}
	return uintptr(unsafe.Pointer(unsafe.SliceData(b.Bytes())))
}

// FixedColumns describes rec's columns for the C row loop, which reads their
// buffers in place. Every column must be IsFixed. Columns outside C memory are
// copied there first; release frees the copies.
func FixedColumns(rec arrow.RecordBatch) (cols []cgo.Column, release func()) {
	var copies []arrow.ArrayData
	for _, col := range rec.Columns() {
		d := col.Data()
		if !inCMemory(d) {
			d = copyData(d, DefaultAllocator)
			copies = append(copies, d)
		}
		c := cgo.Column{Type: fixedTypes[d.DataType().ID()], Values: bufAddr(d.Buffers()[1]), Offset: int64(d.Offset())}
		if NullCount(d) > 0 {
			c.Validity = bufAddr(d.Buffers()[0])
		}
		cols = append(cols, c)
	}
	return cols, func() {
		for _, d := range copies {
			d.Release()
		}
	}
}

// FixedResult is a result column of n rows of a fixed-width type, allocated
// in C memory for the C row loop to write.
type FixedResult struct {
	typ              arrow.DataType
	n                int
	validity, values *memory.Buffer
}

// NewFixedResult allocates the buffers of a result column; t must be IsFixed.
func NewFixedResult(t arrow.DataType, n int) *FixedResult {
	r := &FixedResult{typ: t, n: n,
		validity: memory.NewResizableBuffer(DefaultAllocator), values: memory.NewResizableBuffer(DefaultAllocator)}
	r.validity.Resize((n + 7) / 8)
	width := (n + 7) / 8
	if fw, ok := t.(arrow.FixedWidthDataType); ok && t.ID() != arrow.BOOL {
		width = n * fw.BitWidth() / 8
	}
	r.values.Resize(width)
	clear(r.values.Bytes()) // bit-packed booleans are set and cleared bit by bit
	return r
}

// Column describes the result buffers for the C row loop.
func (r *FixedResult) Column() cgo.Column {
	return cgo.Column{Type: fixedTypes[r.typ.ID()], Validity: bufAddr(r.validity), Values: bufAddr(r.values)}
}

// Array turns the written buffers into an Arrow array with nulls null values
// (the buffers move into it).
func (r *FixedResult) Array(nulls int64) arrow.Array {
	d := array.NewData(r.typ, r.n, []*memory.Buffer{r.validity, r.values}, nil, int(nulls), 0)
	r.Release()
	defer d.Release()
	return array.MakeFromData(d)
}

// Release frees the buffers (when the loop failed).
func (r *FixedResult) Release() {
	r.validity.Release()
	r.values.Release()
}
