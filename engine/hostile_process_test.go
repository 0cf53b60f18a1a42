package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/pyudf/pyudf/bridge"
)

// Hostile UDF behaviour that only process mode can contain: the worker
// dies, forks, leaks processes, floods stderr, ignores signals. Each case
// asserts the exact outcome and that the engine answers right afterwards.

const processSource = `
import ctypes, os, signal, struct, subprocess, sys, threading, time
from pyudf import udf, udaf, AggregateFunction

pid = udf(lambda: os.getpid(), result_type="BIGINT")
add = udf(lambda a, b: a + b, input_types=["BIGINT", "BIGINT"], result_type="BIGINT")

def _exit_now(code):
    os._exit(code)
exit_now = udf(_exit_now, input_types=["INT"], result_type="BIGINT")

def _segfault():
    return len(ctypes.string_at(0))
segfault = udf(_segfault, result_type="BIGINT")

def _fork_and_wait(x):
    child = os.fork()
    if child == 0:
        os._exit(0)
    os.waitpid(child, 0)
    return x + 1
fork_and_wait = udf(_fork_and_wait, input_types=["BIGINT"], result_type="BIGINT")

def _fork_both_return(x):
    os.fork()  # parent and child both return from the UDF
    return x + 1
fork_both_return = udf(_fork_both_return, input_types=["BIGINT"], result_type="BIGINT")

def _fork_child_lingers():
    child = os.fork()
    if child == 0:
        time.sleep(120)
        os._exit(0)
    return child
fork_child_lingers = udf(_fork_child_lingers, result_type="BIGINT")

def _eat_memory():
    import resource
    with open("/proc/self/status") as f:
        size = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmSize:"))
    limit = size + (256 << 20)  # bounded: the test cannot hurt the machine
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    hold = []
    while True:
        hold.append(bytearray(16 << 20))
eat_memory = udf(_eat_memory, result_type="BIGINT")

def _spawn_holding_stderr():
    return subprocess.Popen(["sleep", "120"]).pid  # inherits the worker's stderr
spawn_holding_stderr = udf(_spawn_holding_stderr, result_type="BIGINT")

def _spawn_then_exit():
    subprocess.Popen(["sleep", "120"])
    os._exit(4)
spawn_then_exit = udf(_spawn_then_exit, result_type="BIGINT")

def _escape_holding_pipes(pidfile):
    child = os.fork()
    if child == 0:  # leaves the worker's process group, keeping every fd (the protocol's too)
        os.setsid()
        time.sleep(60)
        os._exit(0)
    with open(pidfile, "w") as f:
        f.write(str(child))
    os._exit(5)
escape_holding_pipes = udf(_escape_holding_pipes, input_types=["STRING"], result_type="BIGINT")

def _sys_exit(code):
    sys.exit(code)
sys_exit = udf(_sys_exit, input_types=["INT"], result_type="BIGINT")

def _keyboard_interrupt():
    raise KeyboardInterrupt("from the UDF")
keyboard_interrupt = udf(_keyboard_interrupt, result_type="BIGINT")

def _long_stderr_line(n):
    os.write(2, b"x" * n + b"\n")
    for i in range(2000):  # 1 MB more: blocks if nobody drains the pipe
        os.write(2, b"line %d " % i + b"y" * 500 + b"\n")
    os.write(2, b"the end\n")
    return n
long_stderr_line = udf(_long_stderr_line, input_types=["BIGINT"], result_type="BIGINT")

def _kill_self():
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(10)
    return 0
kill_self = udf(_kill_self, result_type="BIGINT")

def _ignore_sigint_and_spin():
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        pass
ignore_sigint_and_spin = udf(_ignore_sigint_and_spin, result_type="BIGINT")

def _close_every_fd():
    os.closerange(3, 65536)
    return 1
close_every_fd = udf(_close_every_fd, result_type="BIGINT")

def _forge_reply(kind):
    from pyudf import _host
    forged = {"short": struct.pack("<IBB", 2, 0, 0),
              "status": struct.pack("<IBI", 5, 9, 0),
              "logs": struct.pack("<IBI", 5, 0, 100),
              "error": struct.pack("<IBI", 8, 1, 0) + b"{no",
              "garbage_logs": struct.pack("<IBI", 8, 0, 3) + b"[[x"}[kind]
    _host._native._out.write(forged)  # into the protocol pipe, before the real reply
    return 1
forge_reply = udf(_forge_reply, input_types=["STRING"], result_type="BIGINT")

def _leave_thread_running():
    threading.Thread(target=time.sleep, args=(3600,)).start()  # not a daemon
    return 1
leave_thread_running = udf(_leave_thread_running, result_type="BIGINT")

def _sleep_then(seconds, marker):
    time.sleep(seconds)
    if marker:
        open(marker, "w").close()
    return 1
sleep_then = udf(_sleep_then, input_types=["DOUBLE", "STRING"], result_type="BIGINT")

def _slow_len(s):
    time.sleep(5)
    return len(s)
slow_len = udf(_slow_len, input_types=["STRING"], result_type="BIGINT")

class Count(AggregateFunction):
    def create_accumulator(self): return [0]
    def accumulate(self, acc, x): acc[0] += 1
    def get_value(self, acc): return acc[0]
count = udaf(Count(), input_types=["BIGINT"], result_type="BIGINT")
`

