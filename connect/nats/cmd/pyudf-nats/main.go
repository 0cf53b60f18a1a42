// Command pyudf-nats runs a Python UDF over a NATS JetStream subject: each
// message of -subject becomes a call of -function, its result is published
// to -output, and messages the UDF cannot process go to -dlq.
//
// Without -url it starts nats-server in-process (JetStream on, its store in
// -store or a temporary directory) and prints its URL, so that nothing has
// to be installed:
//
//	pyudf-nats -file udfs.py -function upper -subject in.text -output out.text
//
// With -url it joins an external server; runners started with the same
// -durable share the messages.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pyudf/pyudf/connect/nats/embedded"
	"github.com/pyudf/pyudf/connect/nats/runner"
	"github.com/pyudf/pyudf/engine"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "pyudf-nats:", err)
		os.Exit(1)
	}
}

// run is the command, with its arguments and output streams: it returns
// when ctx is done or the runner stops for good.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("pyudf-nats", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		url      = fs.String("url", "", "NATS server URL; empty: start nats-server in-process")
		store    = fs.String("store", "", "embedded server: JetStream store directory (default: a temporary one)")
		port     = fs.Int("port", 0, "embedded server: port (default: a random free one)")
		file     = fs.String("file", "", "the UDFs' .py file")
		module   = fs.String("module", "", "the UDFs' module, imported from sys.path (instead of -file)")
		script   = fs.String("script", "", "the UDFs' source code (instead of -file)")
		function = fs.String("function", "", "the UDF's name")
		mode     = fs.String("mode", "thread", "how Python runs: thread, process or subinterpreters")
		params   = fs.String("params", "", "job parameters, key=value,key=value")
		stream   = fs.String("stream", "", "input stream (default: the stream holding -subject; created as PYUDF_IN if none and -create)")
		subject  = fs.String("subject", "", "input subject")
		durable  = fs.String("durable", "pyudf", "durable consumer name: runners with the same one share the messages")
		output   = fs.String("output", "", "output subject")
		dlq      = fs.String("dlq", "", "dead-letter subject (default: <output>.dlq)")
		create   = fs.Bool("create", true, "create missing streams: the input's, and PYUDF_OUT for the output and dead-letter subjects")
		name     = fs.String("name", "", "this runner's name in the Pyudf-Runner header (default: host-pid)")
		batch    = fs.Bool("batch", false, "call the UDF once per fetch over an Arrow batch (Pandas and Arrow UDFs always are)")
		fetch    = fs.Int("fetch", 256, "messages per fetch")
		ackWait  = fs.Duration("ack-wait", 30*time.Second, "consumer AckWait: how soon an unacknowledged message is redelivered")
		verbose  = fs.Bool("v", false, "debug logging")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if *function == "" || *subject == "" || *output == "" {
		return errors.New("-function, -subject and -output are required")
	}
	if *dlq == "" {
		*dlq = *output + ".dlq"
	}

	if *url == "" {
		srv, err := embedded.Start(embedded.Options{Dir: *store, Port: *port})
		if err != nil {
			return err
		}
		defer srv.Close()
		*url = srv.URL()
		fmt.Fprintln(stdout, "nats-server", srv.URL(), "store", srv.Dir())
	}
	nc, err := nats.Connect(*url, nats.Name("pyudf-nats"), nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond), nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { log.Warn("disconnected", "err", err) }),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("reconnected", "server", c.ConnectedUrlRedacted()) }))
	if err != nil {
		return err
	}
	defer nc.Close()
	if *create {
		if err := createStreams(ctx, nc, *stream, *subject, *output, *dlq); err != nil {
			return err
		}
	}

	cfg := engine.Config{Logger: log, JobParameters: parseParams(*params)}
	switch *mode {
	case "thread":
	case "process":
		cfg.Mode = engine.Process
	case "subinterpreters":
		cfg.Mode = engine.Subinterpreters
	default:
		return fmt.Errorf("-mode %q: want thread, process or subinterpreters", *mode)
	}
	eng, err := engine.New(ctx, cfg)
	if err != nil {
		return err
	}
	var mod *engine.Module
	switch {
	case *file != "":
		mod, err = eng.LoadFile(ctx, *file)
	case *module != "":
		mod, err = eng.Import(ctx, *module)
	case *script != "":
		mod, err = eng.LoadSource(ctx, "udfs.py", *script)
	default:
		err = errors.New("one of -file, -module and -script is required")
	}
	if err != nil {
		return err
	}
	fn, err := mod.Function(ctx, *function)
	if err != nil {
		return err
	}
	r, err := runner.New(runner.Config{Conn: nc, Stream: *stream, Subject: *subject, Durable: *durable,
		Output: *output, DeadLetter: *dlq, Name: *name, Function: fn, Batch: *batch,
		FetchSize: *fetch, AckWait: *ackWait, Logger: log})
	if err != nil {
		return err
	}
	defer r.Close()
	fmt.Fprintln(stdout, "running", *function, *subject, "->", *output)
	err = r.Run(ctx)
	s := r.Stats()
	log.Info("stopped", "published", s.Published, "dead_lettered", s.DeadLettered, "retried", s.Retried)
	return err
}

// createStreams makes the streams the runner needs if they are missing.
func createStreams(ctx context.Context, nc *nats.Conn, stream, subject, output, dlq string) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if stream == "" {
		if _, err := js.StreamNameBySubject(ctx, subject); err != nil {
			stream = "PYUDF_IN"
		}
	}
	if stream != "" {
		if err := runner.EnsureStream(ctx, js, stream, subject); err != nil {
			return err
		}
	}
	subjects := []string{output, dlq}
	for _, s := range subjects {
		if name, err := js.StreamNameBySubject(ctx, s); err == nil && name != "" {
			subjects = nil // an existing stream holds them (or one of them): leave them alone
			break
		}
	}
	if subjects == nil {
		return nil
	}
	return runner.EnsureStream(ctx, js, "PYUDF_OUT", subjects...)
}

func parseParams(s string) map[string]string {
	out := map[string]string{}
	for len(s) > 0 {
		var kv string
		kv, s, _ = strings.Cut(s, ",")
		if k, v, ok := strings.Cut(kv, "="); ok {
			out[k] = v
		}
	}
	return out
}
