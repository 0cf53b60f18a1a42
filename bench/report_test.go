package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWriteReport(t *testing.T) {
	results := []Result{
		{Name: "scalar_add_row", Mode: "thread", Goroutines: 1, BatchRows: 1, RowsPerS: 2.5e6, P50Ns: 300, P99Ns: 700, P999Ns: 1500, VsFloor: 1.3},
		{Name: "scalar_add_row", Mode: "go", Goroutines: 1, BatchRows: 1, RowsPerS: 3.5e7, P50Ns: 50, P99Ns: 80, P999Ns: 150},
		{Name: "pandas_add_batch", Mode: "thread", Goroutines: 1, BatchRows: 65536, RowsPerS: 1.5e8, P50Ns: 400000, P99Ns: 900000, P999Ns: 1200000, Note: "a | b"},
	}
	dir := t.TempDir()
	in := Report{Date: time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC), GoVersion: "go1.26", Python: "CPython 3.11.7",
		CPUs: 2, PeakRSSBytes: 200 << 20, WorkerPeakRSSBytes: 300 << 20, Results: results}
	if err := writeReport(dir, in); err != nil {
		t.Fatal(err)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	var out Report
	if err := json.Unmarshal([]byte(read("latest.json")), &out); err != nil || len(out.Results) != 3 || out.PeakRSSBytes != 200<<20 {
		t.Errorf("latest.json: %v, %+v", err, out)
	}
	md := read("report.md")
	for _, want := range []string{"peak RSS 200 MB", "300 MB (process mode's workers, summed)", "![throughput](throughput.svg)", "| pandas_add_batch | thread | 1 | 65536 | 150000000 | 400000 | 900000 | 1200000 |", `a \| b`, "1.30x the C floor"} {
		if !strings.Contains(md, want) {
			t.Errorf("report.md lacks %q:\n%s", want, md)
		}
	}
	if n := strings.Count(read("throughput.svg"), `class="bar"`); n != 3 {
		t.Errorf("throughput.svg has %d bars, want 3", n)
	}
	if n := strings.Count(read("latency.svg"), `class="bar"`); n != 9 {
		t.Errorf("latency.svg has %d bars, want 3 per result", n)
	}
	if svg := read("throughput.svg"); !strings.Contains(svg, ">thread</text>") || !strings.Contains(svg, ">go</text>") {
		t.Error("throughput.svg does not name the modes")
	}
}

func TestGoalsInReport(t *testing.T) {
	got := strings.Join(goals([]Result{
		{Name: "scalar_add_row", Mode: "process", Goroutines: 1, ThreadVsProcess: 150, P99ProcessVsThread: 90, P50Ns: 51000},
		{Name: "scalar_add_row", Mode: "process", Goroutines: 1, ThreadVsProcess: 8, Note: "Stream: bundles"},
		{Name: "scalar_add_row", Mode: "process-spin", Goroutines: 1, P50Ns: 9300},
		{Name: "pandas_add_batch", Mode: "process", Goroutines: 1, ThreadVsProcess: 10.2},
		{Name: "json_lower_100b_row", Mode: "pyflink-thread", ThreadVsPyFlink: 1.1, ThreadVsPyFlinkAdjusted: 0.9},
		{Name: "json_lower_1k_row", Mode: "pyflink-thread", Note: "anchor could not run: no JVM"},
	}), "\n")
	for _, want := range []string{
		"thread mode 150.0x process mode's throughput (goal ≥ 10x): met",
		"p99 90.0x lower than process mode's (goal ≥ 100x): **not met**",
		"one synchronous row call, mode process: p50 51.0 µs (goal ≤ 20 µs): **not met**",
		"one synchronous row call, mode process-spin: p50 9.3 µs (goal ≤ 20 µs): met",
		"Pandas UDF: thread mode 10.2x process mode's throughput (goal ≥ 2x): met",
		"json_lower_100b_row: pyudf thread mode 1.1x PyFlink's thread mode, 0.9x against each run's pure-Python floor (goal ≥ 5x): **not met**",
		"json_lower_1k_row: PyFlink thread mode not measured (anchor could not run: no JVM)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("goals lack %q:\n%s", want, got)
		}
	}
	if strings.Count(got, "\n") != 6 {
		t.Errorf("want 7 goal lines (the Stream row is not a goal):\n%s", got)
	}
}