// processModule loads processSource into a process-mode engine of one
// worker (unless cfg says otherwise).
func processModule(t *testing.T, cfg Config) *Module {
	t.Helper()
	cfg.Mode = Process
	if cfg.Workers == 0 {
		cfg.Workers = 1
	}
	return loadModule(t, cfg, "hostile.py", processSource)
}

// wantWorkerDied checks err is the *WorkerError of fn's worker dying for
// reason, and that the engine answers on a restarted worker.
func wantWorkerDied(t *testing.T, m *Module, err error, fn, reason string, pidBefore any) {
	t.Helper()
	var we *WorkerError
	if !errors.As(err, &we) {
		t.Fatalf("%s: want a *WorkerError, got %T %v", fn, err, err)
	}
	wantMessage(t, err, reason, fmt.Sprintf("while running function %q", fn))
	if we.Function != fn || we.PID != int(pidBefore.(int64)) {
		t.Errorf("WorkerError names function %q pid %d; want %q pid %v", we.Function, we.PID, fn, pidBefore)
	}
	wantAnswers(t, m)
	if after := call(t, m, "pid"); after == pidBefore {
		t.Errorf("%s: the worker was not restarted (pid %v)", fn, after)
	}
}

// wantAnswers checks a normal call returns the right value.
func wantAnswers(t *testing.T, m *Module) {
	t.Helper()
	if got := call(t, m, "add", int64(2), int64(40)); got != int64(42) {
		t.Fatalf("add(2, 40) = %v", got)
	}
}

// gone waits until process pid has ended (or is a zombie), for up to 5 s.
func gone(pid int) bool {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return true
		}
		if f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:])); len(f) > 0 && f[0] == "Z" {
			return true
		}
	}
	return false
}

// closeWithin closes e and fails the test if Close takes longer than d.
func closeWithin(t *testing.T, e *Engine, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- e.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(d):
		t.Fatalf("Close has not returned after %v", d)
	}
	return time.Since(start)
}

func TestHostileProcessOsExit(t *testing.T) {
	m := processModule(t, Config{})
	before := call(t, m, "pid")
	_, err := function(t, m, "exit_now").Call(context.Background(), int32(7))
	wantWorkerDied(t, m, err, "exit_now", "exited with status 7", before)
}

func TestHostileProcessSegfault(t *testing.T) {
	m := processModule(t, Config{})
	before := call(t, m, "pid")
	_, err := function(t, m, "segfault").Call(context.Background())
	wantWorkerDied(t, m, err, "segfault", "was killed by signal segmentation fault", before)
}

func TestHostileProcessSignalsItself(t *testing.T) {
	m := processModule(t, Config{})
	before := call(t, m, "pid")
	_, err := function(t, m, "kill_self").Call(context.Background())
	wantWorkerDied(t, m, err, "kill_self", "was killed by signal terminated", before)
}

