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

// pyflinkScript measures PyFlink on the JSON and upper UDFs; see its docstring.
//
//go:embed anchors/pyflink_bench.py
var pyflinkScript []byte

// upperInput is upper_100b_row's input, the same in every mode and anchor.
var upperInput = strings.Repeat("pyudf Go ", 12)[:100]

// anchorRow names one result an anchor gives.
type anchorRow struct {
	name, mode string
	goroutines int
}

// The rows each anchor gives, also when it cannot run (then with the reason).
var (
	pyflinkRows = []anchorRow{
		{"json_lower_100b_row", "pyflink-thread", 1}, {"json_lower_1k_row", "pyflink-thread", 1},
		{"upper_100b_row", "pyflink-thread", 1}, {"upper_100b_row", "pyflink-none", 1},
		{"json_lower_100b_row", "pyflink-process", 1}, {"json_lower_1k_row", "pyflink-process", 1},
	}
	pemjaRows = []anchorRow{
		{"scalar_add_row", "pemja", 1}, {"scalar_add_row", "pemja", 8},
		{"upper_100b_row", "pemja", 1}, {"upper_100b_row", "pemja", 8},
	}
)

// anchorCases runs the anchors — PyFlink's thread and process modes with
// python (an interpreter with apache-flink installed), and PEMJA called
// from Java (the jar and its dependencies on classpath, run with the same
// interpreter) — and returns their results, each with the ratio of pyudf's
// thread mode to it on the same case and number of goroutines. When an
// anchor cannot run, its results say why instead of giving a figure.
func anchorCases(python, classpath string, quick bool, results []Result) []Result {
	args := []string{"--json100", jsonRecord(100), "--json1k", jsonRecord(1000), "--upper", upperInput}
	if quick {
		args = append(args, "--quick")
	}
	out := runAnchor(pyflinkRows, func() ([]byte, error) { return runPyFlink(python, args) })
	jargs := []string{"--python", python, "--upper", upperInput}
	if quick {
		jargs = append(jargs, "--quick")
	}
	out = append(out, runAnchor(pemjaRows, func() ([]byte, error) { return runPemja(python, classpath, jargs) })...)
	return withRatios(out, results)
}

// runAnchor runs one anchor and parses its JSON lines; on failure it gives
// rows, each noting why.
func runAnchor(rows []anchorRow, run func() ([]byte, error)) []Result {
	fail := func(why string) []Result {
		var out []Result
		for _, r := range rows {
			out = append(out, Result{Name: r.name, Mode: r.mode, Goroutines: r.goroutines, BatchRows: 1,
				Note: "anchor could not run: " + why})
		}
		return out
	}
	stdout, err := run()
	if err != nil {
		return fail(err.Error())
	}
	var out []Result
	for _, line := range strings.Split(strings.TrimSpace(string(stdout)), "\n") {
		var r Result
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			return fail(fmt.Sprintf("unreadable output %q", line))
		}
		out = append(out, r)
	}
	return out
}

// withRatios sets on each anchor result pyudf's thread-mode rows/s over its
// own (same case, same goroutines), raw and, where both sides measured a
// pure-Python floor beside them, against each side's floor.
func withRatios(anchors, results []Result) []Result {
	type key struct {
		name       string
		goroutines int
	}
	thread, floor := map[key]float64{}, map[string]float64{}
	for _, r := range results {
		if r.Mode == "thread" {
			if _, seen := thread[key{r.Name, r.Goroutines}]; !seen {
				thread[key{r.Name, r.Goroutines}] = r.RowsPerS
			}
		}
		if r.Mode == "python" {
			floor[r.Name] = r.RowsPerS
		}
	}
	for i, r := range anchors {
		t := thread[key{r.Name, r.Goroutines}]
		if r.RowsPerS <= 0 || t <= 0 {
			continue
		}
		anchors[i].ThreadVsPyFlink = t / r.RowsPerS
		if r.PythonFloor > 0 && floor[r.Name] > 0 {
			anchors[i].ThreadVsPyFlinkAdjusted = (t / floor[r.Name]) / (r.RowsPerS / r.PythonFloor)
		}
	}
	return anchors
}

// runPyFlink runs pyflink_bench.py with python and returns its output.
func runPyFlink(python string, args []string) ([]byte, error) {
	if _, err := os.Stat(python); err != nil {
		return nil, fmt.Errorf("no PyFlink interpreter at %s (make bench-anchors installs one)", python)
	}
	dir, err := os.MkdirTemp("", "pyudf-anchors-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	script := filepath.Join(dir, "pyflink_bench.py")
	if err := os.WriteFile(script, pyflinkScript, 0o644); err != nil {
		return nil, err
	}
	return output(exec.Command(python, append([]string{script}, args...)...))
}

// runPemja runs the PEMJA program (bench/anchors/pemja) on classpath. The
// interpreter PEMJA embeds is python's base CPython, which finds the pemja
// pip package only through PYTHONPATH naming python's site-packages.
func runPemja(python, classpath string, args []string) ([]byte, error) {
	if _, err := os.Stat(python); err != nil {
		return nil, fmt.Errorf("no interpreter with pemja at %s (make bench-anchors installs one)", python)
	}
	jar, _, _ := strings.Cut(classpath, string(os.PathListSeparator))
	if _, err := os.Stat(jar); err != nil {
		return nil, fmt.Errorf("no PEMJA benchmark jar at %s (make bench-anchors builds it)", jar)
	}
	site, err := exec.Command(python, "-c", "import os, site; print(os.pathsep.join(site.getsitepackages()))").Output()
	if err != nil {
		return nil, fmt.Errorf("%s: site-packages: %v", python, err)
	}
	java := "java"
	if home := os.Getenv("JAVA_HOME"); home != "" {
		java = filepath.Join(home, "bin", "java")
	}
	// A crash report goes to the temporary directory, not the working tree.
	errFile := "-XX:ErrorFile=" + filepath.Join(os.TempDir(), "pyudf-pemja-hs_err_%p.log")
	cmd := exec.Command(java, append([]string{errFile, "-cp", classpath, "dev.pyudf.bench.PemjaBench"}, args...)...)
	cmd.Env = append(os.Environ(), "PYTHONPATH="+strings.TrimSpace(string(site)))
	return output(cmd)
}

// output runs cmd and returns its stdout; an error carries the last line of
// its stderr.
func output(cmd *exec.Cmd) ([]byte, error) {
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
		return nil, fmt.Errorf("%v: %s", err, lines[len(lines)-1])
	}
	return stdout, nil
}
