package engine

import (
	"context"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/pyudf/pyudf/arrowconv"
	"github.com/pyudf/pyudf/bridge"
)

const rowBenchSource = `
from pyflink.table import DataTypes, Row
from pyflink.table.udf import udf

@udf(result_type='ROW<id BIGINT, twice BIGINT>')
def widen(row):
    return Row(id=row.id, twice=row[1] * 2)

@udf(input_types=['ROW<id BIGINT, n BIGINT>'], result_type='ROW<id BIGINT, twice BIGINT>')
def widen_call(row):
    return Row(id=row.id, twice=row[1] * 2)
`

// BenchmarkMapRows64K: Map over a 64K-row batch, one Row built per row
// (fields read by name and index) and one Row returned per row.
func BenchmarkMapRows64K(b *testing.B) {
	m := loadModule(b, Config{}, "row_bench.py", rowBenchSource)
	f, err := m.Function(context.Background(), "widen")
	if err != nil {
		b.Fatal(err)
	}
	const rows = 64 * 1024
	ab := array.NewInt64Builder(arrowconv.DefaultAllocator)
	for i := range rows {
		ab.Append(int64(i))
	}
	col := ab.NewArray()
	ab.Release()
	schema := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}, {Name: "n", Type: arrow.PrimitiveTypes.Int64}}, nil)
	rec := array.NewRecordBatch(schema, []arrow.Array{col, col}, rows)
	col.Release()
	defer rec.Release()
	b.SetBytes(rows)
	for b.Loop() {
		out, err := f.Map(context.Background(), rec)
		if err != nil {
			b.Fatal(err)
		}
		out.Release()
	}
}

// BenchmarkCallRowArg: one row call with a ROW argument and a ROW result.
func BenchmarkCallRowArg(b *testing.B) {
	m := loadModule(b, Config{}, "row_bench.py", rowBenchSource)
	f, err := m.Function(context.Background(), "widen_call")
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		v, err := f.Call(ctx, bridge.Row{int64(i), int64(1)})
		if err != nil {
			b.Fatal(err)
		}
		if r, ok := v.(bridge.Row); !ok || r[1] != int64(2) {
			b.Fatal(v)
		}
	}
}
