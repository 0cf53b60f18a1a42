package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pyudf/pyudf/bridge"
)

// The five ways PyFlink users define scalar functions, imported the PyFlink way.
const stylesSource = `
import functools
from typing import List, Optional
from pyflink.table import DataTypes, Row
from pyflink.table.udf import udf, ScalarFunction, FunctionContext

class Add(ScalarFunction):
    def eval(self, i, j):
        return i + j

add_class = udf(Add(), result_type=DataTypes.BIGINT())

@udf(result_type=DataTypes.BIGINT())
def add_decorated(i, j):
    return i + j

add_lambda = udf(lambda i, j: i + j, result_type=DataTypes.BIGINT())

class CallableAdd(object):
    def __call__(self, i, j):
        return i + j

add_callable = udf(CallableAdd(), result_type=DataTypes.BIGINT())

def partial_add(i, j, k):
    return i + j + k

add_partial = udf(functools.partial(partial_add, k=1), result_type=DataTypes.BIGINT())

add_declared = udf(lambda i, j: i + j, input_types=[DataTypes.BIGINT(), DataTypes.BIGINT()],
                   result_type=DataTypes.BIGINT())

@udf(result_type='ARRAY<STRING>')
def ddl_result(s):
    return s.split(',')

@udf(input_types=['MAP<STRING, BIGINT>', 'ROW<a INT, b STRING>'], result_type='DECIMAL(10, 2)')
def ddl_inputs(m, r):
    return sum(m.values()) + r.a

@udf(result_type=DataTypes.ROW([DataTypes.FIELD('name', DataTypes.STRING()),
                                DataTypes.FIELD('ts', DataTypes.TIMESTAMP(3))]))
def row_result(name):
    return Row(name=name, ts=None)

def hinted(x: int, names: List[str]) -> Optional[float]:
    return x * len(names) / 2

class HintedClass(ScalarFunction):
    def eval(self, s: str) -> int:
        return len(s)

def undeclared(x):
    return x
`

func TestFivePyFlinkStyles(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := loadModule(t, Config{}, "styles.py", stylesSource)
		for _, name := range []string{"add_class", "add_decorated", "add_lambda", "add_callable", "add_declared"} {
			if got := call(t, m, name, int64(40), int64(2)); got != int64(42) {
				t.Errorf("%s(40, 2) = %#v", name, got)
			}
		}
		if got := call(t, m, "add_partial", int64(40), int64(1)); got != int64(42) {
			t.Errorf("add_partial(40, 1) = %#v", got)
		}
	})
}

func TestDeclaredTypes(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := loadModule(t, Config{}, "styles.py", stylesSource)
		for _, c := range []struct {
			name, inputs, result string
		}{
			{"add_decorated", "", "BIGINT"},
			{"add_declared", "BIGINT, BIGINT", "BIGINT"},
			{"ddl_result", "", "ARRAY<STRING>"},
			{"ddl_inputs", "MAP<STRING, BIGINT>, ROW<a INT, b STRING>", "DECIMAL(10, 2)"},
			{"row_result", "", "ROW<name STRING, ts TIMESTAMP(3)>"},
			{"hinted", "BIGINT, ARRAY<STRING>", "DOUBLE"},
			{"HintedClass", "STRING", "BIGINT"},
			{"undeclared", "", ""},
		} {
			f := function(t, m, c.name)
			result := ""
			if f.ResultType() != nil {
				result = f.ResultType().String()
			}
			if got := typeList(f.InputTypes()); got != c.inputs || result != c.result {
				t.Errorf("%s: inputs (%s) result %q, want (%s) %q", c.name, got, result, c.inputs, c.result)
			}
		}
		if got := call(t, m, "ddl_result", "a,b"); !sameValue(got, []any{"a", "b"}) {
			t.Errorf("ddl_result = %#v", got)
		}
		got := call(t, m, "ddl_inputs", map[string]int64{"x": 1, "y": 2}, bridge.Row{int32(3), "s"})
		if d, ok := got.(bridge.Dec); !ok || d.String() != "6.00" {
			t.Errorf("ddl_inputs = %#v", got)
		}
		if got := call(t, m, "row_result", "n"); !sameValue(got, bridge.Row{"n", nil}) {
			t.Errorf("row_result = %#v", got)
		}
		if got := call(t, m, "hinted", 3, []string{"a", "b"}); got != 3.0 {
			t.Errorf("hinted = %#v", got)
		}
		if got := call(t, m, "HintedClass", "four"); got != int64(4) {
			t.Errorf("HintedClass = %#v", got)
		}
	})
}

