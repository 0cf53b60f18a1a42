package pyudfbeam

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"

	"github.com/pyudf/pyudf/bridge"
)

func TestMain(m *testing.M) {
	if os.Getenv("PYUDFBEAM_TEST_ORPHAN") != "" {
		orphanChild()
	}
	ptest.MainWithDefault(m, "prism")
}

const udfSource = `
from pyflink.table import DataTypes
from pyflink.table.udf import AggregateFunction, ScalarFunction, udaf, udf

@udf(result_type='STRING', input_types=['STRING'])
def upper(s):
    return s.upper()

@udf(result_type='BIGINT', input_types=['BIGINT', 'BIGINT'])
def add(a, b):
    return a + b

_batches = []  # the length of each batch add_pandas was called with
_merges = [0]   # calls of WeightedAvg.merge

@udf(result_type='BIGINT', input_types=['BIGINT', 'BIGINT'], func_type='pandas')
def add_pandas(a, b):
    _batches.append(len(a))
    return a + b

@udf(result_type='ARRAY<BIGINT>')
def batches():
    out = list(_batches)
    _batches.clear()
    return out

@udf(result_type='BIGINT')
def merges():
    n = _merges[0]
    _merges[0] = 0
    return n

@udf(result_type='STRING', input_types=['STRING'])
def picky(s):
    if s == 'bad':
        raise ValueError('cannot take %r' % s)
    return s

@udf(result_type='STRING', input_types=['STRING'], func_type='pandas')
def picky_pandas(s):
    if (s == 'bad').any():
        raise ValueError('a bad row in a batch of %d' % len(s))
    return s

class Tag(ScalarFunction):
    def open(self, function_context):
        self.tag = function_context.get_job_parameter('tag', 'none')
    def eval(self, s):
        return '%s:%s' % (self.tag, s)

tag = udf(Tag(), result_type='STRING', input_types=['STRING'])

class Acc:
    def __init__(self):
        self.total = 0.0
        self.weight = 0

class WeightedAvg(AggregateFunction):
    def create_accumulator(self):
        return Acc()
    def accumulate(self, acc, value, weight):
        acc.total += value * weight
        acc.weight += weight
    def merge(self, acc, accs):
        _merges[0] += 1
        for other in accs:
            acc.total += other.total
            acc.weight += other.weight
    def get_value(self, acc):
        return None if acc.weight == 0 else acc.total / acc.weight

weighted_avg = udaf(WeightedAvg(), result_type='DOUBLE', input_types=['DOUBLE', 'BIGINT'])

class Total(AggregateFunction):
    def create_accumulator(self):
        return [0]
    def accumulate(self, acc, x):
        acc[0] += x
    def merge(self, acc, accs):
        acc[0] += sum(a[0] for a in accs)
    def get_value(self, acc):
        return acc[0]

total = udaf(Total(), result_type='BIGINT', input_types=['BIGINT'])
`

// Pair is two BIGINT arguments.
type Pair struct{ A, B int64 }

// Weighted is weighted_avg's arguments.
type Weighted struct {
	Value  float64
	Weight int64
}

func init() {
	beam.RegisterType(reflect.TypeOf(Pair{}))
	beam.RegisterType(reflect.TypeOf(Weighted{}))
	beam.RegisterType(reflect.TypeOf(Keyed{}))
	register.Function1x2(toKV)
	register.Function2x1(formatKV)
}

func udfOf(name string) UDF { return UDF{Source: udfSource, Function: name} }

var (
	stringType = reflect.TypeOf("")
	int64Type  = reflect.TypeOf(int64(0))
)

func TestScalarPerElement(t *testing.T) {
	p, s := beam.NewPipelineWithRoot()
	in := beam.Create(s, "a", "bc", "déf")
	passert.Equals(s, Scalar(s, udfOf("upper"), stringType, in), "A", "BC", "DÉF")
	pairs := beam.Create(s, Pair{1, 2}, Pair{40, 2}, Pair{-5, 5})
	passert.Equals(s, Scalar(s, udfOf("add"), int64Type, pairs), int64(3), int64(42), int64(0))
	ptest.RunAndValidate(t, p)
}

// Process mode, and job parameters: each configuration gets an engine of its own.
func TestScalarModesAndJobParameters(t *testing.T) {
	p, s := beam.NewPipelineWithRoot()
	in := beam.Create(s, "a", "b")
	for _, mode := range []string{"thread", "process"} {
		u := UDF{Source: udfSource, Function: "tag", Mode: mode, JobParameters: map[string]string{"tag": mode}}
		passert.Equals(s, Scalar(s, u, stringType, in), mode+":a", mode+":b")
		w := UDF{Source: udfSource, Function: "total", Mode: mode}
		passert.Equals(s, Aggregate(s, w, int64Type, beam.Create(s, int64(1), int64(2), int64(3))), int64(6))
	}
	ptest.RunAndValidate(t, p)
}

