package pyudfbeam

import (
	"context"
	"errors"
	"fmt"
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
	ptest.MainWithDefault(m, "prism")
}

const udfSource = `
from pyflink.table import DataTypes
from pyflink.table.udf import AggregateFunction, udaf, udf

@udf(result_type='STRING', input_types=['STRING'])
def upper(s):
    return s.upper()

@udf(result_type='BIGINT', input_types=['BIGINT', 'BIGINT'])
def add(a, b):
    return a + b

@udf(result_type='BIGINT', input_types=['BIGINT', 'BIGINT'], func_type='pandas')
def add_pandas(a, b):
    return a + b

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

func TestPandasPerBundle(t *testing.T) {
	p, s := beam.NewPipelineWithRoot()
	var pairs []any
	var want []any
	for i := range 1000 {
		pairs = append(pairs, Pair{int64(i), int64(2 * i)})
		want = append(want, int64(3*i))
	}
	out := Pandas(s, udfOf("add_pandas"), int64Type, beam.Create(s, pairs...))
	passert.Equals(s, out, want...)
	ptest.RunAndValidate(t, p)
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
	ptest.RunAndValidate(t, p)
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
