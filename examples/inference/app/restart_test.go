package app

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pyudf/pyudf/connect/nats/embedded"
	"github.com/pyudf/pyudf/connect/nats/runner"
	"github.com/pyudf/pyudf/examples/appkit/apptest"
)

// TestBrokerDownMidRun: the broker (input and output streams) goes away in
// the middle of a run and comes back on the same store 1.5 s later. The app
// retries (the runner backs off, the client reconnects) and resumes: every
// record has exactly one prediction in the output stream, the right one.
func TestBrokerDownMidRun(t *testing.T) {
	m1, _ := models(t)
	dir := t.TempDir()
	srv, err := embedded.Start(embedded.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	port := srv.Port()
	defer func() { srv.Close() }()
	nc, err := nats.Connect(srv.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	if err := runner.EnsureStream(ctx, js, DefaultStream, DefaultSubject); err != nil {
		t.Fatal(err)
	}
	if err := EnsureStreams(ctx, js, Config{}); err != nil {
		t.Fatal(err)
	}
	e := &env{nc, js}
	payloads, good := generate(5, 5000, 0)
	e.publish(t, payloads)
	a, stop := start(t, e, Config{Model: m1, Batch: true, FetchSize: 50})
	apptest.WaitFor(t, "some predictions", func() bool { return a.Stats().Predicted >= 300 })
	srv.Shutdown()
	if n := a.Stats().Predicted; n >= int64(len(good)) {
		t.Fatalf("all %d predicted before the outage: nothing tested", n)
	}
	time.Sleep(1500 * time.Millisecond)
	if srv, err = embedded.Start(embedded.Options{Dir: dir, Port: port}); err != nil {
		t.Fatal(err)
	}
	apptest.WaitFor(t, "every prediction", func() bool { return e.outputCount(t) >= uint64(len(good)) })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	got := e.outputs(t, len(good)) // fails on a second prediction for an id
	_, labels := independent(t, testEngine(t), m1, good)
	check(t, got, good, "v1", labels)
	t.Logf("stats after the outage: %+v", a.Stats())
}