// A UDF may fork if its child exits: the result is right, the worker stays.
func TestHostileProcessForkAndWait(t *testing.T) {
	m := processModule(t, Config{})
	before := call(t, m, "pid")
	f := function(t, m, "fork_and_wait")
	for i := range int64(20) {
		if got, err := f.Call(context.Background(), i); err != nil || got != i+1 {
			t.Fatalf("fork_and_wait(%d) = %v, %v", i, got, err)
		}
	}
	if after := call(t, m, "pid"); after != before {
		t.Errorf("the worker changed: %v -> %v", before, after)
	}
}

// A forked child that returns from the UDF must not answer too: a second
// reply on the pipe would be read as the next call's result.
func TestHostileProcessForkedChildNeverAnswers(t *testing.T) {
	m := processModule(t, Config{})
	before := call(t, m, "pid")
	f := function(t, m, "fork_both_return")
	for i := range int64(30) {
		if got, err := f.Call(context.Background(), i); err != nil || got != i+1 {
			t.Fatalf("fork_both_return(%d) = %v, %v", i, got, err)
		}
		if got := call(t, m, "add", i, int64(1000)); got != i+1000 {
			t.Fatalf("after fork %d: add = %v (a forked child answered)", i, got)
		}
	}
	if after := call(t, m, "pid"); after != before {
		t.Errorf("the worker changed: %v -> %v", before, after)
	}
}

// A forked child that lingers (holding the worker's pipes) ends with the
// worker's process group at Close, and Close does not wait for it.
func TestHostileProcessForkedChildLingers(t *testing.T) {
	m := processModule(t, Config{})
	child := call(t, m, "fork_child_lingers").(int64)
	wantAnswers(t, m)
	if d := closeWithin(t, m.engine, 10*time.Second); d > 3*time.Second {
		t.Errorf("Close took %v", d)
	}
	if !gone(int(child)) {
		t.Errorf("the forked child %d still runs after Close", child)
	}
}

// A UDF that allocates until its (own, bounded) address-space limit: the
// worker reports the MemoryError and is replaced.
func TestHostileProcessExhaustsMemory(t *testing.T) {
	m := processModule(t, Config{})
	before := call(t, m, "pid")
	_, err := function(t, m, "eat_memory").Call(context.Background())
	wantWorkerDied(t, m, err, "eat_memory", "ran out of memory", before)
	wantMessage(t, err, "MemoryError")
}

// A subprocess that inherits the worker's stderr cannot keep the worker
// from being reaped: Close returns, and the subprocess dies with the group.
func TestHostileProcessSubprocessHoldsStderr(t *testing.T) {
	m := processModule(t, Config{})
	sub := call(t, m, "spawn_holding_stderr").(int64)
	wantAnswers(t, m)
	if d := closeWithin(t, m.engine, 15*time.Second); d > 3*time.Second {
		t.Errorf("Close took %v", d)
	}
	if !gone(int(sub)) {
		t.Errorf("the subprocess %d still runs after Close", sub)
	}
}

// The same when the worker dies: its death is reported at once, not when
// the subprocess closes stderr, and the next call runs on a new worker.
func TestHostileProcessDiesLeavingSubprocess(t *testing.T) {
	m := processModule(t, Config{})
	before := call(t, m, "pid")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	_, err := function(t, m, "spawn_then_exit").Call(ctx)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the death was reported after %v", d)
	}
	wantWorkerDied(t, m, err, "spawn_then_exit", "exited with status 4", before)
}

// A worker that dies while a process out of its group (so not killed with
// it) holds its protocol pipe open: the death is still reported within a
// few seconds, when the pipe is closed after the process ended, though no
// end of file ever comes.
func TestHostileProcessDiesLeavingPipeHolder(t *testing.T) {
	m := processModule(t, Config{})
	before := call(t, m, "pid")
	pidfile := filepath.Join(t.TempDir(), "holder.pid")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	_, err := function(t, m, "escape_holding_pipes").Call(ctx, pidfile)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the death was reported after %v", d)
	}
	if b, rerr := os.ReadFile(pidfile); rerr == nil {
		if holder, _ := strconv.Atoi(string(b)); holder > 0 {
			defer syscall.Kill(holder, syscall.SIGKILL)
		}
	} else {
		t.Errorf("no holder pid: %v", rerr)
	}
	wantWorkerDied(t, m, err, "escape_holding_pipes", "exited with status 5", before)
}

