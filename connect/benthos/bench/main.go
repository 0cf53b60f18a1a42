// Command bench measures the pyudf Benthos processor against Bloblang on the
// same pipeline: generate (100-byte lower-case messages, batches of 1000,
// flat out) -> processor -> drop, the processor upper-casing each message:
//
//	mode pyudf:       a general Python UDF, s.upper(), row-wise over the batch
//	mode pyudf_arrow: an Arrow UDF, pyarrow.compute.utf8_upper over the batch
//	mode bloblang:    mapping: root = content().string().uppercase()
//
// Rounds are interleaved (pyudf, bloblang, pyudf, ...) and each mode reports
// its median round; throughput_vs_bloblang is the ratio of medians. A clock
// processor after the one measured timestamps each batch: messages/s counts
// from the first batch's arrival to the last's (start-up excluded). Clocks
// before and after the processor time it over each batch: p50/p99 are that
// time per message, and processor_msgs_per_s is 1e9 over its median, what
// the processor alone would sustain on one pipeline thread.
//
//	go run ./bench -json      # one JSON line per mode (bench's Result schema)
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	_ "github.com/redpanda-data/benthos/v4/public/components/pure"
	"github.com/redpanda-data/benthos/v4/public/service"

	_ "github.com/pyudf/pyudf/connect/benthos"
)

// Result is one line of output: the fields of the root module's bench.
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
	VsBloblang float64 `json:"throughput_vs_bloblang,omitempty"`
	// The processor alone: 1e9 / the median ns per message it took, and
	// that against Bloblang's.
	ProcMsgsPerS  float64 `json:"processor_msgs_per_s"`
	ProcVsBlobang float64 `json:"processor_vs_bloblang,omitempty"`
	Note          string  `json:"note,omitempty"`
}

const batchRows = 1000

var processors = map[string]string{
	"pyudf": `
pyudf:
  function: upper
  script: |
    from pyflink.table.udf import udf

    @udf(result_type='STRING')
    def upper(s):
        return s.upper()
`,
	"pyudf_arrow": `
pyudf:
  function: upper
  script: |
    import pyarrow.compute as pc
    from pyflink.table.udf import udf

    @udf(result_type='STRING', func_type='arrow')
    def upper(s):
        return pc.utf8_upper(s)
`,
	"bloblang": `
mapping: root = content().string().uppercase()
`,
}

// clock records when each batch passes. A "start" clock, before the
// processor measured, stamps the batch's first message; the end clock reads
// the stamp: the time the processor took over the batch.
type clock struct {
	start bool
	mu    sync.Mutex
	times []time.Time
	rows  []int
	proc  []time.Duration
}

const stamp = "bench_clock_start"

func (c *clock) ProcessBatch(_ context.Context, b service.MessageBatch) ([]service.MessageBatch, error) {
	now := time.Now()
	if c.start {
		b[0].MetaSetMut(stamp, now)
		return []service.MessageBatch{b}, nil
	}
	t0, _ := b[0].MetaGetMut(stamp)
	b[0].MetaDelete(stamp)
	c.mu.Lock()
	c.times = append(c.times, now)
	c.rows = append(c.rows, len(b))
	if t0, ok := t0.(time.Time); ok {
		c.proc = append(c.proc, now.Sub(t0))
	}
	c.mu.Unlock()
	return []service.MessageBatch{b}, nil
}

func (c *clock) Close(context.Context) error { return nil }

var clocks sync.Map // label -> *clock

func init() {
	err := service.RegisterBatchProcessor("bench_clock",
		service.NewConfigSpec().Fields(service.NewStringField("id"), service.NewBoolField("start").Default(false)),
		func(conf *service.ParsedConfig, _ *service.Resources) (service.BatchProcessor, error) {
			id, err := conf.FieldString("id")
			if err != nil {
				return nil, err
			}
			start, err := conf.FieldBool("start")
			if err != nil {
				return nil, err
			}
			if start {
				return &clock{start: true}, nil
			}
			c, _ := clocks.LoadOrStore(id, &clock{})
			return c.(*clock), nil
		})
	if err != nil {
		panic(err)
	}
}

type round struct {
	rowsPerS float64
	perRow   []float64 // ns per message the processor took over each batch
}

