package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pyudf/pyudf/bridge"
)

const errorSource = `
from pyudf import udf, DataTypes

@udf(input_types=['BIGINT', 'BIGINT'], result_type='BIGINT')
def add(a, b):
    return a + b

@udf(input_types=['BIGINT'], result_type='BIGINT')
def divide(x):
    return 100 // x

returns_str = udf(lambda: "abc", input_types=[], result_type='BIGINT')
returns_huge = udf(lambda: 2**63, input_types=[], result_type='BIGINT')
returns_none = udf(lambda: None, input_types=[], result_type=DataTypes.BIGINT(nullable=False))
returns_wide_int = udf(lambda: 300, input_types=[], result_type='TINYINT')
returns_object = udf(lambda: object(), input_types=[], result_type='STRING')
returns_bad_row = udf(lambda: (1, 2, 3), input_types=[], result_type='ROW<a INT, b INT>')

def spin():
    while True:
        pass

def busy_wait_catching():
    while True:
        try:
            sum(range(1000))
        except Exception:
            pass
`

func errorModule(t *testing.T) (*Engine, *Module) {
	t.Helper()
	m := loadModule(t, Config{}, "errors_cases.py", errorSource)
	return m.engine, m
}

func function(t *testing.T, m *Module, name string) *Function {
	t.Helper()
	f, err := m.Function(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// callErr calls f and returns its error, failing the test if there is none.
func callErr(t *testing.T, f *Function, args ...any) error {
	t.Helper()
	v, err := f.Call(context.Background(), args...)
	if err == nil {
		t.Fatalf("%s%v = %#v, want an error", f.Name(), args, v)
	}
	return err
}

// stillWorks checks that the engine answers a good call after a failure.
func stillWorks(t *testing.T, m *Module) {
	t.Helper()
	if got := call(t, m, "add", int64(2), int64(3)); got != int64(5) {
		t.Fatalf("after the error, add(2, 3) = %v", got)
	}
}

func wantMessage(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want one saying %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not mention %q", err, p)
		}
	}
}

func TestPythonExceptionBecomesPythonError(t *testing.T) {
	modes(t, func(t *testing.T) {
		_, m := errorModule(t)
		err := callErr(t, function(t, m, "divide"), int64(0))
		var pe *bridge.PythonError
		if !errors.As(err, &pe) {
			t.Fatalf("%T is not a *bridge.PythonError: %v", err, err)
		}
		if pe.Type != "ZeroDivisionError" || pe.Message != "integer division or modulo by zero" || pe.Function != "divide" {
			t.Errorf("PythonError = %+v", pe)
		}
		if !strings.Contains(pe.Traceback, "errors_cases.py\", line 10, in divide") ||
			!strings.Contains(pe.Traceback, "return 100 // x") {
			t.Errorf("traceback lacks the user's frame:\n%s", pe.Traceback)
		}
		wantMessage(t, err, `function "divide"`, "ZeroDivisionError: integer division or modulo by zero")
		stillWorks(t, m)
	})
}

func TestWrongArgumentCount(t *testing.T) {
	modes(t, func(t *testing.T) {
		_, m := errorModule(t)
		err := callErr(t, function(t, m, "add"), int64(1), int64(2), int64(3))
		if !errors.Is(err, ErrArgumentCount) {
			t.Errorf("not ErrArgumentCount: %v", err)
		}
		wantMessage(t, err, `function "add" takes 2 arguments (BIGINT, BIGINT), got 3`)
		stillWorks(t, m)
	})
}

func TestWrongGoArgumentType(t *testing.T) {
	modes(t, func(t *testing.T) {
		_, m := errorModule(t)
		err := callErr(t, function(t, m, "add"), int64(1), "two")
		var ce *bridge.ConversionError
		if !errors.As(err, &ce) || ce.Path != "argument 2" || ce.Function != "add" {
			t.Fatalf("want a ConversionError at argument 2, got %#v", err)
		}
		wantMessage(t, err, `function "add": argument 2: Go string "two" is not a BIGINT`)
		stillWorks(t, m)
	})
}

