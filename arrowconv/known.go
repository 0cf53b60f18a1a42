package arrowconv

import (
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
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
	byPrint map[string][]int64 // ids by Fingerprint
	schemas []knownSchema      // by id - 1
}{byPrint: map[string][]int64{}}

type knownSchema struct {
	schema *arrow.Schema
	held   bool // the interpreter holds it: a call that carried it succeeded
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
	known.schemas[s.ID-1].held = true
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
	for _, id := range known.byPrint[fp] {
		if k := known.schemas[id-1]; k.schema.Equal(s) && k.schema.Metadata().Equal(s.Metadata()) {
			return Sent{ID: id, Carried: !k.held}
		}
	}
	if len(known.schemas) == maxKnown {
		return Sent{Carried: true}
	}
	known.schemas = append(known.schemas, knownSchema{schema: s})
	id := int64(len(known.schemas))
	known.byPrint[fp] = append(known.byPrint[fp], id)
	return Sent{ID: id, Carried: true}
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
	schema := resultSchema(t, nullable)
	sent := lookup(schema)
	if !sent.Carried {
		return Exported{}, sent
	}
	return exportSchema(schema), sent
}
