package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/pyudf/pyudf/examples/features/app"
)

// TestMain runs the command itself when the test binary is re-executed as
// it (FEATURES_TEST_ARGS holds its arguments, separated by newlines).
func TestMain(m *testing.M) {
	if args, ok := os.LookupEnv("FEATURES_TEST_ARGS"); ok {
		os.Args = append([]string{"features"}, strings.Split(args, "\n")...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run", "^$")
	cmd.Env = append(os.Environ(), "FEATURES_TEST_ARGS="+strings.Join(args, "\n"))
	return cmd
}

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
	cmd := command(ctx, "-db", db, "-records", "3000", "-bad-every", "500", "-late-every", "100")
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
	cmd := command(ctx, "-db", db, "-records", "2000000", "-follow", "-bad-every", "1000")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	progress := regexp.MustCompile(`committed up to seq (\d+)`)
	sc := bufio.NewScanner(stderr)
	var log strings.Builder
	for sc.Scan() {
		log.WriteString(sc.Text() + "\n")
		if m := progress.FindStringSubmatch(sc.Text()); m != nil {
			if n, _ := strconv.Atoi(m[1]); n > 0 {
				break
			}
		}
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for sc.Scan() {
		log.WriteString(sc.Text() + "\n")
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGINT: %v\n%s", err, log.String())
	}
	m := regexp.MustCompile(`features: (\d+) records \((\d+) bad`).FindStringSubmatch(log.String())
	if m == nil {
		t.Fatalf("no summary line:\n%s", log.String())
	}
	read, _ := strconv.ParseInt(m[1], 10, 64)
	seq, bad := checkpoint(t, db)
	if seq != read || seq == 0 || seq >= 2000000 || bad != seq/1000 {
		t.Errorf("read %d records, checkpoint %d with %d bad: want all read committed, mid-stream, %d bad\n%s", read, seq, bad, seq/1000, log.String())
	}
}

// TestRunStopsTheGenerator: when the app returns (here an error at once),
// the generator's context is cancelled: the command does not wait for
// every record to be published.
func TestRunStopsTheGenerator(t *testing.T) {
	boom := errors.New("the pipeline failed")
	start := time.Now()
	runErr, genErr := runWithGenerator(context.Background(),
		func(context.Context) error { return boom },
		func(ctx context.Context) error {
			select {
			case <-ctx.Done(): // the generator stops with its context
				return ctx.Err()
			case <-time.After(time.Minute):
				return errors.New("the generator was never cancelled")
			}
		})
	if runErr != boom || !errors.Is(genErr, context.Canceled) || time.Since(start) > 10*time.Second {
		t.Errorf("runWithGenerator = %v, %v after %v; want the run's error and a cancelled generator at once", runErr, genErr, time.Since(start))
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
