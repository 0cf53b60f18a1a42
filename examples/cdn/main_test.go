package main

import (
	"bytes"
	"context"
	"database/sql"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/pyudf/pyudf/examples/appkit/apptest"
)

// TestMain runs the command itself when the test binary is re-executed as
// it (CDN_TEST_ARGS holds its arguments, separated by newlines).
func TestMain(m *testing.M) { apptest.Main(m, "CDN_TEST_ARGS", "cdn", main) }

func command(ctx context.Context, args ...string) *exec.Cmd {
	return apptest.Command(ctx, "CDN_TEST_ARGS", args...)
}

// TestCommand: `go run .` on the embedded defaults generates, counts and
// prints the table, and exits 0.
func TestCommand(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db := filepath.Join(t.TempDir(), "cdn.db")
	var stdout, stderr bytes.Buffer
	cmd := command(ctx, "-db", db, "-records", "3000", "-bad-every", "500")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	for _, want := range []string{"province", "access_count", "bad records, missing field: 3", "bad records, not an IP: 3"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout.String())
		}
	}
	if !regexp.MustCompile(`cdn: 3000 records \(6 bad\) in .* records/s end to end`).MatchString(stderr.String()) {
		t.Errorf("no summary line:\n%s", stderr.String())
	}
	if got := committed(t, db); got != [2]int64{3000, 3000} {
		t.Errorf("table counts %d records, checkpoint %d; want 3000, 3000", got[0], got[1])
	}
}

// committed returns the records the tables count (good and bad) and the
// checkpoint.
func committed(t *testing.T, path string) [2]int64 {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var good, bad, seq int64
	if err := db.QueryRow(`SELECT COALESCE(SUM(access_count), 0) FROM cdn_access_statistic`).Scan(&good); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT COALESCE(SUM(count), 0) FROM cdn_bad_record`).Scan(&bad); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT last_seq FROM cdn_checkpoint`).Scan(&seq); err != nil {
		t.Fatal(err)
	}
	return [2]int64{good + bad, seq}
}

// TestCommandCtrlC: Ctrl-C (SIGINT) mid-stream: the command commits what it
// read and exits 0; the table counts exactly the records up to the
// checkpoint.
func TestCommandCtrlC(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db := filepath.Join(t.TempDir(), "cdn.db")
	progress := regexp.MustCompile(`committed up to seq (\d+)`)
	log, err := apptest.Interrupt(t, command(ctx, "-db", db, "-records", "5000000", "-follow"), func(line string) bool {
		if m := progress.FindStringSubmatch(line); m != nil {
			n, _ := strconv.Atoi(m[1])
			return n > 0
		}
		return false
	})
	if err != nil {
		t.Fatalf("exit after SIGINT: %v\n%s", err, log)
	}
	got := committed(t, db)
	if got[0] != got[1] || got[1] == 0 || got[1] >= 5000000 {
		t.Errorf("table counts %d records, checkpoint %d: want the same, mid-stream\n%s", got[0], got[1], log)
	}
}
