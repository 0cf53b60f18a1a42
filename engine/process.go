package engine

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/pyudf/pyudf/bridge"
	pyruntime "github.com/pyudf/pyudf/python"
)

// Mode says where an engine runs Python.
type Mode int

const (
	// Thread runs Python inside this process (the default): one cgo
	// crossing per call or batch, no copies, no IPC.
	Thread Mode = iota
	// Process runs Python in worker processes started from Config.Python,
	// as PyFlink's default does: a crash or a memory blow-up stays in the
	// worker, which is restarted. Batches cross as Arrow IPC over pipes.
	Process
	// Subinterpreters runs pure-Python row calls in a pool of
	// sub-interpreters with a GIL each (CPython 3.12 and later), every
	// other call in this process's main interpreter: see Config.Interpreters.
	Subinterpreters
)

func (m Mode) String() string {
	switch m {
	case Process:
		return "process"
	case Subinterpreters:
		return "subinterpreters"
	}
	return "thread"
}

// WorkerError is a process-mode worker dying while it ran a request: it
// crashed (a segfault), exited (os._exit), ran out of its memory limit, or
// was ended for a reply that broke the protocol (a UDF writing into its
// pipe). The worker has been restarted when the caller sees this error.
type WorkerError struct {
	Worker   int    // the worker's index
	PID      int    // the process that died
	Function string // the function that was running, if any
	Reason   string // "killed by signal segmentation fault", "exited with status 3" ...
	Stderr   string // the last lines the worker wrote to stderr
	Retried  bool   // the request ran twice (Config.RetryInFlight) and died both times
}

func (e *WorkerError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "pyudf: worker %d (pid %d) %s", e.Worker, e.PID, e.Reason)
	if e.Function != "" {
		fmt.Fprintf(&b, " while running function %q", e.Function)
	}
	if e.Retried {
		b.WriteString(", twice (retried once)")
	}
	return b.String()
}

// ErrStateLost: an Aggregate's worker process was restarted, and with it the
// accumulators were lost. Restore a snapshot to continue.
var ErrStateLost = errors.New("pyudf: aggregate state lost: its worker process was restarted; Restore a snapshot")

// exitOutOfMemory is the worker's exit status after a MemoryError (pyudf/_worker.py).
const exitOutOfMemory = 70

// interruptGrace is how long a worker may take to honour SIGINT before it is killed.
const interruptGrace = 2 * time.Second

// WorkerInfo describes one process-mode worker.
type WorkerInfo struct {
	Index    int
	PID      int // 0 while it is not running (between a death and its restart)
	Restarts int // how many times it was restarted after dying
}

// Workers describes the engine's worker processes (nil in thread mode).
// A worker busy with a request is described when the request ends.
func (e *Engine) Workers() []WorkerInfo {
	p, ok := e.backend.(*workers)
	if !ok {
		return nil
	}
	var out []WorkerInfo
	for _, w := range p.list {
		w.mu.Lock()
		info := WorkerInfo{Index: w.index, Restarts: int(w.gen.Load()) - 1}
		if w.cmd != nil {
			info.PID = w.pid
		}
		w.mu.Unlock()
		out = append(out, info)
	}
	return out
}

// --- the runtime on disk ----------------------------------------------------------

var runtimeOnce struct {
	sync.Once
	dir string
	err error
}

