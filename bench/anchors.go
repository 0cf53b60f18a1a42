package main

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// pyflinkScript measures PyFlink on the JSON UDF; see its docstring.
//
//go:embed anchors/pyflink_bench.py
var pyflinkScript []byte

// anchorCases runs the PyFlink anchors with python (an interpreter with
// apache-flink installed) and returns their results, each with the ratio
// of pyudf's thread mode to it on the same case. When PyFlink cannot run,
// the results say why instead of giving a figure.
func anchorCases(python string, quick bool, results []Result) []Result {
	var out []Result
	fail := func(why string) []Result {
		for _, mode := range []string{"pyflink-thread", "pyflink-process"} {
			for _, name := range []string{"json_lower_100b_row", "json_lower_1k_row"} {
				out = append(out, Result{Name: name, Mode: mode, Goroutines: 1, BatchRows: 1,
					Note: "anchor could not run: " + why})
			}
		}
		return out
	}
	if _, err := os.Stat(python); err != nil {
		return fail(fmt.Sprintf("no PyFlink interpreter at %s (make bench-anchors installs one)", python))
	}
	dir, err := os.MkdirTemp("", "pyudf-anchors-")
	if err != nil {
		return fail(err.Error())
	}
	defer os.RemoveAll(dir)
	script := filepath.Join(dir, "pyflink_bench.py")
	if err := os.WriteFile(script, pyflinkScript, 0o644); err != nil {
		return fail(err.Error())
	}
	args := []string{script, "--json100", jsonRecord(100), "--json1k", jsonRecord(1000)}
	if quick {
		args = append(args, "--quick")
	}
	cmd := exec.Command(python, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
		return fail(fmt.Sprintf("%v: %s", err, lines[len(lines)-1]))
	}
	thread, floor := map[string]float64{}, map[string]float64{}
	for _, r := range results {
		if r.Goroutines == 1 && r.Mode == "thread" {
			thread[r.Name] = r.RowsPerS
		}
		if r.Mode == "python" {
			floor[r.Name] = r.RowsPerS
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(string(stdout)), "\n") {
		var r Result
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			return fail(fmt.Sprintf("unreadable output %q", line))
		}
		if r.RowsPerS > 0 && thread[r.Name] > 0 {
			r.ThreadVsPyFlink = thread[r.Name] / r.RowsPerS
			if r.PythonFloor > 0 && floor[r.Name] > 0 {
				r.ThreadVsPyFlinkAdjusted = (thread[r.Name] / floor[r.Name]) / (r.RowsPerS / r.PythonFloor)
			}
		}
		out = append(out, r)
	}
	return out
}
