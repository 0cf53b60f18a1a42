package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/pyudf/pyudf/examples/appkit"
	"github.com/pyudf/pyudf/examples/appkit/apptest"
	"github.com/pyudf/pyudf/examples/features/app"
)

func TestMain(m *testing.M) { apptest.Main(m, "FEATURES_TEST_ARGS", "features", main) }

// checkpoint reads the last committed stream sequence and the bad-record total.
func checkpoint(t *testing.T, path string) (seq, bad int64) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRow(`SELECT last_seq FROM feature_checkpoint`).Scan(&seq); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT COALESCE(SUM(count), 0) FROM feature_bad_record`).Scan(&bad); err != nil {
		t.Fatal(err)
	}
	return seq, bad
}

// TestCommand: `go run .` on the embedded defaults generates, runs, prints
// the summary and exits 0.
func TestCommand(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db := filepath.Join(t.TempDir(), "features.db")
	var stdout, stderr bytes.Buffer
	cmd := apptest.Command(ctx, "FEATURES_TEST_ARGS", "-db", db, "-records", "3000", "-bad-every", "500", "-late-every", "100")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	for _, want := range []string{"user_feature: 50 users", "feature_sample:", "positive", "feature_bad_record, missing field: 2",
		"feature_bad_record, unknown event type: 2", "feature_bad_record, not JSON: 2", "feature_late_event, exposure:"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout.String())
		}
	}
	if !regexp.MustCompile(`features: 3000 records \(6 bad, \d+ late\) in .* records/s end to end`).MatchString(stderr.String()) {
		t.Errorf("no summary line:\n%s", stderr.String())
	}
	if seq, bad := checkpoint(t, db); seq != 3000 || bad != 6 {
		t.Errorf("checkpoint %d, %d bad; want 3000, 6", seq, bad)
	}
}

// TestCommandCtrlC: SIGINT mid-stream: the command commits everything it
// read (the checkpoint is its record count) and exits 0.
func TestCommandCtrlC(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db := filepath.Join(t.TempDir(), "features.db")
	cmd := apptest.Command(ctx, "FEATURES_TEST_ARGS", "-db", db, "-records", "2000000", "-follow", "-bad-every", "1000")
	progress := regexp.MustCompile(`committed up to seq (\d+)`)
	log, err := apptest.Interrupt(t, cmd, func(line string) bool {
		m := progress.FindStringSubmatch(line)
		return m != nil && m[1] != "0" // something is committed
	})
	if err != nil {
		t.Fatalf("exit after SIGINT: %v\n%s", err, log)
	}
	m := regexp.MustCompile(`features: (\d+) records \((\d+) bad`).FindStringSubmatch(log)
	if m == nil {
		t.Fatalf("no summary line:\n%s", log)
	}
	read, _ := strconv.ParseInt(m[1], 10, 64)
	seq, bad := checkpoint(t, db)
	if seq != read || seq == 0 || seq >= 2000000 || bad != seq/1000 {
		t.Errorf("read %d records, checkpoint %d with %d bad: want all read committed, mid-stream, %d bad\n%s", read, seq, bad, seq/1000, log)
	}
}

// TestRunStopsTheGenerator: when the app returns (here an error at once),
// the generator's context is cancelled: the command does not wait for
// every record to be published.
func TestRunStopsTheGenerator(t *testing.T) {
	boom := errors.New("the pipeline failed")
	start := time.Now()
	feed := appkit.Feed{Publish: func(ctx context.Context) error {
		select {
		case <-ctx.Done(): // the generator stops with its context
			return ctx.Err()
		case <-time.After(time.Minute):
			return errors.New("the generator was never cancelled")
		}
	}}
	runErr, genErr := feed.Run(context.Background(), func(context.Context) error { return boom })
	if runErr != boom || genErr != nil || time.Since(start) > 10*time.Second {
		t.Errorf("Feed.Run = %v, %v after %v; want the run's error and a generator cancelled at once (nil: Ctrl-C is not an error)", runErr, genErr, time.Since(start))
	}
}

// TestFinishKeepsTheRunError: a failing summary is joined to the run's
// error, not put in its place; a summary that hangs (PostgreSQL not
// answering) is cut at summaryTimeout; after a sink failure there is no
// summary.
func TestFinishKeepsTheRunError(t *testing.T) {
	defer func(d time.Duration) { summaryTimeout = d }(summaryTimeout)
	summaryTimeout = 200 * time.Millisecond
	runErr := errors.New("features app: boom (the stream after sequence 7 is read again at the next start)")
	err := finish(context.Background(), runErr, func(context.Context) error { return errors.New("connection refused") })
	if !errors.Is(err, runErr) || !strings.Contains(err.Error(), "read again") || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("finish = %v, want both errors", err)
	}
	start := time.Now()
	err = finish(context.Background(), nil, func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Errorf("finish with a hanging summary = %v after %v", err, time.Since(start))
	}
	sinkErr := fmt.Errorf("%w: the last commit failed", app.ErrSinkUnavailable)
	called := false
	if err := finish(context.Background(), sinkErr, func(context.Context) error { called = true; return nil }); err != sinkErr || called {
		t.Errorf("finish after a sink failure = %v (summary called %v), want the error and no summary", err, called)
	}
}
