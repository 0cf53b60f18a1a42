// Command bench measures the NATS JetStream runner end to end through an
// embedded nats-server: case nats_upper_100b, mode thread (Python's
// str.upper on 100-byte messages, one row call per message).
//
// Two phases on one server, streams on file storage as the runner's users
// get them: messages/s with a publisher going flat out (publish to result,
// all N results received), then publish-to-result latency (p50, p99,
// p99.9) with the publisher paced well below that throughput, so that the
// figure is the pipeline's and not a queue's. With -json it prints one JSON
// object per line (bench's Result schema).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pyudf/pyudf/connect/nats/embedded"
	"github.com/pyudf/pyudf/connect/nats/runner"
	"github.com/pyudf/pyudf/engine"
)

// Result is one measurement, as the core module's bench prints it.
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

const source = `
from pyudf import udf

@udf(input_types=['STRING'], result_type='STRING')
def upper(s):
    return s.upper()
`

const tsHeader = "Bench-Ts"

func main() {
	asJSON := flag.Bool("json", false, "print JSON lines")
	quick := flag.Bool("quick", false, "fewer messages")
	n := flag.Int("n", 100_000, "messages per throughput round")
	rounds := flag.Int("rounds", 3, "throughput rounds (the median is reported)")
	rate := flag.Int("rate", 2000, "latency phase: messages per second")
	latencyFor := flag.Duration("latency-for", 3*time.Second, "latency phase: duration")
	fetch := flag.Int("fetch", 256, "runner: messages per fetch")
	memory := flag.Bool("memory", false, "memory-stored streams instead of file-stored ones")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the run to this file")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if *quick {
		*n, *rounds, *latencyFor = 20_000, 1, time.Second
	}
	res, err := measure(*n, *rounds, *rate, *latencyFor, *fetch, *memory)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
	if *asJSON {
		b, _ := json.Marshal(res)
		fmt.Println(string(b))
		return
	}
	fmt.Printf("%-16s %-7s %12.0f msg/s  p50 %v  p99 %v  p99.9 %v\n  %s\n", res.Name, res.Mode, res.RowsPerS,
		time.Duration(res.P50Ns), time.Duration(res.P99Ns), time.Duration(res.P999Ns), res.Note)
}

func measure(n, rounds, rate int, latencyFor time.Duration, fetch int, memory bool) (Result, error) {
	ctx := context.Background()
	srv, err := embedded.Start(embedded.Options{})
	if err != nil {
		return Result{}, err
	}
	defer srv.Close()
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		return Result{}, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return Result{}, err
	}
	storage, storageName := jetstream.FileStorage, "file"
	if memory {
		storage, storageName = jetstream.MemoryStorage, "memory"
	}
	for name, subjects := range map[string][]string{"IN": {"in"}, "OUT": {"out", "out.dlq"}} {
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: subjects, Storage: storage}); err != nil {
			return Result{}, err
		}
	}

	eng, err := engine.New(ctx, engine.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return Result{}, err
	}
	mod, err := eng.LoadSource(ctx, "udfs.py", source)
	if err != nil {
		return Result{}, err
	}
	fn, err := mod.Function(ctx, "upper")
	if err != nil {
		return Result{}, err
	}
	r, err := runner.New(runner.Config{URL: srv.URL(), Subject: "in", Durable: "bench", Output: "out",
		Function: fn, FetchSize: fetch, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return Result{}, err
	}
	runErr := make(chan error, 1)
	go func() { runErr <- r.Run(ctx) }()
	defer r.Close()

	// Results arrive on a plain subscription (JetStream publishes reach
	// core subscribers too): count them, and time those that carry a
	// publish time.
	var received atomic.Int64
	var timing atomic.Bool
	lat := make(chan time.Duration, 1<<16)
	sub, err := nc.Subscribe("out", func(m *nats.Msg) {
		received.Add(1)
		if timing.Load() {
			if ts, err := strconv.ParseInt(m.Header.Get(tsHeader), 10, 64); err == nil {
				select {
				case lat <- time.Duration(time.Now().UnixNano() - ts):
				default:
				}
			}
		}
	})
	if err != nil {
		return Result{}, err
	}
	sub.SetPendingLimits(-1, -1)
	defer sub.Unsubscribe()
	payload := []byte(strings.Repeat("pyudf Go ", 12)[:100])

	// Throughput: publish n flat out; the clock stops at the n-th result.
	var rates []float64
	for range rounds {
		base := received.Load()
		start := time.Now()
		for i := range n {
			if _, err := js.PublishAsync("in", payload); err != nil {
				return Result{}, err
			}
			if i%2048 == 2047 {
				<-js.PublishAsyncComplete()
			}
		}
		<-js.PublishAsyncComplete()
		deadline := time.Now().Add(5 * time.Minute)
		for received.Load()-base < int64(n) {
			if time.Now().After(deadline) {
				return Result{}, fmt.Errorf("%d of %d results after 5 minutes (stats %+v)", received.Load()-base, n, r.Stats())
			}
			time.Sleep(time.Millisecond)
		}
		rates = append(rates, float64(n)/time.Since(start).Seconds())
	}
	slices.Sort(rates)

	// Latency: paced publishes with their time in a header.
	timing.Store(true)
	interval := time.Second / time.Duration(rate)
	count := int(latencyFor / interval)
	var samples []time.Duration
	tick := time.NewTicker(interval)
	for range count {
		<-tick.C
		m := &nats.Msg{Subject: "in", Data: payload, Header: nats.Header{}}
		m.Header.Set(tsHeader, strconv.FormatInt(time.Now().UnixNano(), 10))
		if _, err := js.PublishMsgAsync(m); err != nil {
			return Result{}, err
		}
	drain:
		for {
			select {
			case d := <-lat:
				samples = append(samples, d)
			default:
				break drain
			}
		}
	}
	tick.Stop()
	deadline := time.After(10 * time.Second)
	for len(samples) < count {
		select {
		case d := <-lat:
			samples = append(samples, d)
		case <-deadline:
			return Result{}, fmt.Errorf("latency phase: %d of %d results", len(samples), count)
		}
	}
	slices.Sort(samples)
	q := func(p float64) int64 { return int64(samples[min(len(samples)-1, int(p*float64(len(samples))))]) }
	select {
	case err := <-runErr:
		return Result{}, fmt.Errorf("runner stopped: %w", err)
	default:
	}
	s := r.Stats()
	return Result{
		Name: "nats_upper_100b", Mode: "thread", Goroutines: 1, BatchRows: fetch,
		RowsPerS: rates[len(rates)/2], P50Ns: q(0.50), P99Ns: q(0.99), P999Ns: q(0.999), Rounds: rounds,
		Note: fmt.Sprintf("embedded nats-server, %s storage; rows_per_s: %d msgs published flat out (async, 2048 in flight) to their %d results received, median of %d rounds (%.0f-%.0f); latency: publish to result received at %d msgs/s for %v (%d samples); runner: one row call per message, fetch %d, ack after the PubAck; %d published, %d retried, %d fetches",
			storageName, n, n, rounds, rates[0], rates[len(rates)-1], rate, latencyFor, len(samples), fetch, s.Published, s.Retried, s.Fetches),
	}, nil
}
