package main

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
)

// Report is what -report writes to latest.json.
type Report struct {
	Date         time.Time `json:"date"`
	GoVersion    string    `json:"go_version"`
	Python       string    `json:"python"`
	CPUs         int       `json:"cpus"`
	Quick        bool      `json:"quick"`
	PeakRSSBytes int64     `json:"peak_rss_bytes"`
	// WorkerPeakRSSBytes sums the peak RSS of process mode's workers.
	WorkerPeakRSSBytes int64    `json:"worker_peak_rss_bytes"`
	Results            []Result `json:"results"`
}

// writeReport writes latest.json, report.md, throughput.svg, latency.svg and
// scaling.svg into dir.
func writeReport(dir string, r Report) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	files := map[string]func(io.Writer) error{
		"latest.json":    func(w io.Writer) error { _, err := w.Write(append(b, '\n')); return err },
		"report.md":      func(w io.Writer) error { return writeMarkdown(w, r) },
		"throughput.svg": func(w io.Writer) error { return throughputChart(w, r.Results) },
		"latency.svg":    func(w io.Writer) error { return latencyChart(w, r.Results) },
		"scaling.svg":    func(w io.Writer) error { return scalingChart(w, r.Results) },
	}
	for name, write := range files {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		if err := write(f); err != nil {
			f.Close()
			return fmt.Errorf("%s: %w", name, err)
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	return nil
}

func label(r Result) string {
	l := fmt.Sprintf("%s / %s", r.Name, r.Mode)
	if r.Goroutines > 1 {
		l += fmt.Sprintf(" / g=%d", r.Goroutines)
	}
	if r.BatchRows > 1 || strings.Contains(r.Name, "batch") || strings.Contains(r.Name, "window") {
		l += fmt.Sprintf(" / %d rows", r.BatchRows)
	}
	return l
}

func writeMarkdown(w io.Writer, r Report) error {
	fmt.Fprintf(w, "# pyudf benchmark report\n\n%s, %s, %s, %d CPUs, peak RSS %d MB (the Go process, with the embedded interpreter), %d MB (process mode's workers, summed)%s.\n\n",
		r.Date.Format(time.RFC3339), r.GoVersion, r.Python, r.CPUs, r.PeakRSSBytes>>20, r.WorkerPeakRSSBytes>>20,
		map[bool]string{true: ", quick run"}[r.Quick])
	fmt.Fprint(w, "![throughput](throughput.svg)\n\n![latency](latency.svg)\n\n![scaling](scaling.svg)\n\n")
	if gs := goals(r.Results); len(gs) > 0 {
		fmt.Fprintln(w, "## Goals (thread mode against process mode, PyFlink and PEMJA)")
		fmt.Fprintln(w)
		for _, g := range gs {
			fmt.Fprintln(w, "- "+g)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "| case | mode | goroutines | rows per call | rows/s | p50 ns | p99 ns | p999 ns | notes |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	for _, x := range r.Results {
		_, err := fmt.Fprintf(w, "| %s | %s | %d | %d | %.0f | %d | %d | %d | %s |\n", x.Name, x.Mode, x.Goroutines,
			x.BatchRows, x.RowsPerS, x.P50Ns, x.P99Ns, x.P999Ns, strings.ReplaceAll(extra(x), "|", "\\|"))
		if err != nil {
			return err
		}
	}
	return nil
}

// svgBars draws one horizontal bar per row on a log10 axis.
type svgBar struct {
	label  string
	values []float64 // one segment per series, drawn over each other, largest first
}

func barChart(w io.Writer, title, unit string, series []string, bars []svgBar) error {
	const left, width, rowH, top = 330, 520, 18, 50
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, b := range bars {
		for _, v := range b.values {
			if v > 0 {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
	}
	if len(bars) == 0 || math.IsInf(lo, 0) {
		lo, hi = 1, 10
	}
	lo, hi = math.Pow(10, math.Floor(math.Log10(lo))), math.Pow(10, math.Ceil(math.Log10(hi)))
	x := func(v float64) float64 {
		if v <= lo {
			return left
		}
		return left + width*math.Log10(v/lo)/math.Log10(hi/lo)
	}
	height := top + len(bars)*rowH + 40
	colors := []string{"#1f77b4", "#ff7f0e", "#d62728", "#2ca02c", "#9467bd", "#8c564b"}
	var s strings.Builder
	fmt.Fprintf(&s, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">`+"\n", left+width+30, height)
	fmt.Fprintf(&s, `<rect width="100%%" height="100%%" fill="white"/><text x="10" y="20" font-size="14">%s</text>`+"\n", html.EscapeString(title))
	for i, name := range series {
		fmt.Fprintf(&s, `<rect x="%d" y="28" width="10" height="10" fill="%s"/><text x="%d" y="37">%s</text>`+"\n",
			left+i*120, colors[i%len(colors)], left+14+i*120, html.EscapeString(name))
	}
	for d := lo; d <= hi*1.0001; d *= 10 {
		fmt.Fprintf(&s, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/><text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n",
			x(d), top-4, x(d), height-30, x(d), height-16, html.EscapeString(si(d)+unit))
	}
	for i, b := range bars {
		y := top + i*rowH
		fmt.Fprintf(&s, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", left-6, y+12, html.EscapeString(b.label))
		order := make([]int, len(b.values))
		for j := range order {
			order[j] = j
		}
		sort.Slice(order, func(p, q int) bool { return b.values[order[p]] > b.values[order[q]] })
		for _, j := range order {
			if v := b.values[j]; v > 0 {
				fmt.Fprintf(&s, `<rect class="bar" x="%d" y="%d" width="%.1f" height="%d" fill="%s"><title>%s</title></rect>`+"\n",
					left, y+2, x(v)-left, rowH-4, colors[j%len(colors)], html.EscapeString(fmt.Sprintf("%s: %.4g %s", series[j], v, unit)))
			}
		}
	}
	s.WriteString("</svg>\n")
	_, err := io.WriteString(w, s.String())
	return err
}

// si spells a power of ten briefly: 1k, 10M.
func si(v float64) string {
	for _, u := range []struct {
		div  float64
		name string
	}{{1e9, "G"}, {1e6, "M"}, {1e3, "k"}} {
		if v >= u.div {
			return fmt.Sprintf("%g%s", v/u.div, u.name)
		}
	}
	return fmt.Sprintf("%g", v)
}

// throughputChart draws one bar per result, coloured by mode.
func throughputChart(w io.Writer, results []Result) error {
	var modes []string
	for _, r := range results {
		if !slices.Contains(modes, r.Mode) {
			modes = append(modes, r.Mode)
		}
	}
	var bars []svgBar
	for _, r := range results {
		if r.RowsPerS > 0 {
			values := make([]float64, len(modes))
			values[slices.Index(modes, r.Mode)] = r.RowsPerS
			bars = append(bars, svgBar{label: label(r), values: values})
		}
	}
	return barChart(w, "Throughput per case and mode (rows/s, log scale)", " rows/s", modes, bars)
}

func latencyChart(w io.Writer, results []Result) error {
	var bars []svgBar
	for _, r := range results {
		if r.P50Ns > 0 {
			bars = append(bars, svgBar{label: label(r), values: []float64{float64(r.P50Ns), float64(r.P99Ns), float64(r.P999Ns)}})
		}
	}
	return barChart(w, "Latency per call (ns, log scale; a batch's rows share its latency)", " ns", []string{"p50", "p99", "p999"}, bars)
}

// scalingChart draws the row cases by goroutines, thread mode beside the
// sub-interpreter pool (mode subinterp, one sub-interpreter per CPU): how
// throughput grows with callers, per core. Thread mode's rows at the same
// goroutine counts were measured in the same rounds (subinterpCases).
func scalingChart(w io.Writer, results []Result) error {
	var bars []svgBar
	for _, r := range results {
		if r.Mode != "subinterp" || r.RowsPerS == 0 || r.VsThread == 0 {
			continue
		}
		bars = append(bars, svgBar{label: fmt.Sprintf("%s g=%d (%.2fx g=1)", r.Name, r.Goroutines, r.VsGoroutine1),
			values: []float64{r.RowsPerS, r.RowsPerS / r.VsThread}})
	}
	return barChart(w, "Scaling: rows/s by goroutines, sub-interpreter pool and thread mode (log scale)", " rows/s",
		[]string{"subinterp", "thread"}, bars)
}

// peakRSS is the process's peak resident set size (VmHWM) in bytes.
func peakRSS() int64 { return peakRSSOf("self") }

// peakRSSOf is the peak resident set size of /proc/<pid>.
func peakRSSOf(pid string) int64 {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(rest), "%d", &kb)
			return kb << 10
		}
	}
	return 0
}

// progress draws a bar on stderr as the measurement steps complete.
type progress struct {
	total, done int
	start       time.Time
	on          bool
}

func (p *progress) step(name string) {
	if !p.on {
		return
	}
	p.done++
	const width = 30
	filled := min(width, p.done*width/max(p.total, 1))
	fmt.Fprintf(os.Stderr, "\r[%s%s] %2d/%d %-24s %5.1fs", strings.Repeat("#", filled), strings.Repeat(".", width-filled),
		p.done, p.total, name, time.Since(p.start).Seconds())
	if p.done >= p.total {
		fmt.Fprintln(os.Stderr)
	}
}

// pemjaGoals is the least ratio of pyudf's thread mode to PEMJA called from
// Java, per case, with 1 and with 8 threads/goroutines.
var pemjaGoals = map[string]float64{"scalar_add_row": 5, "upper_100b_row": 4}

// goals states each thread-vs-process, PyFlink and PEMJA goal with the
// ratio this run measured, and whether it was met.
// subinterpGoals are issue 13's scaling goals for the sub-interpreter pool:
// 8 goroutines' throughput over one goroutine's, on this 2-core machine.
var subinterpGoals = map[string]float64{"json_lower_100b_row": 1.7, "scalar_add_row": 1.5}

// p50Goal states issue 13's goal for one synchronous process-mode row call.
func p50Goal(r Result) string {
	us := float64(r.P50Ns) / 1e3
	verdict := "**not met**"
	if us <= 20 {
		verdict = "met"
	}
	return fmt.Sprintf("one synchronous row call, mode %s: p50 %.1f µs (goal ≤ 20 µs): %s", r.Mode, us, verdict)
}

func goals(results []Result) []string {
	var out []string
	met := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**not met**"
	}
	none := map[string]Result{} // PyFlink's job without the UDF, per case
	for _, r := range results {
		if r.Mode == "pyflink-none" {
			none[r.Name] = r
		}
	}
	for _, r := range results {
		switch {
		case r.Mode == "process" && r.Name == "scalar_add_row" && r.Goroutines == 1 && !strings.Contains(r.Note, "Stream"):
			out = append(out,
				fmt.Sprintf("row-at-a-time scalar UDF: thread mode %.1fx process mode's throughput (goal ≥ 10x): %s", r.ThreadVsProcess, met(r.ThreadVsProcess >= 10)),
				fmt.Sprintf("row-at-a-time scalar UDF: thread mode's p99 %.1fx lower than process mode's (goal ≥ 100x): %s", r.P99ProcessVsThread, met(r.P99ProcessVsThread >= 100)),
				p50Goal(r))
		case r.Mode == "process-spin" && r.Name == "scalar_add_row":
			out = append(out, p50Goal(r))
		case r.Mode == "process" && r.Name == "pandas_add_batch":
			out = append(out, fmt.Sprintf("Pandas UDF: thread mode %.1fx process mode's throughput (goal ≥ 2x): %s", r.ThreadVsProcess, met(r.ThreadVsProcess >= 2)))
		case r.Mode == "pyflink-thread" && r.Name == "upper_100b_row":
			if r.ThreadVsPyFlink == 0 {
				out = append(out, fmt.Sprintf("%s: PyFlink thread mode not measured (%s)", r.Name, r.Note))
				continue
			}
			line := fmt.Sprintf("%s: pyudf thread mode %.1fx PyFlink's thread mode, %.2f M rows/s (goal ≥ 10x): %s",
				r.Name, r.ThreadVsPyFlink, r.RowsPerS/1e6, met(r.ThreadVsPyFlink >= 10))
			if n, ok := none[r.Name]; ok && n.RowsPerS > 0 {
				line += fmt.Sprintf("; the same PyFlink job with no UDF at all: %.2f M rows/s (pyudf thread mode %.1fx it)",
					n.RowsPerS/1e6, n.ThreadVsPyFlink)
			} else if ok {
				line += fmt.Sprintf("; the PyFlink job with no UDF not measured (%s)", n.Note)
			}
			out = append(out, line)
		case r.Mode == "subinterp" && r.Goroutines == 8 && subinterpGoals[r.Name] > 0:
			goal := subinterpGoals[r.Name]
			out = append(out, fmt.Sprintf("%s: the sub-interpreter pool, 8 goroutines %.2fx one goroutine's throughput (goal ≥ %.1fx): %s",
				r.Name, r.VsGoroutine1, goal, met(r.VsGoroutine1 >= goal)))
		case r.Mode == "subinterp" && r.RowsPerS == 0:
			out = append(out, fmt.Sprintf("the sub-interpreter pool: not measured (%s)", r.Note))
		case r.Mode == "pemja" && pemjaGoals[r.Name] > 0:
			if r.ThreadVsPyFlink == 0 {
				out = append(out, fmt.Sprintf("%s, %d thread(s): PEMJA not measured (%s)", r.Name, r.Goroutines, r.Note))
				continue
			}
			goal := pemjaGoals[r.Name]
			out = append(out, fmt.Sprintf("%s, %d goroutine(s) / Java thread(s): pyudf thread mode %.1fx PEMJA's PythonInterpreter.invoke, %.2f M calls/s (goal ≥ %.0fx): %s",
				r.Name, r.Goroutines, r.ThreadVsPyFlink, r.RowsPerS/1e6, goal, met(r.ThreadVsPyFlink >= goal)))
		case r.Mode == "pyflink-thread":
			if r.ThreadVsPyFlink == 0 {
				out = append(out, fmt.Sprintf("%s: PyFlink thread mode not measured (%s)", r.Name, r.Note))
				continue
			}
			out = append(out, fmt.Sprintf("%s: pyudf thread mode %.1fx PyFlink's thread mode, %.1fx against each run's pure-Python floor (goal ≥ 5x): %s",
				r.Name, r.ThreadVsPyFlink, r.ThreadVsPyFlinkAdjusted, met(r.ThreadVsPyFlink >= 5 && r.ThreadVsPyFlinkAdjusted >= 5)))
		}
	}
	return out
}
