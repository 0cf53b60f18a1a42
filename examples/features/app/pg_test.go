package app

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pyudf/pyudf/engine"
)

// pgServer is a real PostgreSQL server on 127.0.0.1 from Debian's
// postgresql package (PGBIN names another bin directory), as
// examples/cdn/app/pg_test.go starts it (a trimmed copy: a _test file
// cannot be imported). As root it runs as nobody. Without the binaries the
// test fails, saying what to install.
type pgServer struct {
	t        *testing.T
	bin, dir string
	port     int
	cred     *syscall.Credential
	cmd      *exec.Cmd
	exited   chan struct{}
}

func startPostgres(t *testing.T) *pgServer {
	t.Helper()
	p := &pgServer{t: t, bin: os.Getenv("PGBIN")}
	if p.bin == "" {
		m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
		if len(m) == 0 {
			t.Fatal("PostgreSQL server binaries not found: apt-get install -y postgresql, or set PGBIN")
		}
		p.bin = filepath.Dir(m[len(m)-1])
	}
	dir, err := os.MkdirTemp("", "pyudf-features-pg-*")
	if err != nil {
		t.Fatal(err)
	}
	p.dir = dir
	t.Cleanup(func() { p.stop(); os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("nobody")
		if err != nil {
			t.Fatal(err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		p.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := p.command("initdb", "-D", filepath.Join(dir, "data"), "-U", "postgres", "-A", "trust", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	p.start()
	return p
}

func (p *pgServer) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(p.bin, name), args...)
	cmd.Dir = p.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	return cmd
}

func (p *pgServer) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.port)
}

// start starts the server (again, on the same data and port) and waits until it answers.
func (p *pgServer) start() {
	p.t.Helper()
	p.cmd = p.command("postgres", "-D", filepath.Join(p.dir, "data"), "-h", "127.0.0.1", "-p", strconv.Itoa(p.port), "-k", p.dir, "-F")
	if err := p.cmd.Start(); err != nil {
		p.t.Fatalf("starting postgres: %v", err)
	}
	p.exited = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(p.cmd, p.exited)
	db, err := sql.Open("pgx", p.URL())
	if err != nil {
		p.t.Fatal(err)
	}
	defer db.Close()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := db.PingContext(ctx)
		cancel()
		if err == nil {
			return
		}
		select {
		case <-p.exited:
			p.t.Fatal("postgres exited at start-up")
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("postgres not ready after 30s: %v", err)
		}
	}
}

// stop stops the server (fast shutdown).
func (p *pgServer) stop() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
	p.cmd = nil
}

// TestHostileFeaturesPostgresDown runs the app against a real PostgreSQL
// server, stops the server mid-run and starts it again: the app retries
// with back-off, resumes, and the tables are exact.
func TestHostileFeaturesPostgresDown(t *testing.T) {
	pg := startPostgres(t)
	msgs := messages(6000, 499, 89, 14)
	js := broker(t)
	last := publish(t, js, msgs)
	sink, err := OpenSink(context.Background(), pg.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	a, logs := newApp(t, engine.Thread, Config{JS: js, Sink: sink, StopAt: last, FetchSize: 100})
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		done <- a.Run(ctx)
	}()
	waitFor(t, "a first commit", func() bool { return a.Stats().Committed > 0 })
	pg.stop()
	waitFor(t, "failed commits", func() bool { return a.Stats().Retries >= 2 })
	pg.start()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	checkTables(t, sink, msgs)
	if !strings.Contains(logs.String(), "the sink is back") {
		t.Errorf("no recovery logged:\n%s", logs.String())
	}
}