func TestPandasPerBundle(t *testing.T) {
	p, s := beam.NewPipelineWithRoot()
	var pairs []any
	var want []any
	for i := range 1000 {
		pairs = append(pairs, Pair{int64(i), int64(2 * i)})
		want = append(want, int64(3*i))
	}
	call(t, "batches")
	out := Pandas(s, udfOf("add_pandas"), int64Type, beam.Create(s, pairs...))
	passert.Equals(s, out, want...)
	ptest.RunAndValidate(t, p)
	// One crossing per bundle, not per element: Prism makes one bundle of a
	// small Create (allow a few, should it split).
	sizes := call(t, "batches").([]any)
	total := int64(0)
	for _, n := range sizes {
		total += n.(int64)
	}
	t.Logf("batch sizes: %v", sizes)
	if total != 1000 || len(sizes) > 4 {
		t.Errorf("add_pandas ran over batches of %v elements: want 1000 elements in at most 4 batches", sizes)
	}
}

// BatchSize flushes a batch inside the bundle, from ProcessElement.
func TestPandasBatchSize(t *testing.T) {
	p, s := beam.NewPipelineWithRoot()
	var pairs, want []any
	for i := range 250 {
		pairs = append(pairs, Pair{int64(i), 1})
		want = append(want, int64(i+1))
	}
	call(t, "batches")
	fn := &PandasFn{UDF: udfOf("add_pandas"), Out: beam.EncodedType{T: int64Type}, BatchSize: 100}
	out := beam.ParDo(s, fn, beam.Create(s, pairs...), beam.TypeDefinition{Var: beam.UType, T: int64Type})
	passert.Equals(s, out, want...)
	ptest.RunAndValidate(t, p)
	sizes := call(t, "batches").([]any)
	total := int64(0)
	for _, n := range sizes {
		if n.(int64) > 100 {
			t.Errorf("a batch of %v elements, BatchSize is 100", n)
		}
		total += n.(int64)
	}
	if total != 250 || len(sizes) < 3 {
		t.Errorf("batch sizes %v: want 250 elements in at least 3 batches", sizes)
	}
}

// call calls a function of udfSource in this process's shared engine (the
// one Prism's in-process workers use).
func call(t *testing.T, name string, args ...any) any {
	t.Helper()
	ctx := context.Background()
	h, fn, err := openFunction(ctx, udfOf(name))
	if err != nil {
		t.Fatal(err)
	}
	// Held until the test ends, so that the engine (and the module's
	// counters) outlive the pipelines run in between, whether or not the
	// runner calls Teardown.
	t.Cleanup(func() { h.release() })
	v, err := fn.Call(ctx, args...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestAggregateCombinePerKey(t *testing.T) {
	p, s := beam.NewPipelineWithRoot()
	var kvs []any
	want := map[string]float64{}
	for i := range 300 {
		key := []string{"a", "b", "c"}[i%3]
		kvs = append(kvs, Keyed{key, Weighted{float64(i), int64(1 + i%2)}})
	}
	// a: i = 0,3,...,297; weights alternate 1,2 by parity of i.
	for _, key := range []string{"a", "b", "c"} {
		var tot, w float64
		for i := range 300 {
			if []string{"a", "b", "c"}[i%3] == key {
				tot += float64(i) * float64(1+i%2)
				w += float64(1 + i%2)
			}
		}
		want[key] = tot / w
	}
	col := beam.ParDo(s, toKV, beam.Create(s, kvs...))
	avg := AggregatePerKey(s, udfOf("weighted_avg"), reflect.TypeOf(float64(0)), col)
	passert.Equals(s, beam.ParDo(s, formatKV, avg),
		fmtKV("a", want["a"]), fmtKV("b", want["b"]), fmtKV("c", want["c"]))
	call(t, "merges")
	ptest.RunAndValidate(t, p)
	// Prism lifts the combine (AddInput before the shuffle, the accumulators
	// encoded across it, MergeAccumulators after it) but makes one bundle of
	// a small input, so one accumulator per key arrives and Python's merge
	// does not run; TestAggregateFnAccumulatorsTravel covers that path.
	t.Logf("Python merge calls: %v", call(t, "merges"))
}

func TestAggregateGlobally(t *testing.T) {
	p, s := beam.NewPipelineWithRoot()
	var xs []any
	for i := range 1000 {
		xs = append(xs, int64(i))
	}
	passert.Equals(s, Aggregate(s, udfOf("total"), int64Type, beam.Create(s, xs...)), int64(999*1000/2))
	ptest.RunAndValidate(t, p)
}

// A UDF that raises inside a bundle fails the pipeline, and the error carries
// the Python exception and its traceback.
func TestScalarRaisingFailsPipelineWithTraceback(t *testing.T) {
	p, s := beam.NewPipelineWithRoot()
	Scalar(s, udfOf("picky"), stringType, beam.Create(s, "ok", "bad", "fine"))
	err := ptest.Run(p)
	wantErr(t, err, "ValueError: cannot take 'bad'", "Traceback (most recent call last)", `in picky`)
}

func TestPandasRaisingFailsPipelineWithTraceback(t *testing.T) {
	p, s := beam.NewPipelineWithRoot()
	Pandas(s, udfOf("picky_pandas"), stringType, beam.Create(s, "ok", "bad", "fine"))
	err := ptest.Run(p)
	wantErr(t, err, "ValueError: a bad row in a batch of 3", "Traceback (most recent call last)", `in picky_pandas`)
}

func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("pipeline succeeded, want a failure")
	}
	for _, part := range parts {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error lacks %q:\n%v", part, err)
		}
	}
}

