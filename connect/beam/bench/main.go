// Command bench measures a pyudf UDF inside an Apache Beam Go pipeline on
// the Prism runner (in-process, loopback: the DoFns run in this process):
// case beam_upper_100b, upper() over 100-byte strings, elements per second
// through generate → pyudf Scalar → count, mode thread; and the same
// pipeline with strings.ToUpper in a Go DoFn (mode go), the pipeline's own
// cost. Each line is one JSON object in the root bench's Result schema.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism"

	pyudfbeam "github.com/pyudf/pyudf/connect/beam"
)

// Result is the root bench's result line (bench/main.go).
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
	Note       string  `json:"note,omitempty"`
}

const upperSource = `
from pyflink.table.udf import udf

@udf(result_type='STRING', input_types=['STRING'])
def upper(s):
    return s.upper()
`

// generateFn emits N strings of Size bytes from one impulse.
type generateFn struct{ N, Size int }

func (g *generateFn) ProcessElement(_ []byte, emit func(string)) {
	base := strings.Repeat("abcdefghij", g.Size/10+1)
	for i := range g.N {
		s := base[i%10 : i%10+g.Size]
		emit(s)
	}
}

func goUpper(s string) string { return strings.ToUpper(s) }

var results = beam.NewCounter("bench", "results")

// countFn counts the results that are 100 upper-case bytes.
type countFn struct{}

func (*countFn) ProcessElement(ctx context.Context, s string) {
	if len(s) == 100 && s == strings.ToUpper(s) {
		results.Inc(ctx, 1)
	}
}

func init() {
	register.DoFn2x0[[]byte, func(string)](&generateFn{})
	register.Emitter1[string]()
	register.Function1x1(goUpper)
	register.DoFn2x0[context.Context, string](&countFn{})
}

func pipeline(n int, mode string) *beam.Pipeline {
	p, s := beam.NewPipelineWithRoot()
	in := beam.ParDo(s, &generateFn{N: n, Size: 100}, beam.Impulse(s))
	var out beam.PCollection
	if mode == "go" {
		out = beam.ParDo(s, goUpper, in)
	} else {
		out = pyudfbeam.Scalar(s, pyudfbeam.UDF{Source: upperSource, Function: "upper"}, reflect.TypeOf(""), in)
	}
	beam.ParDo0(s, &countFn{}, out)
	return p
}

// run runs the pipeline over n elements and checks that n correct results came out.
func run(ctx context.Context, n int, mode string) (time.Duration, error) {
	start := time.Now()
	pr, err := prism.Execute(ctx, pipeline(n, mode))
	d := time.Since(start)
	if err != nil {
		return d, err
	}
	got := int64(0)
	for _, c := range pr.Metrics().AllMetrics().Counters() {
		if c.Key.Name == "results" {
			got += c.Result()
		}
	}
	if got != int64(n) {
		return d, fmt.Errorf("mode %s: %d correct results of %d elements", mode, got, n)
	}
	return d, nil
}

func main() {
	beam.Init()
	jsonOut := flag.Bool("json", false, "print one JSON object per result")
	n := flag.Int("n", 100_000, "elements per run")
	rounds := flag.Int("rounds", 3, "runs per mode (the median is reported)")
	flag.Parse()
	ctx := context.Background()
	// Start the engine and warm Prism up with a small run of each mode.
	for _, mode := range []string{"thread", "go"} {
		if _, err := run(ctx, 1000, mode); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
	}
	var results []Result
	for _, mode := range []string{"thread", "go"} {
		var times []time.Duration
		for range *rounds {
			d, err := run(ctx, *n, mode)
			if err != nil {
				fmt.Fprintln(os.Stderr, "bench:", err)
				os.Exit(1)
			}
			times = append(times, d)
		}
		slices.Sort(times)
		med := times[len(times)/2]
		note := "Prism runner in-process (loopback), whole pipeline: generate, upper, count (checked: n upper-case results); median of rounds, wall time per run including job submission"
		if mode == "go" {
			note = "the same pipeline with strings.ToUpper in a Go DoFn: the pipeline's own cost"
		}
		results = append(results, Result{Name: "beam_upper_100b", Mode: mode, Goroutines: 1, BatchRows: 1,
			RowsPerS: float64(*n) / med.Seconds(), Rounds: *rounds, Note: note})
	}
	for _, r := range results {
		if *jsonOut {
			b, _ := json.Marshal(r)
			fmt.Println(string(b))
		} else {
			fmt.Printf("%-18s %-7s %12.0f elements/s  (%d elements, %d rounds)\n", r.Name, r.Mode, r.RowsPerS, *n, r.Rounds)
		}
	}
}
