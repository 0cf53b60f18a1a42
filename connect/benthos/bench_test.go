package benthos

import (
	"context"
	"strings"
	"testing"

	"github.com/redpanda-data/benthos/v4/public/bloblang"
	"github.com/redpanda-data/benthos/v4/public/service"
)

func benchBatch() service.MessageBatch {
	batch := make(service.MessageBatch, 1000)
	for i := range batch {
		batch[i] = service.NewMessage([]byte(strings.Repeat("abcdefghij", 10)))
	}
	return batch
}

// BenchmarkProcessBatchUpper is the processor alone over a batch of 1000
// 100-byte messages (ns/op is per batch).
func BenchmarkProcessBatchUpper(b *testing.B) {
	p, err := newProcessor(context.Background(), &config{function: "upper", args: &argSource{}, script: `
from pyflink.table.udf import udf

@udf(result_type='STRING')
def upper(s):
    return s.upper()
`})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close(context.Background())
	batch := benchBatch()
	b.ResetTimer()
	for b.Loop() {
		out, err := p.ProcessBatch(context.Background(), batch)
		if err != nil || len(out[0]) != 1000 {
			b.Fatal(err)
		}
	}
}

// BenchmarkBloblangUpper is what the bloblang mapping processor does per
// message, over the same batch.
func BenchmarkBloblangUpper(b *testing.B) {
	exec, err := bloblang.Parse(`root = content().string().uppercase()`)
	if err != nil {
		b.Fatal(err)
	}
	batch := benchBatch()
	b.ResetTimer()
	for b.Loop() {
		out := batch.Copy()
		e := out.BloblangExecutor(exec)
		for i := range out {
			m, err := e.Query(i)
			if err != nil {
				b.Fatal(err)
			}
			out[i] = m
		}
	}
}