// SystemExit and KeyboardInterrupt from a UDF fail its call with a
// *bridge.PythonError in both modes; the worker serves on.
func TestHostileSystemExitAndKeyboardInterrupt(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := loadModule(t, Config{Workers: 1}, "hostile.py", processSource)
		before := call(t, m, "pid")
		for _, c := range []struct {
			fn       string
			args     []any
			typ, msg string
		}{
			{"sys_exit", []any{int32(3)}, "SystemExit", "3"},
			{"keyboard_interrupt", nil, "KeyboardInterrupt", "from the UDF"},
		} {
			err := callErr(t, function(t, m, c.fn), c.args...)
			var pe *bridge.PythonError
			if !errors.As(err, &pe) {
				t.Fatalf("%s: want a *bridge.PythonError, got %T %v", c.fn, err, err)
			}
			if pe.Type != c.typ || pe.Message != c.msg || pe.Function != c.fn {
				t.Errorf("%s: PythonError = %+v", c.fn, pe)
			}
			wantAnswers(t, m)
		}
		if after := call(t, m, "pid"); after != before {
			t.Errorf("the worker changed: %v -> %v", before, after)
		}
	})
}

// A 2 MB stderr line neither stops the drain nor blocks the worker; the
// log gets the line cut to maxStderrLine, and every line after it.
func TestHostileProcessLongStderrLine(t *testing.T) {
	h := &recordHandler{level: slog.LevelWarn}
	m := processModule(t, Config{Logger: slog.New(h)})
	before := call(t, m, "pid")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for range 2 {
		if got, err := function(t, m, "long_stderr_line").Call(ctx, int64(2<<20)); err != nil || got != int64(2<<20) {
			t.Fatalf("long_stderr_line = %v, %v", got, err)
		}
	}
	wantAnswers(t, m)
	if after := call(t, m, "pid"); after != before {
		t.Errorf("the worker changed: %v -> %v", before, after)
	}
	var cut, ends int
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && ends < 2; time.Sleep(10 * time.Millisecond) {
		h.mu.Lock()
		cut, ends = 0, 0
		for _, r := range h.records {
			if strings.Contains(r, fmt.Sprintf("[... %d more bytes]", 2<<20-maxStderrLine)) {
				cut++
			}
			if strings.Contains(r, "WARN the end ") {
				ends++
			}
		}
		h.mu.Unlock()
	}
	if cut != 2 || ends != 2 {
		t.Errorf("log holds %d cut lines and %d last lines; want 2 and 2", cut, ends)
	}
}

// A UDF that ignores SIGINT is killed after interruptGrace; its caller
// gets the deadline's error and the next call a new worker.
func TestHostileProcessIgnoresInterrupt(t *testing.T) {
	m := processModule(t, Config{})
	before := call(t, m, "pid")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := function(t, m, "ignore_sigint_and_spin").Call(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want DeadlineExceeded, got %v", err)
	}
	if d := time.Since(start); d > interruptGrace+2*time.Second {
		t.Errorf("returned after %v", d)
	}
	wantAnswers(t, m)
	if after := call(t, m, "pid"); after == before {
		t.Errorf("the worker was not replaced")
	}
}

// A UDF that closes the worker's protocol pipes kills only its worker.
func TestHostileProcessClosesItsPipes(t *testing.T) {
	m := processModule(t, Config{})
	before := call(t, m, "pid")
	_, err := function(t, m, "close_every_fd").Call(context.Background())
	wantWorkerDied(t, m, err, "close_every_fd", "worker 0", before)
}

// A UDF that writes a reply of its own into the protocol pipe, one that
// does not follow the protocol, costs only its worker: the call fails with a
// *WorkerError saying so, and the next call runs on a new worker.
func TestHostileProcessForgesMalformedReply(t *testing.T) {
	m := processModule(t, Config{})
	for kind, want := range map[string]string{
		"short":        "malformed reply: a message of 2 bytes",
		"status":       "malformed reply: status 9",
		"logs":         "malformed reply: 100 bytes of logs in a 5-byte message",
		"error":        "malformed reply: an unreadable exception",
		"garbage_logs": "malformed reply: unreadable logs",
	} {
		before := call(t, m, "pid")
		_, err := function(t, m, "forge_reply").Call(context.Background(), kind)
		wantWorkerDied(t, m, err, "forge_reply", want, before)
		wantMessage(t, err, "it was replaced")
	}
}