func TestAnchorGoalsInReport(t *testing.T) {
	got := strings.Join(goals([]Result{
		{Name: "scalar_add_row", Mode: "pemja", Goroutines: 1, RowsPerS: 1.07e6, ThreadVsPyFlink: 5.5},
		{Name: "scalar_add_row", Mode: "pemja", Goroutines: 8, RowsPerS: 0.77e6, ThreadVsPyFlink: 4.9},
		{Name: "upper_100b_row", Mode: "pemja", Goroutines: 1, RowsPerS: 1.22e6, ThreadVsPyFlink: 2.5},
		{Name: "upper_100b_row", Mode: "pemja", Goroutines: 8, Note: "anchor could not run: no java"},
		{Name: "upper_100b_row", Mode: "pyflink-thread", Goroutines: 1, RowsPerS: 0.53e6, ThreadVsPyFlink: 10.2},
		{Name: "upper_100b_row", Mode: "pyflink-none", Goroutines: 1, RowsPerS: 0.95e6, ThreadVsPyFlink: 5.7},
		{Name: "json_lower_100b_row", Mode: "pyflink-thread", ThreadVsPyFlink: 6, ThreadVsPyFlinkAdjusted: 5.5},
	}), "\n")
	for _, want := range []string{
		"scalar_add_row, 1 goroutine(s) / Java thread(s): pyudf thread mode 5.5x PEMJA's PythonInterpreter.invoke, 1.07 M calls/s (goal ≥ 5x): met",
		"scalar_add_row, 8 goroutine(s) / Java thread(s): pyudf thread mode 4.9x PEMJA's PythonInterpreter.invoke, 0.77 M calls/s (goal ≥ 5x): **not met**",
		"upper_100b_row, 1 goroutine(s) / Java thread(s): pyudf thread mode 2.5x PEMJA's PythonInterpreter.invoke, 1.22 M calls/s (goal ≥ 4x): **not met**",
		"upper_100b_row, 8 thread(s): PEMJA not measured (anchor could not run: no java)",
		"upper_100b_row: pyudf thread mode 10.2x PyFlink's thread mode, 0.53 M rows/s (goal ≥ 10x): met; the same PyFlink job with no UDF at all: 0.95 M rows/s (pyudf thread mode 5.7x it)",
		"json_lower_100b_row: pyudf thread mode 6.0x PyFlink's thread mode, 5.5x against each run's pure-Python floor (goal ≥ 5x): met",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("goals lack %q:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "\n") + 1; n != 6 {
		t.Errorf("want 6 goal lines (pyflink-none is part of the upper line, not its own):\n%s", got)
	}
	// The upper goal is on the raw ratio and says when the no-UDF job failed.
	got = strings.Join(goals([]Result{
		{Name: "upper_100b_row", Mode: "pyflink-thread", RowsPerS: 0.6e6, ThreadVsPyFlink: 5},
		{Name: "upper_100b_row", Mode: "pyflink-none", Note: "anchor could not run: OOM"},
	}), "\n")
	if want := "5.0x PyFlink's thread mode, 0.60 M rows/s (goal ≥ 10x): **not met**; the PyFlink job with no UDF not measured (anchor could not run: OOM)"; !strings.Contains(got, want) {
		t.Errorf("goals lack %q:\n%s", want, got)
	}
}

func TestAnchorRatios(t *testing.T) {
	results := []Result{
		{Name: "scalar_add_row", Mode: "thread", Goroutines: 1, RowsPerS: 6e6},
		{Name: "scalar_add_row", Mode: "thread", Goroutines: 8, RowsPerS: 4e6},
		{Name: "scalar_add_row", Mode: "thread-affine", Goroutines: 1, RowsPerS: 1e6},
		{Name: "upper_100b_row", Mode: "thread", Goroutines: 1, RowsPerS: 3e6},
		{Name: "upper_100b_row", Mode: "python", Goroutines: 1, RowsPerS: 6e6},
		{Name: "upper_100b_row", Mode: "thread", Goroutines: 8, RowsPerS: 2e6},
	}
	got := withRatios([]Result{
		{Name: "scalar_add_row", Mode: "pemja", Goroutines: 1, RowsPerS: 1e6},
		{Name: "scalar_add_row", Mode: "pemja", Goroutines: 8, RowsPerS: 0.5e6},
		{Name: "upper_100b_row", Mode: "pemja", Goroutines: 8, RowsPerS: 1e6, PythonFloor: 4e6},
		{Name: "upper_100b_row", Mode: "pyflink-none", Goroutines: 1, RowsPerS: 1e6},
		{Name: "upper_100b_row", Mode: "pemja", Goroutines: 1, Note: "anchor could not run: x"},
	}, results)
	for i, want := range []struct{ raw, adjusted float64 }{{6, 0}, {8, 0}, {2, 2.0 / 6 / (1.0 / 4)}, {3, 0}, {0, 0}} {
		if got[i].ThreadVsPyFlink != want.raw || got[i].ThreadVsPyFlinkAdjusted != want.adjusted {
			t.Errorf("%s/%s/g=%d: ratios %v, %v; want %v, %v", got[i].Name, got[i].Mode, got[i].Goroutines,
				got[i].ThreadVsPyFlink, got[i].ThreadVsPyFlinkAdjusted, want.raw, want.adjusted)
		}
	}
}

func TestAnchorThatCannotRun(t *testing.T) {
	got := anchorCases(filepath.Join(t.TempDir(), "no-python"), "no.jar", true, nil)
	if len(got) != len(pyflinkRows)+len(pemjaRows) {
		t.Fatalf("%d rows, want one per anchor row: %+v", len(got), got)
	}
	for _, r := range got {
		if r.RowsPerS != 0 || !strings.HasPrefix(r.Note, "anchor could not run: no ") {
			t.Errorf("%s/%s: %v rows/s, note %q", r.Name, r.Mode, r.RowsPerS, r.Note)
		}
	}
	if got[len(got)-1].Mode != "pemja" || got[len(got)-1].Goroutines != 8 {
		t.Errorf("last row %+v, want PEMJA's upper_100b_row at 8 threads", got[len(got)-1])
	}
}

// TestSubinterpGoalsAndChart: the pool's scaling goals are judged from its
// 8-goroutine rows, an absent pool says why, and the scaling chart draws the
// pool beside thread mode.
func TestSubinterpGoalsAndChart(t *testing.T) {
	results := []Result{
		{Name: "json_lower_100b_row", Mode: "subinterp", Goroutines: 8, RowsPerS: 300000, VsGoroutine1: 1.8, VsThread: 2.1},
		{Name: "scalar_add_row", Mode: "subinterp", Goroutines: 8, RowsPerS: 2000000, VsGoroutine1: 1.2, VsThread: 0.9},
	}
	got := strings.Join(goals(results), "\n")
	for _, want := range []string{
		"json_lower_100b_row: the sub-interpreter pool, 8 goroutines 1.80x one goroutine's throughput (goal ≥ 1.7x): met",
		"scalar_add_row: the sub-interpreter pool, 8 goroutines 1.20x one goroutine's throughput (goal ≥ 1.5x): **not met**",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("goals lack %q:\n%s", want, got)
		}
	}
	absent := goals([]Result{{Name: "scalar_add_row", Mode: "subinterp", Note: "absent: CPython 3.11.7 has no sub-interpreters"}})
	if len(absent) != 1 || !strings.Contains(absent[0], "not measured (absent: CPython 3.11.7") {
		t.Errorf("an absent pool's goal lines: %q", absent)
	}
	var svg strings.Builder
	if err := scalingChart(&svg, results); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"json_lower_100b_row g=8 (1.80x g=1)", "subinterp: 3e+05 ", "thread: 1.429e+05 "} {
		if !strings.Contains(svg.String(), want) {
			t.Errorf("the scaling chart lacks %q", want)
		}
	}
}

