package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
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
