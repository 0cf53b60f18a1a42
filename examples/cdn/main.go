// Command cdn is pyudf's CDN log analysis example: CDN access logs (CSV)
// flow through NATS JetStream, a PyFlink UDF maps each client IP to its
// province, and Go keeps per-province statistics in the SQL table
// cdn_access_statistic, flushed every second. See README.md.
//
//	cd examples/cdn && go run .                           # embedded nats-server, SQLite file cdn.db
//	go run . -db postgres://user@127.0.0.1:5432/cdn       # PostgreSQL
//	go run . -nats nats://host:4222 -records 0 -follow    # consume an existing stream
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"time"

	"github.com/pyudf/pyudf/engine"
	"github.com/pyudf/pyudf/examples/appkit"
	"github.com/pyudf/pyudf/examples/appkit/sqlsink"
	"github.com/pyudf/pyudf/examples/cdn/app"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "cdn:", err)
		os.Exit(1)
	}
}

func run() error {
	dbURL := flag.String("db", "cdn.db", "the sink: a SQLite file, or postgres://... for PostgreSQL")
	natsURL := flag.String("nats", "", "NATS server URL; empty: an embedded nats-server (fresh store, loopback)")
	records := flag.Int("records", 100000, "log lines to generate into the stream (0: none)")
	badEvery := flag.Int("bad-every", 5000, "every N-th generated line is bad (a missing field or an address that is not an IP); 0: none")
	follow := flag.Bool("follow", false, "keep consuming after the generated lines are committed, until Ctrl-C")
	modeName := flag.String("mode", "thread", "thread (Python in this process) or process (Python worker processes)")
	fetch := flag.Int("fetch", 1000, "records per fetch and per UDF batch")
	preload := flag.Bool("preload", false, "generate every line before the app starts (measures the app alone: JetStream -> UDF -> SQL)")
	flag.Parse()
	mode, err := appkit.ParseMode(*modeName)
	if err != nil {
		return err
	}
	ctx, stop := appkit.SignalContext() // a second Ctrl-C kills at once (the table is consistent anyway)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))

	b, err := appkit.Connect(*natsURL, log)
	if err != nil {
		return err
	}
	defer b.Close()
	if err := b.EnsureStream(ctx, app.DefaultStream, app.DefaultSubject); err != nil {
		return err
	}

	sink, err := app.OpenSink(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer sink.Close()
	if b.Embedded {
		// A fresh embedded stream: this run's table starts empty too.
		if err := sink.Reset(ctx); err != nil {
			return err
		}
		log.Info("embedded broker with a fresh store: the tables start empty", "db", *dbURL)
	}

	tmp, err := os.MkdirTemp("", "pyudf-cdn-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	eng, fn, err := app.LoadUDF(ctx, engine.Config{Mode: mode, Logger: log}, tmp)
	if err != nil {
		return err
	}
	defer eng.Close()

	a, err := app.New(app.Config{JS: b.JS, Function: fn, Sink: sink, FetchSize: *fetch, Logger: log, Progress: os.Stderr})
	if err != nil {
		return err
	}
	start := time.Now()
	seed := uint64(start.UnixNano())
	feed := appkit.Feed{JS: b.JS, Stream: app.DefaultStream, Preload: *preload, StopAt: a.StopAt,
		Publish: func(ctx context.Context) error {
			g := app.NewGenerator(seed)
			g.BadEvery = *badEvery
			_, err := app.Publish(ctx, b.JS, app.DefaultSubject, g, *records)
			return err
		}}
	if *follow {
		feed.StopAt = nil
	}
	path := "generate -> JetStream -> "
	// The generator stops when the app does (an error, Ctrl-C), instead of
	// publishing the rest of -records first.
	runErr, feedErr := feed.Run(ctx, func(ctx context.Context) error {
		if *preload {
			start, path = time.Now(), "JetStream -> "
		}
		return a.Run(ctx)
	})
	elapsed := time.Since(start)
	if feedErr != nil && *preload {
		return fmt.Errorf("preloading the stream: %w", feedErr) // the app did not start
	} else if feedErr != nil {
		log.Warn("generator", "err", feedErr)
	}
	st := a.Stats()
	fmt.Fprintf(os.Stderr, "cdn: %d records (%d bad) in %.2fs: %.0f records/s end to end (%s%s [%s] -> %s), %d flushes, %d failed commits\n",
		st.Records, st.Bad, elapsed.Seconds(), float64(st.Records)/elapsed.Seconds(), path, app.UDFName, *modeName, sqlsink.Describe(*dbURL), st.Flushes, st.FlushRetries)
	if err := printTable(context.WithoutCancel(ctx), sink); err != nil {
		return err
	}
	return runErr
}

func printTable(ctx context.Context, sink *app.SQLSink) error {
	stats, err := sink.Statistics(ctx)
	if err != nil {
		return err
	}
	type row struct {
		p string
		t app.Totals
	}
	rows := make([]row, 0, len(stats))
	for p, t := range stats {
		rows = append(rows, row{p, t})
	}
	slices.SortFunc(rows, func(a, b row) int { return cmp.Compare(b.t.AccessCount, a.t.AccessCount) })
	fmt.Printf("%-16s %12s %16s %16s\n", "province", "access_count", "total_download", "download_speed")
	for i, r := range rows {
		if i == 8 {
			fmt.Printf("... %d more provinces\n", len(rows)-i)
			break
		}
		fmt.Printf("%-16s %12d %16d %16.1f\n", r.p, r.t.AccessCount, r.t.TotalDownload, r.t.Speed())
	}
	bad, err := sink.BadRecords(ctx)
	if err != nil {
		return err
	}
	for r, n := range bad {
		fmt.Printf("bad records, %s: %d\n", r, n)
	}
	return nil
}
