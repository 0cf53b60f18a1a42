// Package app is the real-time features and samples application of pyudf's
// examples (the seed article's recommender jobs, on NATS JetStream and SQL
// instead of Kafka and a feature store):
//
//	app events ──JSON──▶ JetStream stream USER_BEHAVIOR (subject user.behavior)
//	  ──▶ parse (Go) ──▶ SampleLabeller (PyFlink KeyedProcessFunction, keyed by trace_id,
//	                      10-minute event-time timer per exposure; late events to a side output)
//	                 └─▶ clicks ──▶ sliding windows 5 min / 30 s ──▶ visited_items (Pandas UDAF)
//	  ──▶ user_feature, user_feature_history, feature_sample (SQLite or PostgreSQL)
//
// The watermark is the largest event time seen minus a bound minus 1 ms
// (Flink's), advanced every WatermarkEvery stream sequences and, with
// Config.IdleWatermark, when the stream is idle; the Go program owns it. Delivery
// is exactly once into the tables: each commit is one transaction holding
// the rows, the stream position and the pipeline's snapshot (the
// operator's keyed state and timers, the open windows' clicks). A restart
// restores the snapshot and reads on after the position. See README.md.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pyudf/pyudf/examples/appkit"
)

// Defaults of Config.
const (
	DefaultStream  = "USER_BEHAVIOR"
	DefaultSubject = "user.behavior"
)

// Sink is where the tables are; *SQLSink is the implementation.
type Sink interface {
	// Checkpoint is the last stream sequence written and the pipeline's
	// snapshot after it (0, nil: none).
	Checkpoint(ctx context.Context, stream string) (uint64, []byte, error)
	// Commit applies a flush atomically with moving the checkpoint from
	// f.From to f.To; (false, nil) when the checkpoint already is f.To.
	Commit(ctx context.Context, f *Flush) (applied bool, err error)
}

// Config configures an App. JS, Pipeline and Sink are required.
type Config struct {
	JS       jetstream.JetStream
	Stream   string // empty: DefaultStream (it must exist)
	Subject  string // empty: DefaultSubject
	Pipeline *Pipeline
	Sink     Sink

	FlushInterval    time.Duration // 0: 1s
	FetchSize        int           // 0: 1000
	ShutdownTimeout  time.Duration // how long the last commit may retry on the way out; 0: 30s
	Logger           *slog.Logger  // nil: slog.Default()
	Progress         io.Writer     // the progress line goes here; nil: none
	ProgressInterval time.Duration // 0: 2s
	// IdleWatermark: after this long without a new record, the watermark
	// moves to what the records so far allow (Pipeline.AdvanceToRecords),
	// as Flink's periodic watermarks do, so that a trickle of events gets
	// its windows and samples without waiting for WatermarkEvery more
	// records; the result is committed like any other. 0 (the default):
	// off, and the output is a function of the stream alone (a bounded
	// run is deterministic); on, it depends on when the stream paused.
	IdleWatermark time.Duration
	// StopAt makes Run return nil once the stream up to this sequence is
	// committed, after the end-of-input watermark fired every window and
	// timer (a bounded run; 0: run until ctx is done).
	StopAt uint64
}

// Stats counts what an App did since New.
type Stats struct {
	Records   int64  // messages read (good, bad, late)
	Bad       int64  // bad records skipped
	Late      int64  // late events sent to the side output
	Features  int64  // window firings written
	Samples   int64  // samples emitted (a trace_id's second sample is emitted but not written: feature_sample keeps the first)
	Positive  int64  // of which labelled 1
	Committed uint64 // the checkpoint
	Commits   int64
	Retries   int64 // failed commit attempts
}

// App runs the pipeline; see the package documentation.
type App struct {
	cfg Config
	log *slog.Logger

	records, bad, late, features, samples, positive, commits atomic.Int64
	committed, stopAt                                        atomic.Uint64
	key                                                      string
	sink                                                     *appkit.Retrier // the sink's operations: back-off, down or not, failed attempts
	fetchOutage                                              appkit.Outage   // failed fetches, logged once per outage
	logged                                                   appkit.Seen     // the bad records' reasons and "late", for logging the first of each
}

