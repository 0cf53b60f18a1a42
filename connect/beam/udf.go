// Package pyudfbeam runs PyFlink-style Python UDFs inside Apache Beam Go
// pipelines, through pyudf's embedded interpreter: a scalar UDF per element
// (ScalarFn), a Pandas UDF per bundle (PandasFn) and a PyFlink
// AggregateFunction as a CombineFn (AggregateFn).
//
// Each DoFn carries its UDF in its exported fields (UDF: the Python source,
// file or module, and the function's name), so the code travels with the
// pipeline to every worker. A worker process starts one engine per engine
// configuration in Setup, shared by every DoFn instance and bundle of that
// process and reference-counted; the last Teardown closes it. Runners that
// never call Teardown (Prism) leave it open until the process exits, which is
// harmless: nothing needs flushing. A worker whose parent process ends (a
// worker pool's StopWorker) closes its engines and exits (orphan.go).
package pyudfbeam

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/pyudf/pyudf/bridge"
	"github.com/pyudf/pyudf/engine"
)

// UDF names a Python function and where its code is: exactly one of Source
// (the code itself, which travels with the pipeline), File (a .py file on
// every worker, e.g. in the worker image) or Module (an importable module).
type UDF struct {
	Source string `json:"source,omitempty"`
	// SourceName is the module name Source is loaded as; default
	// "beam_udf_<hash>.py", a hash of Source and the engine configuration, so
	// that two sources or engines in one interpreter do not replace each
	// other's module.
	SourceName string `json:"source_name,omitempty"`
	File       string `json:"file,omitempty"`
	Module     string `json:"module,omitempty"`
	// Function is the name of the UDF (or aggregate function) in the module.
	Function string `json:"function"`
	// Mode is "thread" (the default: Python inside the worker process) or
	// "process" (Python worker processes beside it).
	Mode string `json:"mode,omitempty"`
	// JobParameters are what function_context.get_job_parameter returns.
	JobParameters map[string]string `json:"job_parameters,omitempty"`
}

func (u UDF) check() error {
	n := 0
	for _, s := range []string{u.Source, u.File, u.Module} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("pyudfbeam: UDF %q: set exactly one of Source, File and Module (%d set)", u.Function, n)
	}
	if u.Function == "" {
		return errors.New("pyudfbeam: UDF: Function is empty")
	}
	return nil
}

func (u UDF) mode() (engine.Mode, error) {
	switch u.Mode {
	case "", "thread":
		return engine.Thread, nil
	case "process":
		return engine.Process, nil
	}
	return 0, fmt.Errorf("pyudfbeam: UDF %q: mode %q: want \"thread\" or \"process\"", u.Function, u.Mode)
}

// engineKey identifies an engine configuration: DoFns that agree on it
// share one engine in a worker process.
func (u UDF) engineKey() string {
	b, _ := json.Marshal(struct { // maps marshal with their keys sorted
		Mode   string
		Params map[string]string
	}{u.Mode, u.JobParameters})
	return string(b)
}

// shared holds the worker process's engines, by engine configuration.
var shared = struct {
	sync.Mutex
	engines map[string]*sharedEngine
}{engines: map[string]*sharedEngine{}}

type sharedEngine struct {
	key     string
	refs    int
	engine  *engine.Engine
	modules map[string]*engine.Module // by UDF.moduleKey
}

// handle is one DoFn instance's hold on a shared engine and its module.
type handle struct {
	shared *sharedEngine
	module *engine.Module
}

func (u UDF) moduleKey() string {
	return u.Source + "\x00" + u.SourceName + "\x00" + u.File + "\x00" + u.Module
}

// acquire returns a hold on the engine for u's configuration, starting it if
// this process has none, with u's module loaded.
func acquire(ctx context.Context, u UDF) (*handle, error) {
	if err := u.check(); err != nil {
		return nil, err
	}
	watchIfWorker()
	mode, err := u.mode()
	if err != nil {
		return nil, err
	}
	shared.Lock()
	defer shared.Unlock()
	key := u.engineKey()
	se := shared.engines[key]
	if se == nil {
		e, err := engine.New(ctx, engine.Config{Mode: mode, JobParameters: u.JobParameters})
		if err != nil {
			return nil, fmt.Errorf("pyudfbeam: starting the engine: %w", err)
		}
		se = &sharedEngine{key: key, engine: e, modules: map[string]*engine.Module{}}
		shared.engines[key] = se
	}
	m := se.modules[u.moduleKey()]
	if m == nil {
		switch {
		case u.Source != "":
			name := u.SourceName
			if name == "" {
				// Named by the source and the engine: in thread mode engines
				// share one interpreter, whose sys.modules must not have one
				// engine's module replace another's (pickled accumulators
				// name their classes by module).
				sum := sha256.Sum256([]byte(key + "\x00" + u.Source))
				name = fmt.Sprintf("beam_udf_%x.py", sum[:6])
			}
			m, err = se.engine.LoadSource(ctx, name, u.Source)
		case u.File != "":
			m, err = se.engine.LoadFile(ctx, u.File)
		default:
			m, err = se.engine.Import(ctx, u.Module)
		}
		if err != nil {
			if se.refs == 0 && len(se.modules) == 0 {
				se.engine.Close()
				delete(shared.engines, key)
			}
			return nil, withTraceback(fmt.Errorf("pyudfbeam: loading the module of %q: %w", u.Function, err))
		}
		se.modules[u.moduleKey()] = m
	}
	se.refs++
	return &handle{shared: se, module: m}, nil
}

// release drops the hold; the last one closes the engine.
func (h *handle) release() error {
	if h == nil {
		return nil
	}
	shared.Lock()
	defer shared.Unlock()
	se := h.shared
	se.refs--
	if se.refs > 0 {
		return nil
	}
	delete(shared.engines, se.key)
	return se.engine.Close()
}

// withTraceback returns err with the Python traceback of a *bridge.PythonError
// inside it appended to its message, so that it survives a runner that
// passes errors on as text. errors.As still reaches the PythonError.
func withTraceback(err error) error {
	var pe *bridge.PythonError
	if err == nil || !errors.As(err, &pe) || pe.Traceback == "" {
		return err
	}
	return &tracebackError{err: err, traceback: strings.TrimRight(pe.Traceback, "\n")}
}

type tracebackError struct {
	err       error
	traceback string
}

func (e *tracebackError) Error() string { return e.err.Error() + "\n" + e.traceback }
func (e *tracebackError) Unwrap() error { return e.err }
