// Package engine runs Python user-defined functions inside the Go process.
//
// It is pyudf's API, with packages bridge (types, values, errors) and
// arrowconv (Arrow record batches); package cgo and internal/ are internal
// machinery with no stability promise.
//
// CPython is embedded through cgo. A program creates an Engine, loads Python
// code (a source string, a .py file or an importable module), looks functions
// up by name and calls them synchronously, one row per call:
//
//	eng, err := engine.New(ctx, engine.Config{})
//	mod, err := eng.LoadFile(ctx, "udfs.py")
//	add, err := mod.Function(ctx, "add")
//	sum, err := add.Call(ctx, int64(1), int64(2)) // int64(3)
//
// The Python code is PyFlink's: ScalarFunction subclasses, @udf functions,
// lambdas, callable objects and partials, with types given as DataTypes, DDL
// strings or type hints. open(function_context) runs when a function is looked
// up, close() when it or its engine is closed.
//
// Beyond row calls (every batch operation is one crossing per batch):
//   - Arrow record batches (arrow-go/v18): Function.Eval runs a general UDF
//     row by row (the loop in C), a Pandas UDF over pd.Series or an Arrow UDF
//     over pyarrow Arrays; EvalRowErrors turns failing rows into nulls plus
//     messages; Map is PyFlink's row-based map.
//   - Aggregates: Module.Aggregate keeps one accumulator per key in Python
//     (Accumulate, Retract, Merge, Value, AccumulateBatch, Snapshot, Restore);
//     Function.Reduce runs a Pandas UDAF over a batch.
//   - Table functions: Function.Rows iterates over one row's output rows;
//     Function.Explode runs over a batch.
//   - Windows: NewWindows and NewPandasWindows drive an aggregate over keyed
//     tumbling, sliding or session windows in event time, with a watermark,
//     allowed lateness and a side output for late rows.
//
// # Thread model
//
// There is one interpreter per process, started by the first New on a
// goroutine locked to its OS thread, and never finalized. Engines share it;
// each has its own modules, job parameters and metrics.
//
// Any goroutine may call any Function concurrently. Each call is one cgo
// crossing: the C side takes the GIL, converts the arguments, calls the
// Python function, converts the result and releases the GIL. Every OS thread
// gets its own Python thread state on its first call, reused by all later
// calls on that thread. A function instance whose class defines open() or
// close() runs on an OS thread of its own instead, as under PyFlink (see
// Config.Affinity and Affinity). Python code runs under the GIL, so calls execute one
// at a time anyway: they queue in Go, Config.Concurrency at a time (default
// 1), rather than as OS threads waiting for the GIL, which would wake a thread
// on every release. Raise Concurrency for UDFs that release the GIL (I/O,
// numpy, time.sleep) so that their calls overlap.
//
// A call whose context is cancelled, or passes its deadline, is interrupted:
// Cancelled (a BaseException) is raised inside the Python code, and the call
// returns an error wrapping ctx.Err(). Code blocked in C without returning to
// the interpreter (a long time.sleep) is interrupted when it returns.
//
// # Process mode
//
// With Config.Mode = Process the same API runs Python in worker processes
// (Config.Workers of them) started from the configured interpreter; no
// interpreter is embedded. Each worker serves one request at a time; calls
// from many goroutines spread over idle workers, and run in parallel. A
// worker that dies is restarted; see WorkerError, ErrStateLost and
// Config.RetryInFlight. Function.Stream bundles rows for it.
//
// # Sub-interpreters
//
// With Config.Mode = Subinterpreters (CPython 3.12 and later) row calls of
// pure-Python scalar functions run in a pool of sub-interpreters, each with
// a GIL of its own and an OS thread of its own (Config.Interpreters, one per
// CPU by default), so that they use every core; each sub-interpreter has its
// own copy of every module and its own instance of each such function. What
// cannot run there (modules importing numpy, pandas, pyarrow or another
// extension without sub-interpreter support, Pandas and Arrow UDFs, batches,
// aggregates, table functions) runs on the main interpreter, as in thread
// mode. The sub-interpreters belong to the process and are shared by its
// engines.
//
// Python's logging records and print output go to Config.Logger (log/slog),
// with the logger name; the interpreter is shared, so they go to the Logger of
// the most recently created Engine. The handler runs while the logging call
// holds its place in the queue: it must not call the engine's functions.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures an Engine. The zero value is ready to use.
type Config struct {
	// Python is the interpreter executable whose installation (and
	// virtualenv, if it lives in one) the embedded interpreter uses. Empty:
	// $PYUDF_PYTHON, else libpython's own installation. It must be the same
	// major.minor version pyudf was built against. Only the first Engine of a
	// process chooses; later ones must agree.
	Python string
	// Path lists directories appended to sys.path (after site-packages).
	Path []string
	// PythonFiles are .py files, directories, and .zip, .whl and .egg files
	// put in front of sys.path, in this order, before the requirements and
	// site-packages (PyFlink's add_python_file, python.files), so that they
	// can shadow an installed package. A .zip or .whl is imported as it is.
	PythonFiles []string
	// Requirements is a requirements file that the engine installs with the
	// interpreter's own pip into a directory of CacheDir named by the hash of
	// the file, RequirementsCache's listing and the interpreter; later
	// engines and restarts reuse it. With RequirementsCache (a directory of
	// wheels and sdists, from pip download) pip runs offline: --no-index
	// --find-links (PyFlink's set_python_requirements, python.requirements).
	// Thread mode shares one interpreter: a requirement whose version differs
	// from a module already imported is refused (*DependencyError).
	Requirements      string
	RequirementsCache string
	// Archives are extracted, each under its target name, into one directory
	// (Dependencies().ArchivesDir): process-mode workers run in it, so UDFs
	// read "target/file" by a relative path, as under PyFlink's
	// add_python_archive (python.archives); in thread mode UDFs ask
	// function_context.get_archive_dir(target). Treat it as read-only.
	Archives []Archive
	// CacheDir holds installed requirements, extracted archives and staged
	// python files; empty: $PYUDF_CACHE_DIR, else os.UserCacheDir()/pyudf.
	CacheDir string
	// JobParameters are what function_context.get_job_parameter returns.
	JobParameters map[string]string
	// Logger receives Python's logging records and print output; nil means
	// slog.Default().
	Logger *slog.Logger
	// Concurrency is how many row calls of this engine may be inside the
	// interpreter at once; the others queue in Go. 0 or 1 suits Python code
	// that holds the GIL (most UDFs): it keeps the GIL uncontended. Raise it
	// for UDFs that release the GIL (I/O, numpy, calls to a model server).
	// Thread mode only.
	Concurrency int
	// Affinity says which OS threads run a function instance's Python code:
	// by default (AffinityAuto) an instance whose class defines open() or
	// close() gets one of its own, as under PyFlink, and any other function
	// runs on the caller's. A call handed to an instance's thread costs
	// a few microseconds more (docs/threads.md, "Thread affinity"), and such an
	// instance runs one call at a time. Thread mode only: in process mode
	// every instance lives on a worker's one thread.
	Affinity Affinity

	// Mode is Thread (the default: Python inside this process), Process
	// (Python in worker processes) or Subinterpreters (row calls spread over
	// sub-interpreters with a GIL each, CPython 3.12+).
	Mode Mode
	// Interpreters is the number of sub-interpreters of Mode
	// Subinterpreters; 0 means one per CPU. Each has its own copy of every
	// module that can be imported in a sub-interpreter, and its own instance
	// of each of its general scalar and aggregate functions (open() runs in
	// each; each key's accumulator lives in one sub-interpreter); batches,
	// table functions and modules that import numpy, pandas, pyarrow or any
	// other extension without sub-interpreter support run on the main
	// interpreter, with one log line for each such module.
	Interpreters int

	// The rest of this struct is process mode's.
	// Workers is the number of worker processes; 0 means one per CPU.
	Workers int
	// WorkerMemoryLimit caps each worker's address space, in bytes
	// (RLIMIT_AS); 0 means no limit. A worker that exceeds it (a MemoryError
	// or a failed allocation) is restarted; the request fails with a
	// *WorkerError.
	WorkerMemoryLimit int64
	// RetryInFlight runs a request whose worker died once more, on the
	// restarted worker, instead of failing it at once. Aggregate calls are
	// never retried: their accumulators died with the worker (ErrStateLost).
	RetryInFlight bool
	// BundleSize and BundleTime bound a Stream's bundles in process mode:
	// a bundle is sent when it holds BundleSize rows or its first row has
	// waited BundleTime (defaults 1000 rows and 1s, as PyFlink's).
	BundleSize int
	BundleTime time.Duration
	// ProcessSpin is how long each side of a worker's pipe polls for the
	// other's next message before it blocks: the Go caller waiting for a
	// reply, and the worker waiting for the next request after it replied.
	// On a virtual machine whose idle vCPUs halt, a blocked side's wake-up
	// costs tens of µs per message; spinning through a short gap avoids it
	// (a synchronous row call: docs/performance.md, "Process mode's spin").
	// It costs CPU: up to ProcessSpin of busy polling per call on each
	// side, and a spinning side takes a core a worker may need when callers
	// outnumber cores. 0 (the default) never spins; 50µs–200µs covers
	// back-to-back synchronous calls. An idle worker blocks once the spin
	// is over; cancellation and deadlines work as without it.
	ProcessSpin time.Duration
}