// The DoFn's own error keeps the *bridge.PythonError reachable.
func TestScalarErrorIsPythonError(t *testing.T) {
	f := &ScalarFn{UDF: udfOf("picky"), Out: beam.EncodedType{T: stringType}}
	ctx := context.Background()
	if err := f.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	defer f.Teardown()
	err := f.ProcessElement(ctx, "bad", func(beam.U) { t.Error("emitted a result for a failed call") })
	var pe *bridge.PythonError
	if !errors.As(err, &pe) || pe.Type != "ValueError" {
		t.Fatalf("want a ValueError, got %v", err)
	}
	var got []any
	if err := f.ProcessElement(ctx, "good", func(v beam.U) { got = append(got, v) }); err != nil || len(got) != 1 || got[0] != "good" {
		t.Errorf("call after the failure: %v, %v", got, err)
	}
}

// Keyed is an input of AggregatePerKey before it is split into a KV.
type Keyed struct {
	Key string
	Val Weighted
}

func toKV(e Keyed) (string, Weighted) { return e.Key, e.Val }

func formatKV(k string, v float64) string { return fmtKV(k, v) }

func fmtKV(k string, v float64) string { return fmt.Sprintf("%s=%.9f", k, v) }

// The CombineFn's methods as a runner calls them across stages: inputs added
// in one "bundle", the accumulator encoded and decoded, merged with another
// that carries state (Python's merge), extracted.
func TestAggregateFnAccumulatorsTravel(t *testing.T) {
	ctx := context.Background()
	f := &AggregateFn{UDF: udfOf("weighted_avg"), Out: beam.EncodedType{T: reflect.TypeOf(float64(0))}}
	if err := f.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	defer f.Teardown()
	add := func(a Accumulator, rows ...Weighted) Accumulator {
		t.Helper()
		for _, r := range rows {
			var err error
			if a, err = f.AddInput(a, r); err != nil {
				t.Fatal(err)
			}
		}
		return a
	}
	travel := func(a Accumulator) Accumulator {
		t.Helper()
		b, err := encodeAccumulator(a)
		if err != nil {
			t.Fatal(err)
		}
		out, err := decodeAccumulator(b)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	// More inputs than wait in Go, so that AddInput settles on the way.
	var rows []Weighted
	for i := range maxPending + 10 {
		rows = append(rows, Weighted{float64(i % 7), 1})
	}
	a := travel(add(f.CreateAccumulator(), rows...))
	b := travel(add(f.CreateAccumulator(), Weighted{100, 10}))
	if a.State == nil || b.State == nil {
		t.Fatal("encoded accumulators carry no state")
	}
	call(t, "merges")
	m, err := f.MergeAccumulators(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if n := call(t, "merges"); n != int64(1) {
		t.Errorf("Python merge calls: %v, want 1", n)
	}
	// A fresh accumulator and one with inputs only merge without Python.
	m, err = f.MergeAccumulators(travel(f.CreateAccumulator()), m)
	if err != nil {
		t.Fatal(err)
	}
	m, err = f.MergeAccumulators(m, add(f.CreateAccumulator(), Weighted{1, 5}))
	if err != nil {
		t.Fatal(err)
	}
	if n := call(t, "merges"); n != int64(0) {
		t.Errorf("Python merge calls for accumulators without state on one side: %v, want 0", n)
	}
	sum, weight := 1000.0+5, float64(len(rows)+10+5)
	for _, r := range rows {
		sum += r.Value
	}
	got, err := f.ExtractOutput(travel(m))
	if err != nil {
		t.Fatal(err)
	}
	if got != sum/weight {
		t.Errorf("weighted average: %v, want %v", got, sum/weight)
	}
	// An empty accumulator extracts get_value of a fresh one (None here: a
	// NULL that float64 cannot hold is an error, not a zero).
	if _, err := f.ExtractOutput(f.CreateAccumulator()); err == nil || !strings.Contains(err.Error(), "result is NULL") {
		t.Errorf("extract of an empty accumulator into float64: %v", err)
	}
	// No scratch key is left behind.
	if n, err := f.agg.Len(ctx); err != nil || n != 0 {
		t.Errorf("aggregate keeps %d keys (%v), want 0", n, err)
	}
}

func TestHostileAggregateFnCorruptAccumulator(t *testing.T) {
	ctx := context.Background()
	f := &AggregateFn{UDF: udfOf("total"), Out: beam.EncodedType{T: int64Type}}
	if err := f.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	defer f.Teardown()
	bad, err := decodeAccumulator([]byte("not a pickle"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.ExtractOutput(bad)
	var pe *bridge.PythonError
	if !errors.As(err, &pe) || pe.Type != "ValueError" || !strings.Contains(err.Error(), "not a pyudf aggregate snapshot") {
		t.Fatalf("extract of a corrupt accumulator: %v", err)
	}
	a, err := f.AddInput(f.CreateAccumulator(), int64(41))
	if err == nil {
		a, err = f.AddInput(a, int64(1))
	}
	if err != nil {
		t.Fatal(err)
	}
	if got, err := f.ExtractOutput(a); err != nil || got != int64(42) {
		t.Errorf("after the failure: %v, %v; want 42", got, err)
	}
}

func TestHostileSetupUnknownFunction(t *testing.T) {
	p, s := beam.NewPipelineWithRoot()
	Scalar(s, udfOf("no_such_udf"), stringType, beam.Create(s, "x"))
	wantErr(t, ptest.Run(p), `"no_such_udf"`, "unknown function")
	// The module and engine stay usable: the next pipeline runs.
	p, s = beam.NewPipelineWithRoot()
	passert.Equals(s, Scalar(s, udfOf("upper"), stringType, beam.Create(s, "x")), "X")
	ptest.RunAndValidate(t, p)
}

// A module that does not load fails Setup with the Python error and its
// traceback; the same engine then loads a good module.
func TestHostileSetupModuleSyntaxError(t *testing.T) {
	p, s := beam.NewPipelineWithRoot()
	Scalar(s, UDF{Source: "def broken(:\n    pass\n", Function: "broken"}, stringType, beam.Create(s, "x"))
	wantErr(t, ptest.Run(p), "SyntaxError", "loading the module of \"broken\"")
	p, s = beam.NewPipelineWithRoot()
	passert.Equals(s, Scalar(s, udfOf("upper"), stringType, beam.Create(s, "y")), "Y")
	ptest.RunAndValidate(t, p)
}

func TestConformOutputType(t *testing.T) {
	for _, tc := range []struct {
		v    any
		t    reflect.Type
		want any
		err  string
	}{
		{int64(1 << 40), reflect.TypeOf(int32(0)), nil, "does not fit the output type int32"},
		{int64(-1), reflect.TypeOf(uint64(0)), nil, "does not fit the output type uint64"},
		{int64(7), reflect.TypeOf(int32(0)), int32(7), ""},
		{1.5, reflect.TypeOf(float32(0)), float32(1.5), ""},
		{0.1, reflect.TypeOf(float32(0)), nil, "does not fit the output type float32"},
		{"s", reflect.TypeOf(0), nil, "does not fit the output type int"},
		{nil, stringType, nil, "result is NULL"},
		{nil, reflect.TypeOf([]byte(nil)), []byte(nil), ""},
	} {
		got, err := conform(tc.v, tc.t)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("conform(%v, %v): %v, %v; want error %q", tc.v, tc.t, got, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("conform(%v, %v): %#v, %v; want %#v", tc.v, tc.t, got, err, tc.want)
		}
	}
}
