package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// cpuTime is the user and system CPU time process pid has used.
func cpuTime(t *testing.T, pid int) time.Duration {
	t.Helper()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("/proc/%d/stat: %q", pid, stat)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

// TestProcessSpinIdleWorkerBlocks: with Config.ProcessSpin, a worker polls
// for the next request after its reply for that long, and then blocks: an
// idle worker uses no CPU.
func TestProcessSpinIdleWorkerBlocks(t *testing.T) {
	const spin = 300 * time.Millisecond
	m := processModule(t, Config{ProcessSpin: spin})
	wantAnswers(t, m)
	pid := m.engine.Workers()[0].PID
	before := cpuTime(t, pid)
	wantAnswers(t, m) // the worker spins for up to 300 ms after this reply
	time.Sleep(spin + 200*time.Millisecond)
	spun := cpuTime(t, pid) - before
	if spun < 30*time.Millisecond || spun > spin+100*time.Millisecond {
		t.Errorf("worker used %v of CPU in the %v after a call; want about the spin, %v", spun, spin+200*time.Millisecond, spin)
	}
	before = cpuTime(t, pid)
	time.Sleep(time.Second)
	if idle := cpuTime(t, pid) - before; idle > 30*time.Millisecond {
		t.Errorf("idle worker used %v of CPU in a second: it did not stop spinning", idle)
	}
	wantAnswers(t, m)
}

// TestHostileProcessSpinDeadline: with both sides spinning, a call whose
// reply comes after the spin is still answered, and a deadline still
// interrupts a UDF in the worker; the engine answers afterwards.
func TestHostileProcessSpinDeadline(t *testing.T) {
	m := processModule(t, Config{ProcessSpin: 20 * time.Millisecond})
	f := function(t, m, "sleep_then")
	if v, err := f.Call(context.Background(), 0.1, ""); err != nil || v != int64(1) {
		t.Fatalf("sleep_then(0.1) = %v, %v; want 1", v, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := f.Call(ctx, 5.0, "")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want DeadlineExceeded, got %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("the call returned after %v, its deadline was 200ms", d)
	}
	wantAnswers(t, m)
}
