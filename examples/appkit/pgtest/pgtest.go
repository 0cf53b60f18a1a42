// Package pgtest starts a real PostgreSQL server for tests, on the loopback
// address, from the server binaries of Debian's postgresql package
// (/usr/lib/postgresql/N/bin; the environment variable PGBIN names another
// directory): initdb into a temporary directory, then postgres -h 127.0.0.1
// -p <a free port> -k <that directory>, trust authentication for the user
// postgres. PostgreSQL refuses to run as root: when the test runs as root,
// both run as the user nobody (the directory is chowned to it). Without the
// binaries the test fails, saying what to install; it does not skip.
//
//	pg := pgtest.Start(t)            // stopped and removed by t.Cleanup
//	db, _ := sql.Open("pgx", pg.URL())
//	pg.Stop(); pg.Restart()          // the server down mid-test, then back (same data, same port)
package pgtest

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
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
)

// Server is a PostgreSQL server a test started (see the package documentation).
type Server struct {
	t        testing.TB
	bin, dir string
	port     int
	cred     *syscall.Credential
	cmd      *exec.Cmd
	exited   chan struct{}
	logPath  string
}

// BinDir is the directory of the server binaries: $PGBIN, or the newest
// /usr/lib/postgresql/N/bin (the last in name order); t fails when there
// is none.
func BinDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("PGBIN"); d != "" {
		return d
	}
	m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	if len(m) == 0 {
		t.Fatal("PostgreSQL server binaries not found (no /usr/lib/postgresql/*/bin/postgres): install Debian's postgresql " +
			"package (apt-get install -y postgresql) or set PGBIN to the directory holding initdb and postgres")
	}
	return filepath.Dir(m[len(m)-1])
}

// Start initialises a database cluster in a temporary directory and starts
// the server; t.Cleanup stops it and removes the directory.
func Start(t testing.TB) *Server {
	t.Helper()
	p := &Server{t: t, bin: BinDir(t)}
	dir, err := os.MkdirTemp("", "pyudf-pgtest-*")
	if err != nil {
		t.Fatal(err)
	}
	p.dir, p.logPath = dir, filepath.Join(dir, "postgres.log")
	t.Cleanup(func() { p.Stop(); os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("nobody")
		if err != nil {
			t.Fatalf("running as root, PostgreSQL needs another user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		p.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	initdb := p.command("initdb", "-D", filepath.Join(dir, "data"), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	p.Restart()
	return p
}

func (p *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(p.bin, name), args...)
	cmd.Dir = p.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	return cmd
}

// URL is the server's connection URL.
func (p *Server) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.port)
}

// Restart starts the server again after Stop, on the same data and port,
// and waits until it accepts connections (Start does it the first time).
func (p *Server) Restart() {
	p.t.Helper()
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	defer logf.Close()
	p.cmd = p.command("postgres", "-D", filepath.Join(p.dir, "data"), "-h", "127.0.0.1", "-p", strconv.Itoa(p.port),
		"-k", p.dir, "-F", "-c", "max_connections=20")
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
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
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := db.PingContext(ctx)
		cancel()
		if err == nil {
			return
		}
		select {
		case <-p.exited:
			log, _ := os.ReadFile(p.logPath)
			p.t.Fatalf("postgres exited at start-up:\n%s", log)
		default:
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(p.logPath)
			p.t.Fatalf("postgres not ready after 30s: %v\n%s", err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop stops the server (fast shutdown: clients are disconnected); a
// stopped server is left alone.
func (p *Server) Stop() {
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
