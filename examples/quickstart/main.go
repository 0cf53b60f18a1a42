// Quickstart: a Go pipeline of goroutines and channels that enriches each
// event with a Python UDF running inside the process.
//
//	generate ──events──▶ 4 enrich workers (Python UDF, one row per call) ──▶ print
//
// The UDF (enrich.py, beside this file) is PyFlink code: a ScalarFunction
// whose open() loads its "model" and registers metrics. Run it with `make demo`;
// `-mode process` runs the same UDF in Python worker processes instead.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/pyudf/pyudf/bridge"
	"github.com/pyudf/pyudf/engine"
)

type event struct {
	User   string
	URL    string
	Amount float64
}

type enriched struct {
	event
	Category, Tier, UserKey string
}

func main() {
	n := flag.Int("events", 10000, "events to generate")
	udfFile := flag.String("udf", besideThisFile("enrich.py"), "the Python file with the UDF")
	modeName := flag.String("mode", "thread", "thread (Python inside this process) or process (Python worker processes)")
	flag.Parse()
	mode := engine.Thread
	switch *modeName {
	case "thread":
	case "process":
		mode = engine.Process
	default:
		log.Fatalf("-mode %q: want thread or process", *modeName)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	eng, err := engine.New(ctx, engine.Config{
		Mode:          mode,
		JobParameters: map[string]string{"big_spender": "150"},
		Logger:        logger, // Python's logging records arrive here
	})
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close()
	mod, err := eng.LoadFile(ctx, *udfFile)
	if err != nil {
		log.Fatal(err)
	}
	enrich, err := mod.Function(ctx, "enrich") // runs Enrich.open()
	if err != nil {
		log.Fatal(err)
	}

	events := make(chan event, 256)
	out := make(chan enriched, 256)
	go generate(ctx, *n, events)

	var workers sync.WaitGroup
	for range 4 {
		workers.Go(func() {
			for ev := range events {
				v, err := enrich.Call(ctx, ev.User, ev.URL, ev.Amount)
				if err != nil {
					log.Fatalf("enrich %+v: %v", ev, err)
				}
				row := v.(bridge.Row) // ROW<category, tier, user>
				out <- enriched{ev, row[0].(string), row[1].(string), row[2].(string)}
			}
		})
	}
	go func() { workers.Wait(); close(out) }()

	start := time.Now()
	count, gold := 0, 0
	for e := range out {
		if count < 5 {
			fmt.Printf("%-8s %-34s %7.2f -> category=%-11s tier=%-8s user=%s\n",
				e.User, e.URL, e.Amount, e.Category, e.Tier, e.UserKey)
		}
		count++
		if e.Tier == "gold" {
			gold++
		}
	}
	elapsed := time.Since(start)
	fmt.Printf("enriched %d events (%d gold) in %v: %.0f events/s\n",
		count, gold, elapsed.Round(time.Millisecond), float64(count)/elapsed.Seconds())

	metrics, err := eng.Metrics(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range metrics {
		switch m.Kind {
		case "counter":
			fmt.Printf("metric %s = %.0f\n", m.Name, m.Value)
		case "distribution":
			fmt.Printf("metric %s: count %d, mean %.1f, min %.0f, max %.0f\n",
				m.Name, m.Count, m.Sum/float64(max(m.Count, 1)), m.Min, m.Max)
		}
	}
}

// generate produces n synthetic click-and-buy events.
func generate(ctx context.Context, n int, events chan<- event) {
	defer close(events)
	products := []string{"shoes/red-runner", "laptop/pro-14", "coffee/arabica", "garden/hose", "phone/x2", "shirt/linen"}
	for i := range n {
		ev := event{
			User:   fmt.Sprintf("user-%03d", i%137),
			URL:    "https://shop.example/" + products[i%len(products)],
			Amount: float64((i*7919)%25000) / 100,
		}
		select {
		case events <- ev:
		case <-ctx.Done():
			return
		}
	}
}

func besideThisFile(name string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), name)
}
