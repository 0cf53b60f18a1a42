package engine

import (
	"context"
	"sync"
	"testing"

	"github.com/pyudf/pyudf/bridge"
)

const addSource = `
from pyflink.table.udf import udf
from pyflink.table import DataTypes

@udf(input_types=[DataTypes.BIGINT(), DataTypes.BIGINT()], result_type=DataTypes.BIGINT())
def add(a, b):
    return a + b

def plain_add(a, b):
    return a + b
`

func benchFunction(b *testing.B, name string) *Function {
	b.Helper()
	e := newEngine(b, Config{})
	m, err := e.LoadSource(context.Background(), "bench_add.py", addSource)
	if err != nil {
		b.Fatal(err)
	}
	f, err := m.Function(context.Background(), name)
	if err != nil {
		b.Fatal(err)
	}
	return f
}

// BenchmarkCallAdd: one row call, add(a, b) on BIGINT, through CallValues.
func BenchmarkCallAdd(b *testing.B) {
	f := benchFunction(b, "add")
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		v, err := f.CallValues(ctx, bridge.Int64(int64(i)), bridge.Int64(1))
		if err != nil || v.AsInt64() != int64(i)+1 {
			b.Fatal(v, err)
		}
	}
}

// BenchmarkBareAdd: the floor, a C function that takes the GIL and calls the
// same Python function.
func BenchmarkBareAdd(b *testing.B) {
	f := benchFunction(b, "plain_add")
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if BareAdd(f, int64(i), 1) != int64(i)+1 {
			b.Fatal("bad sum")
		}
	}
}

// BenchmarkCallAdd8: the same call from 8 goroutines; ns/op is per call, all goroutines together.
func BenchmarkCallAdd8(b *testing.B) {
	f := benchFunction(b, "add")
	ctx := context.Background()
	b.ReportAllocs()
	per := b.N/8 + 1
	b.ResetTimer()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Go(func() {
			for i := 0; i < per; i++ {
				if _, err := f.CallValues(ctx, bridge.Int64(int64(i)), bridge.Int64(1)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}