func TestArgumentOutOfRange(t *testing.T) {
	modes(t, func(t *testing.T) {
		e := newEngine(t, Config{})
		m, err := e.LoadSource(context.Background(), "range.py",
			"from pyudf import udf\nf = udf(lambda x: x, input_types=['ARRAY<TINYINT>'], result_type='BIGINT')\n")
		if err != nil {
			t.Fatal(err)
		}
		err = callErr(t, function(t, m, "f"), []int{1, 300})
		wantMessage(t, err, `argument 1[1]: 300 overflows TINYINT`)
	})
}

func TestResultDoesNotFitDeclaredType(t *testing.T) {
	modes(t, func(t *testing.T) {
		_, m := errorModule(t)
		for _, c := range []struct{ name, message string }{
			{"returns_str", `function "returns_str": result: Python str is not a BIGINT`},
			{"returns_huge", `function "returns_huge": result: 9223372036854775808 overflows BIGINT`},
			{"returns_none", `function "returns_none": result: None for BIGINT NOT NULL`},
			{"returns_wide_int", `function "returns_wide_int": result: 300 overflows TINYINT`},
			{"returns_bad_row", `result: 3 values for ROW<a INT, b INT>, which has 2 fields`},
		} {
			t.Run(c.name, func(t *testing.T) {
				err := callErr(t, function(t, m, c.name))
				var ce *bridge.ConversionError
				if !errors.As(err, &ce) {
					t.Errorf("%T is not a ConversionError", err)
				}
				wantMessage(t, err, c.message)
				stillWorks(t, m)
			})
		}
	})
}

func TestUnconvertibleResult(t *testing.T) {
	modes(t, func(t *testing.T) {
		_, m := errorModule(t)
		err := callErr(t, function(t, m, "returns_object"))
		var ce *bridge.ConversionError
		if !errors.As(err, &ce) || ce.Path != "result" {
			t.Fatalf("want a result ConversionError, got %v", err)
		}
		wantMessage(t, err, `function "returns_object": result: cannot convert a Python object to a SQL value`)
		stillWorks(t, m)
	})
}

func TestUnknownFunction(t *testing.T) {
	modes(t, func(t *testing.T) {
		_, m := errorModule(t)
		_, err := m.Function(context.Background(), "no_such_udf")
		if !errors.Is(err, ErrUnknownFunction) {
			t.Fatalf("want ErrUnknownFunction, got %v", err)
		}
		wantMessage(t, err, `unknown function "no_such_udf" in module errors_cases`)
		stillWorks(t, m)
	})
}

func TestSyntaxErrorInSource(t *testing.T) {
	modes(t, func(t *testing.T) {
		e := newEngine(t, Config{})
		_, err := e.LoadSource(context.Background(), "broken.py", "def f(:\n    pass\n")
		var pe *bridge.PythonError
		if !errors.As(err, &pe) || pe.Type != "SyntaxError" {
			t.Fatalf("want a SyntaxError, got %v", err)
		}
		wantMessage(t, err, "load source broken.py", "SyntaxError: invalid syntax (broken.py, line 1)")
		if _, err := e.LoadSource(context.Background(), "fine.py", "x = 1\n"); err != nil {
			t.Errorf("engine unusable after a syntax error: %v", err)
		}
	})
}

func TestImportErrorInSource(t *testing.T) {
	modes(t, func(t *testing.T) {
		e := newEngine(t, Config{})
		_, err := e.LoadSource(context.Background(), "imports.py", "import no_such_module_xyz\n")
		var pe *bridge.PythonError
		if !errors.As(err, &pe) || pe.Type != "ModuleNotFoundError" {
			t.Fatalf("want ModuleNotFoundError, got %v", err)
		}
		wantMessage(t, err, "No module named 'no_such_module_xyz'")
		_, err = e.Import(context.Background(), "no_such_module_xyz")
		wantMessage(t, err, "import no_such_module_xyz", "ModuleNotFoundError")
	})
}

