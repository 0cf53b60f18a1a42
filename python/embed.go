// Package pyruntime holds the Python side of pyudf — the pyudf runtime package and
// the pyflink compatibility package — embedded in the Go binary with go:embed.
// The engine makes them importable in the embedded interpreter from memory, so
// using pyudf needs no pip step. It is internal machinery of package engine,
// with no stability promise.
package pyruntime

import (
	"embed"
	"io/fs"
	"strings"
)

//go:embed pyudf/*.py all:pyflink
var files embed.FS

// Sources returns every embedded Python file, keyed by its slash-separated path
// relative to this directory ("pyudf/udf.py").
func Sources() map[string]string {
	out := map[string]string{}
	err := fs.WalkDir(files, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".py") {
			return err
		}
		b, err := files.ReadFile(path)
		out[path] = string(b)
		return err
	})
	if err != nil {
		panic("pyruntime: embedded files unreadable: " + err.Error()) // cannot happen with go:embed
	}
	return out
}

// Bootstrap returns the source of the module that installs the in-memory importer.
func Bootstrap() string { return Sources()["pyudf/_bootstrap.py"] }
