// Package runner runs a pyudf function over a NATS JetStream subject: it
// consumes the subject through a durable pull consumer, calls the UDF on
// every message and publishes each result to an output subject.
//
// Delivery is at least once. A fetched message is acknowledged only after
// its result's publish has been acknowledged by JetStream (a PubAck), so a
// runner that crashes, loses its connection or is killed loses nothing: the
// messages it had not acknowledged are redelivered, to it or to another
// runner on the same durable consumer, after the consumer's AckWait. Results
// carry a Nats-Msg-Id derived from the input's stream sequence, so a
// redelivered message's second result is dropped by the output stream's
// duplicate window.
//
// A message the UDF cannot process (the UDF raises, its result does not fit
// the declared type, the payload does not fit the argument types) goes to the
// dead-letter subject with the reason in its headers, and the input is
// acknowledged: a poison message never blocks the stream. A message whose
// processing fails for another reason (a process-mode worker died, the call
// timed out) is redelivered, and dead-lettered after Config.MaxAttempts
// deliveries.
//
// Several runners (threads, processes, machines) with the same
// Config.Durable share the subject's messages: that is the way to scale out.
package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pyudf/pyudf/bridge"
	"github.com/pyudf/pyudf/engine"
)

// Headers the runner sets on results and dead letters.
const (
	HeaderStream   = "Pyudf-Stream"     // the input's stream
	HeaderSeq      = "Pyudf-Stream-Seq" // the input's stream sequence
	HeaderSubject  = "Pyudf-Subject"    // the input's subject
	HeaderRunner   = "Pyudf-Runner"     // Config.Name of the runner that processed it
	HeaderNull     = "Pyudf-Null"       // "true" on a result whose value is NULL (None); the payload is empty
	HeaderError    = "Pyudf-Error"      // dead letters: the error, on one line
	HeaderErrType  = "Pyudf-Error-Type" // dead letters: see ErrorType
	HeaderAttempts = "Pyudf-Attempts"   // dead letters: deliveries so far
)

// Errors that callers can test for with errors.Is.
var (
	// ErrConfig: New was given an incomplete or inconsistent Config.
	ErrConfig = errors.New("pyudf nats runner: invalid config")
	// ErrClosed: the Runner was closed.
	ErrClosed = errors.New("pyudf nats runner: closed")
	// ErrRunning: Run was called while another Run of the same Runner runs.
	ErrRunning = errors.New("pyudf nats runner: already running")
)

