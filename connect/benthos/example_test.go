package benthos_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The committed example pipeline runs through the cmd/pyudf-benthos binary
// (go build, then pyudf-benthos -c example/pipeline.yaml), and its stdout
// is exactly the five expected lines, the failing one caught.
func TestExamplePipeline(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "pyudf-benthos")
	build := exec.Command("go", "build", "-o", bin, "./cmd/pyudf-benthos")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-c", "example/pipeline.yaml")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("pyudf-benthos: %v\n%s", err, out)
	}
	want := `{"greeting":"Hello, Ada!","id":1,"name":"ada"}
{"greeting":"Hello, Grace!","id":2,"name":"grace"}
{"error":"pyudf: function \"greet\" raised ValueError: empty name","id":3,"name":""}
{"greeting":"Hello, Linus!","id":4,"name":"linus"}
{"greeting":"Hello, Guido!","id":5,"name":"guido"}
`
	if string(out) != want {
		t.Fatalf("stdout:\n%s\nwant:\n%s", out, want)
	}

	// The spec is what the binary documents and lints with.
	list, err := exec.Command(bin, "list", "processors").Output()
	if err != nil || !strings.Contains(string(list), "pyudf") {
		t.Fatalf("list processors: %v\n%s", err, list)
	}
	lint := exec.Command(bin, "lint", "example/pipeline.yaml")
	if out, err := lint.CombinedOutput(); err != nil {
		t.Fatalf("lint example/pipeline.yaml: %v\n%s", err, out)
	}
}