// A non-daemon thread left running does not hold up Close.
func TestHostileProcessThreadLeftRunning(t *testing.T) {
	m := processModule(t, Config{})
	if got := call(t, m, "leave_thread_running"); got != int64(1) {
		t.Fatalf("leave_thread_running = %v", got)
	}
	if d := closeWithin(t, m.engine, 10*time.Second); d > 2*time.Second {
		t.Errorf("Close took %v", d)
	}
}

// Item 11: a call queued behind a long one returns at its deadline, and
// never runs later.
func TestHostileProcessQueuedCallHonoursDeadline(t *testing.T) {
	m := processModule(t, Config{})
	f := function(t, m, "sleep_then")
	marker := t.TempDir() + "/ran"
	long := make(chan error, 1)
	go func() {
		_, err := f.Call(context.Background(), 2.0, "")
		long <- err
	}()
	time.Sleep(200 * time.Millisecond) // the long call holds the only worker
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := f.Call(ctx, 0.0, marker)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("queued call: want DeadlineExceeded, got %v", err)
	}
	wantMessage(t, err, `function "sleep_then" cancelled while waiting for a worker`)
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("queued call returned after %v, its deadline was 200ms", d)
	}
	if err := <-long; err != nil {
		t.Fatalf("long call: %v", err)
	}
	wantAnswers(t, m)
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Errorf("the queued call ran after its deadline (%v)", err)
	}
}

// The same for a call queued behind a LoadSource that waits for the worker.
func TestHostileProcessCallQueuedBehindLoad(t *testing.T) {
	m := processModule(t, Config{})
	f, add := function(t, m, "sleep_then"), function(t, m, "add")
	long := make(chan error, 1)
	go func() {
		_, err := f.Call(context.Background(), 1.5, "")
		long <- err
	}()
	time.Sleep(200 * time.Millisecond)
	load := make(chan error, 1)
	go func() {
		_, err := m.engine.LoadSource(context.Background(), "later.py", "x = 1\n")
		load <- err
	}()
	time.Sleep(100 * time.Millisecond) // the load waits for the worker, holding the setup
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := add.Call(ctx, int64(1), int64(2)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want DeadlineExceeded, got %v", err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("returned after %v, its deadline was 200ms", d)
	}
	// A load with a deadline gives up the same way.
	lctx, lcancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer lcancel()
	if _, err := m.engine.LoadSource(lctx, "other.py", "y = 2\n"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("load: want DeadlineExceeded, got %v", err)
	}
	if err := <-long; err != nil {
		t.Fatal(err)
	}
	if err := <-load; err != nil {
		t.Fatal(err)
	}
	wantAnswers(t, m)
}

// Item 14: a deadline that ends while a large request is being written or
// read cancels the call (or it succeeds); the worker is never killed and
// the aggregate on it keeps its accumulators.
func TestHostileProcessCancelDuringLargeRequest(t *testing.T) {
	m := processModule(t, Config{})
	a := openAggregate(t, m, "count")
	ctx := context.Background()
	for range 3 {
		if err := a.Accumulate(ctx, "k", int64(1)); err != nil {
			t.Fatal(err)
		}
	}
	before := call(t, m, "pid")
	big := strings.Repeat("x", 32<<20)
	f := function(t, m, "slow_len")
	for _, d := range []time.Duration{time.Millisecond, 5 * time.Millisecond, 20 * time.Millisecond, 60 * time.Millisecond} {
		cctx, cancel := context.WithTimeout(ctx, d)
		start := time.Now()
		_, err := f.Call(cctx, big)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("deadline %v: want DeadlineExceeded, got %v", d, err)
		}
		if took := time.Since(start); took > interruptGrace {
			t.Errorf("deadline %v: returned after %v", d, took)
		}
	}
	if after := call(t, m, "pid"); after != before {
		t.Fatalf("the worker was killed: %v -> %v", before, after)
	}
	if got := value(t, a, "k"); got != int64(3) {
		t.Errorf("count after the cancellations = %v, want 3", got)
	}
}