// Config configures a Runner. Subject, Durable, Output and Function are
// required.
type Config struct {
	// Conn is the NATS connection to use. nil: Run dials URL, reconnecting
	// forever when the server goes away, and Close closes that connection.
	Conn *nats.Conn
	// URL of the server(s) to dial when Conn is nil; empty: nats.DefaultURL.
	URL string

	// Stream is the input stream; empty: the stream whose subjects hold
	// Subject (it must exist: the runner creates no input stream).
	Stream string
	// Subject is the input subject, the consumer's filter (wildcards allowed).
	Subject string
	// Durable names the durable pull consumer, created if missing. Runners
	// with the same Durable share the messages.
	Durable string
	// Output is the subject results are published to. A stream must hold it
	// (JetStream acknowledges the publish); EnsureStream makes one.
	Output string
	// DeadLetter is the subject of messages that cannot be processed; empty:
	// Output + ".dlq". A stream must hold it too.
	DeadLetter string
	// Name identifies this runner in the Pyudf-Runner header and its log;
	// empty: host name and process id.
	Name string

	// Function is the UDF. A general scalar function is called once per
	// message (unless Batch); a Pandas or Arrow UDF gets one Arrow batch per
	// fetch (the runner switches to Batch by itself when Call refuses it).
	Function *engine.Function
	// Batch calls the function once per fetch over an Arrow record batch of
	// the messages' arguments: a general function runs row by row in C with
	// per-row errors (one crossing for the whole fetch), a Pandas or Arrow
	// UDF once per batch. Needs declared input and result types of BOOLEAN,
	// integer, FLOAT, DOUBLE, STRING or BYTES.
	Batch bool

	// FetchSize is the most messages one fetch asks for; 0: 256.
	FetchSize int
	// FetchWait is the longest a fetch waits for messages; 0: 1s.
	FetchWait time.Duration
	// AckWait is the consumer's AckWait (how long a delivered, unacknowledged
	// message waits before it is redelivered); 0: 30s. It applies when this
	// runner creates the consumer or updates its config.
	AckWait time.Duration
	// CallTimeout bounds the UDF calls of one fetch; 0: AckWait / 2. A call
	// that passes it is interrupted and its message redelivered.
	CallTimeout time.Duration
	// PublishTimeout bounds the wait for the PubAcks of one fetch's results;
	// 0: 10s. Inputs whose publish is not acknowledged by then are not
	// acknowledged either (they are redelivered).
	PublishTimeout time.Duration
	// MaxAttempts is how many deliveries a message whose processing failed
	// for a reason other than its content gets before it is dead-lettered
	// (ErrorType "attempts"); 0: 5.
	MaxAttempts int

	// Decode turns a message into the function's arguments; nil:
	// DefaultDecoder(Function.InputTypes()). An error dead-letters the
	// message (wrap it in *DecodeError to give the reason a type).
	Decode func(data []byte, header nats.Header) ([]any, error)
	// Encode turns a non-NULL result into the published payload; nil:
	// DefaultEncode. An error dead-letters the message.
	Encode func(result any) ([]byte, error)

	// Logger receives the runner's log; nil: slog.Default().
	Logger *slog.Logger
}

// Stats counts what a Runner did since New.
type Stats struct {
	Fetched      int64 // messages received from the consumer
	Published    int64 // results whose publish was acknowledged (their inputs acked)
	DeadLettered int64 // dead letters whose publish was acknowledged (their inputs acked)
	Retried      int64 // messages left for redelivery (failed call, publish or shutdown)
	Fetches      int64 // fetch requests
	FetchErrors  int64 // fetch requests that failed (connection lost, consumer gone ...)
}

// Runner consumes, calls and publishes; see the package documentation.
type Runner struct {
	cfg  Config
	log  *slog.Logger
	mu   sync.Mutex
	conn *nats.Conn
	own  bool // conn was dialled by Run: Close closes it

	running atomic.Bool
	closed  atomic.Bool
	stop    context.CancelFunc // cancels the running Run
	done    chan struct{}      // closed when the running Run returns

	drainc    chan struct{} // closed by Drain
	drainOnce sync.Once

	batch atomic.Bool // calls go as batches (Config.Batch, or switched to)

	waves    chan struct{}  // a token per wave whose PubAcks are awaited (maxWaves)
	settling sync.WaitGroup // those waves' settle goroutines

	fetched, published, deadLettered, retried, fetches, fetchErrors atomic.Int64
}

