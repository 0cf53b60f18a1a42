package engine

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// A file in the working directory named like a standard module (types.py,
// enum.py) must not shadow it in a worker: `python -c` puts the working
// directory first on sys.path, and the worker takes it off again, so process
// mode sees the same modules as thread mode (whose sys.path has no working
// directory).
func TestHostileWorkerIgnoresWorkingDirectoryModules(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"types.py", "enum.py", "json.py"} {
		shadow := "raise ImportError('the working directory shadowed the standard " + name + "')\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(shadow), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(dir)
	modes(t, func(t *testing.T) {
		m := loadModule(t, Config{}, "shadowed", `
import json
from pyflink.table.udf import udf

@udf(input_types=['BIGINT'], result_type='STRING')
def as_json(n):
    return json.dumps({"n": n})
`)
		f, err := m.Function(context.Background(), "as_json")
		if err != nil {
			t.Fatal(err)
		}
		if got, err := f.Call(context.Background(), 42); err != nil || got != `{"n": 42}` {
			t.Fatalf("as_json(42) = %v, %v; want {\"n\": 42}", got, err)
		}
	})
}
