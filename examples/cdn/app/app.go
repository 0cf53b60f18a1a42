// Package app is the CDN log analysis application of pyudf's examples (the
// seed job "real-time log analysis for Alibaba Cloud CDN", on NATS JetStream
// and SQL instead of Kafka and MySQL):
//
//	edge nodes ──CSV lines──▶ JetStream stream CDN_ACCESS_LOG (subject cdn.access_log)
//	  ──▶ parse (Go) ──▶ ip_to_province (PyFlink UDF, one Arrow batch per fetch)
//	  ──▶ group by province (Go) ──every second──▶ cdn_access_statistic (SQLite or PostgreSQL)
//
// Delivery is exactly once into the table. The app reads the stream with an
// ordered consumer starting after the checkpoint stored in the database
// (cdn_checkpoint.last_seq), and each flush is one transaction that adds the
// sums of the records it covers and moves the checkpoint to its last stream
// sequence. A crash, a Ctrl-C or a sink outage can only lose work that was not
// committed, and that work is read again from the stream at the next start (or
// kept in memory and retried, for an outage): nothing is counted twice,
// nothing is skipped. See README.md.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pyudf/pyudf/arrowconv"
	"github.com/pyudf/pyudf/bridge"
	"github.com/pyudf/pyudf/engine"
	"github.com/pyudf/pyudf/examples/appkit"
)

// Defaults of Config.
const (
	DefaultStream  = "CDN_ACCESS_LOG"
	DefaultSubject = "cdn.access_log"
)

// Sink is where the statistics go; *SQLSink is the implementation.
type Sink interface {
	// Checkpoint is the last stream sequence already counted (0: none).
	Checkpoint(ctx context.Context, stream string) (uint64, error)
	// Commit applies a flush atomically with moving the checkpoint from
	// f.From to f.To; (false, nil) when the checkpoint already is f.To.
	Commit(ctx context.Context, f *Flush) (applied bool, err error)
}

// Config configures an App. JS, Function and Sink are required.
type Config struct {
	JS       jetstream.JetStream
	Stream   string           // empty: DefaultStream (it must exist)
	Subject  string           // empty: DefaultSubject
	Function *engine.Function // ip_to_province: STRING -> STRING
	Sink     Sink

	FlushInterval    time.Duration // 0: 1s (the seed's write.flush.interval)
	FetchSize        int           // records per fetch and per UDF batch; 0: 1000
	ShutdownTimeout  time.Duration // how long the last flush may retry on the way out; 0: 30s
	Logger           *slog.Logger  // nil: slog.Default()
	Progress         io.Writer     // the progress line goes here; nil: none
	ProgressInterval time.Duration // 0: 2s
	// StopAt makes Run return nil once the records up to this stream
	// sequence are committed (a batch run; 0: run until ctx is done).
	StopAt uint64
}

// Stats counts what an App did since New.
type Stats struct {
	Records      int64  // records read (good and bad)
	Bad          int64  // bad records skipped
	Committed    uint64 // the checkpoint: last stream sequence committed
	Flushes      int64  // committed flushes
	FlushRetries int64  // failed commit attempts (the sink was down ...)
}

// App runs the pipeline; see the package documentation.
type App struct {
	cfg Config
	log *slog.Logger

	records, bad, flushes atomic.Int64
	committed, stopAt     atomic.Uint64
	key                   string          // the checkpoint's key: stream name and creation time
	sink                  *appkit.Retrier // the sink's operations: back-off, down or not, failed attempts
	logged                appkit.Seen     // bad records per reason, for logging the first few
	fetchOutage           appkit.Outage   // failed fetches, logged once per outage
}

// maxLoggedPerReason: bad records of one reason logged one by one; after
// that they are only counted (the table cdn_bad_record has the totals).
const maxLoggedPerReason = 10