// New checks cfg and returns a Runner; Run starts it.
func New(cfg Config) (*Runner, error) {
	var missing []string
	for _, f := range []struct{ name, v string }{{"Subject", cfg.Subject}, {"Durable", cfg.Durable}, {"Output", cfg.Output}} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if cfg.Function == nil {
		missing = append(missing, "Function")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: %s missing", ErrConfig, strings.Join(missing, ", "))
	}
	if strings.ContainsAny(cfg.Durable, ".*> \t") {
		return nil, fmt.Errorf("%w: Durable %q may not contain '.', '*', '>' or white space", ErrConfig, cfg.Durable)
	}
	if cfg.DeadLetter == "" {
		cfg.DeadLetter = cfg.Output + ".dlq"
	}
	if cfg.Name == "" {
		host, _ := os.Hostname()
		cfg.Name = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if cfg.FetchSize <= 0 {
		cfg.FetchSize = 256
	}
	if cfg.FetchWait <= 0 {
		cfg.FetchWait = time.Second
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = 30 * time.Second
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = cfg.AckWait / 2
	}
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = 10 * time.Second
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 5
	}
	if cfg.Decode == nil {
		cfg.Decode = DefaultDecoder(cfg.Function.InputTypes())
	}
	if cfg.Encode == nil {
		cfg.Encode = DefaultEncode
	}
	if cfg.Batch {
		if err := checkBatchTypes(cfg.Function); err != nil {
			return nil, fmt.Errorf("%w: Batch: %w", ErrConfig, err)
		}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	r := &Runner{cfg: cfg, conn: cfg.Conn, waves: make(chan struct{}, maxWaves), drainc: make(chan struct{}),
		log: log.With("runner", cfg.Name, "durable", cfg.Durable, "function", cfg.Function.Name())}
	r.batch.Store(cfg.Batch)
	return r, nil
}

// Stats returns the runner's counters.
func (r *Runner) Stats() Stats {
	return Stats{Fetched: r.fetched.Load(), Published: r.published.Load(), DeadLettered: r.deadLettered.Load(),
		Retried: r.retried.Load(), Fetches: r.fetches.Load(), FetchErrors: r.fetchErrors.Load()}
}

// Run consumes until ctx is done, Close or Drain is called, and returns
// ctx's error, ErrClosed, nil (drained), or an error that stops it for good
// (the engine was closed, the input stream does not exist). A lost
// connection is not such an error: Run waits for the client to reconnect and
// resumes. On the way out it gives its fetched but unprocessed messages back
// (Nak), so that other runners get them at once.
func (r *Runner) Run(ctx context.Context) error {
	if r.closed.Load() {
		return ErrClosed
	}
	if !r.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer r.running.Store(false)
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	r.mu.Lock()
	if r.closed.Load() {
		r.mu.Unlock()
		return ErrClosed
	}
	if r.draining() {
		r.mu.Unlock()
		return nil
	}
	r.stop, r.done = stop, make(chan struct{})
	done := r.done
	r.mu.Unlock()
	defer close(done)
	defer r.settling.Wait() // every publish made is acked or given back before Run returns

	js, err := r.connect()
	if err != nil {
		return err
	}
	var cons jetstream.Consumer
	for cons == nil {
		if cons, err = r.consumer(ctx, js); err != nil {
			if permanent(err) {
				return err
			}
			r.log.Warn("setting up the consumer failed; retrying", "err", err)
			if !r.sleep(ctx, time.Second) {
				return r.exitErr(ctx)
			}
		}
	}
	r.log.Info("running", "subject", r.cfg.Subject, "output", r.cfg.Output, "dead_letter", r.cfg.DeadLetter,
		"batch", r.batch.Load(), "fetch", r.cfg.FetchSize)
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil && !r.draining() {
		err := r.fetch(ctx, js, cons)
		switch {
		case err == nil:
			backoff = 50 * time.Millisecond
			continue
		case ctx.Err() != nil:
		case errors.Is(err, engine.ErrClosed):
			return fmt.Errorf("pyudf nats runner: %w", err)
		case errors.Is(err, jetstream.ErrConsumerNotFound), errors.Is(err, jetstream.ErrConsumerDeleted):
			r.log.Warn("consumer gone; creating it again", "err", err)
			if c, cerr := r.consumer(ctx, js); cerr == nil {
				cons = c
			} else if permanent(cerr) {
				return cerr
			}
		default:
			r.log.Warn("fetch failed; retrying", "err", err, "backoff", backoff)
		}
		if !r.sleep(ctx, backoff) {
			break
		}
		backoff = min(2*backoff, 2*time.Second)
	}
	return r.exitErr(ctx)
}

func (r *Runner) exitErr(ctx context.Context) error {
	if r.closed.Load() {
		return ErrClosed
	}
	if r.draining() {
		return nil
	}
	return context.Cause(ctx)
}

// Drain stops the running Run at a batch boundary and waits for it to
// return: Run starts no new fetch; the batch being called finishes, its
// results and dead letters are published and its inputs acked once
// JetStream acknowledged the publishes; the messages of the current fetch
// that arrive afterwards are not called but given back (Nak) as soon as the
// fetch's pull request has ended (at most FetchWait after Drain), so that
// they are redelivered at once to the next fetch on the durable, not
// stranded until AckWait; then Run returns nil. Drain returns nil once Run
// has returned, or ctx's cause if ctx is done first (Run still stops). A
// drained Runner stays drained: a Run called afterwards returns nil at once,
// as does Drain when no Run is running. Drain does not close the Runner or
// its connection (Close does).
func (r *Runner) Drain(ctx context.Context) error {
	r.mu.Lock()
	r.drainOnce.Do(func() { close(r.drainc) })
	done := r.done
	r.mu.Unlock()
	if done == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func (r *Runner) draining() bool {
	select {
	case <-r.drainc:
		return true
	default:
		return false
	}
}

// sleep waits d, or until ctx is done or Drain is called, and says whether
// to go on.
func (r *Runner) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-r.drainc:
		return false
	}
}