func TestInvalidDeclaredType(t *testing.T) {
	modes(t, func(t *testing.T) {
		e := newEngine(t, Config{})
		m, err := e.LoadSource(context.Background(), "badtype.py",
			"from pyudf import udf\nf = udf(lambda: 1, result_type='ARRAY<BIGNT>')\n")
		if err != nil {
			t.Fatal(err)
		}
		_, err = m.Function(context.Background(), "f")
		var te *bridge.TypeError
		if !errors.As(err, &te) {
			t.Fatalf("want a TypeError, got %v", err)
		}
		wantMessage(t, err, `function "f": result type: invalid type "ARRAY<BIGNT>" at offset 6: unknown type "BIGNT"`)
	})
}

func TestUnsupportedKinds(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := loadModule(t, Config{}, "kinds.py", `
from pyudf import udf, udaf, AggregateFunction
vectorized = udf(lambda s: s + 1, result_type='BIGINT', func_type='pandas')
class Sum(AggregateFunction):
    def create_accumulator(self): return [0]
    def accumulate(self, acc, x): acc[0] += x
    def get_value(self, acc): return acc[0]
total = udaf(Sum(), result_type='BIGINT')
`)
		if _, err := m.Function(context.Background(), "total"); !errors.Is(err, ErrUnsupported) {
			t.Errorf("aggregate: want ErrUnsupported, got %v", err)
		}
		if _, err := function(t, m, "vectorized").Call(context.Background(), int64(1)); !errors.Is(err, ErrUnsupported) {
			t.Errorf("row call of a Pandas UDF: want ErrUnsupported, got %v", err)
		}
	})
}

const lifecycleSource = `
import logging
from pyflink.table import DataTypes
from pyflink.table.udf import udf, ScalarFunction

events = []

class Enrich(ScalarFunction):
    def open(self, function_context):
        events.append("open")
        self.prefix = function_context.get_job_parameter("prefix", "none")
        self.missing = function_context.get_job_parameter("missing", "default")
        group = function_context.get_metric_group().add_group("udf", "enrich")
        self.calls = group.counter("calls")
        self.sizes = group.distribution("sizes")
        self.rate = group.meter("rows", time_span_in_seconds=60)
        group.gauge("constant", lambda: 42)

    def eval(self, s):
        events.append("eval")
        self.calls.inc()
        self.sizes.update(len(s))
        self.rate.mark_event()
        return "%s:%s:%s" % (self.prefix, self.missing, s)

    def close(self):
        events.append("close")

enrich = udf(Enrich(), result_type=DataTypes.STRING())

@udf(result_type='STRING')
def get_events():
    return ",".join(events)

@udf(result_type='BIGINT')
def chatty(x):
    logging.getLogger("pyudf.test").info("info %d", x)
    logging.getLogger("pyudf.test").debug("debug is below the handler's level")
    logging.getLogger().error("root error")
    print("printed", x)
    print("partial line ", end="")
    print("completed")
    return x
`

