// Package arrowconv moves Arrow data between Go (arrow-go/v18) and the
// embedded interpreter (pyarrow) through the Arrow C Data Interface, and maps
// pyudf's SQL types to Arrow types.
//
// Memory handed to Python is never Go-heap memory: Python may keep a batch
// (a pandas view, a cached array) after the call that received it returns,
// and cgo forbids C keeping Go pointers. A batch whose buffers all come from
// an Allocator of this package (C memory, from arrow-go's mallocator) crosses
// without copying; any other batch is copied once into C memory, and Export
// says so. The ArrowArray and ArrowSchema structs themselves are C memory too.
//
// Thread model: everything here is safe for concurrent use. Release callbacks
// of exported data run on whatever thread Python releases it on; they only
// drop Go references and need no GIL.
package arrowconv

/*
#include <stdlib.h>
*/
import "C"

import (
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/cdata"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/arrow/memory/mallocator"
)

// Allocator is arrow-go's mallocator (C memory) that remembers what it
// allocated, so that Export can hand its buffers to Python without a copy.
// Build batches with it (or with an allocator wrapping it, such as
// memory.NewCheckedAllocator) to cross zero-copy.
type Allocator struct {
	c    *mallocator.Mallocator
	mu   sync.RWMutex
	live map[uintptr]int
}

// NewAllocator returns an empty Allocator.
func NewAllocator() *Allocator {
	return &Allocator{c: mallocator.NewMallocator(), live: map[uintptr]int{}}
}

// DefaultAllocator receives the copies Export makes of Go-heap batches.
var DefaultAllocator = NewAllocator()

func addr(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }

// Allocate implements memory.Allocator.
func (a *Allocator) Allocate(size int) []byte {
	b := a.c.Allocate(size)
	if size > 0 {
		a.mu.Lock()
		a.live[addr(b)] = size
		a.mu.Unlock()
	}
	return b
}

// Reallocate implements memory.Allocator.
func (a *Allocator) Reallocate(size int, b []byte) []byte {
	a.mu.Lock()
	delete(a.live, addr(b))
	a.mu.Unlock()
	nb := a.c.Reallocate(size, b)
	if size > 0 {
		a.mu.Lock()
		a.live[addr(nb)] = size
		a.mu.Unlock()
	}
	return nb
}

// Free implements memory.Allocator.
func (a *Allocator) Free(b []byte) {
	a.mu.Lock()
	delete(a.live, addr(b))
	a.mu.Unlock()
	a.c.Free(b)
}

// owns reports whether b lies inside a live allocation of any Allocator in use.
func owns(b []byte) bool {
	p := addr(b)
	allocatorsMu.RLock()
	defer allocatorsMu.RUnlock()
	for _, a := range allocators {
		a.mu.RLock()
		size, ok := a.live[p]
		a.mu.RUnlock()
		if ok && len(b) <= size {
			return true
		}
	}
	return false
}

var (
	allocatorsMu sync.RWMutex
	allocators   []*Allocator
)

func init() { Register(DefaultAllocator) }

// Register makes Export recognise a's buffers as C memory. NewAllocator's
// allocators must be registered to cross zero-copy; Register is idempotent.
func Register(a *Allocator) {
	allocatorsMu.Lock()
	defer allocatorsMu.Unlock()
	for _, known := range allocators {
		if known == a {
			return
		}
	}
	allocators = append(allocators, a)
}

// inCMemory reports whether every buffer of d (children and dictionary
// included) is memory of a registered Allocator.
func inCMemory(d arrow.ArrayData) bool {
	for _, buf := range d.Buffers() {
		if buf != nil && buf.Len() > 0 && !owns(buf.Bytes()) {
			return false
		}
	}
	for _, child := range d.Children() {
		if !inCMemory(child) {
			return false
		}
	}
	if d.DataType().ID() == arrow.DICTIONARY && !inCMemory(d.Dictionary()) {
		return false
	}
	return true
}

// copyData copies d's buffers (recursively) into mem.
func copyData(d arrow.ArrayData, mem memory.Allocator) arrow.ArrayData {
	buffers := make([]*memory.Buffer, len(d.Buffers()))
	for i, buf := range d.Buffers() {
		if buf == nil {
			continue
		}
		nb := memory.NewResizableBuffer(mem)
		nb.Resize(buf.Len())
		copy(nb.Bytes(), buf.Bytes())
		buffers[i] = nb
	}
	children := make([]arrow.ArrayData, len(d.Children()))
	for i, child := range d.Children() {
		children[i] = copyData(child, mem)
	}
	out := array.NewData(d.DataType(), d.Len(), buffers, children, d.NullN(), d.Offset())
	for _, buf := range buffers {
		if buf != nil {
			buf.Release() // out holds its own reference
		}
	}
	for _, child := range children {
		child.Release()
	}
	if d.DataType().ID() == arrow.DICTIONARY {
		dc := copyData(d.Dictionary(), mem)
		out.SetDictionary(dc)
		dc.Release()
	}
	return out
}

