package engine

import (
	"context"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

const scopedMetricsSource = `
from pyflink.table.udf import ScalarFunction, udf

class Counted(ScalarFunction):
    def open(self, function_context):
        self.calls = function_context.get_metric_group().counter("calls")
        self.sizes = function_context.get_metric_group().add_group("io", "in").distribution("sizes")

    def eval(self, x):
        self.calls.inc()
        self.sizes.update(x)
        return x

first = udf(Counted(), input_types=["BIGINT"], result_type="BIGINT")
second = udf(Counted(), input_types=["BIGINT"], result_type="BIGINT")
`

// TestMetricsScopedPerFunction: two functions registering the same counter
// get one metric each, named by Function, filtered by WithFunction, and
// labelled with the function in Prometheus; kinds are MetricKind constants.
func TestMetricsScopedPerFunction(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := loadModule(t, Config{}, "scoped_metrics.py", scopedMetricsSource)
		ctx := context.Background()
		first, second := function(t, m, "first"), function(t, m, "second")
		for i := 0; i < 3; i++ {
			if _, err := first.Call(ctx, int64(i)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := second.Call(ctx, int64(7)); err != nil {
			t.Fatal(err)
		}

		all, err := m.engine.Metrics(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, mt := range all {
			if mt.Name == "calls" {
				if mt.Kind != MetricCounter || mt.Kind.String() != "counter" {
					t.Errorf("%s kind %q", mt.Function, mt.Kind)
				}
				got = append(got, mt.Function+"="+strings.Repeat("I", int(mt.Count)))
			}
		}
		sort.Strings(got)
		if strings.Join(got, " ") != "first=III second=I" {
			t.Errorf("calls counters: %v, want first=III second=I", got)
		}

		only, err := m.engine.Metrics(ctx, WithFunction("second"))
		if err != nil {
			t.Fatal(err)
		}
		if len(only) != 2 {
			t.Fatalf("WithFunction(second): %+v, want its counter and distribution", only)
		}
		for _, mt := range only {
			if mt.Function != "second" {
				t.Errorf("WithFunction(second) returned %+v", mt)
			}
			if mt.Name == "sizes" && (mt.Kind != MetricDistribution || mt.Count != 1 || mt.Sum != 7) {
				t.Errorf("second's distribution: %+v", mt)
			}
		}
		if none, err := m.engine.Metrics(ctx, WithFunction("nobody")); err != nil || len(none) != 0 {
			t.Errorf("WithFunction(nobody) = %+v, %v", none, err)
		}

		reg := prometheus.NewPedanticRegistry()
		if err := reg.Register(m.engine.Collector()); err != nil {
			t.Fatal(err)
		}
		want := `
# HELP pyudf_calls pyudf metric calls
# TYPE pyudf_calls counter
pyudf_calls{function="first"} 3
pyudf_calls{function="second"} 1
`
		if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "pyudf_calls"); err != nil {
			t.Error(err)
		}
	})
}

// TestMetricsGroupNamedFunction: a user group key "function" does not
// collide with the function label.
func TestMetricsGroupNamedFunction(t *testing.T) {
	m := loadModule(t, Config{}, "group_function.py", `
from pyflink.table.udf import ScalarFunction, udf

class F(ScalarFunction):
    def open(self, ctx):
        ctx.get_metric_group().add_group("function", "mine").counter("n").inc(4)
    def eval(self):
        return 1

f = udf(F(), input_types=[], result_type="BIGINT")
`)
	function(t, m, "f")
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(m.engine.Collector()); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP pyudf_n pyudf metric n
# TYPE pyudf_n counter
pyudf_n{function="f",group_function="mine"} 4
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "pyudf_n"); err != nil {
		t.Error(err)
	}
}