// Close stops a running Run, waits for it to return, and closes the
// connection Run dialled. It does not close the Function.
func (r *Runner) Close() error {
	r.mu.Lock()
	r.closed.Store(true)
	stop, done := r.stop, r.done
	r.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.own && r.conn != nil {
		r.conn.Close()
		r.conn = nil
	}
	return nil
}

// connect returns the JetStream context, dialling Config.URL the first time
// if no Conn was given.
func (r *Runner) connect() (jetstream.JetStream, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conn == nil {
		url := r.cfg.URL
		if url == "" {
			url = nats.DefaultURL
		}
		nc, err := nats.Connect(url, nats.Name("pyudf-runner "+r.cfg.Name),
			nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond), nats.RetryOnFailedConnect(true),
			nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { r.log.Warn("disconnected", "err", err) }),
			nats.ReconnectHandler(func(c *nats.Conn) { r.log.Info("reconnected", "server", c.ConnectedUrlRedacted()) }))
		if err != nil {
			return nil, fmt.Errorf("pyudf nats runner: connect %s: %w", url, err)
		}
		r.conn, r.own = nc, true
	}
	js, err := jetstream.New(r.conn)
	if err != nil {
		return nil, fmt.Errorf("pyudf nats runner: %w", err)
	}
	return js, nil
}

// consumer creates (or updates) the durable pull consumer.
func (r *Runner) consumer(ctx context.Context, js jetstream.JetStream) (jetstream.Consumer, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	stream := r.cfg.Stream
	if stream == "" {
		name, err := js.StreamNameBySubject(ctx, r.cfg.Subject)
		if err != nil {
			return nil, fmt.Errorf("pyudf nats runner: the stream of subject %q: %w", r.cfg.Subject, err)
		}
		stream = name
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, stream, jetstream.ConsumerConfig{
		Durable:       r.cfg.Durable,
		FilterSubject: r.cfg.Subject,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       r.cfg.AckWait,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("pyudf nats runner: consumer %q on stream %q: %w", r.cfg.Durable, stream, err)
	}
	return cons, nil
}

// permanent: retrying the consumer's set-up will not help.
func permanent(err error) bool {
	return errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, jetstream.ErrInvalidSubject) ||
		errors.Is(err, jetstream.ErrInvalidConsumerName)
}