func TestOpenCloseJobParametersMetrics(t *testing.T) {
	sharedModes(t, func(t *testing.T) {
		// One worker in process mode: the events below are one interpreter's.
		m := loadModule(t, Config{Workers: 1, JobParameters: map[string]string{"prefix": "p"}}, "lifecycle.py", lifecycleSource)
		if got := call(t, m, "get_events"); got != "" {
			t.Fatalf("events before lookup: %q", got)
		}
		enrich := function(t, m, "enrich")
		if got := call(t, m, "get_events"); got != "open" {
			t.Fatalf("events after lookup: %q, want open", got)
		}
		for _, s := range []string{"a", "bbb"} {
			if got, err := enrich.Call(context.Background(), s); err != nil || got != "p:default:"+s {
				t.Fatalf("enrich(%q) = %v, %v", s, got, err)
			}
		}
		if again := function(t, m, "enrich"); again != enrich {
			t.Error("a second lookup opened a second instance")
		}

		metrics, err := m.engine.Metrics(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		byName := map[string]Metric{}
		for _, mt := range metrics {
			byName[mt.Name] = mt
			if len(mt.Groups) != 1 || mt.Groups[0].Key != "udf" || *mt.Groups[0].Value != "enrich" {
				t.Errorf("%s groups = %+v", mt.Name, mt.Groups)
			}
		}
		if c := byName["calls"]; c.Kind != "counter" || c.Value != 2 {
			t.Errorf("counter = %+v", c)
		}
		if d := byName["sizes"]; d.Kind != "distribution" || d.Count != 2 || d.Sum != 4 || d.Min != 1 || d.Max != 3 {
			t.Errorf("distribution = %+v", d)
		}
		if r := byName["rows"]; r.Kind != "meter" || r.Count != 2 || r.Rate <= 0 {
			t.Errorf("meter = %+v", r)
		}
		if g := byName["constant"]; g.Kind != "gauge" || g.Value != 42 {
			t.Errorf("gauge = %+v", g)
		}

		reg := prometheus.NewPedanticRegistry()
		if err := reg.Register(m.engine.Collector()); err != nil {
			t.Fatal(err)
		}
		want := `
# HELP pyudf_calls pyudf metric calls
# TYPE pyudf_calls counter
pyudf_calls{function="enrich",udf="enrich"} 2
# HELP pyudf_constant pyudf metric constant
# TYPE pyudf_constant gauge
pyudf_constant{function="enrich",udf="enrich"} 42
`
		if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "pyudf_calls", "pyudf_constant"); err != nil {
			t.Error(err)
		}
		if n, err := testutil.GatherAndCount(reg); err != nil || n != 7 {
			t.Errorf("gathered %d series (%v), want 7", n, err)
		}

		if err := enrich.Close(); err != nil {
			t.Fatal(err)
		}
		if got := call(t, m, "get_events"); got != "open,eval,eval,close" {
			t.Errorf("events = %q", got)
		}
	})
}

// recordHandler keeps the records slog hands it.
type recordHandler struct {
	mu      sync.Mutex
	level   slog.Level
	records []string
}

func (h *recordHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }
func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler           { return h }
func (h *recordHandler) WithGroup(string) slog.Handler                { return h }
func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s", r.Level, r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	h.mu.Lock()
	h.records = append(h.records, b.String())
	h.mu.Unlock()
	return nil
}

// all is a copy of the records so far.
func (h *recordHandler) all() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.records...)
}

func TestPythonLoggingAndPrintReachSlog(t *testing.T) {
	modes(t, func(t *testing.T) {
		h := &recordHandler{level: slog.LevelInfo}
		m := loadModule(t, Config{Logger: slog.New(h)}, "logs.py", lifecycleSource)
		call(t, m, "chatty", int64(7))
		h.mu.Lock()
		got := strings.Join(h.records, "\n")
		h.mu.Unlock()
		want := strings.Join([]string{
			"INFO info 7 logger=pyudf.test source=python",
			"ERROR root error logger=root source=python",
			"INFO printed 7 logger=stdout source=python",
			"INFO partial line completed logger=stdout source=python",
		}, "\n")
		if got != want {
			t.Errorf("slog records:\n%s\nwant:\n%s", got, want)
		}
	})
}

