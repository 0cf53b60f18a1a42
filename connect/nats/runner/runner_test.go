package runner_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pyudf/pyudf/connect/nats/embedded"
	"github.com/pyudf/pyudf/connect/nats/runner"
	"github.com/pyudf/pyudf/engine"
)

const udfs = `
import time
import pandas as pd
from pyudf import udf

@udf(input_types=['STRING'], result_type='STRING')
def upper(s):
    if s.startswith('poison'):
        raise ValueError('poisoned: ' + s)
    if s.startswith('hoarse'):
        class Hoarse(Exception):
            pass
        raise Hoarse('no voice: ' + s)
    return s.upper()

@udf(input_types=['BIGINT', 'BIGINT'], result_type='BIGINT')
def add(a, b):
    return a + b

@udf(input_types=['STRING'], result_type='STRING', func_type='pandas')
def upper_pandas(s):
    if s.str.startswith('poison').any():
        raise ValueError('poisoned batch')
    return s.str.upper()

@udf(input_types=['STRING'], result_type='STRING')
def slow_upper(s):
    time.sleep(0.0005)
    return s.upper()

@udf(input_types=['STRING'], result_type='STRING')
def closing(s):
    return s

@udf(input_types=['STRING'], result_type='STRING')
def maybe_none(s):
    return None if s == 'none' else s

@udf(input_types=['STRING'], result_type='STRING')
def block(s):
    while True:  # until the call is interrupted
        time.sleep(0.01)
`

var (
	engOnce sync.Once
	eng     *engine.Engine
	mod     *engine.Module
	engErr  error
)