// fetch runs one fetch request: the messages are processed in waves, each
// wave being those that have arrived when the previous one is done, so that
// a trickle of messages is processed as it comes and a backlog in batches of
// up to FetchSize.
func (r *Runner) fetch(ctx context.Context, js jetstream.JetStream, cons jetstream.Consumer) error {
	r.fetches.Add(1)
	fctx, cancel := context.WithTimeout(ctx, r.cfg.FetchWait)
	defer cancel()
	res, err := cons.Fetch(r.cfg.FetchSize, jetstream.FetchContext(fctx))
	if err != nil {
		r.fetchErrors.Add(1)
		return err
	}
	msgs := res.Messages()
	// Draining: the messages that arrive are given back once the pull
	// request has ended (msgs is closed), not while it still waits for
	// messages, which would deliver them to it again at once.
	var held []jetstream.Msg
	defer func() { r.giveBack(held) }()
	wave := make([]jetstream.Msg, 0, r.cfg.FetchSize)
	for m := range msgs {
		wave = append(wave[:0], m)
	more:
		for len(wave) < r.cfg.FetchSize {
			select {
			case m, ok := <-msgs:
				if !ok {
					break more
				}
				wave = append(wave, m)
			default:
				break more
			}
		}
		r.fetched.Add(int64(len(wave)))
		if ctx.Err() != nil { // shutting down: give them back
			r.giveBack(wave)
			continue
		}
		if r.draining() {
			held = append(held, wave...)
			continue
		}
		if err := r.process(ctx, js, wave); err != nil {
			for m := range msgs { // let the fetch end
				r.giveBack([]jetstream.Msg{m})
			}
			return err
		}
	}
	if err := res.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		r.fetchErrors.Add(1)
		return err
	}
	return nil
}

// giveBack leaves messages for redelivery, at once (Nak).
func (r *Runner) giveBack(msgs []jetstream.Msg) {
	for _, m := range msgs {
		if m != nil {
			_ = m.Nak()
			r.retried.Add(1)
		}
	}
}

// outcome is what became of one message of a wave.
type outcome struct {
	msg     jetstream.Msg
	args    []any
	result  any
	payload []byte
	err     error  // the message goes to the dead-letter subject with it
	errType string // ErrorType
	retry   bool   // the message is left for redelivery (Nak)
	stopped bool   // its call was interrupted because Run is stopping: given back at once, not logged
}

// process calls the UDF on a wave of messages, publishes the results and dead
// letters, and acknowledges the inputs whose publish was acknowledged.
func (r *Runner) process(ctx context.Context, js jetstream.JetStream, wave []jetstream.Msg) error {
	outs := make([]outcome, len(wave))
	for i, m := range wave {
		outs[i].msg = m
		args, err := r.cfg.Decode(m.Data(), m.Headers())
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				err = &DecodeError{Reason: err.Error(), Err: err}
			}
			outs[i].err, outs[i].errType = err, ErrorTypeDecode
			continue
		}
		outs[i].args = args
	}
	cctx, cancel := context.WithTimeout(ctx, r.cfg.CallTimeout)
	err := r.call(cctx, outs)
	cancel()
	if err != nil {
		r.giveBack(wave)
		return err
	}
	for i := range outs {
		o := &outs[i]
		if o.err != nil || o.retry || o.result == nil {
			continue
		}
		if o.payload, err = r.cfg.Encode(o.result); err != nil {
			o.err, o.errType = fmt.Errorf("pyudf nats runner: encoding the result: %w", err), ErrorTypeEncode
		}
	}
	r.publish(js, outs)
	return nil
}

// call fills in each outcome's result or error. Its error (the engine was
// closed) stops the runner.
func (r *Runner) call(ctx context.Context, outs []outcome) error {
	if !r.batch.Load() {
		first := true
		for i := range outs {
			o := &outs[i]
			if o.err != nil {
				continue
			}
			o.result, o.err = r.cfg.Function.Call(ctx, o.args...)
			if o.err != nil && first && errors.Is(o.err, engine.ErrUnsupported) && !errors.Is(o.err, engine.ErrClosed) {
				if err := checkBatchTypes(r.cfg.Function); err != nil {
					return fmt.Errorf("pyudf nats runner: function %q needs batches: %w", r.cfg.Function.Name(), err)
				}
				r.log.Info("the function takes batches: calling it once per fetch")
				r.batch.Store(true)
				o.err = nil
				return r.callBatch(ctx, outs)
			}
			first = false
			if err := r.classify(o); err != nil {
				return err
			}
		}
		return nil
	}
	return r.callBatch(ctx, outs)
}