func runRound(mode string, messages, threads, n int) (round, error) {
	id := fmt.Sprintf("%s-%d", mode, n)
	msg := strings.Repeat("abcdefghij", 10) // 100 bytes
	conf := fmt.Sprintf(`
input:
  generate:
    count: %d
    interval: ""
    batch_size: %d
    mapping: root = %q
pipeline:
  threads: %d
  processors:
    - bench_clock:
        id: %[6]s
        start: true
%[5]s
    - bench_clock:
        id: %[6]s
output:
  drop: {}
logger:
  level: warn
`, messages, batchRows, msg, threads, indent(processors[mode], "    - "), id)
	b := service.NewStreamBuilder()
	if err := b.SetYAML(conf); err != nil {
		return round{}, err
	}
	strm, err := b.Build()
	if err != nil {
		return round{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := strm.Run(ctx); err != nil {
		return round{}, err
	}
	v, _ := clocks.Load(id)
	c := v.(*clock)
	c.mu.Lock()
	defer c.mu.Unlock()
	total := 0
	for _, r := range c.rows {
		total += r
	}
	if total != messages || len(c.times) < 2 {
		return round{}, fmt.Errorf("mode %s: %d messages in %d batches reached the clock, want %d", mode, total, len(c.times), messages)
	}
	order := make([]int, len(c.times))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return c.times[a].Compare(c.times[b]) })
	var r round
	span := c.times[order[len(order)-1]].Sub(c.times[order[0]])
	r.rowsPerS = float64(total-c.rows[order[0]]) / span.Seconds()
	for _, d := range c.proc {
		r.perRow = append(r.perRow, float64(d.Nanoseconds())/batchRows)
	}
	return r, nil
}

// indent makes a processor's YAML an item of the processors list.
func indent(s, first string) string {
	lines := strings.Split(strings.Trim(s, "\n"), "\n")
	for i := range lines {
		if i == 0 {
			lines[i] = first + lines[i]
		} else {
			lines[i] = strings.Repeat(" ", len(first)) + lines[i]
		}
	}
	return strings.Join(lines, "\n")
}

func quantile(xs []float64, q float64) int64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return int64(s[min(len(s)-1, int(q*float64(len(s))))])
}

func main() {
	asJSON := flag.Bool("json", false, "print one JSON object per line")
	quick := flag.Bool("quick", false, "fewer, shorter rounds")
	rounds := flag.Int("rounds", 5, "rounds per mode")
	messages := flag.Int("messages", 200_000, "messages per round")
	threads := flag.Int("threads", 1, "Benthos pipeline threads")
	flag.Parse()
	if *quick {
		*rounds, *messages = 3, 50_000
	}
	modes := []string{"pyudf", "bloblang", "pyudf_arrow"}
	got := map[string][]round{}
	for n := range *rounds {
		for _, mode := range modes {
			r, err := runRound(mode, *messages, *threads, n)
			if err != nil {
				log.Fatal(err)
			}
			got[mode] = append(got[mode], r)
		}
	}
	median := func(mode string) round {
		rs := slices.Clone(got[mode])
		slices.SortFunc(rs, func(a, b round) int {
			switch {
			case a.rowsPerS < b.rowsPerS:
				return -1
			case a.rowsPerS > b.rowsPerS:
				return 1
			}
			return 0
		})
		return rs[len(rs)/2]
	}
	blob := median("bloblang").rowsPerS
	blobProc := 1e9 / float64(quantile(median("bloblang").perRow, 0.5))
	for _, mode := range modes {
		m := median(mode)
		res := Result{Name: "benthos_upper_100b", Mode: mode, Goroutines: *threads, BatchRows: batchRows,
			RowsPerS: m.rowsPerS, P50Ns: quantile(m.perRow, 0.5), P99Ns: quantile(m.perRow, 0.99),
			P999Ns: quantile(m.perRow, 0.999), Rounds: *rounds,
			ProcMsgsPerS: 1e9 / float64(quantile(m.perRow, 0.5)),
			Note: fmt.Sprintf("generate -> %s -> drop, %d messages per round, pipeline threads %d; p50/p99: the processor's time over a batch, per message",
				mode, *messages, *threads)}
		if mode != "bloblang" {
			res.VsBloblang = m.rowsPerS / blob
			res.ProcVsBlobang = res.ProcMsgsPerS / blobProc
		}
		if *asJSON {
			b, _ := json.Marshal(res)
			fmt.Println(string(b))
			continue
		}
		fmt.Fprintf(os.Stdout, "%-20s %-12s %9.0f msg/s (%.2fx bloblang)  processor alone %9.0f msg/s (%.2fx), p50 %5d ns/msg p99 %5d ns/msg\n",
			res.Name, res.Mode, res.RowsPerS, res.VsBloblang, res.ProcMsgsPerS, res.ProcVsBlobang, res.P50Ns, res.P99Ns)
	}
}
