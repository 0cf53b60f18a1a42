package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/pyudf/pyudf/cgo"
)

// Some behaviour needs an interpreter of its own (a process has one): those
// tests run this test binary again as a child, which runs one scenario from
// childScenarios and exits.

// runChildScenario runs the scenario PYUDF_TEST_CHILD names, if the test binary
// was started as a child for one, and exits.
func runChildScenario() {
	if name := os.Getenv("PYUDF_TEST_CHILD"); name != "" {
		if err := childScenarios[name](); err != nil {
			fmt.Fprintln(os.Stderr, "child scenario failed:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
}

var childScenarios = map[string]func() error{
	// The engine runs the interpreter of PYUDF_CHILD_PYTHON (a virtualenv's):
	// its site-packages are importable and sys.prefix is the venv.
	"venv": func() error {
		ctx := context.Background()
		venv := os.Getenv("PYUDF_CHILD_VENV")
		e, err := New(ctx, Config{Python: filepath.Join(venv, "bin", "python")})
		if err != nil {
			return err
		}
		m, err := e.Import(ctx, "venv_only_module")
		if err != nil {
			return err
		}
		return expectCall(m, "where", venv)
	},
	// With a real pyflink on the path, user code gets it, not our stand-in.
	"realpyflink": func() error {
		ctx := context.Background()
		e, err := New(ctx, Config{Path: []string{os.Getenv("PYUDF_CHILD_PATH")}})
		if err != nil {
			return err
		}
		m, err := e.LoadSource(ctx, "uses_pyflink.py",
			"import pyflink\nfrom pyflink.table.udf import udf\nfrom pyflink.common import Row\n"+
				"try:\n    import pyflink.common.types\n    types = 'embedded types'\n"+
				"except ImportError:\n    types = 'no types'\n"+
				"def which():\n    return '/'.join([pyflink.WHICH, udf.__module__, Row.WHICH, types])\n")
		if err != nil {
			return err
		}
		// The real package wins, and the embedded one fills none of its gaps
		// (the fake real pyflink.common has no types submodule).
		return expectCall(m, "which", "real/pyflink.table.udf/real/no types")
	},
	// A worker started while the engine was made on a goroutine locked to an
	// OS thread that then ended is not killed by Pdeathsig.
	"workerthread": func() error {
		ctx := context.Background()
		made := make(chan *Engine, 1)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
			e, err := New(ctx, Config{Mode: Process, Workers: 1})
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
			}
			made <- e
		}()
		e := <-made
		if e == nil {
			return errors.New("no engine")
		}
		defer e.Close()
		before := e.Workers()[0].PID
		time.Sleep(300 * time.Millisecond) // the thread has ended
		m, err := e.LoadSource(ctx, "pid.py", "import os\ndef pid():\n    return os.getpid()\n")
		if err != nil {
			return err
		}
		if err := expectCall(m, "pid", int64(before)); err != nil {
			return fmt.Errorf("the worker started on the ended thread: %w", err)
		}
		if ws := e.Workers(); ws[0].Restarts != 0 {
			return fmt.Errorf("the worker was restarted: %+v", ws)
		}
		return nil
	},
	// A user module named pyarrow.py, loaded before anything imported
	// pyarrow, does not take its name: an Arrow batch call works after it.
	"pyarrowname": func() error {
		ctx := context.Background()
		e, err := New(ctx, Config{})
		if err != nil {
			return err
		}
		m, err := e.LoadSource(ctx, "pyarrow.py", "from pyudf import udf\n"+
			"import pyarrow.compute as pc\n"+
			"double = udf(lambda x: pc.multiply(x, 2), input_types=['BIGINT'], result_type='BIGINT', func_type='arrow')\n")
		if err != nil {
			return err
		}
		if m.Name() != "pyudf_user_pyarrow" {
			return fmt.Errorf("pyarrow.py loaded as %q", m.Name())
		}
		f, err := m.Function(ctx, "double")
		if err != nil {
			return err
		}
		b := array.NewInt64Builder(memory.DefaultAllocator)
		b.AppendValues([]int64{1, 2, 3}, nil)
		col := b.NewArray()
		defer col.Release()
		rec := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Int64}}, nil),
			[]arrow.Array{col}, 3)
		defer rec.Release()
		res, err := f.Eval(ctx, rec)
		if err != nil {
			return err
		}
		defer res.Release()
		if got := res.(*array.Int64).Int64Values(); fmt.Sprint(got) != "[2 4 6]" {
			return fmt.Errorf("double = %v", got)
		}
		return nil
	},
}

func expectCall(m *Module, name string, want any) error {
	f, err := m.Function(context.Background(), name)
	if err != nil {
		return err
	}
	got, err := f.Call(context.Background())
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("%s() = %#v, want %#v", name, got, want)
	}
	return nil
}

func runChild(t *testing.T, scenario string, env ...string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append(env, "PYUDF_TEST_CHILD="+scenario)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child %s: %v\n%s", scenario, err, out)
	}
}

func basePython(t *testing.T) string {
	py := os.Getenv("PYUDF_PYTHON")
	if py == "" {
		t.Fatal("PYUDF_PYTHON is not set; run the tests with make test")
	}
	return py
}

func TestVirtualenvIsHonoured(t *testing.T) {
	venv := t.TempDir()
	if out, err := exec.Command(basePython(t), "-m", "venv", "--without-pip", venv).CombinedOutput(); err != nil {
		t.Fatalf("creating a venv: %v\n%s", err, out)
	}
	site, err := filepath.Glob(filepath.Join(venv, "lib", "python*", "site-packages"))
	if err != nil || len(site) != 1 {
		t.Fatalf("venv site-packages: %v %v", site, err)
	}
	src := "import sys\ndef where():\n    return sys.prefix\n"
	if err := os.WriteFile(filepath.Join(site[0], "venv_only_module.py"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	runChild(t, "venv", "PYUDF_CHILD_VENV="+venv)
}

func TestRealPyFlinkIsNotShadowed(t *testing.T) {
	dir := t.TempDir()
	for _, pkg := range []string{"table", "common"} {
		if err := os.MkdirAll(filepath.Join(dir, "pyflink", pkg), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"pyflink/__init__.py":        "WHICH = 'real'\n",
		"pyflink/table/__init__.py":  "",
		"pyflink/table/udf.py":       "def udf(f=None, **kw):\n    return f\n",
		"pyflink/common/__init__.py": "class Row:\n    WHICH = 'real'\n",
	}
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	runChild(t, "realpyflink", "PYUDF_CHILD_PATH="+dir)
}

func TestInterpreterVersionMismatch(t *testing.T) {
	fake := filepath.Join(t.TempDir(), "python")
	script := "#!/bin/sh\necho /opt/python3.99/bin/python\necho 3.99\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := New(context.Background(), Config{Python: fake})
	if err == nil {
		t.Fatal("New accepted an interpreter of another version")
	}
	want := "is Python 3.99, but pyudf was built against libpython " + cgo.LinkedVersion
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
	if _, err := New(context.Background(), Config{Python: filepath.Join(t.TempDir(), "none")}); err == nil ||
		!strings.Contains(err.Error(), "cannot run Python interpreter") {
		t.Errorf("missing interpreter: %v", err)
	}
}
