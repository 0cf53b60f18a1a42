package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pyudf/pyudf/connect/nats/embedded"
	"github.com/pyudf/pyudf/connect/nats/runner"
)

// The test binary is also the command: with PYUDF_NATS_CHILD set it runs
// main's run with the arguments in that variable (separated by \x1f),
// so that the tests start runners as separate processes.
func TestMain(m *testing.M) {
	if args := os.Getenv("PYUDF_NATS_CHILD"); args != "" {
		ctx, stop := signalContext()
		defer stop()
		if err := run(ctx, strings.Split(args, "\x1f"), os.Stdout, os.Stderr); err != nil && ctx.Err() == nil {
			fmt.Fprintln(os.Stderr, "pyudf-nats:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func signalContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() { // the parent closes our stdin to stop us
		io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	return ctx, cancel
}

const upperScript = `
from pyudf import udf

@udf(input_types=['STRING'], result_type='STRING')
def upper(s):
    return s.upper()
`

// child is a runner process.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	ready chan struct{}
	gone  chan struct{} // its stdout was closed: it exited
	out   strings.Builder
	mu    sync.Mutex
}

func startChild(t *testing.T, args ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PYUDF_NATS_CHILD="+strings.Join(args, "\x1f"))
	c := &child{cmd: cmd, ready: make(chan struct{}), gone: make(chan struct{})}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = &lockedWriter{c}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(c.gone)
		sc := bufio.NewScanner(stdout)
		once := sync.Once{}
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "running ") {
				once.Do(func() { close(c.ready) })
			}
		}
	}()
	t.Cleanup(func() {
		c.stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("runner %d stderr:\n%s", cmd.Process.Pid, c.stderr())
		}
	})
	return c
}

type lockedWriter struct{ c *child }

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.c.mu.Lock()
	defer w.c.mu.Unlock()
	return w.c.out.Write(p)
}

func (c *child) stderr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.String()
}

func (c *child) waitReady(t *testing.T) {
	t.Helper()
	select {
	case <-c.ready:
	case <-c.gone:
		t.Fatalf("runner exited:\n%s", c.stderr())
	case <-time.After(60 * time.Second):
		t.Fatalf("runner not ready after 60s:\n%s", c.stderr())
	}
}

type scaleTest struct {
	srv *embedded.Server
	nc  *nats.Conn
	js  jetstream.JetStream
}

func newScaleTest(t *testing.T) *scaleTest {
	t.Helper()
	srv, err := embedded.Start(embedded.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(8192))
	if err != nil {
		t.Fatal(err)
	}
	// Memory storage: no broker restarts here (runner's TestBrokerRestart
	// covers the file store).
	ctx := context.Background()
	for name, subjects := range map[string][]string{"IN": {"in.text"}, "OUT": {"out", "out.dlq"}} {
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: subjects, Storage: jetstream.MemoryStorage}); err != nil {
			t.Fatal(err)
		}
	}
	return &scaleTest{srv: srv, nc: nc, js: js}
}

func (s *scaleTest) runner(t *testing.T, name string) *child {
	return startChild(t, "-url", s.srv.URL(), "-script", upperScript, "-function", "upper",
		"-subject", "in.text", "-output", "out", "-durable", "shared", "-name", name,
		"-create=false", "-ack-wait", "2s", "-fetch", "256")
}