func TestReadResults(t *testing.T) {
	dir := t.TempDir()
	good := `{"name":"benthos_upper_100b","mode":"pyudf","goroutines":1,"rows_per_s":1000}` + "\n\n" +
		`{"name":"benthos_upper_100b","mode":"bloblang","goroutines":1,"rows_per_s":2000}` + "\n"
	if err := os.WriteFile(filepath.Join(dir, "bench-a.jsonl"), []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := readResults(filepath.Join(dir, "bench-*.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Mode != "pyudf" || got[1].RowsPerS != 2000 {
		t.Fatalf("readResults = %+v", got)
	}
	if got, err := readResults(""); err != nil || got != nil {
		t.Fatalf("empty glob: %v, %v", got, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bench-b.jsonl"), []byte("rows/s 12\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readResults(filepath.Join(dir, "bench-*.jsonl")); err == nil || !strings.Contains(err.Error(), "bench-b.jsonl:1: not a benchmark result") {
		t.Fatalf("garbage line: %v", err)
	}
}

func TestUpdateReport(t *testing.T) {
	dir := t.TempDir()
	report := Report{Date: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), Python: "CPython 3.11.7", CPUs: 2,
		Results: []Result{
			{Name: "scalar_add_row", Mode: "thread", Goroutines: 1, RowsPerS: 5e6},
			{Name: "nats_upper_100b", Mode: "thread", Goroutines: 1, RowsPerS: 1},
		}}
	if err := writeReport(dir, report); err != nil {
		t.Fatal(err)
	}
	lines := `{"name":"nats_upper_100b","mode":"thread","goroutines":1,"rows_per_s":7000}` + "\n" +
		`{"name":"benthos_upper_100b","mode":"bloblang","goroutines":1,"rows_per_s":40000}` + "\n"
	if err := os.WriteFile(filepath.Join(dir, "bench-connect-x.jsonl"), []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := updateReport(dir, filepath.Join(dir, "bench-connect-*.jsonl")); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "latest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var got Report
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	rates := map[string]float64{}
	for _, r := range got.Results {
		rates[r.Name+"/"+r.Mode] = r.RowsPerS
	}
	want := map[string]float64{"scalar_add_row/thread": 5e6, "nats_upper_100b/thread": 7000, "benthos_upper_100b/bloblang": 40000}
	if len(got.Results) != 3 || got.Python != "CPython 3.11.7" {
		t.Fatalf("updated report: %+v", got)
	}
	for k, v := range want {
		if rates[k] != v {
			t.Errorf("%s: %v rows/s, want %v", k, rates[k], v)
		}
	}
	if err := updateReport(dir, ""); err == nil {
		t.Error("updateReport without -merge: no error")
	}
}
