// Command bench measures pyudf and prints one JSON object (with -json) or one
// table row per case and mode.
//
//	go run ./bench -quick -json   # under a minute
//	go run ./bench                # longer rounds, plus the 10M-call memory soak
//
// Each case is measured in rounds, interleaved with the variants it is
// compared against (A, B, A, B, ...), and reports the median round, so that a
// noisy machine slows both sides of a ratio alike. Latency is sampled on every
// 8th row. The fields are those of design.md §5 plus the ratios the goals are
// stated in.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pyudf/pyudf/bridge"
	"github.com/pyudf/pyudf/engine"
	"github.com/pyudf/pyudf/internal/floor"
)

// Result is one line of output.
type Result struct {
	Name       string  `json:"name"`
	Mode       string  `json:"mode"`
	Goroutines int     `json:"goroutines"`
	BatchRows  int     `json:"batch_rows"`
	RowsPerS   float64 `json:"rows_per_s"`
	P50Ns      int64   `json:"p50_ns"`
	P99Ns      int64   `json:"p99_ns"`
	P999Ns     int64   `json:"p999_ns"`
	Rounds     int     `json:"rounds"`
	// Ratios measured in the same interleaved rounds.
	VsFloor      float64 `json:"cost_vs_c_floor,omitempty"`           // ns per row / the bare C call's
	VsGoroutine1 float64 `json:"throughput_vs_1_goroutine,omitempty"` // rows/s / the 1-goroutine rows/s
	VsPython     float64 `json:"throughput_vs_python,omitempty"`      // rows/s / mode python's
	VsPythonMap  float64 `json:"throughput_vs_python_map,omitempty"`  // rows/s / mode python-map's (scalar_add_batch)
	VsRowWise    float64 `json:"throughput_vs_row_wise,omitempty"`    // rows/s / scalar_add_batch thread's
	VsThread     float64 `json:"throughput_vs_thread,omitempty"`      // rows/s / thread mode's at the same goroutines (mode subinterp)
	// Process-mode results: thread mode's rows/s over this one's, and this
	// p99 over thread mode's, from the same interleaved rounds.
	ThreadVsProcess    float64 `json:"thread_vs_process_throughput,omitempty"`
	P99ProcessVsThread float64 `json:"process_vs_thread_p99,omitempty"`
	// Anchors: pyudf's thread-mode rows/s over this PyFlink result's, raw
	// and with each side first divided by the pure-Python floor measured
	// beside it (the two run minutes apart on a machine whose speed drifts).
	ThreadVsPyFlink         float64 `json:"pyudf_thread_vs_this,omitempty"`
	ThreadVsPyFlinkAdjusted float64 `json:"pyudf_thread_vs_this_floor_adjusted,omitempty"`
	PythonFloor             float64 `json:"python_floor_rows_per_s,omitempty"`
	// The memory soak (full run only).
	Calls          int64  `json:"calls,omitempty"`
	RSSGrowthBytes int64  `json:"rss_growth_bytes,omitempty"`
	Note           string `json:"note,omitempty"`
}

// row does the work of one row; i numbers the rows of one goroutine.
type row func(i int) error

type variant struct {
	goroutines int
	work       row
	batchRows  int // rows per unit of work (0: 1)
	rates      []float64
	lat        []int64
}

func (v *variant) rows() int { return max(v.batchRows, 1) }

// prog counts measurement steps (each measure call, the soak, the snapshot case).
var prog *progress

// measure runs variants in interleaved rounds of d each.
func measure(rounds int, d time.Duration, variants ...*variant) {
	defer prog.step(fmt.Sprintf("%d variant(s)", len(variants)))
	for range rounds {
		for _, v := range variants {
			rate, lat := runRound(v.goroutines, d, v.work)
			v.rates = append(v.rates, rate*float64(v.rows()))
			v.lat = append(v.lat, lat...)
		}
	}
}

