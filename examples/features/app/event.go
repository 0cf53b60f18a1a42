package app

import (
	"bytes"
	"cmp"
	"container/heap"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pyudf/pyudf/examples/appkit"
)

// Event is one user behaviour event (a JSON object on the stream).
type Event struct {
	Type      string `json:"type"` // "exposure" or "click"
	TraceID   string `json:"trace_id"`
	UserID    string `json:"user_id"`
	ItemID    string `json:"item_id"`
	EventTime int64  `json:"event_time"` // milliseconds since the Unix epoch
}

// The event types.
const (
	Exposure = "exposure"
	Click    = "click"
)

// BadRecordError says why a message is not an Event. Reason is short and
// fixed (the key bad records are counted under); Detail names the value.
type BadRecordError struct {
	Reason string
	Detail string
}

func (e *BadRecordError) Error() string { return e.Reason + ": " + e.Detail }

// Reasons of BadRecordError.
const (
	ReasonNotJSON      = "not JSON"
	ReasonUnknownType  = "unknown event type"
	ReasonMissingField = "missing field"
	ReasonBadField     = "bad field" // a field of the wrong JSON type
	ReasonNotObject    = "not a JSON object"
	ReasonEventTime    = "implausible event time" // beyond MaxEventTime, or too far ahead of the wall clock (Pipeline.MaxAhead)
)

// MaxEventTime is the largest event time (ms) ParseEvent accepts: the
// windows keep times as time.Time in nanoseconds (year 2262 at most), and
// the label wait and the window arithmetic add up to LabelWait+WindowSize
// to an event time; anything beyond would overflow int64.
const MaxEventTime = math.MaxInt64/int64(time.Millisecond) - int64((LabelWait+WindowSize)/time.Millisecond)

// ParseEvent decodes one message. Every field must be present and not
// empty (event_time a positive number of milliseconds); the type must be
// exposure or click; event_time at most MaxEventTime.
func ParseEvent(data []byte) (Event, error) {
	var raw struct {
		Type      *string `json:"type"`
		TraceID   *string `json:"trace_id"`
		UserID    *string `json:"user_id"`
		ItemID    *string `json:"item_id"`
		EventTime *int64  `json:"event_time"`
	}
	notObject := func(what string) error {
		return &BadRecordError{ReasonNotObject, fmt.Sprintf("valid JSON but a %s, not an object: %q", what, clip(string(data)))}
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return Event{}, &BadRecordError{ReasonBadField, fmt.Sprintf("%s is a JSON %s, not a %v, in %q", te.Field, te.Value, te.Type, clip(string(data)))}
		}
		if errors.As(err, &te) { // the top-level value is an array, a string, a number or a bool
			return Event{}, notObject(te.Value)
		}
		return Event{}, &BadRecordError{ReasonNotJSON, fmt.Sprintf("%v in %q", err, clip(string(data)))}
	}
	if t := bytes.TrimLeft(data, " \t\r\n"); bytes.HasPrefix(t, []byte("null")) {
		return Event{}, notObject("null")
	}
	for _, f := range []struct {
		name string
		v    *string
	}{{"type", raw.Type}, {"trace_id", raw.TraceID}, {"user_id", raw.UserID}, {"item_id", raw.ItemID}} {
		if f.v == nil || *f.v == "" {
			return Event{}, &BadRecordError{ReasonMissingField, fmt.Sprintf("%s is missing in %q", f.name, clip(string(data)))}
		}
	}
	if raw.EventTime == nil || *raw.EventTime <= 0 {
		return Event{}, &BadRecordError{ReasonMissingField, fmt.Sprintf("event_time is missing or not positive in %q", clip(string(data)))}
	}
	if *raw.EventTime > MaxEventTime {
		return Event{}, &BadRecordError{ReasonEventTime, fmt.Sprintf("event_time %d is beyond %d (year 2262) in %q", *raw.EventTime, MaxEventTime, clip(string(data)))}
	}
	if *raw.Type != Exposure && *raw.Type != Click {
		return Event{}, &BadRecordError{ReasonUnknownType, fmt.Sprintf("type %q is neither exposure nor click", clip(*raw.Type))}
	}
	return Event{*raw.Type, *raw.TraceID, *raw.UserID, *raw.ItemID, *raw.EventTime}, nil
}

func clip(s string) string {
	if len(s) > 120 {
		return s[:117] + "..."
	}
	return s
}

