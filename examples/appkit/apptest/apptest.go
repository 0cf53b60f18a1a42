// Package apptest has the test helpers of pyudf's example applications:
// running the command itself from its test binary (and interrupting it
// mid-stream, as Ctrl-C does), a log buffer safe for
// the app's goroutines, polling for a condition, an embedded
// nats-server with the app's stream, and fetches that fail or are watched
// (HookJS).
//
//	func TestMain(m *testing.M) { apptest.Main(m, "CDN_TEST_ARGS", "cdn", main) }
//	cmd := apptest.Command(ctx, "CDN_TEST_ARGS", "-db", path, "-records", "3000")
package apptest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pyudf/pyudf/connect/nats/embedded"
	"github.com/pyudf/pyudf/connect/nats/runner"
)

// Main is a main package's TestMain: when the test binary was re-executed
// by [Command] (the environment variable env is set), it runs main as the
// command name with the arguments env holds (separated by newlines) and
// exits 0 when main returns (main exits by itself on failure); otherwise
// it runs the tests.
func Main(m *testing.M, env, name string, main func()) {
	if args, ok := os.LookupEnv(env); ok {
		os.Args = append([]string{name}, strings.Split(args, "\n")...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// Command is the command run with args: this test binary again, running no
// test, with args in env for [Main].
func Command(ctx context.Context, env string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run", "^$")
	cmd.Env = append(os.Environ(), env+"="+strings.Join(args, "\n"))
	return cmd
}

// Interrupt starts cmd, reads its standard error line by line until when
// accepts a line, sends it SIGINT (Ctrl-C), reads the rest and waits for
// it. It returns all the standard error and Wait's error (a command that
// exits 0 after Ctrl-C: nil). A command that ends before when accepts a
// line gets no signal. t fails when cmd cannot be started.
func Interrupt(t testing.TB, cmd *exec.Cmd, when func(line string) bool) (stderr string, err error) {
	t.Helper()
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(pipe)
	var log strings.Builder
	for sc.Scan() {
		log.WriteString(sc.Text() + "\n")
		if when(sc.Text()) {
			if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	for sc.Scan() {
		log.WriteString(sc.Text() + "\n")
	}
	return log.String(), cmd.Wait()
}

// SyncBuffer is a bytes.Buffer safe for concurrent use: a log or progress
// destination the app's goroutines write while the test reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String is what was written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// WaitFor polls cond every 10ms until it holds; after a minute t fails,
// naming what it waited for.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Broker starts an embedded nats-server (fresh store, loopback) with the
// stream over subjects and returns a JetStream connection to it; both are
// closed by t.Cleanup.
func Broker(t testing.TB, stream string, subjects ...string) jetstream.JetStream {
	t.Helper()
	srv, err := embedded.Start(embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := runner.EnsureStream(context.Background(), js, stream, subjects...); err != nil {
		t.Fatal(err)
	}
	return js
}

// FetchOutage is a broker whose first Fail fetches fail, an outage that
// ends by itself: Wrap gives the JetStream to hand to the app.
type FetchOutage struct {
	Fail    int64 // how many fetches fail, from the first
	fetches atomic.Int64
}

// Wrap returns js with its fetches failing until o.Fail of them have.
func (o *FetchOutage) Wrap(js jetstream.JetStream) *HookJS {
	return &HookJS{JetStream: js, Before: func() error {
		if o.fetches.Add(1) <= o.Fail {
			return errors.New("nats: connection closed (the test's outage)")
		}
		return nil
	}}
}

// Failures is how many fetches have failed.
func (o *FetchOutage) Failures() int64 { return min(o.fetches.Load(), o.Fail) }

// HookJS hands out ordered consumers whose Fetch goes through Before and
// After: a broker that fails (Before returns an error, and the fetch fails
// with it), or a Ctrl-C that lands during a fetch (After, once the batch
// arrived, cancels). Either may be nil.
type HookJS struct {
	jetstream.JetStream
	Before func() error                // nil, or the error the fetch fails with
	After  func(batch []jetstream.Msg) // after the batch arrived
}

// OrderedConsumer is JetStream's, its Fetch hooked.
func (h *HookJS) OrderedConsumer(ctx context.Context, stream string, cfg jetstream.OrderedConsumerConfig) (jetstream.Consumer, error) {
	c, err := h.JetStream.OrderedConsumer(ctx, stream, cfg)
	return &hookConsumer{Consumer: c, h: h}, err
}

type hookConsumer struct {
	jetstream.Consumer
	h *HookJS
}

type hookBatch struct {
	ch  chan jetstream.Msg
	err error
}

func (b *hookBatch) Messages() <-chan jetstream.Msg { return b.ch }
func (b *hookBatch) Error() error                   { return b.err }

func (h *hookConsumer) Fetch(n int, opts ...jetstream.FetchOpt) (jetstream.MessageBatch, error) {
	if h.h.Before != nil {
		if err := h.h.Before(); err != nil {
			return nil, err
		}
	}
	inner, err := h.Consumer.Fetch(n, opts...)
	if err != nil {
		return nil, err
	}
	var msgs []jetstream.Msg
	for m := range inner.Messages() {
		msgs = append(msgs, m)
	}
	if h.h.After != nil {
		h.h.After(msgs)
	}
	b := &hookBatch{ch: make(chan jetstream.Msg, len(msgs)), err: inner.Error()}
	for _, m := range msgs {
		b.ch <- m
	}
	close(b.ch)
	return b, nil
}