func runRound(goroutines int, d time.Duration, work row) (float64, []int64) {
	var stop atomic.Bool
	var total atomic.Int64
	var mu sync.Mutex
	var lat []int64
	var wg sync.WaitGroup
	start := time.Now()
	for range goroutines {
		wg.Go(func() {
			var mine []int64
			n := 0
			for ; !stop.Load(); n++ {
				if n%8 == 0 {
					t0 := time.Now()
					if err := work(n); err != nil {
						log.Fatal(err)
					}
					mine = append(mine, time.Since(t0).Nanoseconds())
				} else if err := work(n); err != nil {
					log.Fatal(err)
				}
			}
			total.Add(int64(n))
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	return float64(total.Load()) / time.Since(start).Seconds(), lat
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func percentile(lat []int64, p float64) int64 {
	if len(lat) == 0 {
		return 0
	}
	slices.Sort(lat)
	return lat[min(len(lat)-1, int(float64(len(lat))*p))]
}

func (v *variant) result(name, mode string, rounds int) Result {
	return Result{Name: name, Mode: mode, Goroutines: v.goroutines, BatchRows: v.rows(),
		RowsPerS: median(v.rates), P50Ns: percentile(v.lat, 0.50), P99Ns: percentile(v.lat, 0.99),
		P999Ns: percentile(v.lat, 0.999), Rounds: rounds}
}

const udfSource = `
import json
from pyudf import ScalarFunction, udf

@udf(input_types=['BIGINT', 'BIGINT'], result_type='BIGINT')
def add(a, b):
    return a + b

def add_plain(a, b):
    return a + b

class Add(ScalarFunction):
    """add as a ScalarFunction with open(): its instance has a thread of its own (Config.Affinity)."""
    def open(self, function_context):
        self.calls = 0

    def eval(self, a, b):
        return a + b

add_instance = udf(Add(), input_types=['BIGINT', 'BIGINT'], result_type='BIGINT')

def _json_lower(s):
    record = json.loads(s)
    return json.dumps({k: v.lower() if isinstance(v, str) else v for k, v in record.items()})

def _upper(s):
    return s.upper()

json_lower = udf(_json_lower, input_types=['STRING'], result_type='STRING')
upper = udf(_upper, input_types=['STRING'], result_type='STRING')

def spin():
    """Runs until cancelled (scalar_add_row_after_cancel)."""
    while True:
        pass

def python_loop(name, s, n):
    """Mode python: the UDF's body n times on a string already in the interpreter."""
    f = globals()["_" + name]
    for _ in range(n):
        f(s)
    return n
`

// loadFunctions loads source and returns a lookup of its functions that
// exits on any error (a benchmark has no use for a missing UDF).
func loadFunctions(ctx context.Context, eng *engine.Engine, name, source string) func(string) *engine.Function {
	mod, err := eng.LoadSource(ctx, name, source)
	if err != nil {
		log.Fatal(err)
	}
	return func(name string) *engine.Function {
		f, err := mod.Function(ctx, name)
		if err != nil {
			log.Fatal(err)
		}
		return f
	}
}

// jsonRecord builds a JSON object of exactly size bytes with mixed-case string values.
func jsonRecord(size int) string {
	m := map[string]any{"id": 12345, "ts": 1700000000123, "pad": ""}
	for i := 0; ; i++ {
		b, _ := json.Marshal(m)
		if len(b) >= size-30 {
			m["pad"] = strings.Repeat("Xy", size)[:size-len(b)]
			b, _ = json.Marshal(m)
			return string(b)
		}
		m["field_"+strconv.Itoa(i)] = "Value-" + strings.Repeat("AbC", 2+i%3)
	}
}

// addWork calls add(i, 1), one row per call, and checks the result.
func addWork(ctx context.Context, add *engine.Function) row {
	return func(i int) error {
		v, err := add.CallValues(ctx, bridge.Int64(int64(i)), bridge.Int64(1))
		if err == nil && v.AsInt64() != int64(i)+1 {
			err = fmt.Errorf("add(%d, 1) = %v", i, v)
		}
		return err
	}
}

//go:noinline
func goAdd(a, b int64) int64 { return a + b }

// goJSONLower is json_lower in Go: lower-case every string value.
func goJSONLower(s string) (string, error) {
	var record map[string]any
	if err := json.Unmarshal([]byte(s), &record); err != nil {
		return "", err
	}
	for k, v := range record {
		if str, ok := v.(string); ok {
			record[k] = strings.ToLower(str)
		}
	}
	b, err := json.Marshal(record)
	return string(b), err
}

func goUpper(s string) (string, error) { return strings.ToUpper(s), nil }

func main() {
	quick := flag.Bool("quick", false, "short rounds: the whole run in under a minute")
	asJSON := flag.Bool("json", false, "print one JSON object per line")
	reportDir := flag.String("report", "", "also write latest.json, report.md and SVG charts into this directory")
	showProgress := flag.Bool("progress", false, "draw a progress bar on stderr")
	anchors := flag.Bool("anchors", false, "also measure PyFlink (thread and process modes) and PEMJA called from Java")
	pyflink := flag.String("pyflink-python", envOr("PYFLINK_PYTHON", ".deps/pyflink-venv/bin/python"),
		"the interpreter with apache-flink installed, for -anchors")
	onlyDeps := flag.Bool("only-dependencies", false, "run only the engine-creation-with-requirements cases (part of the full run)")
	pemja := flag.String("pemja-classpath", "bench/anchors/pemja/target/pemja-bench.jar:bench/anchors/pemja/target/lib/*",
		"the PEMJA benchmark's Java classpath (make bench-anchors builds it), for -anchors")
	merge := flag.String("merge", "", "also report the results in these files (a glob; one JSON result per line, "+
		"as -json prints them): the integrations' benchmarks, which live in modules of their own")
	update := flag.Bool("update", false, "measure nothing: add the -merge results to the report in -report "+
		"(replacing those of the same case, mode and goroutines) and write it again")
	processSpin := flag.Duration("process-spin", 0, "Config.ProcessSpin of the process-mode engine (0: none, the default)")
	flag.Parse()
	if *update {
		if err := updateReport(*reportDir, *merge); err != nil {
			log.Fatal(err)
		}
		return
	}
	if *onlyDeps {
		prog = &progress{total: 1, start: time.Now(), on: *showProgress}
		printResults(dependencyCases(context.Background()), *asJSON)
		return
	}
	prog = &progress{total: 10 + 14 + 9, start: time.Now(), on: *showProgress}
	if !*quick {
		prog.total = 25 + 14 + 9 + 1
	}
	if *anchors {
		prog.total++
	}
	log.SetFlags(0)

	rounds, d := 5, 400*time.Millisecond
	if *quick {
		rounds, d = 5, 150*time.Millisecond
	}
	ctx := context.Background()
	eng, err := engine.New(ctx, engine.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close()
	fn := loadFunctions(ctx, eng, "bench_udfs.py", udfSource)
	add, addPlain, addInstance := fn("add"), fn("add_plain"), fn("add_instance")

	callAdd, callAddInstance := addWork(ctx, add), addWork(ctx, addInstance)
	floor := &variant{goroutines: 1, work: func(i int) error {
		if floor.Add(addPlain, int64(i), 1) != int64(i)+1 {
			return fmt.Errorf("bare add failed")
		}
		return nil
	}}
	thread1 := &variant{goroutines: 1, work: callAdd}
	thread8 := &variant{goroutines: 8, work: callAdd}
	affine1 := &variant{goroutines: 1, work: callAddInstance}
	affine8 := &variant{goroutines: 8, work: callAddInstance}
	goMode := &variant{goroutines: 1, work: func(i int) error {
		if goAdd(int64(i), 1) != int64(i)+1 {
			return fmt.Errorf("go add")
		}
		return nil
	}}
	measure(rounds, d, floor, thread1, thread8, affine1, affine8)
	measure(rounds, d, goMode)

	var results []Result
	r1 := thread1.result("scalar_add_row", "thread", rounds)
	r1.VsFloor = median(floor.rates) / r1.RowsPerS
	r1.Note = fmt.Sprintf("c floor (bare C call taking the GIL): %.0f ns/row", 1e9/median(floor.rates))
	r8 := thread8.result("scalar_add_row", "thread", rounds)
	r8.VsGoroutine1 = r8.RowsPerS / r1.RowsPerS
	a1 := affine1.result("scalar_add_row", "thread-affine", rounds)
	a1.Note = fmt.Sprintf("a ScalarFunction instance on a thread of its own: %.2fx thread mode's rate", a1.RowsPerS/r1.RowsPerS)
	a8 := affine8.result("scalar_add_row", "thread-affine", rounds)
	a8.VsGoroutine1 = a8.RowsPerS / a1.RowsPerS
	results = append(results, r1, r8, a1, a8, goMode.result("scalar_add_row", "go", rounds))

	for _, c := range []struct {
		name, udf, input string
		inGo             func(string) (string, error)
	}{
		{"json_lower_100b_row", "json_lower", jsonRecord(100), goJSONLower},
		{"json_lower_1k_row", "json_lower", jsonRecord(1000), goJSONLower},
		{"upper_100b_row", "upper", strings.Repeat("pyudf Go ", 12)[:100], goUpper},
	} {
		f, input := fn(c.udf), c.input
		want := ""
		if v, err := f.Call(ctx, input); err != nil {
			log.Fatal(err)
		} else {
			want = v.(string)
		}
		v := &variant{goroutines: 1, work: func(int) error {
			got, err := f.CallValues(ctx, bridge.String(input))
			if err == nil && got.AsString() != want {
				err = fmt.Errorf("%s returned %q", c.name, got.AsString())
			}
			return err
		}}
		loop := fn("python_loop")
		py := &variant{goroutines: 1, batchRows: 1000, work: func(int) error {
			_, err := loop.Call(ctx, c.udf, input, int64(1000))
			return err
		}}
		goV := &variant{goroutines: 1, work: func(int) error {
			_, err := c.inGo(input)
			return err
		}}
		measure(rounds, d, v, py, goV)
		r, rp := v.result(c.name, "thread", rounds), py.result(c.name, "python", rounds)
		r.VsPython = r.RowsPerS / rp.RowsPerS
		r.Note = fmt.Sprintf("input %d bytes", len(input))
		rp.Note = "the UDF's body in a Python loop, 1000 rows per call; latency is per call"
		rg := goV.result(c.name, "go", rounds)
		rg.Note = "the same logic in Go (encoding/json, strings)"
		results = append(results, r, rp, rg)
	}

	results = append(results, batchCases(ctx, eng, rounds, d, !*quick)...)
	results = append(results, aggregateCases(ctx, eng, rounds, d, !*quick)...)
	results = append(results, datastreamCases(ctx, eng, rounds, d, !*quick)...)
	peng, err := engine.New(ctx, engine.Config{Mode: engine.Process, ProcessSpin: *processSpin})
	if err != nil {
		log.Fatal(err)
	}
	results = append(results, processCases(ctx, eng, peng, rounds, d)...)
	var workersRSS int64
	for _, w := range peng.Workers() {
		workersRSS += peakRSSOf(strconv.Itoa(w.PID))
	}
	peng.Close()
	results = append(results, subinterpCases(ctx, eng, rounds, d)...)
	results = append(results, afterCancel(ctx, fn("spin"), callAdd, r1, rounds, d))
	if *anchors {
		results = append(results, anchorCases(*pyflink, *pemja, *quick, results)...)
		prog.step("PyFlink and PEMJA anchors")
	}
	if !*quick {
		results = append(results, dependencyCases(ctx)...)
		results = append(results, soak(ctx, add))
		prog.step("memory soak")
	}
	merged, err := readResults(*merge)
	if err != nil {
		log.Fatal(err)
	}
	results = append(results, merged...)
	if *reportDir != "" {
		version, _ := eng.Python()
		report := Report{Date: time.Now().UTC(), GoVersion: runtime.Version(), Python: "CPython " + version,
			CPUs: runtime.NumCPU(), Quick: *quick, PeakRSSBytes: peakRSS(), WorkerPeakRSSBytes: workersRSS, Results: results}
		if err := writeReport(*reportDir, report); err != nil {
			log.Fatal(err)
		}
	}
	printResults(results, *asJSON)
}

func printResults(results []Result, asJSON bool) {
	for _, r := range results {
		if asJSON {
			b, _ := json.Marshal(r)
			fmt.Println(string(b))
		} else {
			fmt.Printf("%-22s %-7s g=%-2d rows=%-6d %12.0f rows/s  p50 %9d ns  p99 %9d ns  %s\n",
				r.Name, r.Mode, r.Goroutines, r.BatchRows, r.RowsPerS, r.P50Ns, r.P99Ns, extra(r))
		}
	}
}

// readResults reads the results in the files that glob matches, one JSON
// object per line; an empty glob reads none.
func readResults(glob string) ([]Result, error) {
	if glob == "" {
		return nil, nil
	}
	files, err := filepath.Glob(glob)
	if err != nil {
		return nil, fmt.Errorf("-merge %q: %w", glob, err)
	}
	var results []Result
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		for i, line := range strings.Split(string(b), "\n") {
			if strings.TrimSpace(line) == "" {
				continue
			}
			var r Result
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				return nil, fmt.Errorf("%s:%d: not a benchmark result: %w", file, i+1, err)
			}
			results = append(results, r)
		}
	}
	return results, nil
}

// updateReport adds the results in the files glob matches to the report in
// dir, replacing any of the same case, mode and goroutines, and writes the
// report again: the integrations' figures measured apart from a full run.
func updateReport(dir, glob string) error {
	if dir == "" || glob == "" {
		return fmt.Errorf("-update needs -report and -merge")
	}
	b, err := os.ReadFile(filepath.Join(dir, "latest.json"))
	if err != nil {
		return err
	}
	var report Report
	if err := json.Unmarshal(b, &report); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(dir, "latest.json"), err)
	}
	merged, err := readResults(glob)
	if err != nil {
		return err
	}
	type caseKey struct {
		name, mode string
		goroutines int
	}
	replaced := map[caseKey]bool{}
	for _, r := range merged {
		replaced[caseKey{r.Name, r.Mode, r.Goroutines}] = true
	}
	kept := report.Results[:0]
	for _, r := range report.Results {
		if !replaced[caseKey{r.Name, r.Mode, r.Goroutines}] {
			kept = append(kept, r)
		}
	}
	report.Results = append(kept, merged...)
	return writeReport(dir, report)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func extra(r Result) string {
	var parts []string
	if r.VsFloor != 0 {
		parts = append(parts, fmt.Sprintf("%.2fx the C floor", r.VsFloor))
	}
	if r.VsPython != 0 {
		parts = append(parts, fmt.Sprintf("%.2fx mode python", r.VsPython))
	}
	if r.VsPythonMap != 0 {
		parts = append(parts, fmt.Sprintf("%.2fx mode python-map", r.VsPythonMap))
	}
	if r.VsRowWise != 0 {
		parts = append(parts, fmt.Sprintf("%.1fx row-wise", r.VsRowWise))
	}
	if r.ThreadVsProcess != 0 {
		parts = append(parts, fmt.Sprintf("thread mode %.1fx the throughput, p99 %.1fx lower", r.ThreadVsProcess, r.P99ProcessVsThread))
	}
	if r.ThreadVsPyFlinkAdjusted != 0 {
		parts = append(parts, fmt.Sprintf("pyudf thread mode %.1fx this (%.1fx against each run's pure-Python floor)",
			r.ThreadVsPyFlink, r.ThreadVsPyFlinkAdjusted))
	} else if r.ThreadVsPyFlink != 0 {
		parts = append(parts, fmt.Sprintf("pyudf thread mode %.1fx this", r.ThreadVsPyFlink))
	}
	if r.VsGoroutine1 != 0 {
		parts = append(parts, fmt.Sprintf("%.2fx one goroutine", r.VsGoroutine1))
	}
	if r.Calls != 0 {
		parts = append(parts, fmt.Sprintf("RSS +%d KB over %d calls", r.RSSGrowthBytes>>10, r.Calls))
	}
	if r.Note != "" {
		parts = append(parts, r.Note)
	}
	return strings.Join(parts, "; ")
}

// afterCancel is scalar_add_row measured again after one cancelled call (of a
// UDF that spins until interrupted), last among the thread-mode cases: a
// cancellation must not leave the interpreter slower (CPython 3.10-3.12 kept
// their eval loop's async-exception signal up when a pending exception was
// withdrawn with PyThreadState_SetAsyncExc(id, NULL)).
func afterCancel(ctx context.Context, spin *engine.Function, add row, before Result, rounds int, d time.Duration) Result {
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := spin.Call(cctx); !errors.Is(err, context.DeadlineExceeded) {
		log.Fatalf("the cancelled call: %v", err)
	}
	v := &variant{goroutines: 1, work: add}
	measure(rounds, d, v)
	r := v.result("scalar_add_row_after_cancel", "thread", rounds)
	r.Note = fmt.Sprintf("after one cancelled call: %.2fx scalar_add_row's rate", r.RowsPerS/before.RowsPerS)
	return r
}

// soak makes 10 million row calls and reports how much the resident set grew after warm-up.
func soak(ctx context.Context, add *engine.Function) Result {
	const calls = 10_000_000
	run := func(n int) {
		for i := range n {
			if _, err := add.CallValues(ctx, bridge.Int64(int64(i)), bridge.Int64(1)); err != nil {
				log.Fatal(err)
			}
		}
	}
	run(1_000_000)
	runtime.GC()
	before := rssBytes()
	start := time.Now()
	run(calls)
	runtime.GC()
	return Result{Name: "scalar_add_row_soak", Mode: "thread", Goroutines: 1, BatchRows: 1,
		RowsPerS: calls / time.Since(start).Seconds(), Calls: calls, RSSGrowthBytes: rssBytes() - before, Rounds: 1}
}

func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	pages, _ := strconv.ParseInt(strings.Fields(string(b))[1], 10, 64)
	return pages * int64(os.Getpagesize())
}