// Generator makes a deterministic stream of behaviour events: exposures of
// items to users, about 30% of them clicked (three in four of those within
// the 10 minutes), delivered in event-time order with up to 2 s of
// disorder, about 10 events per second of event time.
type Generator struct {
	rnd    *rand.Rand
	n      uint64
	cursor int64 // event-time clock of delivery, ms
	traces uint64
	clicks clickQueue
	// Start is the event time of the first event (default 2026-01-01 UTC).
	Start time.Time
	// BadEvery makes every BadEvery-th message bad (in turn: an unknown
	// event type, a missing field, not JSON); 0: none.
	BadEvery int
	// LateEvery makes every LateEvery-th event late: its event time is one
	// to three minutes behind; 0: none.
	LateEvery int
	// Users and Items are the population sizes (default 50 and 300).
	Users, Items int
}

// NewGenerator returns a generator seeded with seed.
func NewGenerator(seed uint64) *Generator {
	return &Generator{rnd: rand.New(rand.NewPCG(seed, 4)), Users: 50, Items: 300,
		Start: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

type pendingClick struct {
	due int64 // delivery time on the cursor
	ev  Event
}

type clickQueue []pendingClick

func (q clickQueue) Len() int           { return len(q) }
func (q clickQueue) Less(i, j int) bool { return cmp.Less(q[i].due, q[j].due) }
func (q clickQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *clickQueue) Push(x any)        { *q = append(*q, x.(pendingClick)) }
func (q *clickQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

// Next returns the next message.
func (g *Generator) Next() []byte {
	g.n++
	if g.cursor == 0 {
		g.cursor = g.Start.UnixMilli()
	}
	if g.BadEvery > 0 && g.n%uint64(g.BadEvery) == 0 {
		switch (g.n / uint64(g.BadEvery)) % 3 {
		case 1:
			return fmt.Appendf(nil, `{"type":"purchase","trace_id":"bad-%d","user_id":"u001","item_id":"i0001","event_time":%d}`, g.n, g.cursor)
		case 2:
			return fmt.Appendf(nil, `{"type":"click","trace_id":"bad-%d","user_id":"u001","event_time":%d}`, g.n, g.cursor) // no item_id
		default:
			return fmt.Appendf(nil, `exposure,bad-%d,u001,i0001,%d`, g.n, g.cursor)
		}
	}
	g.cursor += g.rnd.Int64N(201) // 100 ms a message on average
	var ev Event
	if len(g.clicks) > 0 && g.clicks[0].due <= g.cursor {
		ev = heap.Pop(&g.clicks).(pendingClick).ev
	} else {
		g.traces++
		ev = Event{Type: Exposure, TraceID: fmt.Sprintf("t%08d", g.traces),
			UserID:    fmt.Sprintf("u%03d", g.rnd.IntN(max(g.Users, 1))),
			ItemID:    fmt.Sprintf("i%04d", g.rnd.IntN(max(g.Items, 1))),
			EventTime: g.cursor - g.rnd.Int64N(2001)}
		if g.rnd.IntN(10) < 3 {
			delay := 1000 + g.rnd.Int64N(4*60_000) // in time
			if g.rnd.IntN(4) == 0 {
				delay = 10*60_000 + 1 + g.rnd.Int64N(10*60_000) // too late for the label
			}
			c := ev
			c.Type, c.EventTime = Click, ev.EventTime+delay
			heap.Push(&g.clicks, pendingClick{due: c.EventTime + g.rnd.Int64N(2001), ev: c})
		}
	}
	if g.LateEvery > 0 && g.n%uint64(g.LateEvery) == 0 {
		ev.EventTime -= 60_000 + g.rnd.Int64N(120_001)
	}
	b, _ := json.Marshal(ev)
	return b
}

// Publish publishes n messages from g to subject, waiting for every PubAck,
// and returns how many were acknowledged.
func Publish(ctx context.Context, js jetstream.JetStream, subject string, g *Generator, n int) (int, error) {
	done, err := appkit.Publish(ctx, js, subject, n, g.Next)
	if err != nil && ctx.Err() == nil {
		err = fmt.Errorf("features generator: %w", err)
	}
	return done, err
}

//go:embed features.py
var pythonSource string

// PythonSource is features.py, the PyFlink code the app runs.
func PythonSource() string { return pythonSource }