// Item 14: workers outlive the OS thread of the goroutine that created
// the engine (Pdeathsig fires when the thread that forked a worker ends).
// In a process of its own: ending a thread is what the test is about.
func TestHostileProcessWorkerOutlivesCreatingThread(t *testing.T) {
	runChild(t, "workerthread")
}

// Close while goroutines call: every call returns its right value or
// ErrClosed, Close returns, and no worker is left.
func TestHostileProcessCloseUnderLoad(t *testing.T) {
	e, err := New(context.Background(), Config{Mode: Process, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	m, err := e.LoadSource(context.Background(), "hostile.py", processSource)
	if err != nil {
		t.Fatal(err)
	}
	f, err := m.Function(context.Background(), "add")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var ok, closed atomic.Int64
	stop := make(chan struct{})
	for g := range int64(8) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int64(0); ; i++ {
				got, err := f.Call(context.Background(), g, i)
				switch {
				case errors.Is(err, ErrClosed):
					closed.Add(1)
					select {
					case <-stop:
						return
					default:
					}
				case err != nil:
					t.Errorf("call during Close: %v", err)
					return
				case got != g+i:
					t.Errorf("add(%d, %d) = %v", g, i, got)
					return
				default:
					ok.Add(1)
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	if d := closeWithin(t, e, 10*time.Second); d > 5*time.Second {
		t.Errorf("Close took %v", d)
	}
	close(stop)
	wg.Wait()
	if ok.Load() == 0 || closed.Load() < 8 {
		t.Errorf("%d calls succeeded, %d saw ErrClosed", ok.Load(), closed.Load())
	}
	for _, w := range e.Workers() {
		if w.PID != 0 {
			t.Errorf("worker %d still runs after Close: %+v", w.Index, w)
		}
	}
}

// Requests after Close fail with ErrClosed and start no worker, even one
// that reaches the pool past the Function's own check.
func TestHostileProcessRequestAfterClose(t *testing.T) {
	e, err := New(context.Background(), Config{Mode: Process, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	m, err := e.LoadSource(context.Background(), "hostile.py", processSource)
	if err != nil {
		t.Fatal(err)
	}
	f, err := m.Function(context.Background(), "add")
	if err != nil {
		t.Fatal(err)
	}
	a, err := m.Aggregate(context.Background(), "count")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	before := len(workerProcesses())
	if _, err := f.Call(context.Background(), int64(1), int64(2)); !errors.Is(err, ErrClosed) {
		t.Errorf("Call after Close: %v", err)
	}
	if err := a.Accumulate(context.Background(), "k", int64(1)); !errors.Is(err, ErrClosed) {
		t.Errorf("Accumulate after Close: %v", err)
	}
	if _, err := e.backend.(*workers).callValue(context.Background(), f, &request{op: opCall, count: 2}, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("a request past the Function's check: %v", err)
	}
	if _, err := e.LoadSource(context.Background(), "x.py", "x = 1\n"); !errors.Is(err, ErrClosed) {
		t.Errorf("LoadSource after Close: %v", err)
	}
	if after := len(workerProcesses()); after != before {
		t.Errorf("%d worker processes after the requests, %d before", after, before)
	}
	if ws := e.Workers(); ws[0].PID != 0 {
		t.Errorf("a worker was started after Close: %+v", ws)
	}
}

// Loading a module of the same name again: each load's functions keep
// their own code, also after the worker is restarted and replays both.
func TestHostileProcessReload(t *testing.T) {
	m := processModule(t, Config{})
	e := m.engine
	ctx := context.Background()
	v1, err := e.LoadSource(ctx, "reloaded.py", "def which():\n    return 'first'\n")
	if err != nil {
		t.Fatal(err)
	}
	f1 := function(t, v1, "which")
	v2, err := e.LoadSource(ctx, "reloaded.py", "def which():\n    return 'second'\n")
	if err != nil {
		t.Fatal(err)
	}
	f2 := function(t, v2, "which")
	check := func(when string) {
		t.Helper()
		for f, want := range map[*Function]string{f1: "first", f2: "second"} {
			if got, err := f.Call(ctx); err != nil || got != want {
				t.Errorf("%s: which() = %v, %v; want %q", when, got, err, want)
			}
		}
	}
	check("after the reload")
	before := call(t, m, "pid")
	_, err = function(t, m, "exit_now").Call(ctx, int32(9))
	wantWorkerDied(t, m, err, "exit_now", "exited with status 9", before)
	check("after the restart")
}

// Two process-mode engines in one process: same module name, own code,
// own workers; one's crash and Close leave the other alone.
func TestHostileProcessTwoEngines(t *testing.T) {
	ctx := context.Background()
	src := "from pyudf import udf\nimport os\nwho = udf(lambda: %q, result_type='STRING')\n" +
		"pid = udf(lambda: os.getpid(), result_type='BIGINT')\n" +
		"die = udf(lambda: os._exit(6), result_type='BIGINT')\n"
	a := loadModule(t, Config{Mode: Process, Workers: 1}, "same.py", fmt.Sprintf(src, "a"))
	b := loadModule(t, Config{Mode: Process, Workers: 1}, "same.py", fmt.Sprintf(src, "b"))
	if call(t, a, "who") != "a" || call(t, b, "who") != "b" {
		t.Fatalf("who: %v, %v", call(t, a, "who"), call(t, b, "who"))
	}
	pidB := call(t, b, "pid")
	if _, err := function(t, a, "die").Call(ctx); !errors.As(err, new(*WorkerError)) {
		t.Fatalf("die: want a *WorkerError, got %v", err)
	}
	if call(t, a, "who") != "a" || call(t, b, "who") != "b" || call(t, b, "pid") != pidB {
		t.Errorf("after a's crash: a %v, b %v pid %v (was %v)", call(t, a, "who"), call(t, b, "who"), call(t, b, "pid"), pidB)
	}
	closeWithin(t, a.engine, 10*time.Second)
	if _, err := function(t, b, "who").Call(ctx); err != nil {
		t.Errorf("b after a's Close: %v", err)
	}
	if call(t, b, "pid") != pidB {
		t.Errorf("b's worker changed")
	}
}

// Item 15: a process-mode Stream holds back a producer faster than its
// consumer: the bundles in flight (and the goroutines running them) stay
// bounded, and every result is right and in order.
func TestHostileProcessStreamBackPressure(t *testing.T) {
	m := processModule(t, Config{Workers: 2, BundleSize: 10, BundleTime: time.Millisecond})
	s, err := function(t, m, "add").Stream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	bound := cap(s.slots)
	if bound != 4 {
		t.Fatalf("in-flight bound %d, want 2 x 2 workers", bound)
	}
	const rows = 5000
	base := runtime.NumGoroutine()
	var peakGoroutines, peakInflight atomic.Int64
	sample := func() {
		if n := int64(runtime.NumGoroutine() - base); n > peakGoroutines.Load() {
			peakGoroutines.Store(n)
		}
		if n := int64(len(s.slots)); n > peakInflight.Load() {
			peakInflight.Store(n)
		}
	}
	go func() {
		for i := range int64(rows) {
			if err := s.Send(i, int64(1)); err != nil {
				t.Error(err)
				break
			}
			if i%50 == 0 {
				sample()
			}
		}
		s.Close()
	}()
	n := int64(0)
	for r := range s.Results() {
		if r.Seq != n || r.Err != nil || r.Value != n+1 {
			t.Fatalf("result %d = %+v", n, r)
		}
		if n%100 == 0 {
			time.Sleep(2 * time.Millisecond) // a slow consumer
			sample()
		}
		n++
	}
	if n != rows {
		t.Fatalf("%d results for %d rows", n, rows)
	}
	// One goroutine per bundle in flight, the producer, and a few of the
	// engine's (timers, the interrupt watch of a request).
	if peakInflight.Load() > int64(bound) || peakGoroutines.Load() > int64(bound)+8 {
		t.Errorf("peak %d bundles in flight, %d goroutines over the %d before; bound %d",
			peakInflight.Load(), peakGoroutines.Load(), base, bound)
	}
}

// A Send held back by back-pressure returns when the stream's context ends.
func TestHostileProcessStreamSendHonoursContext(t *testing.T) {
	m := processModule(t, Config{Workers: 1, BundleSize: 1, BundleTime: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	s, err := function(t, m, "add").Stream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Nobody reads Results: the 2 slots fill and the next Send blocks.
	errc := make(chan error, 1)
	go func() {
		for i := int64(0); ; i++ {
			if err := s.Send(i, int64(1)); err != nil {
				errc <- err
				return
			}
		}
	}()
	select {
	case err := <-errc:
		t.Fatalf("Send did not block: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("blocked Send: want context.Canceled, got %v", err)
		}
		wantMessage(t, err, `function "add": stream`)
	case <-time.After(2 * time.Second):
		t.Fatal("blocked Send did not return when its context ended")
	}
	s.Close()
	for range s.Results() { // every row sent still gets a result
	}
	wantAnswers(t, m)
}

// Item 16: a user module named like a package that is not imported yet
// loads under a safe name; batch calls (which import pyarrow, pandas and
// numpy) still work, and so do snapshots of its aggregates.
func TestHostileModuleNamedLikePackage(t *testing.T) {
	modes(t, func(t *testing.T) {
		e := newEngine(t, Config{Workers: 1})
		ctx := context.Background()
		src := processSource + "\nplus_one = udf(lambda x: x + 1, input_types=['BIGINT'], result_type='BIGINT', func_type='pandas')\n"
		var last *Module
		for _, name := range []string{"pyarrow", "numpy", "pandas", "json"} {
			m, err := e.LoadSource(ctx, name+".py", src)
			if err != nil {
				t.Fatalf("%s.py: %v", name, err)
			}
			if m.Name() != "pyudf_user_"+name {
				t.Errorf("%s.py loaded as %q", name, m.Name())
			}
			last = m
		}
		mem := checkedAllocator(t)
		rec := batchOf(t, mem, arrow.PrimitiveTypes.Int64, `[1, 2, 3]`)
		defer rec.Release()
		res, err := function(t, last, "plus_one").Eval(ctx, rec)
		if err != nil {
			t.Fatalf("Pandas batch after the loads: %v", err)
		}
		if got := jsonOf(t, res); got != "[2,3,4]" {
			t.Errorf("plus_one = %s", got)
		}
		res.Release()
		a := openAggregate(t, last, "count")
		for range 2 {
			if err := a.Accumulate(ctx, "k", int64(1)); err != nil {
				t.Fatal(err)
			}
		}
		snap, err := a.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		b := openAggregate(t, last, "count")
		if n, err := b.Restore(ctx, snap); err != nil || n != 1 {
			t.Fatalf("restore: %d, %v", n, err)
		}
		if got := value(t, b, "k"); got != int64(2) {
			t.Errorf("restored count = %v", got)
		}
	})
}

// The thread-mode half of TestHostileModuleNamedLikePackage in an
// interpreter of its own, where pyarrow is certainly not imported yet.
func TestHostileModuleNamedLikePackageFreshInterpreter(t *testing.T) {
	runChild(t, "pyarrowname")
}

// TestHostileProcessWaitsForAnyWorker: with every worker busy, a call waits
// for whichever worker frees first, not for the one round-robin named (it
// failed its 1 s deadline behind a 3 s call while the other worker was idle
// after 50 ms).
func TestHostileProcessWaitsForAnyWorker(t *testing.T) {
	cfg := Config{Mode: Process, Workers: 2, Logger: slog.New(slog.DiscardHandler)}
	m := loadModule(t, cfg, "sleeper.py", "import time\nfrom pyudf import udf\n"+
		"@udf(input_types=['DOUBLE'], result_type='BIGINT')\ndef nap(s):\n    time.sleep(s)\n    return 1\n")
	nap := function(t, m, "nap")
	for i := range 3 {
		var wg sync.WaitGroup
		wg.Go(func() { nap.Call(context.Background(), 2.0) })
		time.Sleep(100 * time.Millisecond)
		wg.Go(func() { nap.Call(context.Background(), 0.05) })
		time.Sleep(10 * time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if v, err := nap.Call(ctx, 0.0); err != nil || v != int64(1) {
			t.Errorf("try %d: a call behind one busy and one soon idle worker: %v, %v", i, v, err)
		}
		cancel()
		wg.Wait()
	}
}