// waitWaiting waits until the shared consumer has n pull requests waiting:
// both runners are fetching.
func (s *scaleTest) waitWaiting(t *testing.T, n int) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := s.js.Consumer(ctx, "IN", "shared"); err == nil {
			if info, err := c.Info(ctx); err == nil && info.NumWaiting >= n {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("fewer than %d runners fetching after 30s", n)
}

func (s *scaleTest) publish(t *testing.T, n int) {
	t.Helper()
	for i := range n {
		if _, err := s.js.PublishAsync("in.text", fmt.Appendf(nil, "message %06d", i)); err != nil {
			t.Fatal(err)
		}
		if i%2048 == 2047 {
			<-s.js.PublishAsyncComplete()
		}
	}
	select {
	case <-s.js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		t.Fatal("publishing did not complete")
	}
}

// acked is the consumer's ack floor and whether nothing is pending.
func (s *scaleTest) acked(t *testing.T) (uint64, bool) {
	ctx := context.Background()
	c, err := s.js.Consumer(ctx, "IN", "shared")
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.AckFloor.Stream, info.NumAckPending == 0 && info.NumPending == 0
}

func (s *scaleTest) waitAcked(t *testing.T, n uint64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		floor, idle := s.acked(t)
		if floor >= n && idle {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ack floor %d (idle %v) after %v, want %d", floor, idle, timeout, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// results reads the whole OUT stream's results: how often each payload came,
// and how many each runner published.
func (s *scaleTest) results(t *testing.T) (seen map[string]int, byRunner map[string]int) {
	t.Helper()
	ctx := context.Background()
	st, err := s.js.Stream(ctx, "OUT")
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := s.js.OrderedConsumer(ctx, "OUT", jetstream.OrderedConsumerConfig{FilterSubjects: []string{"out"}})
	if err != nil {
		t.Fatal(err)
	}
	seen, byRunner = map[string]int{}, map[string]int{}
	total := 0
	for uint64(total) < info.State.Msgs {
		batch, err := cons.Fetch(5000, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for m := range batch.Messages() {
			seen[string(m.Data())]++
			byRunner[m.Headers().Get(runner.HeaderRunner)]++
			got++
		}
		if got == 0 {
			break
		}
		total += got
	}
	return seen, byRunner
}

func checkAll(t *testing.T, seen map[string]int, n int) (dups int) {
	t.Helper()
	for i := range n {
		c := seen[fmt.Sprintf("MESSAGE %06d", i)]
		if c == 0 {
			t.Fatalf("no result for message %d (%d distinct results)", i, len(seen))
		}
		dups += c - 1
	}
	if len(seen) != n {
		t.Fatalf("%d distinct results, want %d", len(seen), n)
	}
	return dups
}

// Two runner processes on one durable consumer share 100K messages: every
// message's result is published, none is lost, and the split is roughly even.
func TestScaleOutTwoProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("100K messages through two processes")
	}
	s := newScaleTest(t)
	a, b := s.runner(t, "a"), s.runner(t, "b")
	a.waitReady(t)
	b.waitReady(t)
	s.waitWaiting(t, 2)
	const n = 100_000
	start := time.Now()
	s.publish(t, n)
	s.waitAcked(t, n, 240*time.Second)
	took := time.Since(start)
	seen, byRunner := s.results(t)
	dups := checkAll(t, seen, n)
	t.Logf("%d messages in %v (%.0f/s) by %v, %d duplicates", n, took.Round(time.Millisecond), n/took.Seconds(), byRunner, dups)
	if byRunner["a"] < n/4 || byRunner["b"] < n/4 {
		t.Errorf("uneven split %v: each runner should take at least a quarter", byRunner)
	}
}

// Killing one of two runners mid-stream (SIGKILL: no clean-up) loses
// nothing: the messages it had fetched but not acknowledged are redelivered
// to the other after AckWait.
func TestScaleOutKillOne(t *testing.T) {
	s := newScaleTest(t)
	a, b := s.runner(t, "a"), s.runner(t, "b")
	a.waitReady(t)
	b.waitReady(t)
	s.waitWaiting(t, 2)
	const n = 30_000
	done := make(chan struct{})
	go func() { defer close(done); s.publish(t, n) }()
	deadline := time.Now().Add(60 * time.Second)
	for { // mid-stream
		floor, _ := s.acked(t)
		if floor >= n/5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ack floor %d after 60s", floor)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killedAt, _ := s.acked(t)
	<-done
	s.waitAcked(t, n, 240*time.Second)
	seen, byRunner := s.results(t)
	dups := checkAll(t, seen, n)
	t.Logf("killed runner a at ack floor %d; results by runner %v, %d duplicates", killedAt, byRunner, dups)
	if killedAt >= n {
		t.Fatalf("runner a killed after the end of the stream")
	}
	if byRunner["a"] >= n || byRunner["b"] < n-byRunner["a"] {
		t.Errorf("results by runner %v: runner b should have done what the killed runner a did not", byRunner)
	}
}