// classify sorts a failed call: the message's fault (dead letter), the
// engine's end (returned), or anything else (redelivery, up to MaxAttempts).
func (r *Runner) classify(o *outcome) error {
	if o.err == nil {
		return nil
	}
	if errors.Is(o.err, engine.ErrClosed) {
		return o.err
	}
	if t := ErrorType(o.err); t != ErrorTypeOther && !errors.Is(o.err, context.Canceled) && !errors.Is(o.err, context.DeadlineExceeded) {
		o.errType = t
		return nil
	}
	if errors.Is(o.err, context.Canceled) { // Run is stopping (its ctx is done): not the message's fault
		o.err, o.retry, o.stopped = nil, true, true
		return nil
	}
	if md, err := o.msg.Metadata(); err == nil && md.NumDelivered >= uint64(r.cfg.MaxAttempts) {
		o.errType = ErrorTypeAttempts
		o.err = fmt.Errorf("pyudf nats runner: %d deliveries failed, the last with: %w", md.NumDelivered, o.err)
		return nil
	}
	r.log.Warn("call failed; the message will be redelivered", "err", o.err)
	o.err, o.retry = nil, true
	return nil
}

// pending is a published result or dead letter waiting for its PubAck.
type pending struct {
	msg  jetstream.Msg // the input, acked when the PubAck comes
	f    jetstream.PubAckFuture
	dead bool
}

// maxWaves is how many waves' publishes may wait for their PubAcks while
// the next waves are fetched and processed.
const maxWaves = 4

// publish publishes every result and dead letter asynchronously and hands
// them to settle, which acknowledges each input when its publish is
// acknowledged. Up to maxWaves waves settle while the runner goes on.
func (r *Runner) publish(js jetstream.JetStream, outs []outcome) {
	futures := make([]pending, 0, len(outs))
	for i := range outs {
		o := &outs[i]
		if o.stopped {
			r.giveBack([]jetstream.Msg{o.msg})
			continue
		}
		if o.retry {
			r.retry(o.msg)
			continue
		}
		m, dead := r.outMsg(o)
		f, err := js.PublishMsgAsync(m)
		if err != nil {
			r.log.Warn("publish failed; the message will be redelivered", "subject", m.Subject, "err", err)
			r.retry(o.msg)
			continue
		}
		futures = append(futures, pending{o.msg, f, dead})
	}
	if len(futures) == 0 {
		return
	}
	r.waves <- struct{}{} // a free slot: at most maxWaves settle at once
	r.settling.Add(1)
	go func() {
		defer func() { <-r.waves; r.settling.Done() }()
		r.settle(futures)
	}()
}

// settle acknowledges each input whose publish JetStream acknowledged, and
// gives back the others (their publish failed or timed out).
func (r *Runner) settle(futures []pending) {
	timer := time.NewTimer(r.cfg.PublishTimeout)
	defer timer.Stop()
	expired := false
	for _, p := range futures {
		if !expired {
			select {
			case <-p.f.Ok():
				if p.dead {
					r.deadLettered.Add(1)
				} else {
					r.published.Add(1)
				}
				if err := p.msg.Ack(); err != nil {
					r.log.Warn("ack failed; the message will be redelivered", "err", err)
				}
				continue
			case err := <-p.f.Err():
				r.log.Warn("publish not acknowledged; the message will be redelivered", "subject", p.f.Msg().Subject, "err", err)
			case <-timer.C:
				expired = true
				r.log.Warn("publish acknowledgements timed out; the messages will be redelivered", "timeout", r.cfg.PublishTimeout)
			}
		}
		r.retry(p.msg)
	}
}

// retryDelay is how long a message whose processing failed waits before it
// is redelivered, so that a failure that lasts (no stream holds the output
// subject, a broken worker) is not retried in a tight loop.
const retryDelay = time.Second