// Exported is a batch (or a type) exported to C structs in C memory. Python
// takes ownership of what it imports; Free releases whatever it did not take
// and frees the structs.
type Exported struct {
	Array  *cdata.CArrowArray
	Schema *cdata.CArrowSchema
	// Copied tells whether the buffers had to be copied into C memory.
	Copied bool
}

// NewArrayStructs allocates an empty ArrowArray and ArrowSchema in C memory,
// for Python to export into.
func NewArrayStructs() Exported {
	return Exported{Array: newArrayStruct(), Schema: newSchemaStruct()}
}

// structs counts the ArrowArray and ArrowSchema structs allocated here and
// not yet freed.
var structs atomic.Int64

func newArrayStruct() *cdata.CArrowArray {
	structs.Add(1)
	return (*cdata.CArrowArray)(C.calloc(1, C.size_t(unsafe.Sizeof(cdata.CArrowArray{}))))
}

func newSchemaStruct() *cdata.CArrowSchema {
	structs.Add(1)
	return (*cdata.CArrowSchema)(C.calloc(1, C.size_t(unsafe.Sizeof(cdata.CArrowSchema{}))))
}

// LiveStructs is the number of ArrowArray and ArrowSchema structs this
// package allocated and has not freed: at rest, after every Exported was
// freed or imported, it is back where it was (tests check for leaks with it).
func LiveStructs() int64 { return structs.Load() }

// ArrayAddr and SchemaAddr are the structs' addresses, as Python's
// _import_from_c and _export_to_c take them (0 for a struct that is absent).
func (e Exported) ArrayAddr() uintptr  { return uintptr(unsafe.Pointer(e.Array)) }
func (e Exported) SchemaAddr() uintptr { return uintptr(unsafe.Pointer(e.Schema)) }

// Free releases what was not moved out of the structs and frees them.
func (e Exported) Free() {
	if e.Array != nil {
		cdata.ReleaseCArrowArray(e.Array)
		C.free(unsafe.Pointer(e.Array))
		structs.Add(-1)
	}
	if e.Schema != nil {
		cdata.ReleaseCArrowSchema(e.Schema)
		C.free(unsafe.Pointer(e.Schema))
		structs.Add(-1)
	}
}

// ExportRecordBatch exports rec for Python, without copying when its buffers
// are memory of a registered Allocator and with one copy otherwise.
func ExportRecordBatch(rec arrow.RecordBatch) Exported {
	return exportBatch(rec, true)
}

// exportBatch exports rec, and its schema if withSchema (else e.Schema is nil).
func exportBatch(rec arrow.RecordBatch, withSchema bool) Exported {
	out := Exported{Array: newArrayStruct()}
	if withSchema {
		out.Schema = newSchemaStruct()
	}
	rec = Exportable(rec)
	defer rec.Release()
	for _, col := range rec.Columns() {
		if !inCMemory(col.Data()) {
			out.Copied = true
			break
		}
	}
	if out.Copied {
		cols := make([]arrow.Array, rec.NumCols())
		for i, col := range rec.Columns() {
			d := copyData(col.Data(), DefaultAllocator)
			cols[i] = array.MakeFromData(d)
			d.Release()
		}
		rec = array.NewRecordBatch(rec.Schema(), cols, rec.NumRows())
		for _, c := range cols {
			c.Release()
		}
		defer rec.Release() // the export holds its own reference
	}
	cdata.ExportArrowRecordBatch(rec, out.Array, out.Schema)
	return out
}

// ExportType exports t as a schema with one field named "result".
func ExportType(t arrow.DataType, nullable bool) Exported {
	return exportSchema(resultSchema(t, nullable))
}

// resultSchema is how a result type crosses: a schema with one field, "result".
func resultSchema(t arrow.DataType, nullable bool) *arrow.Schema {
	return arrow.NewSchema([]arrow.Field{{Name: "result", Type: t, Nullable: nullable}}, nil)
}

func exportSchema(s *arrow.Schema) Exported {
	out := Exported{Schema: newSchemaStruct()}
	cdata.ExportArrowSchema(s, out.Schema)
	return out
}

// ImportArray takes the array Python exported into e (moving it out of the
// structs, which are then freed).
func ImportArray(e Exported) (arrow.Array, error) {
	defer e.Free()
	_, arr, err := cdata.ImportCArray(e.Array, e.Schema)
	if err != nil {
		return nil, fmt.Errorf("pyudf: importing the result from Python: %w", err)
	}
	return arr, nil
}

// ImportArrayOfType is ImportArray for an array Python exported without its
// schema (e.Schema stays empty): its type is t, which the caller declared, and
// its values are width bytes wide, which must be t's width.
func ImportArrayOfType(e Exported, t arrow.DataType, width int) (arrow.Array, error) {
	defer e.Free()
	if fw, ok := t.(arrow.FixedWidthDataType); !ok || fw.BitWidth() != 8*width {
		return nil, fmt.Errorf("pyudf: importing the result from Python: its values are %d bytes wide, not those of %s", width, t)
	}
	arr, err := cdata.ImportCArrayWithType(e.Array, t)
	if err != nil {
		return nil, fmt.Errorf("pyudf: importing the result from Python: %w", err)
	}
	return arr, nil
}
