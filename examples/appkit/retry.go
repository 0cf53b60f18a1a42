package appkit

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Retrier retries the operations on one dependency (the SQL sink) with
// back-off and keeps whether it is down (for the progress line) and how
// many attempts failed. Its fields are read-only once it is in use; a
// Retrier is safe for concurrent use.
type Retrier struct {
	Name      string           // what is retried, in the log messages ("sink": "the sink failed; retrying")
	Log       *slog.Logger     // nil: slog.Default()
	Min, Max  time.Duration    // the back-off doubles from Min to Max; 0: 100ms, 5s
	Timeout   time.Duration    // each attempt's deadline; 0: 10s
	Permanent func(error) bool // errors returned at once, not retried; nil: none
	// Quiet logs only the first failed attempt of an outage (otherwise
	// every failed attempt, with its back-off).
	Quiet bool

	down     atomic.Bool
	failures atomic.Int64
}

// Down says whether the last attempt failed (and the next has not succeeded yet).
func (r *Retrier) Down() bool { return r.down.Load() }

// Failures is the number of failed attempts so far.
func (r *Retrier) Failures() int64 { return r.failures.Load() }

func (r *Retrier) log() *slog.Logger { return orDefault(r.Log) }

// orDefault is log, or slog.Default() for nil.
func orDefault(log *slog.Logger) *slog.Logger {
	if log == nil {
		return slog.Default()
	}
	return log
}

// Do calls op until it succeeds, returns an error r.Permanent accepts, or
// ctx is done. Each attempt gets r.Timeout; after a failure Do waits the
// back-off. The first success after a failure logs "the <Name> is back".
// When ctx ends first, the error wraps context.Cause(ctx) and op's last
// error, and names what.
func Do[T any](ctx context.Context, r *Retrier, what string, op func(context.Context) (T, error)) (T, error) {
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	b := Backoff{Min: r.Min, Max: r.Max}
	if b.Min <= 0 {
		b.Min = 100 * time.Millisecond
	}
	if b.Max <= 0 {
		b.Max = 5 * time.Second
	}
	for {
		octx, cancel := context.WithTimeout(ctx, timeout)
		v, err := op(octx)
		cancel()
		if err == nil {
			if r.down.Swap(false) {
				r.log().Info("the "+r.Name+" is back", "op", what)
			}
			return v, nil
		}
		if r.Permanent != nil && r.Permanent(err) {
			return v, err
		}
		r.failures.Add(1)
		wasDown := r.down.Swap(true)
		d := b.Next()
		if !r.Quiet || !wasDown {
			r.log().Warn("the "+r.Name+" failed; retrying", "op", what, "err", err, "backoff", d)
		}
		if !Sleep(ctx, d) {
			return v, fmt.Errorf("%s: %w (last error: %w)", what, context.Cause(ctx), err)
		}
	}
}

// Outage logs the failures of a dependency that a loop retries by hand
// (a fetch) once per outage, not once per attempt: the first failure as a
// warning, the first success after it as the end of the outage. Safe for
// concurrent use; the zero value logs on slog.Default().
type Outage struct {
	Log  *slog.Logger // nil: slog.Default()
	down atomic.Bool
}

// Failed records a failed attempt: the first of an outage is logged (Warn)
// as msg with args.
func (o *Outage) Failed(msg string, args ...any) {
	if !o.down.Swap(true) {
		o.log().Warn(msg, args...)
	}
}

// Works records a successful attempt: the first after a failure logs msg (Info).
func (o *Outage) Works(msg string) {
	if o.down.Swap(false) {
		o.log().Info(msg)
	}
}

func (o *Outage) log() *slog.Logger { return orDefault(o.Log) }

// Backoff is a delay that doubles from Min up to Max. The zero value
// returns 0 from Next; set Min and Max.
type Backoff struct {
	Min, Max time.Duration
	cur      time.Duration
}

// Next returns the delay to wait now and doubles the next one (up to Max).
func (b *Backoff) Next() time.Duration {
	if b.cur < b.Min {
		b.cur = b.Min
	}
	d := b.cur
	b.cur = min(2*b.cur, b.Max)
	return d
}

// Reset makes the next delay Min again (after a success).
func (b *Backoff) Reset() { b.cur = 0 }

// Sleep waits d or until ctx is done; it reports whether it waited all of d.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Seen counts occurrences per key (a bad record's reason), safe for
// concurrent use: log the first few of each key, count the rest. The zero
// value is ready.
type Seen struct {
	mu sync.Mutex
	n  map[string]int
}

// Add counts one occurrence of key and returns how many came before it
// (0 for the first).
func (s *Seen) Add(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n == nil {
		s.n = map[string]int{}
	}
	n := s.n[key]
	s.n[key] = n + 1
	return n
}