func TestModuleRaisesAtImport(t *testing.T) {
	modes(t, func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "raising_udfs.py")
		if err := os.WriteFile(path, []byte("x = 1\nraise RuntimeError('bad config: no model')\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		e := newEngine(t, Config{})
		_, err := e.LoadFile(context.Background(), path)
		var pe *bridge.PythonError
		if !errors.As(err, &pe) || pe.Type != "RuntimeError" || pe.Message != "bad config: no model" {
			t.Fatalf("want the RuntimeError, got %v", err)
		}
		if !strings.Contains(pe.Traceback, "raising_udfs.py\", line 2") {
			t.Errorf("traceback does not point at the file:\n%s", pe.Traceback)
		}
		_, err = e.LoadFile(context.Background(), filepath.Join(dir, "missing.py"))
		wantMessage(t, err, "FileNotFoundError", "missing.py")
	})
}

func TestCallAfterClose(t *testing.T) {
	modes(t, func(t *testing.T) {
		e, m := errorModule(t)
		add := function(t, m, "add")
		if err := add.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := add.Call(context.Background(), int64(1), int64(2)); !errors.Is(err, ErrClosed) {
			t.Errorf("call after Function.Close: %v", err)
		}
		again := function(t, m, "add") // a closed function can be looked up anew
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := again.Call(context.Background(), int64(1), int64(2)); !errors.Is(err, ErrClosed) {
			t.Errorf("call after Engine.Close: %v", err)
		}
		if _, err := m.Function(context.Background(), "divide"); !errors.Is(err, ErrClosed) {
			t.Errorf("lookup after Engine.Close: %v", err)
		}
		if _, err := e.LoadSource(context.Background(), "x.py", "x = 1"); !errors.Is(err, ErrClosed) {
			t.Errorf("load after Engine.Close: %v", err)
		}
	})
}

func TestDeadlineInterruptsRunningUDF(t *testing.T) {
	modes(t, func(t *testing.T) {
		_, m := errorModule(t)
		for _, name := range []string{"spin", "busy_wait_catching"} {
			t.Run(name, func(t *testing.T) {
				f := function(t, m, name)
				ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
				defer cancel()
				_, err := f.Call(ctx)
				late := time.Since(deadlineOf(ctx))
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("want DeadlineExceeded, got %v", err)
				}
				if late > cancelLimit {
					t.Errorf("returned %v after the deadline, want under %v", late, cancelLimit)
				}
				wantMessage(t, err, `function "`+name+`" interrupted`)
				stillWorks(t, m)
			})
		}
	})
}

func deadlineOf(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

func TestCancelInterruptsRunningUDF(t *testing.T) {
	modes(t, func(t *testing.T) {
		_, m := errorModule(t)
		f := function(t, m, "spin")
		ctx, cancel := context.WithCancel(context.Background())
		cancelled := make(chan time.Time, 1)
		time.AfterFunc(30*time.Millisecond, func() { cancelled <- time.Now(); cancel() })
		_, err := f.Call(ctx)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("want Canceled, got %v", err)
		}
		if d := time.Since(<-cancelled); d > 100*time.Millisecond {
			t.Errorf("returned %v after cancel", d)
		}
		if _, err := f.Call(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("a call with a done context: %v", err)
		}
		stillWorks(t, m)
	})
}

// User code named like a module the interpreter already has (json.py,
// logging.py) must not replace it: pyudf's own control plane uses json.
func TestUserModuleDoesNotShadowLoadedModules(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := loadModule(t, Config{}, "json.py", "def dumps(x):\n    return 'user dumps'\n")
		if m.Name() == "json" {
			t.Errorf("user code took the name json")
		}
		if got := call(t, m, "dumps", int64(1)); got != "user dumps" {
			t.Errorf("user dumps = %v", got)
		}
		std, err := m.engine.Import(context.Background(), "json")
		if err != nil {
			t.Fatal(err)
		}
		if got := call(t, std, "dumps", []int{1}); got != "[1]" {
			t.Errorf("json.dumps after loading json.py = %v", got)
		}
		if _, err := m.engine.LoadSource(context.Background(), "later.py", "x = 1\n"); err != nil {
			t.Errorf("the control plane broke: %v", err)
		}
	})
}
