package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMain runs a child scenario (child_test.go) or the tests, and fails the
// run if a test left a worker process behind.
func TestMain(m *testing.M) {
	runChildScenario()
	code := m.Run()
	if orphans := workerProcesses(); len(orphans) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: worker processes left running after the tests: %v\n", orphans)
		code = 1
	}
	os.Exit(code)
}

// workerProcesses lists the pids of this process's pyudf worker children.
func workerProcesses() []string {
	var out []string
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, stat := range stats {
		b, err := os.ReadFile(stat)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: the comm may hold spaces, so split after ')'.
		fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(fields) < 2 || fields[1] != fmt.Sprint(os.Getpid()) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join(filepath.Dir(stat), "cmdline"))
		if strings.Contains(string(cmdline), "pyudf._worker") {
			out = append(out, filepath.Base(filepath.Dir(stat)))
		}
	}
	return out
}

// modes runs test once per mode, as subtests "thread", "process" and, on
// CPython 3.12+, "subinterpreters"; newEngine inside it makes engines of
// that mode.
func modes(t *testing.T, test func(t *testing.T)) {
	for _, mode := range []Mode{Thread, Process, Subinterpreters} {
		if mode == Subinterpreters && !subinterpreters() {
			continue // TestSubinterpretersRefusedBefore312 checks the refusal
		}
		t.Run(mode.String(), test)
	}
}

// sharedModes is modes without Subinterpreters, for tests that read one
// function's module globals from another function (in that mode every
// interpreter has a copy of its own: TestSubinterpretersGlobalsPerInterpreter),
// and for dependency tests whose thread-mode subtest leaves a package in the
// main interpreter, which that mode shares, so that installing it again in
// the same process is the conflict it is meant to be (TestDepsThreadModeRefusesAnotherVersionOfAnImportedPackage).
func sharedModes(t *testing.T, test func(t *testing.T)) {
	for _, mode := range []Mode{Thread, Process} {
		t.Run(mode.String(), test)
	}
}

// modeOf is the mode a test named name runs in: that of the modes subtest
// it is inside, else thread.
func modeOf(name string) Mode {
	for _, part := range strings.Split(name, "/")[1:] {
		switch part {
		case "process":
			return Process
		case "subinterpreters":
			return Subinterpreters
		}
	}
	return Thread
}

// testProcessSpin is $PYUDF_TEST_PROCESS_SPIN (a time.Duration, e.g.
// 200us): newEngine's default Config.ProcessSpin, so that every process-mode
// test can be run with both sides of the pipe spinning.
var testProcessSpin = processSpinFromEnv()

// processSpinFromEnv parses $PYUDF_TEST_PROCESS_SPIN; a value that is not a
// duration stops the test binary, rather than running the suites unspun.
func processSpinFromEnv() time.Duration {
	s := os.Getenv("PYUDF_TEST_PROCESS_SPIN")
	if s == "" {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		fmt.Fprintf(os.Stderr, "PYUDF_TEST_PROCESS_SPIN=%q is not a duration (such as 200us): %v\n", s, err)
		os.Exit(2)
	}
	return d
}

// newEngine returns an engine closed when the test ends, in the mode of the
// test (see modes) unless cfg sets one.
func newEngine(tb testing.TB, cfg Config) *Engine {
	tb.Helper()
	if cfg.Mode == Thread {
		cfg.Mode = modeOf(tb.Name())
	}
	if cfg.Mode == Process && cfg.Workers == 0 {
		cfg.Workers = 2
	}
	if cfg.Mode == Process && cfg.ProcessSpin == 0 {
		cfg.ProcessSpin = testProcessSpin // the process-mode suites run with a spin too
	}
	if cfg.Mode == Subinterpreters && cfg.Interpreters == 0 {
		cfg.Interpreters = 2
	}
	e, err := New(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := e.Close(); err != nil {
			tb.Error(err)
		}
	})
	return e
}

// loadModule loads source as module name into a new engine (see newEngine).
func loadModule(tb testing.TB, cfg Config, name, source string) *Module {
	tb.Helper()
	m, err := newEngine(tb, cfg).LoadSource(context.Background(), name, source)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// threadStatesUDF defines thread_states(): the interpreter's thread states.
const threadStatesUDF = `
import ctypes
from pyflink.table.udf import udf

_api = ctypes.pythonapi
for _name, _args in (("PyInterpreterState_Get", []), ("PyInterpreterState_ThreadHead", [ctypes.c_void_p]),
                     ("PyThreadState_Next", [ctypes.c_void_p])):
    getattr(_api, _name).restype = ctypes.c_void_p
    getattr(_api, _name).argtypes = _args

@udf(result_type='BIGINT')
def thread_states():
    n, ts = 0, _api.PyInterpreterState_ThreadHead(_api.PyInterpreterState_Get())
    while ts:
        n, ts = n + 1, _api.PyThreadState_Next(ts)
    return n
`

// gateOf is a thread-mode engine's gate.
func gateOf(e *Engine) *gate { return e.backend.(*interpreter).gate }

// osThreads is the number of OS threads of this process.
func osThreads(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if n, ok := strings.CutPrefix(line, "Threads:"); ok {
			var v int64
			fmt.Sscan(n, &v)
			return v
		}
	}
	t.Fatal("no Threads: line in /proc/self/status")
	return 0
}

// osThreadIDs is the set of this process's OS thread ids.
func osThreadIDs(t *testing.T) map[string]bool {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	ids := make(map[string]bool, len(entries))
	for _, e := range entries {
		ids[e.Name()] = true
	}
	return ids
}