func TestLoadFileAndImportFromPath(t *testing.T) {
	modes(t, func(t *testing.T) {
		dir := t.TempDir()
		write := func(name, src string) {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		write("helpers_pyudf_test.py", "def triple(x):\n    return 3 * x\n")
		write("file_udfs.py", "from pyudf import udf\nfrom helpers_pyudf_test import triple\n"+
			"@udf(result_type='BIGINT')\ndef f(x):\n    return triple(x)\n")
		e := newEngine(t, Config{Path: []string{dir}})
		fm, err := e.LoadFile(context.Background(), filepath.Join(dir, "file_udfs.py"))
		if err != nil {
			t.Fatal(err)
		}
		if fm.Name() != "file_udfs" {
			t.Errorf("module name %q", fm.Name())
		}
		if got := call(t, fm, "f", int64(5)); got != int64(15) {
			t.Errorf("file f(5) = %v", got)
		}
		im, err := e.Import(context.Background(), "helpers_pyudf_test")
		if err != nil {
			t.Fatal(err)
		}
		if got := call(t, im, "triple", int64(2)); got != int64(6) {
			t.Errorf("imported triple(2) = %v", got)
		}
	})
}

func TestConcurrentCallers(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := loadModule(t, Config{}, "concurrent.py", stylesSource+lifecycleSource)
		add := function(t, m, "add_declared")
		enrich := function(t, m, "enrich")
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for g := range 64 {
			wg.Go(func() {
				for i := range 200 {
					v, err := add.Call(context.Background(), int64(g), int64(i))
					if err == nil && v != int64(g+i) {
						err = fmt.Errorf("add(%d, %d) = %v", g, i, v)
					}
					if err == nil && i%10 == 0 {
						s := fmt.Sprint(g, "-", i)
						v, err = enrich.Call(context.Background(), s)
						if err == nil && v != "none:default:"+s {
							err = fmt.Errorf("enrich(%s) = %v", s, v)
						}
					}
					if err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		metrics, err := m.engine.Metrics(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, mt := range metrics {
			if mt.Name == "calls" && mt.Value != 64*20 {
				t.Errorf("calls counter = %v, want %d", mt.Value, 64*20)
			}
		}
	})
}

// Arguments written out at the call (a variadic slice the caller makes)
// stay on its stack too: a numeric call allocates nothing, a STRING call
// only its result's Go string.
func TestNoAllocationsPerCallLiteralArgs(t *testing.T) {
	m := loadModule(t, Config{}, "allocs_literal.py", `
from pyudf import udf
add = udf(lambda a, b: a + b, input_types=['BIGINT', 'BIGINT'], result_type='BIGINT')
upper = udf(lambda s: s.upper(), input_types=['STRING'], result_type='STRING')
`)
	ctx := context.Background()
	add, upper := function(t, m, "add"), function(t, m, "upper")
	var sum, up bridge.Value
	var err1, err2 error
	i := int64(0)
	addAllocs := testing.AllocsPerRun(1000, func() {
		i++
		sum, err1 = add.CallValues(ctx, bridge.Int64(i), bridge.Int64(1))
	})
	s := strings.Repeat("pyudf Go ", 12)[:100]
	upperAllocs := testing.AllocsPerRun(1000, func() { up, err2 = upper.CallValues(ctx, bridge.String(s)) })
	if err1 != nil || sum.AsInt64() != i+1 || err2 != nil || up.AsString() != strings.ToUpper(s) {
		t.Fatalf("add = %v, %v; upper = %q, %v", sum, err1, up.AsString(), err2)
	}
	if raceEnabled {
		return
	}
	if addAllocs != 0 {
		t.Errorf("add: %v allocations per call, want 0", addAllocs)
	}
	if upperAllocs != 1 {
		t.Errorf("upper: %v allocations per call, want 1 (the result)", upperAllocs)
	}
}

func TestNoAllocationsPerNumericCall(t *testing.T) {
	m := loadModule(t, Config{}, "allocs.py", `
from pyudf import udf
add = udf(lambda a, b: a + b, input_types=['BIGINT', 'BIGINT'], result_type='BIGINT')
scale = udf(lambda x, f: x * f, input_types=['INT', 'DOUBLE'], result_type='DOUBLE')
both = udf(lambda a, b: a and b, input_types=['BOOLEAN', 'BOOLEAN'], result_type='BOOLEAN')
`)
	ctx := context.Background()
	for _, c := range []struct {
		name string
		args []bridge.Value
		want bridge.Value
	}{
		{"add", []bridge.Value{bridge.Int64(1 << 40), bridge.Int64(1)}, bridge.Int64(1<<40 + 1)},
		{"scale", []bridge.Value{bridge.Int64(3), bridge.Float64(0.5)}, bridge.Float64(1.5)},
		{"both", []bridge.Value{bridge.Bool(true), bridge.Bool(true)}, bridge.Bool(true)},
	} {
		f := function(t, m, c.name)
		var err error
		var got bridge.Value
		allocs := testing.AllocsPerRun(1000, func() { got, err = f.CallValues(ctx, c.args...) })
		if err != nil || got != c.want {
			t.Fatalf("%s = %v, %v; want %v", c.name, got, err, c.want)
		}
		if allocs != 0 && !raceEnabled { // make test runs this test without -race too
			t.Errorf("%s: %v allocations per call, want 0", c.name, allocs)
		}
	}
}