// retry leaves a message whose processing failed for redelivery after
// retryDelay; if the Nak is lost, AckWait brings it back.
func (r *Runner) retry(m jetstream.Msg) {
	_ = m.NakWithDelay(retryDelay)
	r.retried.Add(1)
}

// outMsg is the result or dead letter of an outcome.
func (r *Runner) outMsg(o *outcome) (m *nats.Msg, dead bool) {
	in := o.msg
	h := nats.Header{}
	for k, v := range in.Headers() {
		if !strings.HasPrefix(k, "Nats-") && !strings.HasPrefix(k, "Pyudf-") {
			h[k] = v
		}
	}
	var stream string
	var seq uint64
	var delivered uint64
	if md, err := in.Metadata(); err == nil {
		stream, seq, delivered = md.Stream, md.Sequence.Stream, md.NumDelivered
	}
	sseq := strconv.FormatUint(seq, 10)
	h.Set(HeaderStream, stream)
	h.Set(HeaderSeq, sseq)
	h.Set(HeaderSubject, in.Subject())
	h.Set(HeaderRunner, r.cfg.Name)
	if o.err != nil {
		h.Set(HeaderError, oneLine(o.err.Error()))
		h.Set(HeaderErrType, o.errType)
		h.Set(HeaderAttempts, strconv.FormatUint(delivered, 10))
		h.Set(jetstream.MsgIDHeader, r.cfg.Durable+"/dlq/"+stream+"/"+sseq)
		return &nats.Msg{Subject: r.cfg.DeadLetter, Header: h, Data: in.Data()}, true
	}
	h.Set(jetstream.MsgIDHeader, r.cfg.Durable+"/"+stream+"/"+sseq)
	if o.result == nil {
		h.Set(HeaderNull, "true")
	}
	return &nats.Msg{Subject: r.cfg.Output, Header: h, Data: o.payload}, false
}

// oneLine makes s fit a header value: one line, at most 4 KiB.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 4096 {
		s = s[:4093] + "..."
	}
	return s
}

// ErrorType values: the Pyudf-Error-Type header of a dead letter.
const (
	ErrorTypePython     = "python"     // the UDF raised (the header's value is "python:" + the exception type)
	ErrorTypeConversion = "conversion" // an argument or the result did not fit its declared type (*bridge.ConversionError)
	ErrorTypeArguments  = "arguments"  // the wrong number of arguments (engine.ErrArgumentCount)
	ErrorTypeDecode     = "decode"     // the payload did not decode into arguments (*DecodeError)
	ErrorTypeEncode     = "encode"     // the result did not encode into a payload
	ErrorTypeAttempts   = "attempts"   // MaxAttempts deliveries failed for another reason
	ErrorTypeOther      = "other"      // not the message's fault: redelivered, not dead-lettered
)

// ErrorType classifies an error from processing one message, as the
// Pyudf-Error-Type header of its dead letter names it.
func ErrorType(err error) string {
	var pe *bridge.PythonError
	var ce *bridge.ConversionError
	var de *DecodeError
	switch {
	case errors.As(err, &de):
		return ErrorTypeDecode
	case errors.As(err, &ce):
		return ErrorTypeConversion
	case errors.As(err, &pe):
		if pe.Type == "" {
			return ErrorTypePython
		}
		return ErrorTypePython + ":" + pe.Type
	case errors.Is(err, engine.ErrArgumentCount):
		return ErrorTypeArguments
	}
	return ErrorTypeOther
}

// EnsureStream creates a file-stored stream named name holding subjects,
// unless a stream of that name exists (it is then left as it is). Results
// and dead letters need a stream for their publishes to be acknowledged.
func EnsureStream(ctx context.Context, js jetstream.JetStream, name string, subjects ...string) error {
	if _, err := js.Stream(ctx, name); err == nil {
		return nil
	} else if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("pyudf nats runner: stream %q: %w", name, err)
	}
	_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: subjects, Storage: jetstream.FileStorage})
	if err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return fmt.Errorf("pyudf nats runner: creating stream %q: %w", name, err)
	}
	return nil
}
