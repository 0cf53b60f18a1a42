package runner_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pyudf/pyudf/connect/nats/runner"
)

// outputsByRunner reads every message of subject in OUT (State.Msgs of it)
// and returns, per input sequence, the runners that answered it.
func (b *broker) outputsByRunner(t *testing.T, subject string) map[uint64][]string {
	t.Helper()
	ctx := context.Background()
	st, err := b.js.Stream(ctx, "OUT")
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	want := info.State.Subjects[subject]
	got := map[uint64][]string{}
	if want == 0 {
		return got
	}
	cons, err := b.js.OrderedConsumer(ctx, "OUT", jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for n < want {
		batch, err := cons.Fetch(int(want-n), jetstream.FetchMaxWait(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		k := n
		for m := range batch.Messages() {
			n++
			seq, _ := strconv.ParseUint(m.Headers().Get(runner.HeaderSeq), 10, 64)
			got[seq] = append(got[seq], m.Headers().Get(runner.HeaderRunner))
		}
		if n == k {
			t.Fatalf("read %d of %s's %d messages", n, subject, want)
		}
	}
	return got
}

// Drain while a batch is in the UDF: that batch is finished, published and
// acked before Drain returns (cancelling would give it back), the rest of
// the fetch is given back at once, Run returns nil, and a second runner on
// the durable gets the rest well before a failed call's redelivery delay
// (1s) or the AckWait (30s): one result per input, the drained runner's
// inputs all before the second runner's.
func TestDrainFinishesTheBatchInFlight(t *testing.T) {
	b := startBroker(t)
	const n = 600
	in := make([]string, n)
	for i := range in {
		in[i] = fmt.Sprintf("m%03d", i)
	}
	b.publish(t, "in.text", in...)
	r1, err := runner.New(runner.Config{Conn: b.nc, Subject: "in.text", Durable: "drain", Output: "out",
		Function: function(t, "slow_upper"), Name: "r1", FetchSize: 200, FetchWait: 500 * time.Millisecond,
		AckWait: 30 * time.Second, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer r1.Close()
	errc := make(chan error, 1)
	go func() { errc <- r1.Run(context.Background()) }()
	deadline := time.Now().Add(10 * time.Second)
	for r1.Stats().Fetched == 0 {
		if time.Now().After(deadline) {
			t.Fatal("r1 fetched nothing")
		}
		time.Sleep(time.Millisecond)
	}
	asked := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r1.Drain(ctx); err != nil {
		t.Fatalf("Drain: %v", err)
	}
	took := time.Since(asked)
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("Run after Drain: %v, want nil", err)
		}
	default:
		t.Fatal("Drain returned before Run")
	}
	s1 := r1.Stats()
	t.Logf("Drain took %v; r1 %+v", took, s1)
	if took > 2*time.Second {
		t.Errorf("Drain took %v: want the batch in flight plus at most FetchWait", took)
	}
	if s1.Published == 0 || s1.Published+s1.Retried != s1.Fetched || s1.Published == n {
		t.Fatalf("r1 %+v: want the batch in flight published, the rest given back", s1)
	}
	// Published before Drain returned: in the output stream and acked.
	if got := b.outputsByRunner(t, "out"); len(got) != int(s1.Published) {
		t.Fatalf("%d results in OUT when Drain returned, r1 published %d", len(got), s1.Published)
	}
	c, _ := b.js.Consumer(ctx, "IN", "drain")
	if info, err := c.Info(ctx); err != nil || info.AckFloor.Stream != uint64(s1.Published) {
		t.Fatalf("consumer after Drain: %+v, %v; want ack floor %d", info, err, s1.Published)
	}
	if err := r1.Drain(ctx); err != nil {
		t.Fatalf("a second Drain: %v", err)
	}

	drained := time.Now()
	r2 := start(t, runner.Config{Conn: b.nc, Subject: "in.text", Durable: "drain", Output: "out",
		Function: function(t, "upper"), Name: "r2", FetchSize: n, FetchWait: 5 * time.Second})
	for r2.Stats().Published < n-s1.Published {
		if time.Since(drained) > 10*time.Second {
			t.Fatalf("r2 %+v: want the %d given back", r2.Stats(), n-s1.Published)
		}
		time.Sleep(2 * time.Millisecond)
	}
	if d := time.Since(drained); d > 800*time.Millisecond {
		t.Errorf("r2 had the rest %v after the drain: redelivered late", d)
	}
	got := b.outputsByRunner(t, "out")
	var last1 uint64
	first2 := uint64(n + 1)
	for seq := uint64(1); seq <= n; seq++ {
		if len(got[seq]) != 1 {
			t.Fatalf("input %d has results from %v, want one", seq, got[seq])
		}
		if got[seq][0] == "r1" {
			last1 = max(last1, seq)
		} else {
			first2 = min(first2, seq)
		}
	}
	if last1 >= first2 {
		t.Errorf("r1 answered input %d, r2 input %d: the drained runner's inputs are not all before the next one's", last1, first2)
	}
	waitAcked(t, b, "drain", n)
}

// Drain of an idle Run (its fetch waits for messages) returns within the
// fetch's FetchWait, and the messages published meanwhile, delivered to that
// fetch, are given back at once, not stranded until the AckWait. Drain of a
// Runner that is not running returns at once; its Run then returns nil.
func TestDrainIdle(t *testing.T) {
	b := startBroker(t)
	const wait = 400 * time.Millisecond
	r1, err := runner.New(runner.Config{Conn: b.nc, Subject: "in.text", Durable: "idle", Output: "out",
		Function: function(t, "upper"), Name: "r1", FetchWait: wait, AckWait: 30 * time.Second, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer r1.Close()
	errc := make(chan error, 1)
	go func() { errc <- r1.Run(context.Background()) }()
	for r1.Stats().Fetches == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // the pull request is at the server
	ctx := context.Background()
	drained := make(chan time.Duration, 1)
	asked := time.Now()
	go func() { r1.Drain(ctx); drained <- time.Since(asked) }()
	time.Sleep(20 * time.Millisecond)
	b.publish(t, "in.text", "a", "b", "c") // delivered to r1's waiting fetch, or not
	took := <-drained
	if err := <-errc; err != nil {
		t.Fatalf("Run after Drain: %v", err)
	}
	if took > wait+300*time.Millisecond {
		t.Errorf("Drain of an idle runner took %v, want at most FetchWait (%v)", took, wait)
	}
	if s := r1.Stats(); s.Published != 0 || s.Fetched != s.Retried {
		t.Errorf("r1 %+v: want whatever arrived after Drain given back, nothing called", s)
	}
	after := time.Now()
	start(t, runner.Config{Conn: b.nc, Subject: "in.text", Durable: "idle", Output: "out",
		Function: function(t, "upper"), Name: "r2", FetchWait: 5 * time.Second})
	got := b.collectDistinct(t, "out", 3, 10*time.Second)
	if d := time.Since(after); d > 800*time.Millisecond {
		t.Errorf("the 3 messages published during the drain were answered %v after it: stranded", d)
	}
	for _, p := range []string{"A", "B", "C"} {
		if got[p] != 1 {
			t.Errorf("%d results %q, want 1", got[p], p)
		}
	}

	r3, err := runner.New(runner.Config{Conn: b.nc, Subject: "in.text", Durable: "idle", Output: "out", Function: function(t, "upper")})
	if err != nil {
		t.Fatal(err)
	}
	defer r3.Close()
	asked = time.Now()
	if err := r3.Drain(ctx); err != nil || time.Since(asked) > 50*time.Millisecond {
		t.Fatalf("Drain of a runner not running: %v after %v, want nil at once", err, time.Since(asked))
	}
	if err := r3.Run(ctx); err != nil || time.Since(asked) > 100*time.Millisecond {
		t.Fatalf("Run of a drained runner: %v after %v, want nil at once", err, time.Since(asked))
	}
}