// Errors that callers can test for with errors.Is.
var (
	// ErrClosed: the Engine or Function was closed.
	ErrClosed = errors.New("pyudf: closed")
	// ErrUnknownFunction: the module has no attribute of that name.
	ErrUnknownFunction = errors.New("pyudf: unknown function")
	// ErrArgumentCount: a call with a different number of arguments than declared.
	ErrArgumentCount = errors.New("pyudf: wrong number of arguments")
	// ErrUnsupported: the function is of a kind this engine does not run.
	ErrUnsupported = errors.New("pyudf: unsupported function")
	// ErrEventTime: an event time that Windows cannot place (see Windows.Add).
	ErrEventTime = errors.New("pyudf: event time out of range")
)

// Engine loads Python code and hands out its functions. It is safe for
// concurrent use. Close it to close every function it handed out.
type Engine struct {
	id     int64
	cfg    Config
	logger *slog.Logger

	python, executable string // the interpreter's version and sys.executable
	deps               Dependencies

	backend backend      // how Python runs: interpreter or workers
	handles atomic.Int64 // process mode: ids of modules and functions

	closed atomic.Bool
	mu     sync.Mutex
	funcs  map[*Function]struct{}
	aggs   map[*Aggregate]struct{}
	ops    map[*Operator]struct{}
}