// New checks cfg.
func New(cfg Config) (*App, error) {
	if cfg.JS == nil || cfg.Pipeline == nil || cfg.Sink == nil {
		return nil, errors.New("features app: Config needs JS, Pipeline and Sink")
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
	a := &App{cfg: cfg, log: log.With("app", "features")}
	a.fetchOutage.Log = a.log
	a.sink = &appkit.Retrier{Name: "sink", Log: a.log, Quiet: true, // the first failure of an outage is logged
		Permanent: func(err error) bool { return errors.Is(err, ErrCheckpointMoved) }}
	a.stopAt.Store(cfg.StopAt)
	return a, nil
}

// StopAt sets Config.StopAt.
func (a *App) StopAt(seq uint64) { a.stopAt.Store(seq) }

// Stats returns the counters.
func (a *App) Stats() Stats {
	return Stats{Records: a.records.Load(), Bad: a.bad.Load(), Late: a.late.Load(), Features: a.features.Load(),
		Samples: a.samples.Load(), Positive: a.positive.Load(), Committed: a.committed.Load(),
		Commits: a.commits.Load(), Retries: a.sink.Failures()}
}

// Run restores the pipeline from the checkpoint, then reads, processes and
// commits until ctx is done (it commits what it has read and returns nil)
// or, with StopAt, until StopAt is committed. An error means the pipeline
// or the sink failed; what was not committed is read again at the next
// start.
func (a *App) Run(ctx context.Context) error {
	// The checkpoint belongs to one stream: one made again starts afresh.
	key, err := appkit.StreamKey(ctx, a.cfg.JS, a.cfg.Stream)
	if err != nil {
		return fmt.Errorf("features app: stream %s: %w", a.cfg.Stream, err)
	}
	a.key = key
	type cp struct {
		seq  uint64
		snap []byte
	}
	c, err := appkit.Do(ctx, a.sink, "reading the checkpoint", func(ctx context.Context) (cp, error) {
		seq, snap, err := a.cfg.Sink.Checkpoint(ctx, a.key)
		return cp{seq, snap}, err
	})
	if err != nil {
		return nil // ctx done before the sink answered: nothing read
	}
	from := c.seq
	if c.snap != nil {
		if err := a.cfg.Pipeline.Restore(ctx, c.snap); err != nil {
			return err
		}
	}
	a.committed.Store(from)
	if stop := a.stopAt.Load(); stop > 0 && from >= stop && a.cfg.Pipeline.Watermark() == EndOfInput {
		return nil
	}
	cons, err := appkit.OrderedFrom(ctx, a.cfg.JS, a.cfg.Stream, a.cfg.Subject, from)
	if err != nil {
		return fmt.Errorf("features app: consumer on stream %s: %w", a.cfg.Stream, err)
	}
	a.log.Info("running", "stream", a.key, "subject", a.cfg.Subject, "from_seq", from+1, "restored", c.snap != nil)
	stopProgress := appkit.Progress(a.cfg.Progress, a.cfg.ProgressInterval, a.records.Load, a.progressLine)
	defer stopProgress()

	pending := a.newFlush(from)
	lastFlush, lastRecord := time.Now(), time.Now()
	backoff := appkit.Backoff{Min: 50 * time.Millisecond, Max: 2 * time.Second}
	var runErr error
	finished := false
	for ctx.Err() == nil {
		if stop := a.stopAt.Load(); stop > 0 && pending.To >= stop {
			// The end of a bounded input: every window and timer fires.
			pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			nf, ns := len(pending.Features), len(pending.Samples)
			runErr = a.cfg.Pipeline.Advance(pctx, EndOfInput, &pending.Delta)
			cancel()
			a.count(pending, nf, ns)
			finished, pending.EndOfInput = runErr == nil, runErr == nil
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
			lastRecord = time.Now()
			if runErr = a.process(ctx, msgs, pending); runErr != nil {
				break
			}
		} else if idle := a.cfg.IdleWatermark; idle > 0 && err == nil && time.Since(lastRecord) >= idle {
			if runErr = a.idle(ctx, pending); runErr != nil {
				break
			}
		}
		if ctx.Err() != nil {
			break // Ctrl-C: the last flush below commits, with its own deadline
		}
		if time.Since(lastFlush) >= a.cfg.FlushInterval {
			if pending.To > pending.From || pending.moved {
				if err := a.flush(ctx, pending); err != nil {
					break // ctx done while the sink was down: the last flush below retries
				}
				pending = a.newFlush(pending.To)
			}
			lastFlush = time.Now()
		}
	}
	if runErr != nil {
		// The pipeline failed part-way through a message: its state is not
		// the pending flush's; commit nothing more. The next start restores
		// the last snapshot and reads on after it.
		return fmt.Errorf("features app: %w (the stream after sequence %d is read again at the next start)", runErr, pending.From)
	}
	if pending.To > pending.From || pending.moved || finished {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.ShutdownTimeout)
		err := a.flush(fctx, pending)
		cancel()
		if err != nil {
			return fmt.Errorf("%w: the last commit (stream sequences %d..%d) failed; they are read again at the next start: %w",
				ErrSinkUnavailable, pending.From+1, pending.To, err)
		}
	}
	return nil
}

