package runner_test

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pyudf/pyudf/connect/nats/embedded"
	"github.com/pyudf/pyudf/connect/nats/runner"
	"github.com/pyudf/pyudf/engine"
)

// A Python UDF over a JetStream subject, through an in-process nats-server.
func Example() {
	ctx := context.Background()
	srv, _ := embedded.Start(embedded.Options{}) // JetStream, a temporary store
	defer srv.Close()
	nc, _ := nats.Connect(srv.URL())
	defer nc.Close()
	js, _ := jetstream.New(nc)
	runner.EnsureStream(ctx, js, "TEXT", "text.in")
	runner.EnsureStream(ctx, js, "UPPER", "text.upper", "text.upper.dlq")

	eng, _ := engine.New(ctx, engine.Config{})
	mod, _ := eng.LoadSource(ctx, "udfs.py", `
from pyudf import udf

@udf(input_types=['STRING'], result_type='STRING')
def upper(s):
    return s.upper()
`)
	fn, _ := mod.Function(ctx, "upper")
	r, err := runner.New(runner.Config{Conn: nc, Subject: "text.in", Durable: "upper",
		Output: "text.upper", Function: fn, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	defer r.Close()
	go r.Run(ctx)

	results, _ := nc.SubscribeSync("text.upper")
	js.Publish(ctx, "text.in", []byte("hello, jetstream"))
	m, err := results.NextMsg(10 * time.Second)
	if err != nil {
		panic(err)
	}
	fmt.Println(string(m.Data), m.Header.Get(runner.HeaderSeq))
	// Output: HELLO, JETSTREAM 1
}
