// Command features is pyudf's real-time features and samples example: user
// behaviour events (exposures and clicks) flow through NATS JetStream; a
// Pandas UDAF computes each user's visit sequence over a 5-minute window
// sliding every 30 seconds, a PyFlink KeyedProcessFunction labels each
// exposure with a 10-minute event-time timer, and each sample is joined with
// the feature as of its exposure. Tables in SQLite (default) or PostgreSQL.
// See README.md.
//
//	cd examples/features && go run .                       # embedded nats-server, SQLite file features.db
//	go run . -db postgres://user@127.0.0.1:5432/features   # PostgreSQL
//	go run . -nats nats://host:4222 -records 0 -follow     # consume an existing stream
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/pyudf/pyudf/engine"
	"github.com/pyudf/pyudf/examples/appkit"
	"github.com/pyudf/pyudf/examples/appkit/sqlsink"
	"github.com/pyudf/pyudf/examples/features/app"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "features:", err)
		os.Exit(1)
	}
}

func run() error {
	dbURL := flag.String("db", "features.db", "the sink: a SQLite file, or postgres://... for PostgreSQL")
	natsURL := flag.String("nats", "", "NATS server URL; empty: an embedded nats-server (fresh store, loopback)")
	records := flag.Int("records", 100000, "events to generate into the stream (0: none)")
	badEvery := flag.Int("bad-every", 5000, "every N-th generated event is bad (an unknown type, a missing field, not JSON); 0: none")
	lateEvery := flag.Int("late-every", 1000, "every N-th generated event is 1-3 minutes late; 0: none")
	seed := flag.Uint64("seed", 1, "the generator's seed")
	follow := flag.Bool("follow", false, "keep consuming after the generated events are committed, until Ctrl-C")
	modeName := flag.String("mode", "thread", "thread (Python in this process) or process (Python worker processes)")
	fetch := flag.Int("fetch", 1000, "records per fetch")
	bound := flag.Duration("out-of-orderness", app.DefaultBound, "the watermark's bound: the largest event time seen minus this")
	preload := flag.Bool("preload", false, "generate every event before the app starts (measures the app alone: JetStream -> Python -> SQL)")
	maxAhead := flag.Duration("max-ahead", app.DefaultMaxAhead, "an event time further ahead of the wall clock is a bad record; negative: no check")
	idle := flag.Duration("idle-watermark", time.Second, "with -follow: after this long without a record the watermark advances to what the records allow; 0: never")
	flag.Parse()
	mode, err := appkit.ParseMode(*modeName)
	if err != nil {
		return err
	}
	ctx, stop := appkit.SignalContext() // a second Ctrl-C kills at once (the tables are consistent anyway)
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
		if err := sink.Reset(ctx); err != nil {
			return err
		}
		log.Info("embedded broker with a fresh store: the tables start empty", "db", *dbURL)
	}

	eng, err := engine.New(ctx, engine.Config{Mode: mode, Logger: log})
	if err != nil {
		return err
	}
	defer eng.Close()
	op, udaf, err := app.Load(ctx, eng)
	if err != nil {
		return err
	}
	p, err := app.NewPipeline(op, udaf, *bound, app.DefaultWatermarkEvery)
	if err != nil {
		return err
	}
	p.MaxAhead = *maxAhead
	cfg := app.Config{JS: b.JS, Pipeline: p, Sink: sink, FetchSize: *fetch, Logger: log, Progress: os.Stderr}
	if *follow {
		cfg.IdleWatermark = *idle // a bounded run stays a function of the stream alone
	}
	a, err := app.New(cfg)
	if err != nil {
		return err
	}
	feed := appkit.Feed{JS: b.JS, Stream: app.DefaultStream, Preload: *preload, StopAt: a.StopAt,
		Publish: func(ctx context.Context) error {
			g := app.NewGenerator(*seed)
			g.BadEvery, g.LateEvery = *badEvery, *lateEvery
			_, err := app.Publish(ctx, b.JS, app.DefaultSubject, g, *records)
			return err
		}}
	if *follow {
		feed.StopAt = nil
	}
	path := "generate -> JetStream -> "
	if *preload {
		path = "JetStream -> "
	}
	// The generator stops once Run returns: an app that stopped (an error,
	// Ctrl-C) does not wait for every record to be published.
	start, ran := time.Now(), false
	runErr, genErr := feed.Run(ctx, func(ctx context.Context) error {
		if *preload {
			start = time.Now() // the app alone is timed
		}
		ran = true
		return a.Run(ctx)
	})
	if !ran {
		return genErr // the preload failed or was interrupted
	}
	elapsed := time.Since(start)
	if genErr != nil {
		log.Warn("generator", "err", genErr)
	}
	st := a.Stats()
	fmt.Fprintf(os.Stderr, "features: %d records (%d bad, %d late) in %.2fs: %.0f records/s end to end (%sSampleLabeller + visited_items [%s] -> %s), %d commits, %d failed\n",
		st.Records, st.Bad, st.Late, elapsed.Seconds(), float64(st.Records)/elapsed.Seconds(), path, *modeName, sqlsink.Describe(*dbURL), st.Commits, st.Retries)
	return finish(ctx, runErr, func(ctx context.Context) error { return summary(ctx, sink) })
}

// summaryTimeout bounds the final summary's queries (an unresponsive
// PostgreSQL must not hang the exit).
var summaryTimeout = 10 * time.Second

// finish prints the summary (with its own deadline, even after Ctrl-C)
// unless the run failed at the sink, and returns runErr joined with the
// summary's error.
func finish(ctx context.Context, runErr error, summary func(context.Context) error) error {
	if errors.Is(runErr, app.ErrSinkUnavailable) {
		return runErr // the sink is down: no summary to read
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), summaryTimeout)
	defer cancel()
	if err := summary(sctx); err != nil {
		return errors.Join(runErr, fmt.Errorf("the summary: %w", err))
	}
	return runErr
}

// summary prints the tables' totals and a few rows.
func summary(ctx context.Context, sink *app.SQLSink) error {
	db := sink.DB()
	var users, windows, samples, positive int64
	if err := db.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM user_feature), (SELECT COUNT(*) FROM user_feature_history),
		(SELECT COUNT(*) FROM feature_sample), (SELECT COALESCE(SUM(label), 0) FROM feature_sample)`).Scan(&users, &windows, &samples, &positive); err != nil {
		return err
	}
	fmt.Printf("user_feature: %d users; user_feature_history: %d windows; feature_sample: %d samples, %d positive, %d negative\n",
		users, windows, samples, positive, samples-positive)
	rows, err := db.QueryContext(ctx, `SELECT trace_id, user_id, item_id, exposure_time, label, visited_items FROM feature_sample
		WHERE visited_items <> '' ORDER BY trace_id LIMIT 3`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var tr, u, it, items string
		var at, label int64
		if err := rows.Scan(&tr, &u, &it, &at, &label, &items); err != nil {
			return err
		}
		fmt.Printf("sample %s: user %s shown %s at %s, label %d, visited as of then: %s\n", tr, u, it,
			time.UnixMilli(at).UTC().Format("15:04:05.000"), label, clip(items, 60))
	}
	for _, t := range []string{"feature_bad_record", "feature_late_event"} {
		m, err := sink.Counts(ctx, t)
		if err != nil {
			return err
		}
		for k, n := range m {
			fmt.Printf("%s, %s: %d\n", t, k, n)
		}
	}
	return rows.Err()
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n-3] + "..."
	}
	return s
}
