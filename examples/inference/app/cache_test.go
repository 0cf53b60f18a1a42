package app

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// testCache is the engine cache the tests share across runs (and with CI):
// the repository's .deps/inference-cache, so pip installs scikit-learn once.
func testCache(t testing.TB) string {
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", "..", ".deps", "inference-cache")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