// New checks cfg.
func New(cfg Config) (*App, error) {
	if cfg.JS == nil || cfg.Function == nil || cfg.Sink == nil {
		return nil, errors.New("cdn app: Config needs JS, Function and Sink")
	}
	if in := cfg.Function.InputTypes(); len(in) != 1 || in[0].String() != "STRING" {
		return nil, fmt.Errorf("cdn app: function %q must take one STRING (the client IP), not %v", cfg.Function.Name(), in)
	}
	if cfg.Stream == "" {
		cfg.Stream = DefaultStream
	}
	if cfg.Subject == "" {
		cfg.Subject = DefaultSubject
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = time.Second
	}
	if cfg.FetchSize <= 0 {
		cfg.FetchSize = 1000
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 30 * time.Second
	}
	if cfg.ProgressInterval <= 0 {
		cfg.ProgressInterval = 2 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	a := &App{cfg: cfg, log: log.With("app", "cdn")}
	a.fetchOutage.Log = a.log
	a.sink = &appkit.Retrier{Name: "sink", Log: a.log, Permanent: func(err error) bool { return errors.Is(err, ErrCheckpointMoved) }}
	a.stopAt.Store(cfg.StopAt)
	return a, nil
}

// StopAt makes Run return once the records up to stream sequence seq are
// committed (see Config.StopAt).
func (a *App) StopAt(seq uint64) { a.stopAt.Store(seq) }

// Stats returns the counters.
func (a *App) Stats() Stats {
	return Stats{Records: a.records.Load(), Bad: a.bad.Load(), Committed: a.committed.Load(),
		Flushes: a.flushes.Load(), FlushRetries: a.sink.Failures()}
}

// Run reads, maps, groups and flushes until ctx is done (then it commits
// what it has read and returns nil) or, with StopAt, until StopAt is
// committed. An error means something could not be committed; the records
// after the checkpoint are read again at the next start.
func (a *App) Run(ctx context.Context) error {
	// The checkpoint belongs to one stream: one made again starts afresh.
	key, err := appkit.StreamKey(ctx, a.cfg.JS, a.cfg.Stream)
	if err != nil {
		return fmt.Errorf("cdn app: stream %s: %w", a.cfg.Stream, err)
	}
	a.key = key
	from, err := appkit.Do(ctx, a.sink, "reading the checkpoint", func(ctx context.Context) (uint64, error) {
		return a.cfg.Sink.Checkpoint(ctx, a.key)
	})
	if err != nil {
		return nil // ctx done before the sink answered: nothing read, nothing to commit
	}
	a.committed.Store(from)
	if stop := a.stopAt.Load(); stop > 0 && from >= stop {
		return nil
	}
	cons, err := appkit.OrderedFrom(ctx, a.cfg.JS, a.cfg.Stream, a.cfg.Subject, from)
	if err != nil {
		return fmt.Errorf("cdn app: consumer on stream %s: %w", a.cfg.Stream, err)
	}
	a.log.Info("running", "stream", a.key, "subject", a.cfg.Subject, "from_seq", from+1,
		"function", a.cfg.Function.Name(), "flush", a.cfg.FlushInterval)

	stopProgress := appkit.Progress(a.cfg.Progress, a.cfg.ProgressInterval, a.records.Load, a.progressLine)
	defer stopProgress()

	pending := newFlush(a.key, from)
	lastFlush := time.Now()
	backoff := appkit.Backoff{Min: 50 * time.Millisecond, Max: 2 * time.Second}
	var runErr error
	for ctx.Err() == nil {
		if stop := a.stopAt.Load(); stop > 0 && pending.To >= stop {
			break
		}
		wait := max(a.cfg.FlushInterval-time.Since(lastFlush), 50*time.Millisecond)
		msgs, err := appkit.Fetch(ctx, cons, a.cfg.FetchSize, wait)
		if err != nil && ctx.Err() == nil {
			d := backoff.Next()
			a.fetchOutage.Failed("fetch failed; retrying with back-off", "err", err, "backoff", d)
			appkit.Sleep(ctx, d)
		} else if err == nil {
			a.fetchOutage.Works("fetch works again")
			backoff.Reset()
		}
		if len(msgs) > 0 {
			if runErr = a.process(ctx, msgs, pending); runErr != nil {
				break
			}
		}
		if time.Since(lastFlush) >= a.cfg.FlushInterval {
			if pending.To > pending.From {
				if err := a.flush(ctx, pending); err != nil {
					break // ctx done while the sink was down: the last flush below retries
				}
				pending = newFlush(a.key, pending.To)
			}
			lastFlush = time.Now()
		}
	}
	if pending.To > pending.From {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.ShutdownTimeout)
		err := a.flush(fctx, pending)
		cancel()
		if err != nil {
			return errors.Join(runErr, fmt.Errorf("cdn app: the last flush (stream sequences %d..%d) was not committed; they are read again at the next start: %w",
				pending.From+1, pending.To, err))
		}
	}
	return runErr
}

// process parses a fetch's messages, maps their addresses with one batch
// call, and adds them to f. On error nothing of msgs is in f.
func (a *App) process(ctx context.Context, msgs []jetstream.Msg, f *Flush) error {
	type good struct {
		seq uint64
		rec Record
	}
	goods := make([]good, 0, len(msgs))
	last := f.To
	var bad []func()
	for _, m := range msgs {
		md, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("cdn app: message metadata: %w", err)
		}
		seq := md.Sequence.Stream
		if seq <= last { // never from an ordered consumer; a guard against counting twice
			continue
		}
		last = seq
		rec, err := ParseRecord(m.Data())
		if err != nil {
			var be *BadRecordError
			errors.As(err, &be)
			bad = append(bad, func() { a.badRecord(f, seq, be.Reason, be.Detail) })
			continue
		}
		goods = append(goods, good{seq, rec})
	}
	var provinces []string
	skip := make([]bool, len(goods))
	if len(goods) > 0 {
		ips := make([]string, len(goods))
		for i, g := range goods {
			ips[i] = g.rec.ClientIP
		}
		var errs []string
		var err error
		// A fetched batch is finished even when ctx is done (Ctrl-C), so
		// that the last flush has it; it takes milliseconds.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		provinces, errs, err = a.mapIPs(cctx, ips)
		cancel()
		if err != nil {
			return err
		}
		for i, e := range errs {
			if e != "" {
				reason := "udf error"
				var pe *bridge.PythonError // the UDF raises ValueError for what is not an IP
				if errors.As(engine.RowErrorOf(a.cfg.Function.Name(), -1, e), &pe) && pe.Type == "ValueError" {
					reason = ReasonNotAnIP
				}
				seq, ip := goods[i].seq, goods[i].rec.ClientIP
				bad = append(bad, func() { a.badRecord(f, seq, reason, fmt.Sprintf("client_ip %q: %s", clip(ip), e)) })
				skip[i] = true
			}
		}
	}
	// Nothing failed: add it all.
	for _, b := range bad {
		b()
	}
	for i, g := range goods {
		if skip[i] {
			continue // a bad record (counted above)
		}
		p := provinces[i]
		t := f.Regions[p]
		if t == nil {
			t = &Totals{}
			f.Regions[p] = t
		}
		t.AccessCount++
		t.TotalDownload += g.rec.ResponseSize
		t.TotalRequestTime += g.rec.RequestTime
	}
	f.To = last
	a.records.Add(int64(len(msgs)))
	return nil
}

