package engine

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/pyudf/pyudf/bridge"
)

// Process mode's faults: a worker that dies is restarted; the request in
// flight fails with a *WorkerError, or runs once more with RetryInFlight.

const faultSource = `
import ctypes, os
from pyudf import udf, udaf, AggregateFunction

def _crash(how):
    if how == "segfault":
        ctypes.string_at(0)
    elif how == "exit":
        os._exit(3)
    elif how == "memory":
        return len(bytearray(1 << 31))  # 2 GiB, beyond the limit
    return how

crash = udf(_crash, input_types=["STRING"], result_type="STRING")

_count = {"n": 0}

def _crash_once(x):
    # The marker file makes the crash happen in the first worker only.
    marker = os.environ.get("PYUDF_TEST_MARKER")
    if marker and not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(5)
    return x + 1

crash_once = udf(_crash_once, input_types=["BIGINT"], result_type="BIGINT")
pid = udf(lambda: os.getpid(), result_type="BIGINT")

class Count(AggregateFunction):
    def create_accumulator(self): return [0]
    def accumulate(self, acc, x): acc[0] += 1
    def get_value(self, acc): return acc[0]

count = udaf(Count(), input_types=["BIGINT"], result_type="BIGINT")
`

func faultModule(t *testing.T, cfg Config) *Module {
	t.Helper()
	cfg.Mode = Process
	if cfg.Workers == 0 {
		cfg.Workers = 1
	}
	return loadModule(t, cfg, "faults.py", faultSource)
}

func TestWorkerCrashIsRestarted(t *testing.T) {
	for _, c := range []struct{ how, reason string }{
		{"segfault", "killed by signal segmentation fault"},
		{"exit", "exited with status 3"},
	} {
		t.Run(c.how, func(t *testing.T) {
			m := faultModule(t, Config{})
			ctx := context.Background()
			before := call(t, m, "pid")
			_, err := function(t, m, "crash").Call(ctx, c.how)
			var we *WorkerError
			if !errors.As(err, &we) {
				t.Fatalf("want a *WorkerError, got %v", err)
			}
			wantMessage(t, err, c.reason, `while running function "crash"`)
			if we.PID != int(before.(int64)) {
				t.Errorf("error names pid %d, the worker was %v", we.PID, before)
			}
			// The worker was restarted, with the module loaded and the function open.
			if got, err := function(t, m, "crash").Call(ctx, "fine"); err != nil || got != "fine" {
				t.Fatalf("after the crash: %v, %v", got, err)
			}
			after := call(t, m, "pid")
			if after == before {
				t.Errorf("the worker was not restarted (pid %v)", after)
			}
			if ws := m.engine.Workers(); len(ws) != 1 || ws[0].PID != int(after.(int64)) || ws[0].Restarts != 1 {
				t.Errorf("Workers() = %+v, want pid %v after 1 restart", ws, after)
			}
		})
	}
}

func TestWorkerOverMemoryLimitIsRestarted(t *testing.T) {
	m := faultModule(t, Config{WorkerMemoryLimit: 1 << 30})
	ctx := context.Background()
	_, err := function(t, m, "crash").Call(ctx, "memory")
	var we *WorkerError
	if !errors.As(err, &we) {
		t.Fatalf("want a *WorkerError, got %v", err)
	}
	wantMessage(t, err, "ran out of memory", "MemoryError")
	if got, err := function(t, m, "crash").Call(ctx, "fine"); err != nil || got != "fine" {
		t.Fatalf("after the restart: %v, %v", got, err)
	}
}

func TestWorkerCrashRetriedOnce(t *testing.T) {
	marker := t.TempDir() + "/crashed"
	t.Setenv("PYUDF_TEST_MARKER", marker)
	ctx := context.Background()

	// Without RetryInFlight the row fails; the next one runs on the new worker.
	m := faultModule(t, Config{})
	f := function(t, m, "crash_once")
	if _, err := f.Call(ctx, int64(1)); !errors.As(err, new(*WorkerError)) {
		t.Fatalf("without retry: want a *WorkerError, got %v", err)
	}
	if got, err := f.Call(ctx, int64(1)); err != nil || got != int64(2) {
		t.Fatalf("after the restart: %v, %v", got, err)
	}

	// With it, the row in flight runs again and its result comes back.
	if err := removeFile(marker); err != nil {
		t.Fatal(err)
	}
	m = faultModule(t, Config{RetryInFlight: true})
	f = function(t, m, "crash_once")
	if got, err := f.Call(ctx, int64(41)); err != nil || got != int64(42) {
		t.Fatalf("with retry: %v, %v", got, err)
	}

	// A batch in flight is retried the same way.
	if err := removeFile(marker); err != nil {
		t.Fatal(err)
	}
	mem := checkedAllocator(t)
	res, err := f.Eval(ctx, batchOf(t, mem, arrow.PrimitiveTypes.Int64, `[1, 2, 3]`))
	if err != nil {
		t.Fatalf("batch with retry: %v", err)
	}
	defer res.Release()
	if got := jsonOf(t, res); got != "[2,3,4]" {
		t.Errorf("batch with retry = %s", got)
	}
}

