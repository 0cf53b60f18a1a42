// Command inference is pyudf's near-line inference example: feature
// records (JSON) flow through NATS JetStream, a scikit-learn model loaded in
// a PyFlink UDF's open() predicts each one (row by row, or per batch as a
// Pandas UDF), and the predictions, each naming its model version, go to an
// output stream. A new model file published on the control subject is
// served from the next batch on, without a restart. See README.md.
//
//	cd examples/inference && go run .                  # embedded nats-server, Pandas UDF, model v2 published half-way
//	go run . -prepare                                  # install scikit-learn, train the models, exit (image build)
//	go run . -udf row -mode process                    # the row UDF, in Python worker processes
//	go run . -nats nats://host:4222 -records 0 -follow # serve an existing stream
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/pyudf/pyudf/engine"
	"github.com/pyudf/pyudf/examples/appkit"
	"github.com/pyudf/pyudf/examples/inference/app"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "inference:", err)
		os.Exit(1)
	}
}

func run() error {
	natsURL := flag.String("nats", "", "NATS server URL; empty: an embedded nats-server (fresh store, loopback)")
	records := flag.Int("records", 20000, "feature records to generate into the stream (0: none)")
	badEvery := flag.Int("bad-every", 2000, "every N-th generated record is bad (a missing or non-numeric feature); 0: none")
	follow := flag.Bool("follow", false, "keep serving after the generated records are predicted, until Ctrl-C")
	modeName := flag.String("mode", "thread", "thread (Python in this process) or process (Python worker processes)")
	udfName := flag.String("udf", "pandas", "pandas (predict_batch, one call per fetch) or row (predict, one call per record)")
	fetch := flag.Int("fetch", 1000, "records per fetch and per Pandas batch")
	cacheDir := flag.String("cache-dir", app.DefaultCacheDir(), "the engine's cache: scikit-learn is installed here once, models are trained into its inference/models")
	model := flag.String("model", "", "the model file to serve at start (default: -cache-dir's inference/models/iris-v1.joblib, trained if missing)")
	swapAfter := flag.Int("swap-after", -1, "publish model v2 on the control subject after this many generated records (-1: half of -records; 0: never)")
	prepare := flag.Bool("prepare", false, "only install the Python packages and train models v1 and v2 into -cache-dir, then exit")
	preload := flag.Bool("preload", false, "generate every record before the app starts (measures the app alone: JetStream -> UDF -> JetStream)")
	flag.Parse()
	mode, err := appkit.ParseMode(*modeName)
	if err != nil {
		return err
	}
	if *udfName != "pandas" && *udfName != "row" {
		return fmt.Errorf("-udf %q: want pandas or row", *udfName)
	}
	ctx, stop := appkit.SignalContext() // a second Ctrl-C kills at once (unacked input is redelivered)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	engCfg := engine.Config{Mode: mode, CacheDir: *cacheDir, Logger: log}

	models := filepath.Join(*cacheDir, "inference", "models")
	v1, v2 := filepath.Join(models, "iris-v1.joblib"), filepath.Join(models, "iris-v2.joblib")
	if *prepare {
		start := time.Now()
		for _, m := range []struct{ path, version, kind string }{{v1, "v1", "logistic"}, {v2, "v2", "forest"}} {
			s, err := app.Train(ctx, engine.Config{CacheDir: *cacheDir, Logger: log}, m.path, m.version, m.kind)
			if err != nil {
				return err
			}
			fmt.Println("trained", s)
		}
		fmt.Printf("prepared %s in %.1fs: the Python packages are installed and the models trained; starting needs no network now\n",
			*cacheDir, time.Since(start).Seconds())
		return nil
	}
	if *model == "" {
		*model = v1
		if err := trainIfMissing(ctx, *cacheDir, log, v1, "v1", "logistic"); err != nil {
			return err
		}
	}
	if *swapAfter < 0 {
		*swapAfter = *records / 2
	}
	if *swapAfter > 0 && *records > 0 {
		if err := trainIfMissing(ctx, *cacheDir, log, v2, "v2", "forest"); err != nil {
			return err
		}
	}

	b, err := appkit.Connect(*natsURL, log)
	if err != nil {
		return err
	}
	defer b.Close()
	if err := b.EnsureStream(ctx, app.DefaultStream, app.DefaultSubject); err != nil {
		return err
	}
	cfg := app.Config{Conn: b.Conn, Engine: engCfg, Model: *model, Batch: *udfName == "pandas", FetchSize: *fetch,
		Logger: log, Progress: os.Stderr}
	if err := app.EnsureStreams(ctx, b.JS, cfg); err != nil {
		return err
	}
	a, err := app.New(cfg)
	if err != nil {
		return err
	}
	start := time.Now()
	loadStart := start
	if err := a.Load(ctx); err != nil { // a bad -model is reported before anything is published
		return err
	}

	// The generator stops when Run returns, whatever the reason.
	genCtx, cancelGen := context.WithCancel(ctx)
	defer cancelGen()
	seed := uint64(start.UnixNano())
	feed := appkit.Feed{JS: b.JS, Stream: app.DefaultStream, Preload: *preload, StopAt: a.StopAt,
		Publish: func(ctx context.Context) error {
			g := app.NewGenerator(seed)
			g.BadEvery = *badEvery
			first := *records
			if *swapAfter > 0 && *swapAfter < *records {
				first = *swapAfter
			}
			if _, _, err := app.Publish(ctx, b.JS, app.DefaultSubject, g, first); err != nil || first == *records {
				return err
			}
			if err := app.PublishModel(ctx, b.JS, app.DefaultControl, v2); err != nil {
				return err
			}
			log.Info("published model v2 on the control subject", "subject", app.DefaultControl, "file", v2, "after_records", first)
			// The demo holds the rest until the app serves v2 (or refused
			// it), so that both versions show; a producer need not wait.
			for !*preload && ctx.Err() == nil {
				if st := a.Stats(); st.Switches > 0 || st.Refused > 0 {
					break
				}
				appkit.Sleep(ctx, 20*time.Millisecond)
			}
			_, _, err := app.Publish(ctx, b.JS, app.DefaultSubject, g, *records-first)
			return err
		}}
	if *follow {
		feed.StopAt = nil
	}
	path := "generate -> JetStream -> "
	waitFeed := feed.Start(genCtx)
	if *preload {
		start, path = time.Now(), "JetStream -> "
	}
	runErr := a.Run(ctx)
	cancelGen()
	if s := a.Serving(); !s.IsZero() {
		log.Info("start-up (engine, scikit-learn import, model load)", "took", s.Sub(loadStart).Round(time.Millisecond))
		if s.After(start) && !*preload {
			start = s // the rate below is the serving rate
		}
	}
	elapsed := time.Since(start)
	if err := waitFeed(); err != nil {
		log.Warn("generator", "err", err)
	}
	st := a.Stats()
	n := st.Predicted + st.Bad
	fmt.Fprintf(os.Stderr, "inference: %d records (%d predicted, %d bad) in %.2fs: %.0f records/s end to end (%s%s [%s] -> JetStream), models served %v, %d refused\n",
		n, st.Predicted, st.Bad, elapsed.Seconds(), float64(n)/elapsed.Seconds(), path, map[bool]string{true: app.BatchUDF, false: app.RowUDF}[cfg.Batch],
		*modeName, st.ModelHistory, st.Refused)
	for r, k := range st.BadByReason {
		fmt.Fprintf(os.Stderr, "bad records, %s: %d\n", r, k)
	}
	return runErr
}

// trainIfMissing trains the default model at path on the first start.
func trainIfMissing(ctx context.Context, cacheDir string, log *slog.Logger, path, version, kind string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	log.Info("training the default model (once; -prepare does it ahead)", "file", path, "version", version)
	_, err := app.Train(ctx, engine.Config{CacheDir: cacheDir, Logger: log}, path, version, kind)
	return err
}