// mapIPs calls the UDF once over the batch of addresses: the province of
// each, or the error its row raised. A failure of the call itself (a
// process-mode worker died) is retried a few times; the engine being closed
// is not.
func (a *App) mapIPs(ctx context.Context, ips []string) (provinces, errs []string, err error) {
	b := array.NewStringBuilder(arrowconv.DefaultAllocator)
	b.AppendValues(ips, nil)
	col := b.NewArray()
	b.Release()
	schema := arrow.NewSchema([]arrow.Field{{Name: "client_ip", Type: arrow.BinaryTypes.String}}, nil)
	rec := array.NewRecordBatch(schema, []arrow.Array{col}, int64(len(ips)))
	col.Release()
	defer rec.Release()
	var res, rowErrs arrow.Array
	backoff := appkit.Backoff{Min: 100 * time.Millisecond, Max: time.Second}
	for attempt := 1; ; attempt++ {
		res, rowErrs, err = a.cfg.Function.EvalRowErrors(ctx, rec)
		if err == nil {
			break
		}
		if errors.Is(err, engine.ErrClosed) || ctx.Err() != nil || attempt == 5 {
			return nil, nil, fmt.Errorf("cdn app: %s over %d addresses: %w", a.cfg.Function.Name(), len(ips), err)
		}
		a.log.Warn("the UDF call failed; retrying", "err", err, "attempt", attempt)
		appkit.Sleep(ctx, backoff.Next())
	}
	defer res.Release()
	defer rowErrs.Release()
	// Value aliases the array's buffer, released on return: clone.
	ps, es := res.(*array.String), rowErrs.(*array.String)
	provinces, errs = make([]string, len(ips)), make([]string, len(ips))
	for i := range ips {
		switch {
		case !es.IsNull(i):
			errs[i] = strings.Clone(es.Value(i))
		case ps.IsNull(i):
			errs[i] = "the UDF returned NULL"
		default:
			provinces[i] = strings.Clone(ps.Value(i))
		}
	}
	return provinces, errs, nil
}

// badRecord counts a bad record in f and logs it (the first
// maxLoggedPerReason of each reason, then once that the rest are counted only).
func (a *App) badRecord(f *Flush, seq uint64, reason, detail string) {
	f.Bad[reason]++
	a.bad.Add(1)
	switch n := a.logged.Add(reason); {
	case n < maxLoggedPerReason:
		a.log.Warn("bad record skipped", "seq", seq, "reason", reason, "detail", detail)
	case n == maxLoggedPerReason:
		a.log.Warn("more bad records of this reason: counted in cdn_bad_record, not logged", "reason", reason)
	}
}

// flush commits f, retrying with back-off while the sink fails, until it is
// committed or ctx is done.
func (a *App) flush(ctx context.Context, f *Flush) error {
	applied, err := appkit.Do(ctx, a.sink, "committing", func(ctx context.Context) (bool, error) {
		return a.cfg.Sink.Commit(ctx, f)
	})
	if err != nil {
		return err
	}
	if !applied {
		a.log.Info("a flush found committed by its earlier attempt; not applied twice", "to_seq", f.To)
	}
	a.flushes.Add(1)
	a.committed.Store(f.To)
	return nil
}

// progressLine is the progress line (see appkit.Progress).
func (a *App) progressLine(w io.Writer, n int64, rate float64) {
	state := "sink ok"
	if a.sink.Down() {
		state = "SINK DOWN, retrying"
	}
	fmt.Fprintf(w, "cdn: %d records, %.0f rows/s, %d bad, committed up to seq %d, %s\n",
		n, rate, a.bad.Load(), a.committed.Load(), state)
}

func newFlush(stream string, from uint64) *Flush {
	return &Flush{Stream: stream, From: from, To: from, Regions: map[string]*Totals{}, Bad: map[string]int64{}}
}