var (
	engineIDs    atomic.Int64
	interpMu     sync.Mutex
	interpPython string // the resolved Config.Python of the first engine
)

// New starts the interpreter if this process has none yet, and returns an
// engine on it.
func New(ctx context.Context, cfg Config) (*Engine, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	e := &Engine{id: engineIDs.Add(1), cfg: cfg, logger: logger,
		funcs: map[*Function]struct{}{}, aggs: map[*Aggregate]struct{}{},
		ops: map[*Operator]struct{}{}}
	var err error
	if e.deps, err = prepareDependencies(ctx, cfg); err != nil {
		return nil, err
	}
	switch cfg.Mode {
	case Thread:
		e.backend, err = newInterpreter(ctx, cfg, e.logPython)
	case Process:
		e.backend, err = startWorkers(ctx, e)
	case Subinterpreters:
		e.backend, err = newPool(ctx, cfg, e)
	default:
		err = fmt.Errorf("pyudf: unknown Config.Mode %d", cfg.Mode)
	}
	if err != nil {
		return nil, err
	}
	params, path := cfg.JobParameters, absolutePaths(cfg.Path) // workers may run elsewhere (Config.Archives)
	if params == nil {
		params = map[string]string{}
	}
	req := map[string]any{
		"op": "engine_open", "engine": e.id, "job_parameters": params,
		"path": path, "log_level": pythonLevel(logger), "dependencies": e.deps.request(),
	}
	var reply struct {
		Python     string `json:"python"`
		Executable string `json:"executable"`
	}
	if err := e.control(ctx, "open engine", req, &reply); err != nil {
		e.backend.close()
		return nil, asDependencyError(err, cfg)
	}
	e.python, e.executable = reply.Python, reply.Executable
	return e, nil
}