// runtimeDir writes the embedded Python runtime to a cache directory once per
// content (its hash names the directory) and returns it. Workers import
// pyudf from dir/first (before site-packages) and the pyflink stand-in from
// dir/last (after it, so a real PyFlink wins).
func runtimeDir() (string, error) {
	runtimeOnce.Do(func() {
		sources := pyruntime.Sources()
		names := make([]string, 0, len(sources))
		for name := range sources {
			names = append(names, name)
		}
		sort.Strings(names)
		h := sha256.New()
		for _, name := range names {
			fmt.Fprintf(h, "%s\x00%d\x00%s", name, len(sources[name]), sources[name])
		}
		base, err := os.UserCacheDir()
		if err != nil {
			base = os.TempDir()
		}
		dir := filepath.Join(base, "pyudf", "runtime-"+hex.EncodeToString(h.Sum(nil))[:16])
		runtimeOnce.dir = dir
		if _, err := os.Stat(filepath.Join(dir, "complete")); err == nil {
			return
		}
		err = os.MkdirAll(filepath.Dir(dir), 0o755)
		tmp := ""
		if err == nil {
			tmp, err = os.MkdirTemp(filepath.Dir(dir), "tmp-runtime-")
		}
		if err == nil {
			err = writeRuntime(tmp, sources)
		}
		if err == nil {
			if err = os.Rename(tmp, dir); err != nil && fileExists(filepath.Join(dir, "complete")) {
				err = nil // another process wrote the same content first
			}
		}
		if tmp != "" {
			os.RemoveAll(tmp)
		}
		if err != nil {
			runtimeOnce.err = fmt.Errorf("pyudf: cannot write the Python runtime for worker processes: %w", err)
		}
	})
	return runtimeOnce.dir, runtimeOnce.err
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func writeRuntime(dir string, sources map[string]string) error {
	for name, src := range sources {
		sub := "first"
		if strings.HasPrefix(name, "pyflink/") {
			sub = "last"
		}
		path := filepath.Join(dir, sub, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(dir, "complete"), nil, 0o644)
}

// --- the pool ---------------------------------------------------------------------

// workers is a process-mode engine's pool of Python worker processes. Every
// worker loads the same code and opens the same functions (their open() runs
// in each); a row call or batch goes to an idle worker, an aggregate's calls
// to the one worker that holds its accumulators.
type workers struct {
	engine *Engine
	python string
	args   []string
	list   []*worker
	next   atomic.Uint32
	ids    atomic.Uint64 // request ids, for interruption

	closed atomic.Bool // set by close: no request runs and no worker starts after it

	// setupMu is taken exclusively to change what every worker has loaded
	// and opened (a broadcast), and shared by requests, so that a worker
	// restarted in the middle of a request replays a stable setup.
	setupMu ctxRWMutex
	setup   []*request // the requests a restarted worker replays, in order

	released released // signalled whenever a worker's mutex is unlocked
}

// reply is a worker's reply (see "the wire protocol" below).
type reply struct {
	Error     *workerException // statusError: the request raised
	Fatal     *workerException // statusFatal: the worker ran out of memory and exits
	Cancelled bool             // statusCancelled: SIGINT cancelled the request
	body      []byte           // statusOK: the result; JSON for control requests
}

// logRecord is a Python log record or print line: [level, logger, message].
type logRecord [3]any

type workerException struct {
	Type, Message, Traceback string
	Row                      int
}

func startWorkers(ctx context.Context, e *Engine) (*workers, error) {
	python := configuredPython(e.cfg.Python)
	if python == "" {
		python = "python3"
	}
	dir, err := runtimeDir()
	if err != nil {
		return nil, err
	}
	first, _ := json.Marshal(filepath.Join(dir, "first"))
	last, _ := json.Marshal(filepath.Join(dir, "last"))
	// `python -c` puts the working directory first on sys.path, where a
	// types.py or json.py of the user's would shadow the standard module:
	// it comes off, so that workers see the modules thread mode sees.
	prog := fmt.Sprintf("import sys; sys.path[:1] == [''] and sys.path.pop(0); "+
		"sys.path.insert(0, %s); sys.path.append(%s); from pyudf._worker import main; main()", first, last)
	n := e.cfg.Workers
	if n <= 0 {
		n = runtime.NumCPU()
	}
	p := &workers{engine: e, python: python,
		args: []string{"-c", prog, "--memory-limit", fmt.Sprint(e.cfg.WorkerMemoryLimit),
			"--spin-ns", fmt.Sprint(max(e.cfg.ProcessSpin, 0).Nanoseconds())}}
	for i := range n {
		w := &worker{pool: p, index: i, mu: newCtxMutex(&p.released)}
		p.list = append(p.list, w)
		if err := w.start(ctx); err != nil {
			p.close()
			return nil, err
		}
	}
	return p, nil
}

// pick returns an idle worker, locked, trying them in round-robin order; if
// none is idle, it waits until any one is, or until ctx ends.
func (p *workers) pick(ctx context.Context) (*worker, error) {
	start := int(p.next.Add(1))
	for i := range p.list { // first without waiting: wait makes a channel
		if w := p.list[(start+i)%len(p.list)]; w.mu.TryLock() {
			return w, nil
		}
	}
	for {
		freed := p.released.wait() // before trying: no release is missed
		for i := range p.list {
			if w := p.list[(start+i)%len(p.list)]; w.mu.TryLock() {
				return w, nil
			}
		}
		select {
		case <-freed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// interrupted wraps ctx's error for a request of function name that ctx
// ended while it waited or ran.
func interrupted(name string, err error) error {
	return fmt.Errorf("pyudf: function %q interrupted: %w", name, err)
}

// waitedTooLong wraps ctx's error for a request of function name that ctx
// ended while it waited for a worker (it never ran); thread mode's gate says
// the same of the interpreter.
func waitedTooLong(name string, err error) error {
	return fmt.Errorf("pyudf: function %q cancelled while waiting for a worker: %w", name, err)
}

// request runs one request on the worker f is pinned to, or on any idle one,
// and turns failures into errors naming f. A worker that dies is restarted;
// with Config.RetryInFlight a call without state on the worker runs again,
// once. use, if not nil, reads the reply's body while the worker is still
// held: the body is the worker's buffer, which its next reply overwrites.
func (p *workers) request(ctx context.Context, f *Function, op string, req *request, use func(body []byte) error) error {
	if err := p.setupMu.RLock(ctx); err != nil {
		return interrupted(f.name, err)
	}
	defer p.setupMu.RUnlock()
	retry := p.engine.cfg.RetryInFlight && f.state == nil
	for attempt := 0; ; attempt++ {
		var w *worker
		if f.state != nil {
			w = p.list[f.state.worker]
			if err := w.mu.LockContext(ctx); err != nil {
				return waitedTooLong(f.name, err)
			}
			if f.method != "restore" && f.state.gen.Load() != w.gen.Load() && !p.closed.Load() {
				w.mu.Unlock()
				return fmt.Errorf("function %q: %w", f.name, ErrStateLost)
			}
		} else {
			var err error
			if w, err = p.pick(ctx); err != nil {
				return waitedTooLong(f.name, err)
			}
		}
		rep, err := w.request(ctx, req)
		if err == nil && rep.Error == nil {
			if f.state != nil && f.method == "restore" {
				f.state.gen.Store(w.gen.Load())
			}
			if use != nil {
				err := use(rep.body)
				w.mu.Unlock()
				return err
			}
		}
		w.mu.Unlock()
		if err != nil {
			var we *WorkerError
			if errors.As(err, &we) {
				we.Function = f.name
				if retry && attempt == 0 {
					p.engine.logger.Warn("pyudf: retrying the request of a worker that died", "function", f.name, "error", err)
					continue
				}
				we.Retried = attempt > 0
				return we
			}
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return interrupted(f.name, err)
			}
			return err
		}
		if rep.Error != nil {
			return bridge.FromPython(f.name, op, rep.Error.Row, rep.Error.Type, rep.Error.Message, rep.Error.Traceback)
		}
		return nil
	}
}

func (x *workerException) pythonError(function, op string) *bridge.PythonError {
	return &bridge.PythonError{Function: function, Op: op, Row: x.Row,
		Type: x.Type, Message: x.Message, Traceback: x.Traceback}
}

// control runs a control-plane request (see _host.control) on every worker,
// or, for "metrics", gathers every worker's. Setup requests are kept, so a
// restarted worker replays them. The reply is the first worker's.
func (p *workers) control(ctx context.Context, _ *owner, op string, req map[string]any, out any) error {
	header := map[string]any{"request": req}
	switch req["op"] {
	case "load_source", "load_file", "import", "function":
		header["as"] = p.engine.handles.Add(1)
	}
	parts, err := controlRequest(header)
	if err != nil {
		return err
	}
	if req["op"] == "metrics" {
		return p.metrics(ctx, parts, out)
	}
	if err := p.setupMu.Lock(ctx); err != nil {
		return fmt.Errorf("pyudf: %s interrupted: %w", op, err)
	}
	defer p.setupMu.Unlock()
	// Every worker is locked before any runs the request, so that a context
	// ending while one is busy leaves none of them changed.
	for i, w := range p.list {
		if err := w.mu.LockContext(ctx); err != nil {
			for _, held := range p.list[:i] {
				held.mu.Unlock()
			}
			return fmt.Errorf("pyudf: %s interrupted: %w", op, err)
		}
	}
	var first reply
	var firstErr error
	var done []*worker
	for _, w := range p.list {
		rep, err := w.call(ctx, parts, op)
		w.mu.Unlock()
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if len(done) == 0 {
			first = rep
		}
		done = append(done, w)
	}
	if firstErr != nil {
		if req["op"] == "function" && len(done) > 0 { // opened on some workers only: undo
			var opened struct {
				Function int64 `json:"function"`
			}
			if json.Unmarshal(first.body, &opened) == nil {
				undo, _ := controlRequest(map[string]any{"request": map[string]any{
					"op": "function_close", "engine": p.engine.id, "function": opened.Function}})
				for _, w := range done {
					w.mu.Lock()
					w.request(context.Background(), undo)
					w.mu.Unlock()
				}
			}
		}
		return firstErr
	}
	if req["op"] != "engine_close" && req["op"] != "functions" { // functions only reads
		p.setup = append(p.setup, parts)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(first.body, out)
}

// metrics concatenates every worker's metrics; Engine.Metrics merges them.
func (p *workers) metrics(ctx context.Context, parts *request, out any) error {
	var all []json.RawMessage
	for _, w := range p.list {
		if err := w.mu.LockContext(ctx); err != nil {
			return fmt.Errorf("pyudf: read metrics interrupted: %w", err)
		}
		rep, err := w.call(ctx, parts, "read metrics")
		w.mu.Unlock()
		if err != nil {
			return err
		}
		var one struct {
			Metrics []json.RawMessage `json:"metrics"`
		}
		if err := json.Unmarshal(rep.body, &one); err != nil {
			return err
		}
		all = append(all, one.Metrics...)
	}
	return metricsReply(all, out)
}

// metricsReply decodes into out the reply a single interpreter would give
// with all (every interpreter's or worker's metrics, concatenated);
// Engine.Metrics merges them.
func metricsReply(all []json.RawMessage, out any) error {
	b, err := json.Marshal(map[string]any{"metrics": all})
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}

// close stops every worker: stdin closed (the worker exits), then killed
// with its process group if it has not exited within a few seconds. It
// waits for the requests in progress; those still waiting for a worker, and
// every later one, fail with ErrClosed, and no worker is started again.
func (p *workers) close() {
	p.closed.Store(true)
	var wg sync.WaitGroup
	for _, w := range p.list {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.mu.Lock()
			defer w.mu.Unlock()
			w.stop(5 * time.Second)
		}()
	}
	wg.Wait()
}

// --- one worker -----------------------------------------------------------------

type worker struct {
	pool  *workers
	index int

	mu     ctxMutex  // held for a request and its reply, and for (re)starts
	cmd    *exec.Cmd // nil: not running
	pid    int
	stdin  io.WriteCloser
	in     *bufio.Writer // the request buffer, reused by every request
	out    *bufio.Reader
	head   []byte        // send's scratch space for a request's fixed fields
	size   [4]byte       // receive's scratch space for a reply's size
	reply  []byte        // receive's buffer for a reply (see maxKeptReply)
	done   chan struct{} // closed once the process was waited for
	stderr *tail
	gen    atomic.Int64 // counts starts: accumulators live only as long as one
	// replaying: start is replaying the setup; a failure then is not restarted.
	replaying bool

	sigMu       sync.Mutex
	calling     uint64 // the request in progress, for interrupt
	interrupted bool
}

// stderrDrain bounds how long a dead worker's stderr is read: a process
// that left its group but holds the pipe cannot keep the worker unreaped.
const stderrDrain = time.Second

// start launches the worker process, waits for its ready message and
// replays the pool's setup. Called with mu held.
func (w *worker) start(ctx context.Context) error {
	p := w.pool
	if p.closed.Load() {
		return ErrClosed
	}
	cmd := exec.Command(p.python, p.args...)
	cmd.Env = append(os.Environ(), "PYTHONUNBUFFERED=1")
	cmd.Dir = p.engine.deps.ArchivesDir // "": this process's; else relative paths find the archives
	if cmd.Dir != "" && !filepath.IsAbs(cmd.Path) {
		cmd.Path = absolutePath(cmd.Path) // a relative Config.Python is this process's, not Dir's
	}
	// Own process group: a terminal's Ctrl-C goes to the Go program, which
	// decides what to interrupt, and whatever the worker starts (a UDF's
	// subprocess, a fork) is killed with the group when the worker ends.
	// Pdeathsig: workers die with this process (see spawner).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	logger := p.engine.logger.With("worker", w.index)
	w.stderr = &tail{logger: logger}
	cmd.Stderr = w.stderr
	cmd.WaitDelay = stderrDrain
	if err := spawn(cmd); err != nil {
		return fmt.Errorf("pyudf: cannot start Python worker %q: %w", p.python, err)
	}
	w.cmd, w.pid, w.stdin = cmd, cmd.Process.Pid, stdin
	w.stderr.setLogger(logger.With("pid", w.pid))
	w.in, w.out = bufio.NewWriterSize(stdin, 1<<16), bufio.NewReaderSize(newReplyReader(stdout, p.engine.cfg.ProcessSpin), 1<<16)
	w.done = make(chan struct{})
	w.gen.Add(1)
	go func(pid int, stderr *tail, done chan struct{}) {
		waitExited(pid)                     // not reaped yet: pid still names its group
		syscall.Kill(-pid, syscall.SIGKILL) // what the worker started ends with it
		cmd.Wait()                          // reaps, after reading stderr to its end (at most stderrDrain)
		stderr.flush()
		close(done)
	}(w.pid, w.stderr, w.done)

	rep, err := w.receive()
	if err == nil && !bytes.Contains(rep.body, []byte(`"ready"`)) {
		err = fmt.Errorf("unexpected first message %q", rep.body)
	}
	if err != nil {
		werr := w.reap()
		return fmt.Errorf("pyudf: Python worker %q did not start: it %s\n%s", p.python, werr.Reason, werr.Stderr)
	}
	w.replaying = true
	defer func() { w.replaying = false }()
	for _, parts := range p.setup {
		if _, err := w.call(ctx, parts, "replay setup in a restarted worker"); err != nil {
			w.reap()
			return err
		}
	}
	return nil
}

// waitExited blocks until process pid (a child) has exited, without reaping
// it (waitid with WNOWAIT, as package os does before it reaps).
func waitExited(pid int) {
	var info [16]uint64 // siginfo_t
	for {
		_, _, errno := syscall.Syscall6(syscall.SYS_WAITID, 1 /* P_PID */, uintptr(pid),
			uintptr(unsafe.Pointer(&info)), syscall.WEXITED|0x01000000 /* WNOWAIT */, 0, 0)
		if errno != syscall.EINTR {
			return
		}
	}
}

// call is request for the control plane: a Python exception in the reply
// becomes a *bridge.PythonError for op; the body is the caller's (a copy).
// mu is held.
func (w *worker) call(ctx context.Context, req *request, op string) (reply, error) {
	rep, err := w.request(ctx, req)
	if err == nil && rep.Error != nil {
		return reply{}, rep.Error.pythonError("", op)
	}
	rep.body = bytes.Clone(rep.body)
	return rep, err
}

// request sends one request and reads its reply (its body in the worker's
// buffer, valid until the next request); mu is held. A worker
// that is not running is started first (not after the pool's close:
// ErrClosed). When ctx ends, the worker gets SIGINT (Cancelled is raised in
// the UDF), and is killed if it does not answer within interruptGrace.
//
// SIGINT is sent only once the whole request is written, and the worker
// keeps a SIGINT that comes while it reads for the moment it has read the
// request (see pyudf._worker): whenever it comes, it cancels this request
// or, after the reply, the ping sent to absorb it; never the next request.
func (w *worker) request(ctx context.Context, req *request) (reply, error) {
	if w.pool.closed.Load() {
		return reply{}, ErrClosed
	}
	if w.cmd == nil {
		if err := w.start(ctx); err != nil {
			return reply{}, err
		}
	}
	if err := ctx.Err(); err != nil {
		return reply{}, err
	}
	id := w.pool.ids.Add(1)
	w.sigMu.Lock()
	w.calling = id
	w.sigMu.Unlock()
	err := w.send(req)
	var rep reply
	if err == nil && ctx.Done() == nil { // nothing can interrupt it
		rep, err = w.receive()
	} else if err == nil {
		stop := context.AfterFunc(ctx, func() { w.interrupt(id) })
		rep, err = w.receive()
		stop()
	}
	w.sigMu.Lock()
	interrupted := w.interrupted
	w.calling, w.interrupted = 0, false
	w.sigMu.Unlock()

	if err == nil && rep.Fatal != nil {
		return reply{}, w.died("ran out of memory (" + rep.Fatal.Type + ": " + rep.Fatal.Message + ")")
	}
	if err != nil {
		reason := ""
		if bad, ok := err.(malformedReply); ok {
			reason = "sent a " + bad.Error() + "; it was replaced"
		}
		werr := w.died(reason)
		if interrupted && ctx.Err() != nil {
			return reply{}, ctx.Err()
		}
		return reply{}, werr
	}
	if interrupted { // a late SIGINT must land in this ping, not in the next request
		if err = w.send(&pingRequest); err == nil {
			_, err = w.receive()
		}
		if err != nil {
			w.died("")
		}
	}
	if rep.Cancelled {
		if ctx.Err() != nil {
			return reply{}, ctx.Err()
		}
		return reply{}, context.Canceled
	}
	return rep, nil
}

func (w *worker) interrupt(id uint64) {
	w.sigMu.Lock()
	defer w.sigMu.Unlock()
	if w.calling != id || w.interrupted {
		return
	}
	w.interrupted = true
	syscall.Kill(w.pid, syscall.SIGINT)
	pid := w.pid
	time.AfterFunc(interruptGrace, func() {
		w.sigMu.Lock()
		defer w.sigMu.Unlock()
		if w.calling == id {
			syscall.Kill(pid, syscall.SIGKILL) // stuck in C code: the worker is restarted
		}
	})
}

// --- the wire protocol ----------------------------------------------------------
//
// The engine and a worker exchange messages over the worker's stdin and
// stdout; pyudf/_worker.py reads and writes the same layout (keep the two
// descriptions in step). Integers are little endian; size counts the bytes
// after it.
//
//	request = u32 size | u8 op | u8 len(method) | u16 0 | u32 count | i64 function |
//	          method | zeros to a multiple of 8 | data
//	reply   = u32 size | u8 status | u32 len(logs) | logs | body
//
// data starts 8-byte aligned in the message (after size), so that Arrow
// buffers read from it in place are aligned. The request's fields, by op:
//
//	opCall       function, method; count: the number of arguments; data: the
//	             arguments in the row encoding (bridge.AppendArg)
//	opCallBatch  function, method; count: the number of extra arguments;
//	             data: count × i64, then the batch as an Arrow IPC stream
//	opEval       function, method; count: the byte length of the batch;
//	             data: u8 len(mode) | mode | zeros to a multiple of 8 |
//	             batch (Arrow IPC stream) | the result type (Arrow IPC
//	             stream of an empty one-field batch)
//	opControl    function 0, method "", count 0; data: a JSON object
//	             {"request": {...} for pyudf._host.control, "as": handle}
//	opPing       function 0, method "", count 0, no data
//
// The reply's status says what its body holds:
//
//	statusOK         the result: an encoded value (opCall, opCallBatch), an
//	                 Arrow IPC stream (opEval), a JSON object (opControl, and
//	                 the worker's first message, {"ready": true, ...}), or
//	                 nothing (opPing)
//	statusError      JSON {"type", "message", "traceback", "row"}: the request raised
//	statusCancelled  nothing: SIGINT cancelled the request
//	statusFatal      JSON as statusError: a MemoryError; the worker exits
//
// logs (len(logs) 0: none) is a JSON array of the request's log records and
// print lines, each [level, logger, message].
const (
	opCall      byte = 1
	opCallBatch byte = 2
	opEval      byte = 3
	opControl   byte = 4
	opPing      byte = 5

	statusOK        byte = 0
	statusError     byte = 1
	statusCancelled byte = 2
	statusFatal     byte = 3
)

// request is one request to a worker, framed by send.
type request struct {
	op       byte
	function int64
	method   string
	count    uint32
	data     [3][]byte // the data field, in order
}

// pingRequest absorbs a late interrupt (see worker.request).
var pingRequest = request{op: opPing}

// controlRequest frames a control request; header holds "request" and
// perhaps "as".
func controlRequest(header map[string]any) (*request, error) {
	js, err := json.Marshal(header)
	if err != nil {
		return nil, err
	}
	return &request{op: opControl, data: [3][]byte{js}}, nil
}

// send writes req in one write where it fits the request buffer.
func (w *worker) send(req *request) error {
	if len(req.method) > 255 {
		return fmt.Errorf("pyudf: method name %q is longer than 255 bytes", req.method)
	}
	padded := pad8(len(req.method))
	size := 16 + padded
	for _, d := range req.data {
		size += len(d)
	}
	if size > 1<<32-1 {
		return fmt.Errorf("pyudf: a request of %d bytes is over the 4 GiB a worker message may hold", size)
	}
	h := binary.LittleEndian.AppendUint32(w.head[:0], uint32(size))
	h = append(h, req.op, byte(len(req.method)), 0, 0)
	h = binary.LittleEndian.AppendUint32(h, req.count)
	h = binary.LittleEndian.AppendUint64(h, uint64(req.function))
	h = append(h, req.method...)
	h = append(h, make([]byte, 8)[:padded-len(req.method)]...)
	w.head = h
	w.in.Write(h)
	for _, d := range req.data {
		w.in.Write(d)
	}
	return w.in.Flush()
}

// pad8 rounds n up to a multiple of 8.
func pad8(n int) int { return (n + 7) &^ 7 }

// maxKeptReply bounds the reply buffer a worker keeps between replies.
const maxKeptReply = 64 << 10

// receive reads one reply into the worker's buffer and hands its logs to slog.
func (w *worker) receive() (reply, error) {
	if _, err := io.ReadFull(w.out, w.size[:]); err != nil {
		return reply{}, err
	}
	size := int(binary.LittleEndian.Uint32(w.size[:]))
	if size < 5 {
		return reply{}, malformedReply(fmt.Sprintf("a message of %d bytes", size))
	}
	if size > cap(w.reply) {
		if w.reply = make([]byte, size); size > maxKeptReply {
			defer func() { w.reply = nil }() // an outsized reply's buffer is not kept
		}
	}
	msg := w.reply[:size]
	if _, err := io.ReadFull(w.out, msg); err != nil {
		return reply{}, err
	}
	status, logs := msg[0], int(binary.LittleEndian.Uint32(msg[1:5]))
	if logs > len(msg)-5 {
		return reply{}, malformedReply(fmt.Sprintf("%d bytes of logs in a %d-byte message", logs, size))
	}
	body := msg[5+logs:]
	if logs > 0 {
		var records []logRecord
		if err := json.Unmarshal(msg[5:5+logs], &records); err != nil {
			return reply{}, malformedReply("unreadable logs: " + err.Error())
		}
		for _, r := range records {
			level, _ := r[0].(float64)
			logger, _ := r[1].(string)
			text, _ := r[2].(string)
			w.pool.engine.logPython(int(level), logger, text)
		}
	}
	var rep reply
	switch status {
	case statusOK:
		rep.body = body
	case statusCancelled:
		rep.Cancelled = true
	case statusError, statusFatal:
		x := new(workerException)
		if err := json.Unmarshal(body, x); err != nil {
			return reply{}, malformedReply("an unreadable exception: " + err.Error())
		}
		if status == statusError {
			rep.Error = x
		} else {
			rep.Fatal = x
		}
	default:
		return reply{}, malformedReply(fmt.Sprintf("status %d", status))
	}
	return rep, nil
}

// replyPoll is how long a worker's reply is waited for in ppoll(2), on the
// caller's thread, before the runtime's poller takes over (see replyReader).
const replyPoll = time.Millisecond

// replyReader reads a worker's stdout. It waits for a reply in ppoll(2) on
// the calling goroutine's thread for up to replyPoll, and only then parks
// the goroutine in the runtime's poller. A reply that comes within
// replyPoll (a row call's) is read without the park and the wake-up of
// another thread that the poller's hand-off costs: on a virtual machine
// whose idle vCPUs halt, each such wake-up adds tens of µs (a bare pipe
// round trip: p50 about 80 µs through the poller, 8–40 µs this way). A
// long call, or a reply that never comes, waits in the poller as before,
// where closing the pipe (os/exec does after the process ended) ends the
// read. With Config.ProcessSpin, it first polls the pipe without blocking
// for that long, so that a quick reply does not wait for this thread's
// vCPU to wake up either.
type replyReader struct {
	conn syscall.RawConn
	spin time.Duration
	read func(fd uintptr) bool // readFD, bound once: conn.Read allocates nothing

	// readFD's arguments and results, for the Read in progress
	p      []byte
	n      int
	err    error
	polled bool
}

// newReplyReader returns r itself unless it is an *os.File.
func newReplyReader(r io.Reader, spin time.Duration) io.Reader {
	if f, ok := r.(*os.File); ok {
		if conn, err := f.SyscallConn(); err == nil {
			rr := &replyReader{conn: conn, spin: spin}
			rr.read = rr.readFD
			return rr
		}
	}
	return r
}

func (r *replyReader) Read(p []byte) (int, error) {
	r.p, r.n, r.err, r.polled = p, 0, nil, false
	rerr := r.conn.Read(r.read)
	n, err := r.n, r.err
	r.p, r.err = nil, nil
	switch {
	case rerr != nil:
		return 0, rerr
	case err != nil:
		return 0, err
	case n == 0 && len(p) > 0:
		return 0, io.EOF
	}
	return n, nil
}

// readFD reads into r.p: conn.Read calls it, and again, once the runtime's
// poller says fd is readable, each time it returns false.
func (r *replyReader) readFD(fd uintptr) bool {
	for {
		r.n, r.err = syscall.Read(int(fd), r.p)
		switch {
		case r.err == syscall.EINTR:
			continue
		case r.err != syscall.EAGAIN:
			return true
		case r.polled:
			return false // wait in the runtime's poller
		}
		r.polled = true
		if r.spin > 0 && r.spinRead(fd) {
			return true
		}
		pollIn(int(fd), replyPoll)
	}
}

// spinRead reads fd without blocking until it returns something other than
// EAGAIN or r.spin has passed; it reports whether it read (or failed).
// Between reads it yields the CPU (sched_yield), so that on a busy machine
// the worker, or anything else runnable on this core, runs instead.
func (r *replyReader) spinRead(fd uintptr) bool {
	deadline := time.Now().Add(r.spin)
	for {
		r.n, r.err = syscall.Read(int(fd), r.p)
		if r.err != syscall.EAGAIN && r.err != syscall.EINTR {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		syscall.RawSyscall(syscall.SYS_SCHED_YIELD, 0, 0, 0)
	}
}

// pollIn waits until fd is readable (or hung up), or for at most d.
func pollIn(fd int, d time.Duration) {
	pfd := struct {
		fd             int32
		events, revent int16
	}{fd: int32(fd), events: 0x1 /* POLLIN */}
	ts := syscall.NsecToTimespec(int64(d))
	syscall.Syscall6(syscall.SYS_PPOLL, uintptr(unsafe.Pointer(&pfd)), 1, uintptr(unsafe.Pointer(&ts)), 0, 0, 0)
}

// malformedReply is a reply that does not follow the protocol: the worker
// (or a UDF writing into its pipe) is out of step, so it is replaced.
type malformedReply string

func (m malformedReply) Error() string { return "malformed reply: " + string(m) }

// died reaps a worker whose pipe broke and starts a new one (unless it
// died replaying its setup: start reports that; or the pool is closed).
// reason, if not empty, replaces the one its exit gives. mu is held.
func (w *worker) died(reason string) *WorkerError {
	werr := w.reap()
	if reason != "" {
		werr.Reason = reason
	}
	if w.replaying || w.pool.closed.Load() {
		return werr
	}
	w.pool.engine.logger.Warn("pyudf: worker process died; restarting it", "worker", w.index, "pid", werr.PID, "reason", werr.Reason)
	if err := w.start(context.Background()); err != nil {
		w.pool.engine.logger.Error("pyudf: cannot restart worker process; the next request tries again", "worker", w.index, "error", err)
	}
	return werr
}

// reap ends the process (killing it if it still runs) and says why it ended.
func (w *worker) reap() *WorkerError {
	pid, cmd := w.pid, w.cmd
	w.stop(time.Second)
	werr := &WorkerError{Worker: w.index, PID: pid, Stderr: w.stderr.String(), Reason: "closed its pipe"}
	if cmd != nil && cmd.ProcessState != nil {
		werr.Reason = exitReason(cmd.ProcessState)
	}
	return werr
}

func exitReason(st *os.ProcessState) string {
	ws, ok := st.Sys().(syscall.WaitStatus)
	switch {
	case ok && ws.Signaled():
		return "was killed by signal " + ws.Signal().String()
	case st.ExitCode() == exitOutOfMemory:
		return "ran out of memory"
	default:
		return fmt.Sprintf("exited with status %d", st.ExitCode())
	}
}

// stop ends the process: stdin closed, then its group killed after wait.
// Every wait is bounded: the process is reaped at most stderrDrain after it
// ends. mu is held.
func (w *worker) stop(wait time.Duration) {
	if w.cmd == nil {
		return
	}
	w.stdin.Close()
	select {
	case <-w.done:
	case <-time.After(wait):
		syscall.Kill(-w.pid, syscall.SIGKILL)
		<-w.done
	}
	w.cmd = nil
}

// maxStderrLine is the longest stderr line a worker's log keeps; the rest
// of a longer line is counted, not kept.
const maxStderrLine = 64 << 10

// tail receives what reaches a worker's stderr outside Python's logging and
// print (C code, a dying interpreter): it forwards each line to slog and
// keeps the last lines. Its Write never fails and never waits on the
// worker, so the pipe is always drained, whatever the worker writes.
type tail struct {
	mu      sync.Mutex
	logger  *slog.Logger
	partial []byte // the line being written, at most maxStderrLine bytes
	cut     int    // bytes of it beyond maxStderrLine
	lines   []string
}

func (t *tail) setLogger(l *slog.Logger) {
	t.mu.Lock()
	t.logger = l
	t.mu.Unlock()
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		chunk, rest, eol := bytes.Cut(p, []byte{'\n'})
		if room := maxStderrLine - len(t.partial); len(chunk) > room {
			t.cut += len(chunk) - room
			chunk = chunk[:room]
		}
		t.partial = append(t.partial, chunk...)
		if !eol {
			break
		}
		t.lineLocked()
		p = rest
	}
	return n, nil
}

// flush logs a last line that did not end in a newline.
func (t *tail) flush() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.partial) > 0 || t.cut > 0 {
		t.lineLocked()
	}
}

func (t *tail) lineLocked() {
	line := string(t.partial)
	if t.cut > 0 {
		line += fmt.Sprintf(" [... %d more bytes]", t.cut)
	}
	t.partial, t.cut = t.partial[:0], 0
	t.logger.Warn(line, "logger", "worker stderr", "source", "python")
	t.lines = append(t.lines, line)
	if len(t.lines) > 20 {
		t.lines = t.lines[len(t.lines)-20:]
	}
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}

// --- waiting that honours a context ----------------------------------------------

// ctxMutex is a mutex whose Lock can give up when a context ends. Unlock
// also tells released, shared by a pool's workers, so that a caller waiting
// for any worker wakes when one is free.
type ctxMutex struct {
	ch       chan struct{} // holds a token while locked
	released *released
}

func newCtxMutex(r *released) ctxMutex { return ctxMutex{make(chan struct{}, 1), r} }

func (m ctxMutex) Lock() { m.ch <- struct{}{} }

// Unlock releases m, which must be locked (else it panics).
func (m ctxMutex) Unlock() {
	select {
	case <-m.ch:
	default:
		panic("pyudf: unlock of an unlocked worker mutex")
	}
	m.released.signal()
}

func (m ctxMutex) TryLock() bool {
	select {
	case m.ch <- struct{}{}:
		return true
	default:
		return false
	}
}

// LockContext locks m, or returns ctx's error if ctx ends first.
func (m ctxMutex) LockContext(ctx context.Context) error { return sendContext(ctx, m.ch) }

// sendContext puts a token into ch (a lock or semaphore of tokens), waiting
// for room, or returns ctx's error if ctx ends first. A token that fits at
// once is taken even when ctx has ended, without a select on ctx.Done.
func sendContext(ctx context.Context, ch chan struct{}) error {
	select {
	case ch <- struct{}{}:
		return nil
	default:
	}
	select {
	case ch <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// released is closed-channel broadcast: wait returns a channel that is
// closed at the next signal.
type released struct {
	mu sync.Mutex
	ch chan struct{}
}

func (r *released) wait() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ch == nil {
		r.ch = make(chan struct{})
	}
	return r.ch
}

func (r *released) signal() {
	r.mu.Lock()
	if r.ch != nil {
		close(r.ch)
		r.ch = nil
	}
	r.mu.Unlock()
}

// ctxRWMutex is a readers-writer lock whose waits give up when a context
// ends. A waiting writer holds back new readers, as in sync.RWMutex. The
// zero value is unlocked.
type ctxRWMutex struct {
	mu      sync.Mutex
	readers int
	writer  bool
	waiting int           // writers waiting
	changed chan struct{} // closed when the lock changes hands
}

// RLock takes a shared lock, or returns ctx's error if ctx ends first.
func (l *ctxRWMutex) RLock(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.writer || l.waiting > 0 {
		if err := l.waitLocked(ctx); err != nil {
			return err
		}
	}
	l.readers++
	return nil
}

func (l *ctxRWMutex) RUnlock() {
	l.mu.Lock()
	if l.readers--; l.readers == 0 {
		l.changedLocked()
	}
	l.mu.Unlock()
}

// Lock takes the exclusive lock, or returns ctx's error if ctx ends first.
func (l *ctxRWMutex) Lock(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.waiting++
	defer func() { l.waiting-- }()
	for l.writer || l.readers > 0 {
		if err := l.waitLocked(ctx); err != nil {
			l.changedLocked() // readers held back by this writer may go
			return err
		}
	}
	l.writer = true
	return nil
}

func (l *ctxRWMutex) Unlock() {
	l.mu.Lock()
	l.writer = false
	l.changedLocked()
	l.mu.Unlock()
}

// waitLocked waits, with l.mu released, until the lock changes or ctx ends.
func (l *ctxRWMutex) waitLocked(ctx context.Context) error {
	if l.changed == nil {
		l.changed = make(chan struct{})
	}
	ch := l.changed
	l.mu.Unlock()
	defer l.mu.Lock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *ctxRWMutex) changedLocked() {
	if l.changed != nil {
		close(l.changed)
		l.changed = nil
	}
}

// --- starting workers from one thread ---------------------------------------------

// spawner starts every worker process from one goroutine locked to its OS
// thread for the life of this process. Pdeathsig, which makes a worker die
// with this process, fires when the *thread* that started the worker ends
// (golang/go#27505): a worker started from any goroutine would be killed
// when the runtime retires that goroutine's thread, or when a caller that
// locked its goroutine to a thread returns.
//
// One thread for the process rather than one per engine: it costs one idle
// thread, and no engine's Close can end a thread a worker depends on.
var spawner struct {
	once sync.Once
	reqs chan spawnRequest
}

type spawnRequest struct {
	cmd *exec.Cmd
	err chan error
}

// spawn runs cmd.Start on the spawner's thread.
func spawn(cmd *exec.Cmd) error {
	spawner.once.Do(func() {
		spawner.reqs = make(chan spawnRequest)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread lives as long as the process
			for r := range spawner.reqs {
				r.err <- r.cmd.Start()
			}
		}()
	})
	errc := make(chan error, 1)
	spawner.reqs <- spawnRequest{cmd, errc}
	return <-errc
}

// --- Arrow IPC ------------------------------------------------------------------

// ipcBatch writes rec as an Arrow IPC stream.
func ipcBatch(rec arrow.RecordBatch) ([]byte, error) {
	var buf bytes.Buffer
	wr := ipc.NewWriter(&buf, ipc.WithSchema(rec.Schema()))
	if err := wr.Write(rec); err != nil {
		wr.Close()
		return nil, err
	}
	if err := wr.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ipcRead reads the one record batch of an Arrow IPC stream.
func ipcRead(data []byte) (arrow.RecordBatch, error) {
	rd, err := ipc.NewReader(bytes.NewReader(data), ipc.WithAllocator(memory.DefaultAllocator))
	if err != nil {
		return nil, err
	}
	defer rd.Release()
	if !rd.Next() {
		if err := rd.Err(); err != nil {
			return nil, err
		}
		return nil, errors.New("pyudf: the worker's reply holds no record batch")
	}
	rec := rd.RecordBatch()
	rec.Retain()
	return rec, nil
}