// function opens a function of udfs on the package's one engine.
func function(t *testing.T, name string) *engine.Function {
	t.Helper()
	ctx := context.Background()
	engOnce.Do(func() {
		if eng, engErr = engine.New(ctx, engine.Config{}); engErr == nil {
			mod, engErr = eng.LoadSource(ctx, "udfs.py", udfs)
		}
	})
	if engErr != nil {
		t.Fatal(engErr)
	}
	f, err := mod.Function(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// broker is an embedded server with the streams IN (in.>) and OUT (out, out.dlq).
type broker struct {
	srv *embedded.Server
	nc  *nats.Conn
	js  jetstream.JetStream
}

func startBroker(t *testing.T) *broker {
	t.Helper()
	srv, err := embedded.Start(embedded.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	b := &broker{srv: srv}
	t.Cleanup(func() { b.srv.Close() }) // b.srv: TestBrokerRestart replaces it
	b.connect(t)
	ctx := context.Background()
	if err := runner.EnsureStream(ctx, b.js, "IN", "in.>"); err != nil {
		t.Fatal(err)
	}
	if err := runner.EnsureStream(ctx, b.js, "OUT", "out", "out.dlq"); err != nil {
		t.Fatal(err)
	}
	return b
}

func (b *broker) connect(t *testing.T) {
	t.Helper()
	nc, err := nats.Connect(b.srv.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	b.nc, b.js = nc, js
}

func (b *broker) publish(t *testing.T, subject string, payloads ...string) {
	t.Helper()
	ctx := context.Background()
	for _, p := range payloads {
		if _, err := b.js.Publish(ctx, subject, []byte(p)); err != nil {
			t.Fatal(err)
		}
	}
}

// collect reads n messages of subject from OUT (from the start), failing
// after timeout.
func (b *broker) collect(t *testing.T, subject string, n int, timeout time.Duration) []jetstream.Msg {
	t.Helper()
	ctx := context.Background()
	cons, err := b.js.OrderedConsumer(ctx, "OUT", jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		t.Fatal(err)
	}
	var out []jetstream.Msg
	deadline := time.Now().Add(timeout)
	for len(out) < n && time.Now().Before(deadline) {
		batch, err := cons.Fetch(n-len(out), jetstream.FetchMaxWait(200*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			out = append(out, m)
		}
	}
	if len(out) < n {
		t.Fatalf("%s: %d messages after %v, want %d", subject, len(out), timeout, n)
	}
	return out
}

// start runs a runner until the test ends.
func start(t *testing.T, cfg runner.Config) *runner.Runner {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	r, err := runner.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- r.Run(context.Background()) }()
	t.Cleanup(func() {
		r.Close()
		if err := <-errc; !errors.Is(err, runner.ErrClosed) {
			t.Errorf("Run returned %v, want ErrClosed", err)
		}
	})
	return r
}

func payloads(ms []jetstream.Msg) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = string(m.Data())
	}
	return out
}

func TestBasicFlow(t *testing.T) {
	b := startBroker(t)
	r := start(t, runner.Config{Conn: b.nc, Subject: "in.text", Durable: "basic", Output: "out",
		Function: function(t, "upper"), Name: "r1"})
	b.publish(t, "in.text", "hello", "wörld", "")
	got := b.collect(t, "out", 3, 10*time.Second)
	if want := []string{"HELLO", "WÖRLD", ""}; strings.Join(payloads(got), "|") != strings.Join(want, "|") {
		t.Fatalf("results %q, want %q", payloads(got), want)
	}
	for i, m := range got {
		h := m.Headers()
		if h.Get(runner.HeaderStream) != "IN" || h.Get(runner.HeaderSeq) != fmt.Sprint(i+1) ||
			h.Get(runner.HeaderSubject) != "in.text" || h.Get(runner.HeaderRunner) != "r1" {
			t.Errorf("result %d headers %v", i, h)
		}
	}
	waitAcked(t, b, "basic", 3)
	if s := r.Stats(); s.Published != 3 || s.DeadLettered != 0 || s.Retried != 0 {
		t.Errorf("stats %+v", s)
	}
}

// waitAcked waits until the consumer has acknowledged n messages and holds
// none pending.
func waitAcked(t *testing.T, b *broker, durable string, n uint64) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := b.js.Consumer(ctx, "IN", durable)
		if err != nil {
			t.Fatal(err)
		}
		info, err := c.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.AckFloor.Stream >= n && info.NumAckPending == 0 && info.NumPending == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumer %s: ack floor %d, %d pending acks, %d pending; want %d acked",
				durable, info.AckFloor.Stream, info.NumAckPending, info.NumPending, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDeadLetterPythonError(t *testing.T) {
	b := startBroker(t)
	r := start(t, runner.Config{Conn: b.nc, Subject: "in.text", Durable: "dlq", Output: "out",
		Function: function(t, "upper")})
	b.publish(t, "in.text", "a", "poison pill", "b", "hoarse throat")
	got := b.collect(t, "out", 2, 10*time.Second)
	if strings.Join(payloads(got), ",") != "A,B" {
		t.Fatalf("results %q, want A,B: the poison message must not block the others", payloads(got))
	}
	dead := b.collect(t, "out.dlq", 2, 10*time.Second)
	want := map[string][3]string{ // payload: error type, error, sequence
		"poison pill": {"python:ValueError", "ValueError: poisoned: poison pill", "2"},
		// The type of an exception class defined in a function is its qualified name.
		"hoarse throat": {"python:udfs.upper.<locals>.Hoarse", "udfs.upper.<locals>.Hoarse: no voice: hoarse throat", "4"},
	}
	for _, d := range dead {
		h, w := d.Headers(), want[string(d.Data())]
		if h.Get(runner.HeaderErrType) != w[0] || !strings.Contains(h.Get(runner.HeaderError), w[1]) || h.Get(runner.HeaderSeq) != w[2] {
			t.Errorf("dead letter %q headers %v, want %q", d.Data(), h, w)
		}
		delete(want, string(d.Data()))
	}
	if len(want) != 0 {
		t.Errorf("no dead letter for %v", want)
	}
	waitAcked(t, b, "dlq", 4)
	if s := r.Stats(); s.Published != 2 || s.DeadLettered != 2 {
		t.Errorf("stats %+v", s)
	}
}

// A payload that does not fit the UDF's argument types is dead-lettered
// with the reason, and the messages around it are processed.
func TestHostileNATSPayloadNotArguments(t *testing.T) {
	b := startBroker(t)
	start(t, runner.Config{Conn: b.nc, Subject: "in.nums", Durable: "types", Output: "out",
		Function: function(t, "add")})
	b.publish(t, "in.nums", "[1, 2]", `[1, "two"]`, "[1]", "{not json", "[1, 2.5]", "[9223372036854775807, 1]", "[40, 2]")
	got := b.collect(t, "out", 2, 10*time.Second)
	if strings.Join(payloads(got), ",") != "3,42" {
		t.Fatalf("results %q, want 3,42", payloads(got))
	}
	dead := b.collect(t, "out.dlq", 5, 10*time.Second)
	want := []struct{ payload, errType, reason string }{
		{`[1, "two"]`, "decode", `argument 2: "two" is not a BIGINT`},
		{"[1]", "decode", "the function takes 2 arguments: want a JSON array of 2 values, got a JSON array of 1 values"},
		{"{not json", "decode", "not JSON"},
		{"[1, 2.5]", "decode", "argument 2: the JSON number 2.5 is not a BIGINT"},
		{"[9223372036854775807, 1]", "conversion", "result"},
	}
	for i, w := range want {
		h := dead[i].Headers()
		if string(dead[i].Data()) != w.payload || h.Get(runner.HeaderErrType) != w.errType || !strings.Contains(h.Get(runner.HeaderError), w.reason) {
			t.Errorf("dead letter %d: %q type %q error %q; want %q type %q error containing %q",
				i, dead[i].Data(), h.Get(runner.HeaderErrType), h.Get(runner.HeaderError), w.payload, w.errType, w.reason)
		}
	}
	waitAcked(t, b, "types", 7)
}

// A string payload that is not UTF-8 is a conversion error, dead-lettered.
func TestHostileNATSInvalidUTF8(t *testing.T) {
	b := startBroker(t)
	start(t, runner.Config{Conn: b.nc, Subject: "in.text", Durable: "utf8", Output: "out",
		Function: function(t, "upper")})
	b.publish(t, "in.text", "ok", "bad \xff\xfe", "fine")
	got := b.collect(t, "out", 2, 10*time.Second)
	if strings.Join(payloads(got), ",") != "OK,FINE" {
		t.Fatalf("results %q", payloads(got))
	}
	dead := b.collect(t, "out.dlq", 1, 10*time.Second)
	if h := dead[0].Headers(); h.Get(runner.HeaderErrType) != "conversion" || !strings.Contains(h.Get(runner.HeaderError), "argument 1") {
		t.Fatalf("dead letter headers %v", h)
	}
	waitAcked(t, b, "utf8", 3)
}

func TestNullResult(t *testing.T) {
	b := startBroker(t)
	start(t, runner.Config{Conn: b.nc, Subject: "in.text", Durable: "null", Output: "out",
		Function: function(t, "maybe_none")})
	b.publish(t, "in.text", "none", "x")
	got := b.collect(t, "out", 2, 10*time.Second)
	if len(got[0].Data()) != 0 || got[0].Headers().Get(runner.HeaderNull) != "true" ||
		string(got[1].Data()) != "x" || got[1].Headers().Get(runner.HeaderNull) != "" {
		t.Fatalf("results %q %v / %q %v", got[0].Data(), got[0].Headers(), got[1].Data(), got[1].Headers())
	}
}

// A Pandas UDF gets one batch per fetch (the runner switches to batches by
// itself); a batch that raises is retried message by message, so only the
// poison message is dead-lettered.
func TestPandasBatches(t *testing.T) {
	b := startBroker(t)
	var in []string
	for i := range 300 {
		in = append(in, fmt.Sprintf("m%03d", i))
	}
	in[150] = "poison 150"
	b.publish(t, "in.text", in...) // before the runner starts: fetches of many
	r := start(t, runner.Config{Conn: b.nc, Subject: "in.text", Durable: "pandas", Output: "out",
		Function: function(t, "upper_pandas"), FetchSize: 100})
	got := b.collect(t, "out", 299, 20*time.Second)
	for i, j := 0, 0; i < len(in); i++ {
		if i == 150 {
			continue
		}
		if want := strings.ToUpper(in[i]); string(got[j].Data()) != want {
			t.Fatalf("result %d = %q, want %q", j, got[j].Data(), want)
		}
		j++
	}
	dead := b.collect(t, "out.dlq", 1, 10*time.Second)
	if string(dead[0].Data()) != "poison 150" || dead[0].Headers().Get(runner.HeaderErrType) != "python:ValueError" {
		t.Fatalf("dead letter %q %v", dead[0].Data(), dead[0].Headers())
	}
	waitAcked(t, b, "pandas", 300)
	if s := r.Stats(); s.Fetches > 20 {
		t.Errorf("%d fetches for 300 messages in batches of 100", s.Fetches)
	}
}

// Batch on a general UDF: one EvalRowErrors per fetch, per-row errors
// dead-lettered.
func TestRowBatches(t *testing.T) {
	b := startBroker(t)
	b.publish(t, "in.text", "a", "poison", "c")
	start(t, runner.Config{Conn: b.nc, Subject: "in.text", Durable: "rows", Output: "out",
		Function: function(t, "upper"), Batch: true})
	got := b.collect(t, "out", 2, 10*time.Second)
	if strings.Join(payloads(got), ",") != "A,C" {
		t.Fatalf("results %q", payloads(got))
	}
	dead := b.collect(t, "out.dlq", 1, 10*time.Second)
	if h := dead[0].Headers(); h.Get(runner.HeaderErrType) != "python:ValueError" || !strings.Contains(h.Get(runner.HeaderError), "poisoned: poison") {
		t.Fatalf("dead letter headers %v", h)
	}
	waitAcked(t, b, "rows", 3)
}

func TestConfigErrors(t *testing.T) {
	f := function(t, "upper")
	for _, c := range []struct {
		cfg  runner.Config
		want string
	}{
		{runner.Config{}, "Subject, Durable, Output, Function missing"},
		{runner.Config{Subject: "a", Durable: "x.y", Output: "o", Function: f}, `Durable "x.y"`},
		{runner.Config{Subject: "a", Durable: "d", Output: "o", Function: function(t, "maybe_none"), Batch: true}, ""},
	} {
		_, err := runner.New(c.cfg)
		if c.want == "" {
			if err != nil {
				t.Errorf("New(%+v): %v", c.cfg, err)
			}
			continue
		}
		if !errors.Is(err, runner.ErrConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New: %v, want ErrConfig containing %q", err, c.want)
		}
	}
}

// The input stream must exist: Run says so and stops.
func TestMissingStream(t *testing.T) {
	b := startBroker(t)
	r, err := runner.New(runner.Config{Conn: b.nc, Stream: "NOPE", Subject: "nope", Durable: "d", Output: "out",
		Function: function(t, "upper"), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Run(ctx); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("Run: %v, want ErrStreamNotFound", err)
	}
}

// The broker goes away mid-stream and comes back (the same port and store):
// the runner, which dialled the server itself, reconnects and resumes;
// every input has its result and is acknowledged, none is acknowledged
// without one.
func TestBrokerRestart(t *testing.T) {
	b := startBroker(t)
	const n = 4000
	in := make([]string, n)
	for i := range in {
		in[i] = fmt.Sprintf("m%05d", i)
	}
	b.publish(t, "in.text", in...)
	r := start(t, runner.Config{URL: b.srv.URL(), Subject: "in.text", Durable: "restart", Output: "out",
		Function: function(t, "slow_upper"), FetchSize: 50, FetchWait: 300 * time.Millisecond,
		AckWait: 2 * time.Second, PublishTimeout: time.Second})
	deadline := time.Now().Add(10 * time.Second)
	for r.Stats().Published < 200 { // mid-stream
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v", r.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	port, dir := b.srv.Port(), b.srv.Dir()
	b.srv.Shutdown()
	before := r.Stats()
	time.Sleep(time.Second)
	srv, err := embedded.Start(embedded.Options{Port: port, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	b.srv = srv
	if before.Published >= n {
		t.Fatalf("all %d processed before the broker went away", n)
	}
	got := b.collectDistinct(t, "out", n, 60*time.Second)
	for _, p := range in {
		if got[strings.ToUpper(p)] == 0 {
			t.Fatalf("no result for %q", p)
		}
	}
	waitAcked(t, b, "restart", n)
	s := r.Stats()
	t.Logf("before the restart %+v; after %+v", before, s)
	if s.FetchErrors == 0 && s.Retried == 0 {
		t.Errorf("the runner saw no outage: %+v", s)
	}
}

// collectDistinct reads subject from OUT until it has seen n distinct
// payloads, and returns how often each came.
func (b *broker) collectDistinct(t *testing.T, subject string, n int, timeout time.Duration) map[string]int {
	t.Helper()
	ctx := context.Background()
	seen := map[string]int{}
	deadline := time.Now().Add(timeout)
	var cons jetstream.Consumer
	for len(seen) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d distinct results after %v, want %d", subject, len(seen), timeout, n)
		}
		if cons == nil {
			c, err := b.js.OrderedConsumer(ctx, "OUT", jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
			if err != nil {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			cons = c
		}
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(300*time.Millisecond))
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		for m := range batch.Messages() {
			seen[string(m.Data())]++
		}
	}
	return seen
}

// A result whose publish JetStream does not acknowledge (no stream holds the
// output subject) leaves its input unacknowledged and not dead-lettered; once
// a stream holds the subject, the redelivered inputs get their results.
func TestHostileNATSOutputWithoutStream(t *testing.T) {
	b := startBroker(t)
	r := start(t, runner.Config{Conn: b.nc, Subject: "in.text", Durable: "nostream", Output: "later",
		Function: function(t, "upper"), PublishTimeout: time.Second})
	b.publish(t, "in.text", "x", "y")
	deadline := time.Now().Add(10 * time.Second)
	for r.Stats().Retried < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v: want both messages retried", r.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	ctx := context.Background()
	c, err := b.js.Consumer(ctx, "IN", "nostream")
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.AckFloor.Stream != 0 {
		t.Fatalf("ack floor %d: an input was acked without its result's PubAck", info.AckFloor.Stream)
	}
	if s := r.Stats(); s.Published != 0 || s.DeadLettered != 0 {
		t.Fatalf("stats %+v", s)
	}
	if err := runner.EnsureStream(ctx, b.js, "LATER", "later", "later.dlq"); err != nil {
		t.Fatal(err)
	}
	cons, err := b.js.OrderedConsumer(ctx, "LATER", jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < 2 && time.Now().Before(deadline.Add(10*time.Second)) {
		batch, err := cons.Fetch(2-len(got), jetstream.FetchMaxWait(200*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			got = append(got, string(m.Data()))
		}
	}
	slices.Sort(got) // redelivery does not keep the order
	if strings.Join(got, ",") != "X,Y" {
		t.Fatalf("results %q, want X and Y", got)
	}
	waitAcked(t, b, "nostream", 2)
}

// In process mode, a message whose call kills the worker process is not the
// message's fault as far as the engine can tell (*engine.WorkerError): it is
// redelivered, and dead-lettered after MaxAttempts deliveries; the messages
// around it are processed.
func TestHostileNATSMessageKillsWorker(t *testing.T) {
	ctx := context.Background()
	peng, err := engine.New(ctx, engine.Config{Mode: engine.Process, Workers: 1, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer peng.Close()
	pmod, err := peng.LoadSource(ctx, "crash.py", `
import os
from pyudf import udf

@udf(input_types=['STRING'], result_type='STRING')
def upper_or_die(s):
    if s == 'crash':
        os._exit(3)
    return s.upper()
`)
	if err != nil {
		t.Fatal(err)
	}
	fn, err := pmod.Function(ctx, "upper_or_die")
	if err != nil {
		t.Fatal(err)
	}
	b := startBroker(t)
	start(t, runner.Config{Conn: b.nc, Subject: "in.text", Durable: "crash", Output: "out",
		Function: fn, MaxAttempts: 2})
	b.publish(t, "in.text", "a", "crash", "b")
	dead := b.collect(t, "out.dlq", 1, 30*time.Second)
	if h := dead[0].Headers(); string(dead[0].Data()) != "crash" || h.Get(runner.HeaderErrType) != runner.ErrorTypeAttempts ||
		h.Get(runner.HeaderAttempts) != "2" || !strings.Contains(h.Get(runner.HeaderError), "2 deliveries failed") {
		t.Fatalf("dead letter %q headers %v", dead[0].Data(), h)
	}
	got := b.collectDistinct(t, "out", 2, 30*time.Second)
	if got["A"] == 0 || got["B"] == 0 {
		t.Fatalf("results %v, want A and B", got)
	}
	waitAcked(t, b, "crash", 3)
	// The engine still works.
	if v, err := fn.Call(ctx, "ok"); err != nil || v != "OK" {
		t.Fatalf("after: %v, %v", v, err)
	}
}

// A closed function stops the runner (Run returns an error wrapping
// engine.ErrClosed); the message it could not process is neither
// dead-lettered nor acknowledged.
func TestFunctionClosed(t *testing.T) {
	b := startBroker(t)
	fn := function(t, "closing")
	r, err := runner.New(runner.Config{Conn: b.nc, Subject: "in.text", Durable: "closed", Output: "out",
		Function: fn, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	errc := make(chan error, 1)
	go func() { errc <- r.Run(context.Background()) }()
	b.publish(t, "in.text", "x")
	b.collect(t, "out", 1, 10*time.Second)
	waitAcked(t, b, "closed", 1)
	fn.Close()
	b.publish(t, "in.text", "y")
	select {
	case err := <-errc:
		if !errors.Is(err, engine.ErrClosed) {
			t.Fatalf("Run: %v, want engine.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run still running after its function was closed")
	}
	c, err := b.js.Consumer(context.Background(), "IN", "closed")
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.AckFloor.Stream != 1 {
		t.Fatalf("ack floor %d, want 1: the second message was acked", info.AckFloor.Stream)
	}
	if s := r.Stats(); s.Published != 1 || s.DeadLettered != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// warnings is a slog handler that keeps the records at Warn and above.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (w *warnings) Handle(_ context.Context, r slog.Record) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, r.Message)
	return nil
}
func (w *warnings) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warnings) WithGroup(string) slog.Handler      { return w }

func (w *warnings) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.msgs)
}

// A runner stopped (its Run's ctx cancelled) while its UDF calls are in
// flight gives their messages back at once and logs nothing per message:
// another runner on the same durable gets them all promptly, well before the
// delayed redelivery of a failed call (1s) or the AckWait, and produces one
// result for each.
func TestStopGivesInFlightBack(t *testing.T) {
	b := startBroker(t)
	const n = 20
	in := make([]string, n)
	for i := range in {
		in[i] = fmt.Sprintf("m%02d", i)
	}
	b.publish(t, "in.text", in...) // before the runner starts: one wave of n
	w := &warnings{}
	r1, err := runner.New(runner.Config{Conn: b.nc, Subject: "in.text", Durable: "stop", Output: "out",
		Function: function(t, "block"), Name: "r1", FetchSize: n, AckWait: 30 * time.Second, Logger: slog.New(w)})
	if err != nil {
		t.Fatal(err)
	}
	defer r1.Close()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- r1.Run(ctx) }()
	// Every message is delivered to r1 (AckWait 30s) and its first wave is
	// in the UDF (the wave holds the messages that had arrived: 1 to n).
	deadline := time.Now().Add(10 * time.Second)
	for r1.Stats().Fetched == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("r1 stats %+v: nothing fetched", r1.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	cons, err := b.js.Consumer(ctx, "IN", "stop")
	for err == nil {
		var info *jetstream.ConsumerInfo
		if info, err = cons.Info(ctx); err == nil && info.NumAckPending == n && info.NumPending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumer %+v, r1 stats %+v: want all %d delivered to r1", info, r1.Stats(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	// r2 waits on the same durable.
	r2 := start(t, runner.Config{Conn: b.nc, Subject: "in.text", Durable: "stop", Output: "out",
		Function: function(t, "upper"), Name: "r2", FetchWait: 5 * time.Second})
	time.Sleep(300 * time.Millisecond) // r1 is inside the first call, r2's fetch is waiting
	if s := r2.Stats(); s.Fetched != 0 {
		t.Fatalf("r2 fetched %d messages while r1 held them all", s.Fetched)
	}
	stopped := time.Now()
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("r1 Run: %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("r1 Run still running 5s after its ctx was cancelled")
	}
	returned := time.Since(stopped)
	for r2.Stats().Published < n {
		if time.Since(stopped) > 10*time.Second {
			t.Fatalf("r2 stats %+v 10s after r1 was stopped: want all %d published", r2.Stats(), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
	took := time.Since(stopped)
	t.Logf("r1 returned %v and r2 had published all %d results %v after r1 was stopped", returned, n, took)
	if took > 600*time.Millisecond {
		t.Errorf("r2 had published every result %v after r1 was stopped; want well under the 1s delay of a failed call's redelivery", took)
	}
	got := b.collectDistinct(t, "out", n, 10*time.Second)
	for _, p := range in {
		if c := got[strings.ToUpper(p)]; c != 1 {
			t.Errorf("%d results for %q, want 1", c, p)
		}
	}
	waitAcked(t, b, "stop", n)
	if s := r1.Stats(); s.Published != 0 || s.DeadLettered != 0 || s.Retried != n {
		t.Errorf("r1 stats %+v: want all %d given back, none published", s, n)
	}
	if s := r2.Stats(); s.Published != n || s.DeadLettered != 0 {
		t.Errorf("r2 stats %+v: want %d published", s, n)
	}
	if msgs := w.all(); len(msgs) != 0 {
		t.Errorf("r1 logged %d warnings while stopping, want none: %q", len(msgs), msgs)
	}
}
