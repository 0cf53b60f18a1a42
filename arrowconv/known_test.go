package arrowconv

import (
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// A schema crosses in full until a call carrying it is confirmed, then by id
// alone; equal content shares the id, any difference (names, even ones that
// collide in the fingerprint, or metadata) gets its own.
func TestKnownSchemasCrossOnce(t *testing.T) {
	mem := memory.NewCheckedAllocator(DefaultAllocator)
	defer mem.AssertSize(t, 0)
	i64 := arrow.PrimitiveTypes.Int64
	col, _, err := array.FromJSON(mem, i64, strings.NewReader(`[1, 2]`))
	if err != nil {
		t.Fatal(err)
	}
	defer col.Release()
	batch := func(md *arrow.Metadata, names ...string) arrow.RecordBatch {
		fields := make([]arrow.Field, len(names))
		cols := make([]arrow.Array, len(names))
		for i, n := range names {
			fields[i], cols[i] = arrow.Field{Name: n, Type: i64}, col
		}
		return array.NewRecordBatch(arrow.NewSchema(fields, md), cols, 2)
	}
	export := func(rec arrow.RecordBatch) Sent {
		t.Helper()
		defer rec.Release()
		e, sent := ExportBatch(rec)
		defer e.Free()
		if (e.Schema != nil) != sent.Carried || e.Array == nil {
			t.Fatalf("export: schema struct %v, carried %v", e.Schema != nil, sent.Carried)
		}
		return sent
	}
	structs := LiveStructs()

	first := export(batch(nil, "known_a", "known_b"))
	if first.ID == 0 || !first.Carried {
		t.Fatalf("first sight: %+v, want an id and the schema carried", first)
	}
	if again := export(batch(nil, "known_a", "known_b")); again != first {
		t.Errorf("unconfirmed: %+v, want %+v again", again, first)
	}
	first.Confirm()
	if held := export(batch(nil, "known_a", "known_b")); held.ID != first.ID || held.Carried {
		t.Errorf("confirmed, equal content in a new schema: %+v, want id %d alone", held, first.ID)
	}

	// One field whose name spells the fingerprint of the two above.
	collide := "known_a{" + i64.Fingerprint() + "};FNknown_b"
	one, two := batch(nil, collide), batch(nil, "known_a", "known_b")
	if one.Schema().Fingerprint() != two.Schema().Fingerprint() {
		t.Fatalf("no fingerprint collision to test with: %q vs %q", one.Schema().Fingerprint(), two.Schema().Fingerprint())
	}
	two.Release()
	md := arrow.NewMetadata([]string{"k"}, []string{"v"})
	for name, rec := range map[string]arrow.RecordBatch{
		"other names":               batch(nil, "known_b", "known_a"),
		"fingerprint-equal names":   one,
		"same names, with metadata": batch(&md, "known_a", "known_b"),
	} {
		if s := export(rec); s.ID == first.ID || !s.Carried {
			t.Errorf("%s: %+v, want a new id, carried", name, s)
		}
	}

	typ, sent := ExportResultType(arrow.BinaryTypes.LargeString, false)
	if typ.Schema == nil || !sent.Carried {
		t.Fatalf("result type, first sight: %+v", sent)
	}
	typ.Free()
	sent.Confirm()
	if typ, again := ExportResultType(arrow.BinaryTypes.LargeString, false); typ.Schema != nil || again.Carried || again.ID != sent.ID {
		typ.Free()
		t.Errorf("result type, confirmed: %+v (schema struct %v)", again, typ.Schema != nil)
	}
	nullable, other := ExportResultType(arrow.BinaryTypes.LargeString, true)
	nullable.Free()
	if other.ID == sent.ID {
		t.Error("the nullable result type shares the id of the NOT NULL one")
	}
	if d := LiveStructs() - structs; d != 0 {
		t.Errorf("%d structs left allocated", d)
	}
}