// ErrSinkUnavailable: Run's last commit failed (the sink was down until
// ShutdownTimeout); what it held is read again at the next start.
var ErrSinkUnavailable = errors.New("features app: the sink is unavailable")

// idle advances the watermark of an idle stream into f (Config.IdleWatermark).
func (a *App) idle(ctx context.Context, f *Flush) error {
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	nf, ns := len(f.Features), len(f.Samples)
	moved, err := a.cfg.Pipeline.AdvanceToRecords(pctx, &f.Delta)
	if err != nil {
		return err
	}
	a.count(f, nf, ns)
	f.moved = f.moved || moved
	return nil
}

func (a *App) newFlush(from uint64) *Flush {
	return &Flush{Stream: a.key, From: from, To: from, Delta: newDelta()}
}

// process runs the messages through the pipeline into f. A fetched batch is
// finished even when ctx is done (Ctrl-C), so that the last commit has it.
func (a *App) process(ctx context.Context, msgs []jetstream.Msg, f *Flush) error {
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	stop := a.stopAt.Load()
	nf, ns := len(f.Features), len(f.Samples)
	for _, m := range msgs {
		md, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("message metadata: %w", err)
		}
		seq := md.Sequence.Stream
		if seq <= f.To || (stop > 0 && seq > stop) {
			continue // never from an ordered consumer; a guard against counting twice
		}
		out, err := a.cfg.Pipeline.Process(pctx, seq, m.Data(), &f.Delta)
		if err != nil {
			return err
		}
		f.To = seq
		a.records.Add(1)
		switch {
		case out.Bad != nil:
			a.bad.Add(1)
			a.once("bad:"+out.Bad.Reason, "bad record skipped (the first of its reason; the rest are counted in feature_bad_record and the progress line)",
				"seq", seq, "reason", out.Bad.Reason, "detail", out.Bad.Detail)
		case out.Late != nil:
			a.late.Add(1)
			a.once("late", "late event sent to the side output (the first; the rest are counted in feature_late_event and the progress line)",
				"seq", seq, "type", out.Late.Type, "trace_id", out.Late.TraceID, "event_time", time.UnixMilli(out.Late.EventTime).UTC(),
				"watermark", time.UnixMilli(a.cfg.Pipeline.Watermark()).UTC())
		}
	}
	a.count(f, nf, ns)
	return nil
}

func (a *App) count(f *Flush, nf, ns int) {
	a.features.Add(int64(len(f.Features) - nf))
	a.samples.Add(int64(len(f.Samples) - ns))
	for _, s := range f.Samples[ns:] {
		a.positive.Add(int64(s.Label))
	}
}

func (a *App) once(key, msg string, args ...any) {
	if a.logged.Add(key) == 0 {
		a.log.Warn(msg, args...)
	}
}

// flush snapshots the pipeline into f and commits f, retrying with back-off
// while the sink fails, until it is committed or ctx is done.
func (a *App) flush(ctx context.Context, f *Flush) error {
	if f.Snapshot == nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		snap, err := a.cfg.Pipeline.Snapshot(sctx)
		cancel()
		if err != nil {
			return err
		}
		f.Snapshot = snap
	}
	applied, err := appkit.Do(ctx, a.sink, "committing", func(ctx context.Context) (bool, error) {
		return a.cfg.Sink.Commit(ctx, f)
	})
	if err != nil {
		return err
	}
	if !applied {
		a.log.Info("a commit found done by its earlier attempt; not applied twice", "to_seq", f.To)
	}
	a.commits.Add(1)
	a.committed.Store(f.To)
	return nil
}

// progressLine is the progress line (see appkit.Progress).
func (a *App) progressLine(w io.Writer, n int64, rate float64) {
	st := a.Stats()
	state := "sink ok"
	if a.sink.Down() {
		state = "SINK DOWN, retrying"
	}
	fmt.Fprintf(w, "features: %d records, %.0f rows/s, %d bad, %d late, %d feature windows, %d samples (%d positive), committed up to seq %d, %s\n",
		n, rate, st.Bad, st.Late, st.Features, st.Samples, st.Positive, st.Committed, state)
}
