package apptest

import (
	"context"
	"os"
	"os/signal"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	Main(m, "APPTEST_TEST_ARGS", "echo", func() {
		if len(os.Args) > 1 && os.Args[1] == "-wait" { // prints ready, exits 0 on SIGINT
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			defer stop()
			println("ready")
			<-ctx.Done()
			println("interrupted")
			return
		}
		println("args:", strings.Join(os.Args, "|"))
	})
}

// TestInterrupt: SIGINT once the command says ready; its whole standard
// error comes back, and its exit 0.
func TestInterrupt(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	log, err := Interrupt(t, Command(ctx, "APPTEST_TEST_ARGS", "-wait"), func(l string) bool { return l == "ready" })
	if err != nil || log != "ready\ninterrupted\n" {
		t.Fatalf("%q, %v; want ready, interrupted, exit 0", log, err)
	}
}

// TestCommand: the re-executed binary runs main with the arguments (one of
// them empty, one with a space) and the command name.
func TestCommand(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := Command(ctx, "APPTEST_TEST_ARGS", "-x", "", "a b").CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "args: echo|-x||a b" {
		t.Errorf("output %q, want args: echo|-x||a b", got)
	}
}

func TestSyncBufferWaitFor(t *testing.T) {
	var b SyncBuffer
	go func() {
		for range 100 {
			b.Write([]byte("x"))
		}
	}()
	WaitFor(t, "100 bytes", func() bool { return len(b.String()) == 100 })
}

func TestBroker(t *testing.T) {
	js := Broker(t, "T", "t.a", "t.b")
	ack, err := js.Publish(context.Background(), "t.b", []byte("m"))
	if err != nil || ack.Stream != "T" || ack.Sequence != 1 {
		t.Fatalf("publish: %+v, %v", ack, err)
	}
}
