package benthos_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/redpanda-data/benthos/v4/public/components/pure"
	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/pyudf/pyudf/bridge"
	"github.com/pyudf/pyudf/cgo"
	"github.com/pyudf/pyudf/connect/benthos"
)

// run sends one batch of messages through the processors (YAML of one
// processor, or a list) and returns what comes out, in order, or the error
// the stream failed to start with.
func run(t *testing.T, processors string, msgs ...string) ([]*service.Message, error) {
	t.Helper()
	return runBatches(t, processors, msgs)
}

// runBatches sends the batches one after another through one stream.
func runBatches(t *testing.T, processors string, batches ...[]string) ([]*service.Message, error) {
	t.Helper()
	b := service.NewStreamBuilder()
	if err := b.SetLoggerYAML("level: off"); err != nil {
		t.Fatal(err)
	}
	produce, err := b.AddBatchProducerFunc()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range splitProcessors(processors) {
		if err := b.AddProcessorYAML(p); err != nil {
			return nil, err
		}
	}
	var mu sync.Mutex
	var out []*service.Message
	if err := b.AddBatchConsumerFunc(func(_ context.Context, mb service.MessageBatch) error {
		mu.Lock()
		out = append(out, mb...)
		mu.Unlock()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	strm, err := b.Build()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- strm.Run(ctx) }()
	sent := make(chan error, 1)
	go func() {
		for _, msgs := range batches {
			batch := make(service.MessageBatch, len(msgs))
			for i, m := range msgs {
				batch[i] = service.NewMessage([]byte(m))
			}
			if err := produce(ctx, batch); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	select {
	case err := <-ran:
		if err == nil {
			err = errors.New("the stream stopped before the batch went through")
		}
		return nil, err
	case err := <-sent:
		if err != nil {
			t.Fatalf("producing: %v", err)
		}
	}
	if err := strm.Stop(ctx); err != nil {
		t.Fatalf("stopping: %v", err)
	}
	<-ran
	mu.Lock()
	defer mu.Unlock()
	return out, nil
}

// splitProcessors splits a YAML list of processors ("- a: ...\n- b: ...")
// into one YAML document each; anything else is one processor.
func splitProcessors(s string) []string {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "- ") {
		return []string{s}
	}
	var out []string
	for _, part := range strings.Split("\n"+s, "\n- ")[1:] {
		lines := strings.Split(part, "\n")
		for i := 1; i < len(lines); i++ {
			lines[i] = strings.TrimPrefix(lines[i], "  ")
		}
		out = append(out, strings.Join(lines, "\n"))
	}
	return out
}

func contents(t *testing.T, msgs []*service.Message) []string {
	t.Helper()
	out := make([]string, len(msgs))
	for i, m := range msgs {
		b, err := m.AsBytes()
		if err != nil {
			t.Fatal(err)
		}
		out[i] = string(b)
	}
	return out
}

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

const upperScript = `
        script: |
          from pyflink.table.udf import udf

          @udf(result_type='STRING')
          def upper(s: str) -> str:
              return s.upper()`

// modes are the processor's modes this interpreter offers (the
// sub-interpreter pool needs CPython 3.12+).
func modes() []string {
	if cgo.LinkedVersion >= "3.12" && len(cgo.LinkedVersion) == 4 {
		return []string{"thread", "process", "subinterpreters"}
	}
	return []string{"thread", "process"}
}

func TestUpperReplacesContent(t *testing.T) {
	for _, mode := range modes() {
		t.Run(mode, func(t *testing.T) {
			out, err := run(t, `
pyudf:
  function: upper
  mode: `+mode+strings.ReplaceAll(upperScript, "\n      ", "\n"), "hello", "wörld", "")
			if err != nil {
				t.Fatal(err)
			}
			got := contents(t, out)
			if want := []string{"HELLO", "WÖRLD", ""}; fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("got %q, want %q", got, want)
			}
			for _, m := range out {
				if m.GetError() != nil {
					t.Fatalf("unexpected error: %v", m.GetError())
				}
			}
		})
	}
}

// A row whose UDF raises carries the Python error; catch sees it; the other
// rows of the batch are processed.
func TestRowErrorIsCaught(t *testing.T) {
	for _, mode := range modes() {
		t.Run(mode, func(t *testing.T) {
			out, err := run(t, `
- pyudf:
    function: inverse
    mode: `+mode+`
    args: [ x ]
    result_map: root.inv = this
    script: |
      from pyflink.table.udf import udf

      @udf(input_types=['BIGINT'], result_type='DOUBLE')
      def inverse(x):
          if x == 0:
              raise ZeroDivisionError("x is zero")
          return 1 / x
- catch:
    - mapping: |
        root = this
        root.caught = error()
`, `{"x": 4}`, `{"x": 0}`, `{"x": 2}`)
			if err != nil {
				t.Fatal(err)
			}
			got := contents(t, out)
			want := []string{
				`{"inv":0.25,"x":4}`,
				`{"caught":"pyudf: function \"inverse\" raised ZeroDivisionError: x is zero","x":0}`,
				`{"inv":0.5,"x":2}`,
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			for _, m := range out {
				if m.GetError() != nil {
					t.Fatalf("catch left an error: %v", m.GetError())
				}
			}
		})
	}
}

// Without catch, the error stays on the message, as a *RowError... through
// Benthos' own error type, so check the text; the message content is unchanged.
func TestRowErrorLeavesMessage(t *testing.T) {
	out, err := run(t, `
pyudf:
  function: check
  script: |
    from pyflink.table.udf import udf

    @udf(result_type='STRING')
    def check(s):
        if s == "bad":
            raise ValueError("bad input: " + s)
        return "ok:" + s
`, "good", "bad")
	if err != nil {
		t.Fatal(err)
	}
	if got := contents(t, out); fmt.Sprint(got) != fmt.Sprint([]string{"ok:good", "bad"}) {
		t.Fatalf("got %q", got)
	}
	if out[0].GetError() != nil {
		t.Fatalf("good row: %v", out[0].GetError())
	}
	e := out[1].GetError()
	var re *benthos.RowError
	if !errors.As(e, &re) || re.Function != "check" || re.Message != "ValueError: bad input: bad" ||
		e.Error() != `pyudf: function "check" raised ValueError: bad input: bad` {
		t.Fatalf("bad row's error: %v", e)
	}
}

// A Pandas UDF gets the batch of 1000 messages as one record batch: the
// UDF sees every row in one call.
func TestPandasBatchOf1000(t *testing.T) {
	msgs := make([]string, 1000)
	for i := range msgs {
		msgs[i] = fmt.Sprintf(`{"a": %d, "b": %d.5}`, i, i)
	}
	script := `
    script: |
      import pandas as pd
      from pyflink.table.udf import udf

      @udf(input_types=['BIGINT', 'DOUBLE'], result_type='DOUBLE', func_type='pandas')
      def add(a: pd.Series, b: pd.Series) -> pd.Series:
          return a + b

      @udf(input_types=['BIGINT'], result_type='BIGINT', func_type='pandas')
      def rows_per_call(a):
          return pd.Series([len(a)] * len(a))
`
	for _, mode := range modes() {
		t.Run(mode, func(t *testing.T) {
			out, err := run(t, `
- pyudf:
    function: add
    mode: `+mode+`
    args: [ a, b ]
    result_map: root.sum = this`+script+`
- pyudf:
    function: rows_per_call
    mode: `+mode+`
    args_mapping: root = [ this.a ]
    result_map: root.rows = this`+script, msgs...)
			if err != nil {
				t.Fatal(err)
			}
			if len(out) != 1000 {
				t.Fatalf("%d messages out", len(out))
			}
			for i, m := range out {
				if m.GetError() != nil {
					t.Fatalf("message %d: %v", i, m.GetError())
				}
				var doc struct {
					A    int64
					Sum  float64
					Rows int64
				}
				b, _ := m.AsBytes()
				if err := json.Unmarshal(b, &doc); err != nil {
					t.Fatal(err)
				}
				if doc.A != int64(i) || doc.Sum != float64(2*i)+0.5 || doc.Rows != 1000 {
					t.Fatalf("message %d: %s", i, b)
				}
			}
		})
	}
}

// A Pandas UDF that raises fails its batch: every message carries the error.
func TestPandasErrorMarksBatch(t *testing.T) {
	out, err := run(t, `
pyudf:
  function: boom
  script: |
    from pyflink.table.udf import udf

    @udf(result_type='STRING', func_type='pandas')
    def boom(s):
        raise RuntimeError("no pandas today")
`, "a", "b")
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range out {
		e := m.GetError()
		if e == nil || !strings.Contains(e.Error(), "RuntimeError: no pandas today") || !strings.Contains(e.Error(), `function "boom" over a batch of 2`) {
			t.Fatalf("message %d: error %v", i, e)
		}
	}
	if got := contents(t, out); fmt.Sprint(got) != "[a b]" {
		t.Fatalf("contents changed: %q", got)
	}
}

// Job parameters reach open(); a file source; undeclared input types are
// taken from the values (integers as BIGINT); a ROW result becomes a
// structured message.
func TestFileJobParametersAndRowResult(t *testing.T) {
	path := writeFile(t, "udfs.py", `
from pyflink.table.udf import ScalarFunction, udf
from pyflink.table import Row

class Scale(ScalarFunction):
    def open(self, ctx):
        self.k = int(ctx.get_job_parameter("k", "1"))
    def eval(self, name, n):
        return Row(name=name.upper(), n=n * self.k)

scale = udf(Scale(), result_type='ROW<name STRING, n BIGINT>')
`)
	out, err := run(t, `
pyudf:
  file: `+path+`
  function: scale
  job_parameters: { k: "3" }
  args_mapping: root = [ this.who, this.count ]
`, `{"who": "ada", "count": 2}`, `{"who": "bob", "count": 5}`)
	if err != nil {
		t.Fatal(err)
	}
	got := contents(t, out)
	if want := []string{`{"n":6,"name":"ADA"}`, `{"n":15,"name":"BOB"}`}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// A value that does not fit the declared argument type fails its message
// only, naming the argument.
func TestHostileBenthosArgumentOfWrongType(t *testing.T) {
	out, err := run(t, `
pyudf:
  function: twice
  args: [ n ]
  script: |
    from pyflink.table.udf import udf

    @udf(input_types=['INT'], result_type='BIGINT')
    def twice(n):
        return 2 * n
`, `{"n": 21}`, `{"n": "x"}`, `{"n": 9999999999}`, `not json`, `{"n": 1}`)
	if err != nil {
		t.Fatal(err)
	}
	got := contents(t, out)
	if got[0] != "42" || got[4] != "2" {
		t.Fatalf("good rows: %q", got)
	}
	for i, want := range map[int]string{
		1: `argument 1 (field "n"): want INT, got string (x)`,
		2: `argument 1 (field "n"): 9999999999 out of range for INT`,
		3: `args need a structured (JSON) message`,
	} {
		if e := out[i].GetError(); e == nil || !strings.Contains(e.Error(), want) {
			t.Fatalf("message %d: error %v, want %q", i, e, want)
		}
	}
}

// startErr asserts that the processor config fails the stream at start-up,
// before any message, with an error containing each of want.
func startErr(t *testing.T, processor string, want ...string) {
	t.Helper()
	_, err := run(t, processor, "x")
	if err == nil {
		t.Fatal("the stream started")
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("error %q does not contain %q", err, w)
		}
	}
}

func TestHostileBenthosMissingFunction(t *testing.T) {
	startErr(t, `
pyudf:
  function: nope`+strings.ReplaceAll(upperScript, "\n      ", "\n"),
		`pyudf: function "nope" of the inline script`, "unknown function")
}

func TestHostileBenthosFileSyntaxError(t *testing.T) {
	path := writeFile(t, "broken.py", "def upper(s:\n    return s\n")
	startErr(t, `
pyudf:
  file: `+path+`
  function: upper
`, "pyudf: loading file", "broken.py", "SyntaxError")
}

func TestHostileBenthosArgsMappingArity(t *testing.T) {
	startErr(t, `
pyudf:
  function: add
  args_mapping: root = [ this.a, this.b, this.c ]
  script: |
    from pyflink.table.udf import udf

    @udf(input_types=['BIGINT', 'BIGINT'], result_type='BIGINT')
    def add(a, b):
        return a + b
`, `function "add" takes 2 arguments (BIGINT, BIGINT), but args_mapping yields 3`)
}

func TestHostileBenthosArgsArity(t *testing.T) {
	startErr(t, `
pyudf:
  function: add
  script: |
    from pyflink.table.udf import udf

    @udf(input_types=['BIGINT', 'BIGINT'], result_type='BIGINT')
    def add(a, b):
        return a + b
`, `function "add" takes 2 arguments (BIGINT, BIGINT), but the message content`)
}

func TestHostileBenthosArgsMappingNotArray(t *testing.T) {
	startErr(t, `
pyudf:
  function: upper
  args_mapping: root = "one"`+strings.ReplaceAll(upperScript, "\n      ", "\n"),
		"args_mapping must yield an array of the arguments, not string (one)")
}

func TestHostileBenthosTableFunctionRefused(t *testing.T) {
	startErr(t, `
pyudf:
  function: total
  script: |
    from pyflink.table.udf import udtf

    @udtf(result_types=['BIGINT'])
    def total(n):
        yield n
`, `function "total" cannot run over a message batch`)
}

func TestHostileBenthosAggregateRefused(t *testing.T) {
	startErr(t, `
pyudf:
  function: total
  script: |
    from pyflink.table import DataTypes
    from pyflink.table.udf import AggregateFunction, udaf

    class Total(AggregateFunction):
        def create_accumulator(self):
            return [0]
        def accumulate(self, acc, n):
            acc[0] += n
        def get_value(self, acc):
            return acc[0]

    total = udaf(Total(), result_type=DataTypes.BIGINT(), accumulator_type=DataTypes.ARRAY(DataTypes.BIGINT()))
`, `pyudf: function "total" of the inline script`, "unsupported function")
}

// The lint rule: exactly one source, args or args_mapping.
func TestHostileBenthosLint(t *testing.T) {
	for name, conf := range map[string]string{
		"two sources": `
pyudf:
  function: upper
  file: a.py
  module: b`,
		"no source": `
pyudf:
  function: upper`,
		"args and mapping": `
pyudf:
  function: upper
  module: b
  args: [a]
  args_mapping: root = [this.a]`,
	} {
		t.Run(name, func(t *testing.T) {
			b := service.NewStreamBuilder()
			err := b.AddProcessorYAML(conf)
			if err == nil {
				t.Fatal("linted clean")
			}
			if !strings.Contains(err.Error(), "must be set") && !strings.Contains(err.Error(), "cannot both be set") {
				t.Fatalf("lint error: %v", err)
			}
		})
	}
}

func TestHostileBenthosOpenRaises(t *testing.T) {
	startErr(t, `
pyudf:
  function: f
  script: |
    from pyflink.table.udf import ScalarFunction, udf

    class F(ScalarFunction):
        def open(self, ctx):
            raise RuntimeError("model file missing")
        def eval(self, s):
            return s

    f = udf(F(), result_type='STRING')
`, `pyudf: function "f" of the inline script`, "RuntimeError: model file missing")
}

// A result that does not convert to the declared result type fails its
// message only, with the *bridge.ConversionError naming the row in the
// batch; the other messages get their results and the next batch runs
// normally.
func TestHostileBenthosResultOfWrongType(t *testing.T) {
	proc := `
pyudf:
  function: f
  script: |
    from pyflink.table.udf import udf

    @udf(result_type='STRING')
    def f(s):
        return 42 if s == "int" else s + "!"
`
	out, err := runBatches(t, proc, []string{"a", "int", "b"}, []string{"c", "d"})
	if err != nil {
		t.Fatal(err)
	}
	if got := contents(t, out); fmt.Sprint(got) != "[a! int b! c! d!]" {
		t.Fatalf("contents: %q", got)
	}
	for i, m := range out {
		var ce *bridge.ConversionError
		if e := m.GetError(); i == 1 {
			if !errors.As(e, &ce) || ce.Row != 1 || ce.Path != "result" || !strings.Contains(e.Error(), "Python int is not a STRING") {
				t.Errorf("message 1: error %v, want the ConversionError of row 1", e)
			}
		} else if e != nil {
			t.Errorf("message %d: %v", i, e)
		}
	}
}

// A module found through python_path; undeclared input types are taken from
// the first value (BIGINT here), and a later value of another kind fails
// its message only, as does a null the UDF cannot take; result_map can
// filter a message (root = deleted()).
func TestModuleInferredTypesAndFilter(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bench_mod_t16.py"), []byte(`
from pyflink.table.udf import udf

@udf(result_type='BIGINT')
def double(n):
    return n * 2
`), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, `
pyudf:
  module: bench_mod_t16
  python_path: [ `+dir+` ]
  function: double
  args: [ n ]
  result_map: |
    root.double = this
    root = if this == 0 { deleted() }
`, `{"n": 1}`, `{"n": 0}`, `{"n": "x"}`, `{"n": null}`, `{"n": 4}`)
	if err != nil {
		t.Fatal(err)
	}
	got := contents(t, out)
	want := []string{`{"double":2,"n":1}`, `{"n": "x"}`, `{"n": null}`, `{"double":8,"n":4}`}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	if e := out[1].GetError(); e == nil || !strings.Contains(e.Error(), `argument 1 (field "n"): want BIGINT, got string (x)`) {
		t.Fatalf("mixed column: %v", e)
	}
	if e := out[2].GetError(); e == nil || !strings.Contains(e.Error(), `function "double" raised TypeError`) {
		t.Fatalf("null: %v", e)
	}
	for _, i := range []int{0, 3} {
		if out[i].GetError() != nil {
			t.Fatalf("message %d: %v", i, out[i].GetError())
		}
	}
}

// Nested and decimal arguments go through Arrow's JSON reader; a value that
// does not fit fails its message, naming the type.
func TestNestedArguments(t *testing.T) {
	out, err := run(t, `
pyudf:
  function: total
  args: [ items, price ]
  script: |
    from pyflink.table.udf import udf

    @udf(input_types=['ARRAY<BIGINT>', 'DECIMAL(10, 2)'], result_type='STRING')
    def total(items, price):
        return f"{sum(items)} x {price}"
`, `{"items": [1, 2, 3], "price": 2.50}`, `{"items": ["a"], "price": 1}`, `{"items": [], "price": "3.25"}`)
	if err != nil {
		t.Fatal(err)
	}
	got := contents(t, out)
	if got[0] != "6 x 2.50" || got[2] != "0 x 3.25" || out[0].GetError() != nil || out[2].GetError() != nil {
		t.Fatalf("got %q, errors %v %v", got, out[0].GetError(), out[2].GetError())
	}
	if e := out[1].GetError(); e == nil || !strings.Contains(e.Error(), `argument 1 (field "items")`) || !strings.Contains(e.Error(), "does not fit ARRAY<BIGINT>") {
		t.Fatalf("bad items: %v", e)
	}
}
