// Command embedcheck proves the set-up end to end: the engine, built against the base
// interpreter's libpython and given the project virtualenv's interpreter (PYUDF_PYTHON, as
// make exports it), imports the virtualenv's pandas and pyarrow, in thread mode (embedded)
// and in process mode (worker processes). It prints one line per mode,
//
//	thread: python 3.11.2 prefix /repo/.deps/venv-3.11-ca3ed784 pandas 2.2.3 pyarrow 18.1.0
//
// and exits 1 when a mode fails or its sys.prefix is not $PYUDF_PYTHON's virtualenv.
// scripts/test-setup.sh runs it (make test-scripts).
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/pyudf/pyudf/engine"
)

const udfs = `
import sys, pandas, pyarrow
from pyflink.table.udf import udf

@udf(result_type="STRING")
def where():
    return "prefix %s pandas %s pyarrow %s" % (sys.prefix, pandas.__version__, pyarrow.__version__)
`

func main() {
	ctx := context.Background()
	python := os.Getenv("PYUDF_PYTHON")
	if python == "" {
		fail("PYUDF_PYTHON is not set: run this through make (make test-scripts)")
	}
	out, err := exec.Command(python, "-c", "import sys; print(sys.prefix)").Output()
	if err != nil {
		fail("cannot run PYUDF_PYTHON=%s: %v", python, err)
	}
	prefix := strings.TrimSpace(string(out))
	for _, mode := range []engine.Mode{engine.Thread, engine.Process} {
		if err := check(ctx, mode, prefix); err != nil {
			fail("%s: %v", mode, err)
		}
	}
}

func check(ctx context.Context, mode engine.Mode, prefix string) error {
	e, err := engine.New(ctx, engine.Config{Mode: mode, Workers: 1})
	if err != nil {
		return err
	}
	defer e.Close()
	m, err := e.LoadSource(ctx, "embedcheck", udfs)
	if err != nil {
		return err
	}
	f, err := m.Function(ctx, "where")
	if err != nil {
		return err
	}
	v, err := f.Call(ctx)
	if err != nil {
		return err
	}
	version, _ := e.Python()
	fmt.Printf("%s: python %s %v\n", mode, version, v)
	if s, _ := v.(string); !strings.HasPrefix(s, "prefix "+prefix+" ") {
		return fmt.Errorf("sys.prefix is not %s (the virtualenv of PYUDF_PYTHON)", prefix)
	}
	return nil
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "embedcheck: "+format+"\n", args...)
	os.Exit(1)
}