// Python is the embedded interpreter's version ("3.11.7") and sys.executable.
func (e *Engine) Python() (version, executable string) { return e.python, e.executable }

// configuredPython is Config.Python, else $PYUDF_PYTHON (else "").
func configuredPython(python string) string {
	if python == "" {
		return os.Getenv("PYUDF_PYTHON")
	}
	return python
}

// pythonLevel is the lowest Python logging level the logger would print.
func pythonLevel(l *slog.Logger) int {
	ctx := context.Background()
	for _, lv := range []struct {
		slog slog.Level
		py   int
	}{{slog.LevelDebug, 10}, {slog.LevelInfo, 20}, {slog.LevelWarn, 30}} {
		if l.Enabled(ctx, lv.slog) {
			return lv.py
		}
	}
	return 40
}

func (e *Engine) logPython(level int, logger, msg string) {
	e.logger.Log(context.Background(), slogLevel(level), msg, "logger", logger, "source", "python")
}

// slogLevel is the slog level of a Python logging level.
func slogLevel(level int) slog.Level {
	switch {
	case level >= 40:
		return slog.LevelError + slog.Level((level-40)/10*4)
	case level >= 30:
		return slog.LevelWarn
	case level >= 20:
		return slog.LevelInfo
	default:
		return slog.LevelDebug
	}
}

// control runs one request on the host's control plane and decodes its reply.
func (e *Engine) control(ctx context.Context, op string, req map[string]any, reply any) error {
	return e.backend.control(ctx, nil, op, req, reply)
}

// Module is Python code loaded into an engine.
type Module struct {
	engine *Engine
	id     int64
	name   string

	mu    sync.Mutex
	funcs map[string]*Function
	aggs  map[string]*Aggregate // Module.Aggregate's cache, as funcs is Module.Function's
}

// Name is the module's name in sys.modules.
func (m *Module) Name() string { return m.name }

// LoadSource runs Python source code as a new module. name is used for
// tracebacks ("udfs.py").
func (e *Engine) LoadSource(ctx context.Context, name, source string) (*Module, error) {
	return e.load(ctx, "load source "+name, map[string]any{"op": "load_source", "name": name, "source": source})
}

// LoadFile runs a .py file as a module named after the file.
func (e *Engine) LoadFile(ctx context.Context, path string) (*Module, error) {
	return e.load(ctx, "load file "+path, map[string]any{"op": "load_file", "path": path})
}

// Import imports a module from sys.path (Config.Path, site-packages ...).
func (e *Engine) Import(ctx context.Context, module string) (*Module, error) {
	return e.load(ctx, "import "+module, map[string]any{"op": "import", "module": module})
}

func (e *Engine) load(ctx context.Context, op string, req map[string]any) (*Module, error) {
	if e.closed.Load() {
		return nil, ErrClosed
	}
	req["engine"] = e.id
	var reply struct {
		Module int64  `json:"module"`
		Name   string `json:"name"`
	}
	if err := e.control(ctx, op, req, &reply); err != nil {
		return nil, err
	}
	return &Module{engine: e, id: reply.Module, name: reply.Name, funcs: map[string]*Function{}, aggs: map[string]*Aggregate{}}, nil
}

// Close closes every function of the engine (their close() runs) and
// forgets its modules. Calls after Close fail with ErrClosed.
func (e *Engine) Close() error {
	if e.closed.Swap(true) {
		return nil
	}
	e.mu.Lock()
	var closers []interface{ Close() error }
	for f := range e.funcs {
		closers = append(closers, f)
	}
	for a := range e.aggs {
		closers = append(closers, a)
	}
	for o := range e.ops {
		closers = append(closers, o)
	}
	e.mu.Unlock()
	var errs []error
	for _, c := range closers {
		errs = append(errs, c.Close())
	}
	var reply struct {
		Errors []string `json:"errors"`
	}
	errs = append(errs, e.control(context.Background(), "close engine",
		map[string]any{"op": "engine_close", "engine": e.id}, &reply))
	for _, msg := range reply.Errors {
		errs = append(errs, errors.New("pyudf: close: "+msg))
	}
	e.backend.close()
	return errors.Join(errs...)
}
