package arrowconv

import (
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/pyudf/pyudf/bridge"
)

func TestAllocatorTellsCMemoryFromGoMemory(t *testing.T) {
	a := NewAllocator()
	mem := memory.NewCheckedAllocator(a)
	defer mem.AssertSize(t, 0)
	dt := arrow.ListOf(arrow.BinaryTypes.String)
	json := `[["a", null], null, ["bc"]]`
	inC, _, err := array.FromJSON(mem, dt, strings.NewReader(json))
	if err != nil {
		t.Fatal(err)
	}
	defer inC.Release()
	if inCMemory(inC.Data()) {
		t.Error("an unregistered allocator's buffers count as C memory")
	}
	Register(a)
	Register(a)
	if !inCMemory(inC.Data()) {
		t.Error("a registered allocator's buffers do not count as C memory")
	}
	onHeap, _, err := array.FromJSON(memory.NewGoAllocator(), dt, strings.NewReader(json))
	if err != nil {
		t.Fatal(err)
	}
	defer onHeap.Release()
	if inCMemory(onHeap.Data()) {
		t.Error("Go-heap buffers count as C memory")
	}
	copied := copyData(onHeap.Data(), mem)
	defer copied.Release()
	if !inCMemory(copied) {
		t.Error("the copy is not in C memory")
	}
	arr := array.MakeFromData(copied)
	defer arr.Release()
	if !array.Equal(arr, onHeap) {
		t.Errorf("copy %v differs from %v", arr, onHeap)
	}
}

func TestArrowTypesOfSQLTypes(t *testing.T) {
	for ddl, want := range map[string]string{
		"BOOLEAN":             "bool",
		"TINYINT NOT NULL":    "int8",
		"DECIMAL(10, 2)":      "decimal(10, 2)",
		"STRING":              "utf8",
		"BYTES":               "binary",
		"DATE":                "date32",
		"TIME(3)":             "time64[us]",
		"TIMESTAMP(0)":        "timestamp[s]",
		"TIMESTAMP(3)":        "timestamp[ms]",
		"TIMESTAMP(9)":        "timestamp[ns]",
		"TIMESTAMP_LTZ(6)":    "timestamp[us, tz=UTC]",
		"ARRAY<INT NOT NULL>": "list<item: int32>",
		"MAP<STRING, DOUBLE>": "map<utf8, float64, items_nullable>",
		"ROW<a BIGINT NOT NULL, b ARRAY<BOOLEAN>>": "struct<a: int64, b: list<item: bool, nullable> nullable>",
	} {
		if got := ArrowType(bridge.MustParseType(ddl)).String(); got != want {
			t.Errorf("%s -> %s, want %s", ddl, got, want)
		}
	}
}

func TestAcceptsEquivalentEncodings(t *testing.T) {
	str := bridge.MustParseType("STRING")
	dict := &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int16, ValueType: arrow.BinaryTypes.String}
	for _, c := range []struct {
		got  arrow.DataType
		want *bridge.DataType
		ok   bool
	}{
		{arrow.BinaryTypes.LargeString, str, true},
		{dict, str, true},
		{arrow.BinaryTypes.Binary, str, false},
		{arrow.PrimitiveTypes.Int32, bridge.MustParseType("BIGINT"), true},
		{arrow.PrimitiveTypes.Int64, bridge.MustParseType("INT"), false},
		{arrow.PrimitiveTypes.Float32, bridge.MustParseType("DOUBLE"), true},
		{&arrow.TimestampType{Unit: arrow.Nanosecond}, bridge.MustParseType("TIMESTAMP(3)"), true},
		{&arrow.TimestampType{Unit: arrow.Nanosecond}, bridge.MustParseType("TIMESTAMP_LTZ(3)"), false},
		{arrow.ListOf(arrow.PrimitiveTypes.Int32), bridge.MustParseType("ARRAY<BIGINT>"), true},
	} {
		if got := Accepts(c.got, c.want); got != c.ok {
			t.Errorf("Accepts(%s, %s) = %v", c.got, c.want, got)
		}
	}
}

// Every struct an export allocates is freed again: exporting a batch or a
// result type and freeing it leaves LiveStructs where it was.
func TestExportsFreeTheirStructs(t *testing.T) {
	mem := memory.NewCheckedAllocator(DefaultAllocator)
	defer mem.AssertSize(t, 0)
	col, _, err := array.FromJSON(mem, arrow.PrimitiveTypes.Int64, strings.NewReader(`[1, null, 3]`))
	if err != nil {
		t.Fatal(err)
	}
	defer col.Release()
	schema := arrow.NewSchema([]arrow.Field{{Name: "a", Type: arrow.PrimitiveTypes.Int64, Nullable: true}}, nil)
	rec := array.NewRecordBatch(schema, []arrow.Array{col}, 3)
	defer rec.Release()

	before := LiveStructs()
	for range 10 {
		ExportType(arrow.BinaryTypes.String, true).Free()
		ExportRecordBatch(rec).Free()
		NewArrayStructs().Free()
	}
	if got := LiveStructs() - before; got != 0 {
		t.Errorf("%d ArrowArray/ArrowSchema structs left allocated after 30 exports were freed", got)
	}
}
