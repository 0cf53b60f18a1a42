package arrowconv

import (
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/cdata"
)

// Schemas the embedded interpreter already holds. Exporting a schema through
// the C Data Interface and importing it again costs more than exporting a
// batch's buffers, and a stream's batches all have the same schema; so
// pyudf._batch keeps every schema it imports under an id Go assigns, and once
// a call that carried a schema has succeeded, later calls send the id alone.
//
// The table is process-wide, like the interpreter, and goes by content, not
// by pointer, so a new *arrow.Schema per batch costs nothing extra: schemas
// are found by fingerprint and told apart by Equal and their metadata. It
// holds at most maxKnown schemas; past that, schemas it does not know cross
// in full every time.
var known = struct {
	sync.Mutex
	byPrint map[string][]knownSchema // by Fingerprint
	n       int64                    // ids assigned
	held    map[int64]bool           // ids the interpreter holds (a call carrying them succeeded)
}{byPrint: map[string][]knownSchema{}, held: map[int64]bool{}}

type knownSchema struct {
	schema *arrow.Schema
	id     int64
}

const maxKnown = 1024

// Sent says how a schema crossed in one call: ID names it on the Python side
// (0: Python does not keep it), and Carried tells whether the schema itself
// went along (otherwise only ID did).
type Sent struct {
	ID      int64
	Carried bool
}

// Confirm records that the call which carried the schema succeeded, so the
// interpreter holds it under s.ID from now on.
func (s Sent) Confirm() {
	if !s.Carried || s.ID == 0 {
		return
	}
	known.Lock()
	known.held[s.ID] = true
	known.Unlock()
}

// lookup finds or assigns the id of schema s.
func lookup(s *arrow.Schema) Sent {
	fp := s.Fingerprint()
	if fp == "" { // a type without a fingerprint: never kept
		return Sent{Carried: true}
	}
	known.Lock()
	defer known.Unlock()
	for _, k := range known.byPrint[fp] {
		if k.schema.Equal(s) && k.schema.Metadata().Equal(s.Metadata()) {
			return Sent{ID: k.id, Carried: !known.held[k.id]}
		}
	}
	if known.n == maxKnown {
		return Sent{Carried: true}
	}
	known.n++
	known.byPrint[fp] = append(known.byPrint[fp], knownSchema{s, known.n})
	return Sent{ID: known.n, Carried: true}
}

// ExportBatch is ExportRecordBatch for a call into pyudf._batch, which keeps
// the schemas it receives: when the interpreter already holds rec's schema,
// e.Schema is nil and only the returned Sent's ID names it. Confirm the Sent
// once the call succeeded.
func ExportBatch(rec arrow.RecordBatch) (Exported, Sent) {
	sent := lookup(rec.Schema())
	return exportBatch(rec, sent.Carried), sent
}

// ExportResultType is ExportType on the terms of ExportBatch.
func ExportResultType(t arrow.DataType, nullable bool) (Exported, Sent) {
	schema := arrow.NewSchema([]arrow.Field{{Name: "result", Type: t, Nullable: nullable}}, nil)
	sent := lookup(schema)
	if !sent.Carried {
		return Exported{}, sent
	}
	out := Exported{Schema: newSchemaStruct()}
	cdata.ExportArrowSchema(schema, out.Schema)
	return out, sent
}