func TestWorkerCrashLosesAggregateState(t *testing.T) {
	m := faultModule(t, Config{RetryInFlight: true})
	ctx := context.Background()
	a := openAggregate(t, m, "count")
	for range 3 {
		if err := a.Accumulate(ctx, "k", int64(1)); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := a.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := function(t, m, "crash").Call(ctx, "segfault"); !errors.As(err, new(*WorkerError)) {
		t.Fatalf("want a *WorkerError, got %v", err)
	}
	// The accumulators died with the worker: the aggregate says so, not 0.
	if _, err := a.Value(ctx, "k"); !errors.Is(err, ErrStateLost) {
		t.Fatalf("after the crash: want ErrStateLost, got %v", err)
	}
	if n, err := a.Restore(ctx, snap); err != nil || n != 1 {
		t.Fatalf("restore: %d, %v", n, err)
	}
	if got, err := a.Value(ctx, "k"); err != nil || got != int64(3) {
		t.Fatalf("after restore: %v, %v", got, err)
	}
}

func TestWorkerInterruptedByDeadline(t *testing.T) {
	m := faultModule(t, Config{})
	e := m.engine
	loop, err := e.LoadSource(context.Background(), "loop.py", `
import time
from pyudf import udf
spin = udf(lambda: [None for _ in iter(int, 1)], result_type="BIGINT")
def _sleepy():
    try:
        time.sleep(60)
    except Exception:
        pass
    return 1
sleepy = udf(_sleepy, result_type="BIGINT")
`)
	if err != nil {
		t.Fatal(err)
	}
	before := call(t, m, "pid")
	for _, name := range []string{"spin", "sleepy"} {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		start := time.Now()
		_, err := function(t, loop, name).Call(ctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%s: want DeadlineExceeded, got %v", name, err)
		}
		if d := time.Since(start); d > interruptGrace {
			t.Errorf("%s: interrupted after %v", name, d)
		}
	}
	// Interrupted by SIGINT, not killed: the same worker answers.
	if after := call(t, m, "pid"); after != before {
		t.Errorf("the worker was replaced (%v -> %v)", before, after)
	}
}

func TestWorkerThatCannotStart(t *testing.T) {
	_, err := New(context.Background(), Config{Mode: Process, Python: "/nonexistent/python3"})
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/python3") {
		t.Fatalf("want an error naming the interpreter, got %v", err)
	}
	_, err = New(context.Background(), Config{Mode: Process, Python: "/bin/false"})
	if err == nil || !strings.Contains(err.Error(), "did not start") {
		t.Fatalf("want a start error, got %v", err)
	}
}

func removeFile(path string) error {
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

// send frames a request as process.go's protocol comment (and
// pyudf/_worker.py) describe it, and refuses what the frame cannot hold.
func TestWorkerRequestFraming(t *testing.T) {
	var out bytes.Buffer
	w := &worker{in: bufio.NewWriter(&out)}
	req := &request{op: opEval, function: 0x0102030405060708, method: "acc", count: 3,
		data: [3][]byte{{4, 'r', 'o', 'w', 's'}, []byte("abc"), []byte("T")}}
	if err := w.send(req); err != nil {
		t.Fatal(err)
	}
	want := []byte{
		33, 0, 0, 0, // size: everything after it
		opEval, 3, 0, 0, // op, len(method), 0
		3, 0, 0, 0, // count
		8, 7, 6, 5, 4, 3, 2, 1, // function, little endian
		'a', 'c', 'c', 0, 0, 0, 0, 0, // method, padded: data starts 8-byte aligned
		4, 'r', 'o', 'w', 's', 'a', 'b', 'c', 'T', // data
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Errorf("framed\n%v\nwant\n%v", out.Bytes(), want)
	}
	out.Reset()
	if err := w.send(&pingRequest); err != nil || !bytes.Equal(out.Bytes(), []byte{16, 0, 0, 0, opPing, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}) {
		t.Errorf("ping framed as %v (%v)", out.Bytes(), err)
	}
	out.Reset()
	err := w.send(&request{op: opCall, method: strings.Repeat("m", 256)})
	if err == nil || !strings.Contains(err.Error(), "longer than 255 bytes") || out.Len() != 0 {
		t.Errorf("a 256-byte method name: %v, %d bytes written", err, out.Len())
	}
}

// A process-mode row call reuses its buffers (arguments, request, reply):
// in steady state it allocates nothing, as in thread mode.
func TestNoAllocationsPerProcessCall(t *testing.T) {
	m := loadModule(t, Config{Mode: Process, Workers: 1}, "allocs.py", `
from pyudf import udf
add = udf(lambda a, b: a + b, input_types=['BIGINT', 'BIGINT'], result_type='BIGINT')
`)
	f := function(t, m, "add")
	args := []bridge.Value{bridge.Int64(1 << 40), bridge.Int64(1)}
	var got bridge.Value
	var err error
	allocs := testing.AllocsPerRun(500, func() { got, err = f.CallValues(context.Background(), args...) })
	if err != nil || got != bridge.Int64(1<<40+1) {
		t.Fatalf("add = %v, %v", got, err)
	}
	if allocs != 0 && !raceEnabled { // make test runs this test without -race too
		t.Errorf("%v allocations per call, want 0", allocs)
	}
}
