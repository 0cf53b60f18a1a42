package appkit

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pyudf/pyudf/connect/nats/embedded"
	"github.com/pyudf/pyudf/connect/nats/runner"
	"github.com/pyudf/pyudf/engine"
)

// SignalContext is a context cancelled by the first Ctrl-C (SIGINT) or
// SIGTERM; after that the signals are no longer caught, so a second Ctrl-C
// kills the process at once. stop releases the signal handler.
func SignalContext() (ctx context.Context, stop context.CancelFunc) {
	ctx, stop = signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() { <-ctx.Done(); stop() }()
	return ctx, stop
}

// ParseMode parses the -mode flag: "thread" (Python in this process) or
// "process" (Python worker processes).
func ParseMode(name string) (engine.Mode, error) {
	switch name {
	case "thread":
		return engine.Thread, nil
	case "process":
		return engine.Process, nil
	}
	return engine.Thread, fmt.Errorf("-mode %q: want thread or process", name)
}

// Broker is a JetStream connection, to an embedded nats-server when the
// command was given no URL.
type Broker struct {
	Conn *nats.Conn
	JS   jetstream.JetStream
	URL  string
	// Embedded: the server is this process's own, with a fresh store (the
	// apps empty their tables then: the stream starts from nothing).
	Embedded bool

	srv *embedded.Server
}

// Connect connects to the NATS server at url (reconnecting for ever), or,
// with an empty url, starts an embedded nats-server on the loopback address
// with a fresh store and connects to it (logged on log; nil: slog.Default()).
func Connect(url string, log *slog.Logger) (*Broker, error) {
	if log == nil {
		log = slog.Default()
	}
	b := &Broker{URL: url}
	if url == "" {
		srv, err := embedded.Start(embedded.Options{})
		if err != nil {
			return nil, err
		}
		b.srv, b.URL, b.Embedded = srv, srv.URL(), true
		log.Info("embedded nats-server", "url", b.URL)
	}
	nc, err := nats.Connect(b.URL, nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true))
	if err != nil {
		b.Close()
		return nil, err
	}
	b.Conn = nc
	if b.JS, err = jetstream.New(nc); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// EnsureStream creates the stream name over subjects unless it exists.
func (b *Broker) EnsureStream(ctx context.Context, name string, subjects ...string) error {
	return runner.EnsureStream(ctx, b.JS, name, subjects...)
}

// Close drains the connection and stops the embedded server, if any.
func (b *Broker) Close() {
	if b.Conn != nil {
		_ = b.Conn.Drain()
	}
	if b.srv != nil {
		b.srv.Close()
	}
}

// LastSeq is the stream's last sequence (0: empty).
func LastSeq(ctx context.Context, js jetstream.JetStream, stream string) (uint64, error) {
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return 0, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.LastSeq, nil
}

// Publish publishes n messages that next makes to subject, asynchronously
// with up to 2048 PubAcks outstanding, and waits for every PubAck. It
// returns how many were acknowledged; it stops early when ctx is done
// (returning ctx.Err()), a publish fails, or a PubAck takes over 30s.
func Publish(ctx context.Context, js jetstream.JetStream, subject string, n int, next func() []byte) (int, error) {
	const window = 2048
	futures := make([]jetstream.PubAckFuture, 0, window)
	acked := 0
	wait := func() error {
		for _, f := range futures {
			select {
			case <-f.Ok():
				acked++
			case err := <-f.Err():
				return fmt.Errorf("publish to %s: %w", subject, err)
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(30 * time.Second):
				return fmt.Errorf("publish to %s: no PubAck in 30s", subject)
			}
		}
		futures = futures[:0]
		return nil
	}
	for i := 0; i < n && ctx.Err() == nil; i++ {
		f, err := js.PublishAsync(subject, next())
		if err != nil {
			return acked, fmt.Errorf("publish to %s: %w", subject, err)
		}
		futures = append(futures, f)
		if len(futures) == window {
			if err := wait(); err != nil {
				return acked, err
			}
		}
	}
	if err := wait(); err != nil {
		return acked, err
	}
	return acked, ctx.Err()
}

// Feed runs an application's generator beside (or before) the app.
type Feed struct {
	JS     jetstream.JetStream
	Stream string // the stream Publish fills
	// Publish generates the records into the stream.
	Publish func(ctx context.Context) error
	// StopAt, when set, is called after Publish with the stream's last
	// sequence (at least 1), so that a batch run ends once that is
	// processed; nil (-follow): the app runs until Ctrl-C.
	StopAt func(seq uint64)
	// Preload runs Publish to the end before Start returns (measuring the
	// app alone); otherwise it runs in a goroutine.
	Preload bool
}

// Start runs the feed. wait returns once it is done, with its error; a
// Publish ended by ctx (Ctrl-C) is not an error.
func (f Feed) Start(ctx context.Context) (wait func() error) {
	done := make(chan error, 1)
	run := func() {
		err := f.Publish(ctx)
		if err == nil && f.StopAt != nil {
			var last uint64
			if last, err = LastSeq(ctx, f.JS, f.Stream); err == nil {
				f.StopAt(max(last, 1))
			}
		}
		if errors.Is(err, context.Canceled) {
			err = nil
		}
		done <- err
	}
	if f.Preload {
		run()
	} else {
		go run()
	}
	var err error
	var waited bool
	return func() error {
		if !waited {
			err, waited = <-done, true
		}
		return err
	}
}

// Run runs the feed beside app (before it, with Preload; app runs in the
// calling goroutine) and returns app's error and the feed's (as Start's
// wait does). The feed runs on a context of its own, cancelled once app
// returns: an app that stopped (an error, Ctrl-C) does not wait for every
// record to be published. With Preload, a feed that fails or is
// interrupted (ctx done) is returned, and app is not called: (nil, its
// error, or ctx's cause).
func (f Feed) Run(ctx context.Context, app func(context.Context) error) (appErr, feedErr error) {
	if f.Preload {
		if err := f.Start(ctx)(); err != nil || ctx.Err() != nil {
			return nil, cmp.Or(err, context.Cause(ctx))
		}
		return app(ctx), nil
	}
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wait := f.Start(fctx)
	appErr = app(ctx)
	cancel()
	return appErr, wait()
}
