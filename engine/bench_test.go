package engine

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/pyudf/pyudf/arrowconv"
	"github.com/pyudf/pyudf/bridge"
	"github.com/pyudf/pyudf/cgo"
	"github.com/pyudf/pyudf/internal/floor"
)

const addSource = `
from pyflink.table.udf import ScalarFunction, udf
from pyflink.table import DataTypes

@udf(input_types=[DataTypes.BIGINT(), DataTypes.BIGINT()], result_type=DataTypes.BIGINT())
def add(a, b):
    return a + b

def plain_add(a, b):
    return a + b

class AddOwn(ScalarFunction):
    def open(self, function_context):
        self.calls = 0

    def eval(self, a, b):
        return a + b

add_own = udf(AddOwn(), input_types=['BIGINT', 'BIGINT'], result_type='BIGINT')

@udf(input_types=['STRING'], result_type='STRING')
def upper(s):
    return s.upper()

@udf(input_types=['STRING'], result_type='STRING')
def echo(s):
    return s

def upper_loop(s, n):
    for _ in range(n):
        s.upper()
    return n
`

func benchFunction(b *testing.B, name string) *Function {
	b.Helper()
	return benchFunctionIn(b, Config{}, name)
}

// benchFunctionIn is benchFunction in an engine made from cfg.
func benchFunctionIn(b *testing.B, cfg Config, name string) *Function {
	b.Helper()
	e := newEngine(b, cfg)
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
func BenchmarkCallAdd(b *testing.B) { benchCallAdd(b, "add") }

// BenchmarkCallAddOwnThread: the same call handed to the instance's own
// thread (a ScalarFunction with open(): Config.Affinity).
func BenchmarkCallAddOwnThread(b *testing.B) { benchCallAdd(b, "add_own") }

// BenchmarkProcessCallAdd: the same call in process mode, one worker: the
// request written to the pipe, decoded and run by the worker, its reply read.
func BenchmarkProcessCallAdd(b *testing.B) {
	benchCallAddIn(b, benchFunctionIn(b, Config{Mode: Process, Workers: 1}, "add"))
}

// BenchmarkProcessSpin: the same call with Config.ProcessSpin 0 and 100 µs,
// with its latency's p50 and p99 (docs/performance.md, "Process mode's
// spin"). The two run back to back; compare them within one run.
func BenchmarkProcessSpin(b *testing.B) {
	for _, spin := range []time.Duration{0, 100 * time.Microsecond} {
		b.Run(fmt.Sprint("spin=", spin), func(b *testing.B) {
			f := benchFunctionIn(b, Config{Mode: Process, Workers: 1, ProcessSpin: spin}, "add")
			ctx := context.Background()
			lat := make([]time.Duration, 0, 1<<16)
			for i := 0; b.Loop(); i++ {
				start := time.Now()
				v, err := f.CallValues(ctx, bridge.Int64(int64(i)), bridge.Int64(1))
				lat = append(lat, time.Since(start))
				if err != nil || v.AsInt64() != int64(i)+1 {
					b.Fatal(v, err)
				}
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
			b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
		})
	}
}

func benchCallAdd(b *testing.B, name string) { benchCallAddIn(b, benchFunction(b, name)) }

func benchCallAddIn(b *testing.B, f *Function) {
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		v, err := f.CallValues(ctx, bridge.Int64(int64(i)), bridge.Int64(1))
		if err != nil || v.AsInt64() != int64(i)+1 {
			b.Fatal(v, err)
		}
	}
}

// BenchmarkCallUpper100: one row call, upper(s) on a 100-byte ASCII STRING
// (bench's upper_100b_row); BenchmarkCallEcho100 returns s itself, so it
// measures the string crossing alone; BenchmarkCallUpper100NonASCII has
// a few non-ASCII characters.
func BenchmarkCallUpper100(b *testing.B) {
	benchCallString(b, "upper", upper100, strings.ToUpper(upper100))
}
func BenchmarkCallEcho100(b *testing.B) { benchCallString(b, "echo", upper100, upper100) }
func BenchmarkCallUpper100NonASCII(b *testing.B) {
	s := upper100[:90] + "é ß ünï"
	benchCallString(b, "upper", s, strings.ToUpper(s[:90])+"É SS ÜNÏ")
}

// upper100 is bench's upper_100b_row input.
var upper100 = strings.Repeat("pyudf Go ", 12)[:100]

func benchCallString(b *testing.B, name, in, want string) {
	f := benchFunction(b, name)
	ctx := context.Background()
	arg := bridge.String(in)
	b.ReportAllocs()
	for b.Loop() {
		v, err := f.CallValues(ctx, arg)
		if err != nil || v.AsString() != want {
			b.Fatal(v, err)
		}
	}
}

// BenchmarkPythonUpper100: the work alone, s.upper() in a Python loop of
// 1000 (bench's mode python); ns/op is per row.
func BenchmarkPythonUpper100(b *testing.B) {
	f := benchFunction(b, "upper_loop")
	ctx := context.Background()
	for b.Loop() {
		if _, err := f.Call(ctx, upper100, int64(1000)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/row")
}

// BenchmarkBareUpper100: the floor of BenchmarkCallUpper100, a C function
// that takes the GIL, calls upper on the str of the bytes and copies the
// result out (cgo.Frame.BareStr).
func BenchmarkBareUpper100(b *testing.B) {
	f := benchFunction(b, "upper")
	fr := cgo.NewFrame()
	want := strings.ToUpper(upper100)
	b.ReportAllocs()
	for b.Loop() {
		if got, ok := fr.BareStr(f.obj, upper100); !ok || got != want {
			b.Fatal(got, ok)
		}
	}
}

// BenchmarkBareAdd: the floor, a C function that takes the GIL and calls the
// same Python function.
func BenchmarkBareAdd(b *testing.B) {
	f := benchFunction(b, "plain_add")
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if floor.Add(f, int64(i), 1) != int64(i)+1 {
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

func benchBatch(b *testing.B, name string, rows int) {
	e := newEngine(b, Config{})
	m, err := e.LoadSource(context.Background(), "bench_batch.py", `
import pyarrow.compute as pc
from pyudf import udf
add_rows = udf(lambda a, b: a + b, input_types=['BIGINT', 'BIGINT'], result_type='BIGINT')
add_pandas = udf(lambda a, b: a + b, input_types=['BIGINT', 'BIGINT'], result_type='BIGINT', func_type='pandas')
add_arrow = udf(lambda a, b: pc.add(a, b), input_types=['BIGINT', 'BIGINT'], result_type='BIGINT', func_type='arrow')
`)
	if err != nil {
		b.Fatal(err)
	}
	f, err := m.Function(context.Background(), name)
	if err != nil {
		b.Fatal(err)
	}
	ab := array.NewInt64Builder(arrowconv.DefaultAllocator)
	for i := range rows {
		ab.Append(int64(i))
	}
	col := ab.NewArray()
	ab.Release()
	schema := arrow.NewSchema([]arrow.Field{{Name: "a", Type: arrow.PrimitiveTypes.Int64}, {Name: "b", Type: arrow.PrimitiveTypes.Int64}}, nil)
	rec := array.NewRecordBatch(schema, []arrow.Array{col, col}, int64(rows))
	col.Release()
	defer rec.Release()
	b.SetBytes(int64(rows))
	for b.Loop() {
		res, err := f.Eval(context.Background(), rec)
		if err != nil {
			b.Fatal(err)
		}
		res.Release()
	}
}

// BenchmarkEval64K: one 64K-row batch per op; MB/s reads as million rows per second.
func BenchmarkEval64KRows(b *testing.B)   { benchBatch(b, "add_rows", 64*1024) }
func BenchmarkEval64KPandas(b *testing.B) { benchBatch(b, "add_pandas", 64*1024) }
func BenchmarkEval64KArrow(b *testing.B)  { benchBatch(b, "add_arrow", 64*1024) }
