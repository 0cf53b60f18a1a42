package engine

import (
	"context"
	"encoding/json"
	"log/slog"
	"runtime"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/pyudf/pyudf/bridge"
	"github.com/pyudf/pyudf/cgo"
)

// pool is the sub-interpreter backend (Mode Subinterpreters, CPython 3.12
// and later): Config.Interpreters sub-interpreters, each with a GIL of its
// own (PEP 684) and bound to an OS thread of its own (an owner), so that
// pure-Python row calls run on every core at once.
//
// The main interpreter keeps every module and every function instance too:
// batches (Eval, Map, Explode, Reduce), aggregates and table functions run
// there, as does every function of a module that cannot be imported in a
// sub-interpreter (numpy, pandas and pyarrow refuse: one log line says
// which import refused). A general scalar function of a module that loaded
// everywhere has an instance in every sub-interpreter as well (its open()
// runs in each, as in Flink's parallel subtasks), and each row call goes to
// a free sub-interpreter.
//
// The sub-interpreters belong to the process, as the main interpreter does:
// the first engine that needs n of them starts them, and later engines share
// them (each its own modules and instances in them). They are never ended:
// CPython keeps some megabytes of every sub-interpreter it ends, so ending
// them with every engine would leak.
type pool struct {
	main   *interpreter
	subs   []*sub
	logger *slog.Logger

	mu       sync.Mutex
	sem      chan struct{}     // one token per row call in a sub-interpreter: at most len(subs)
	shards   map[int64]*shards // opened function id (main's) → its instances in the subs, until bound
	affinity Affinity
	modules  map[int64]bool // main's module id → loaded in every sub-interpreter
}

// The process's sub-interpreters, started on demand.
var (
	subsMu       sync.Mutex
	subsAll      []*sub
	subsReleased released // signalled whenever one is free again
)

// startSubs returns the first n of the process's sub-interpreters, starting
// the missing ones.
func startSubs(n int) ([]*sub, error) {
	subsMu.Lock()
	defer subsMu.Unlock()
	for len(subsAll) < n {
		s := &sub{index: len(subsAll), own: newOwner(), fr: newFrame(), mu: newCtxMutex(&subsReleased),
			modules: map[int64]int64{}, functions: map[int64]int64{}}
		var exc *cgo.Exception
		s.own.on(func() { s.interp, exc = cgo.NewSubinterpreter() })
		if exc != nil {
			s.own.end()
			return nil, &bridge.PythonError{Op: "start sub-interpreter", Row: -1, Type: exc.Type,
				Message: exc.Message, Traceback: exc.Traceback}
		}
		subsAll = append(subsAll, s)
	}
	return subsAll[:n:n], nil
}

// shards are a function's instances in the sub-interpreters, one each; own
// says its calls run on the sub-interpreter's own thread, where its open()
// ran (an instance with a life cycle: Config.Affinity), else on the caller's.
type shards struct {
	objs []cgo.Object
	own  bool
}

// sub is one sub-interpreter and the thread that owns it. The owner runs its
// control requests and takes and releases its objects; row calls enter it
// from the caller's thread (pool.call).
type sub struct {
	index  int
	own    *owner
	interp *cgo.Subinterpreter
	fr     *frame
	mu     ctxMutex // one call at a time: the holder uses fr

	modules   map[int64]int64 // main's module id → this interpreter's (used on own)
	functions map[int64]int64 // main's function id → this interpreter's
}

func newPool(ctx context.Context, cfg Config, e *Engine) (*pool, error) {
	main, err := newInterpreter(ctx, cfg, e.logPython)
	if err != nil {
		return nil, err
	}
	n := cfg.Interpreters
	if n <= 0 {
		n = runtime.NumCPU()
	}
	subs, err := startSubs(n)
	if err != nil {
		return nil, err
	}
	return &pool{main: main, subs: subs, logger: e.logger, sem: make(chan struct{}, n), shards: map[int64]*shards{}, modules: map[int64]bool{},
		affinity: cfg.Affinity}, nil
}

func (*pool) ownThreads() bool { return true } // the main interpreter's instances
func (*pool) bundles() int     { return 0 }

func (p *pool) aggregateState(int64) *aggState { return nil } // aggregates run on the main interpreter

// control runs the request on the main interpreter, and then, for what
// every sub-interpreter keeps a copy of (the engine, modules, general
// scalar functions), in each.
func (p *pool) control(ctx context.Context, pin *owner, op string, req map[string]any, reply any) error {
	switch req["op"] {
	case "engine_open":
		if err := p.main.control(ctx, pin, op, req, reply); err != nil {
			return err
		}
		return p.everySub(ctx, func(s *sub) error { return s.control(ctx, op, req, nil) })
	case "engine_close":
		p.mu.Lock()
		modules := p.modules
		p.modules = map[int64]bool{}
		p.mu.Unlock()
		p.everySub(ctx, func(s *sub) error {
			for m := range modules {
				delete(s.modules, m)
			}
			return s.control(ctx, op, req, nil)
		})
		return p.main.control(ctx, pin, op, req, reply)
	case "load_source", "load_file", "import":
		return p.load(ctx, op, req, reply)
	case "function":
		return p.open(ctx, pin, op, req, reply)
	case "function_close":
		id := req["function"].(int64)
		p.everySub(ctx, func(s *sub) error {
			sid, ok := s.functions[id]
			if !ok {
				return nil
			}
			delete(s.functions, id)
			return s.control(ctx, op, withField(req, "function", sid), nil)
		})
		return p.main.control(ctx, pin, op, req, reply)
	case "metrics":
		return p.metrics(ctx, op, req, reply)
	}
	return p.main.control(ctx, pin, op, req, reply)
}

// load loads a module on the main interpreter and then in every
// sub-interpreter; if one refuses, the module stays on the main one.
func (p *pool) load(ctx context.Context, op string, req map[string]any, reply any) error {
	var loaded struct {
		Module int64 `json:"module"`
	}
	var raw json.RawMessage
	if err := p.main.control(ctx, nil, op, req, &raw); err != nil {
		return err
	}
	if err := json.Unmarshal(raw, &loaded); err != nil {
		return err
	}
	var refused error
	for _, s := range p.subs {
		var mine struct {
			Module int64 `json:"module"`
		}
		if refused = s.control(ctx, op, req, &mine); refused != nil {
			break
		}
		s.modules[loaded.Module] = mine.Module
	}
	if refused != nil {
		p.logger.Info("pyudf: a module runs on the main interpreter: it cannot be imported in a sub-interpreter",
			"op", op, "reason", refused.Error())
		p.everySub(ctx, func(s *sub) error {
			delete(s.modules, loaded.Module) // the copies that loaded stay unused in sys.modules' of their interpreter
			return nil
		})
	} else {
		p.mu.Lock()
		p.modules[loaded.Module] = true
		p.mu.Unlock()
	}
	return json.Unmarshal(raw, reply)
}

// open opens the function on the main interpreter and, if it is a general
// scalar function of a module every sub-interpreter has, in each of them.
func (p *pool) open(ctx context.Context, pin *owner, op string, req map[string]any, reply any) error {
	var raw json.RawMessage
	if err := p.main.control(ctx, pin, op, req, &raw); err != nil {
		return err
	}
	var opened openReply
	if err := json.Unmarshal(raw, &opened); err != nil {
		return err
	}
	module := req["module"].(int64)
	p.mu.Lock()
	everywhere := p.modules[module]
	p.mu.Unlock()
	if everywhere && !opened.Missing && opened.Kind == "scalar" && opened.FuncType == "general" {
		objs := make([]cgo.Object, len(p.subs))
		err := p.everySub(ctx, func(s *sub) error {
			var mine openReply
			if err := s.control(ctx, op, withField(req, "module", s.modules[module]), &mine); err != nil {
				return err
			}
			s.functions[opened.Function] = mine.Function
			var st cgo.Status
			s.own.on(func() { objs[s.index], st = s.fr.Take(mine.Object) })
			if st != cgo.OK {
				return s.fr.failure(ctx, st, "", op)
			}
			return nil
		})
		if err != nil { // the main interpreter's instance serves it alone
			p.logger.Info("pyudf: a function runs on the main interpreter: it cannot be opened in a sub-interpreter",
				"function", req["name"], "reason", err.Error())
			p.dropShards(ctx, req["engine"], opened.Function, objs)
		} else {
			p.mu.Lock()
			own := p.affinity == AffinityInstance || (p.affinity == AffinityAuto && opened.LifeCycle)
			p.shards[opened.Function] = &shards{objs: objs, own: own}
			p.mu.Unlock()
		}
	}
	return json.Unmarshal(raw, reply)
}

// dropShards releases a function's objects in the sub-interpreters and
// closes its instances there.
func (p *pool) dropShards(ctx context.Context, engine any, id int64, objs []cgo.Object) {
	p.everySub(ctx, func(s *sub) error {
		s.own.on(objs[s.index].Release)
		sid, ok := s.functions[id]
		if !ok {
			return nil
		}
		delete(s.functions, id)
		return s.control(ctx, "close", map[string]any{"op": "function_close", "engine": engine, "function": sid}, nil)
	})
}

// metrics concatenates every interpreter's metrics, as process mode does
// its workers'; Engine.Metrics merges them.
func (p *pool) metrics(ctx context.Context, op string, req map[string]any, reply any) error {
	var all []json.RawMessage
	gather := func(get func(out any) error) error {
		var one struct {
			Metrics []json.RawMessage `json:"metrics"`
		}
		if err := get(&one); err != nil {
			return err
		}
		all = append(all, one.Metrics...)
		return nil
	}
	if err := gather(func(out any) error { return p.main.control(ctx, nil, op, req, out) }); err != nil {
		return err
	}
	if err := p.everySub(ctx, func(s *sub) error {
		return gather(func(out any) error { return s.control(ctx, op, req, out) })
	}); err != nil {
		return err
	}
	return metricsReply(all, reply)
}

// everySub runs fn on every sub-interpreter in turn, each locked, and
// returns the first error (after trying all).
func (p *pool) everySub(ctx context.Context, fn func(s *sub) error) error {
	var first error
	for _, s := range p.subs {
		if err := s.mu.LockContext(ctx); err != nil {
			return err
		}
		err := fn(s)
		s.mu.Unlock()
		if first == nil {
			first = err
		}
	}
	return first
}

// control runs one control request in the sub-interpreter, on its own
// thread; the caller holds s.mu.
func (s *sub) control(ctx context.Context, op string, req map[string]any, reply any) error {
	return s.fr.control(ctx, s.own, op, req, reply)
}

// withField is req with key set to v (req itself unchanged: it is sent to
// every interpreter with its own ids).
func withField(req map[string]any, key string, v any) map[string]any {
	out := make(map[string]any, len(req))
	for k, x := range req {
		out[k] = x
	}
	out[key] = v
	return out
}

// bind takes the main interpreter's object, and the sub-interpreters'
// objects opened with it.
func (p *pool) bind(ctx context.Context, f *Function, key int64) error {
	if err := p.main.bind(ctx, f, key); err != nil {
		return err
	}
	if f.method != "" {
		return nil // an aggregate's method: main only
	}
	p.mu.Lock()
	f.shards = p.shards[f.id]
	delete(p.shards, f.id)
	p.mu.Unlock()
	return nil
}

func (p *pool) unbind(f *Function) {
	p.main.unbind(f)
	if f.shards != nil {
		for _, s := range p.subs {
			s.mu.Lock()
			s.own.on(f.shards.objs[s.index].Release)
			s.mu.Unlock()
		}
		f.shards = nil
	}
}

// call runs a row call in a free sub-interpreter if the function has
// instances there, else on the main interpreter. The calling goroutine's
// thread enters the sub-interpreter itself (cgo.Subinterpreter.Call, with a
// thread state of its own for it): no hand-off to the owner thread, which
// costs two thread wake-ups or two spinning threads a call, and with as many
// callers as cores more spinning threads than cores.
func (p *pool) call(ctx context.Context, f *Function, args []bridge.Value, inputs []*bridge.DataType, result *bridge.DataType) (bridge.Value, error) {
	if f.shards == nil {
		return p.main.call(ctx, f, args, inputs, result)
	}
	s, err := p.pick(ctx)
	if err != nil {
		return bridge.Value{}, queuedTooLong(ctx, f.name)
	}
	defer p.put(s)
	if f.closed.Load() {
		return bridge.Value{}, ErrClosed
	}
	fr := s.fr
	buf, err := f.appendArgs(fr.Args(), args, inputs)
	if err != nil {
		return bridge.Value{}, err
	}
	obj, n := f.shards.objs[s.index], len(args) // (the closures below take n, so that args does not escape)
	var st cgo.Status
	switch {
	case f.shards.own: // on the sub-interpreter's own thread, as open ran (Config.Affinity)
		if err := s.own.do(ctx, func() { st = fr.run(ctx, func() cgo.Status { return fr.Call(obj, buf, n) }) }); err != nil {
			return bridge.Value{}, queuedTooLong(ctx, f.name)
		}
	case ctx.Done() == nil:
		st = s.interp.Call(fr.Frame, obj, buf, n)
	default:
		st = fr.run(ctx, func() cgo.Status { return s.interp.Call(fr.Frame, obj, buf, n) })
	}
	return fr.value(ctx, st, f.name, result)
}

// pick returns a free sub-interpreter, locked, the first free one in order,
// or ctx's error if ctx ends first; put gives it back. Callers beyond the
// pool's size queue on its semaphore, in order, so that a release wakes one
// of them, not all (as the shared released broadcast would: with 8
// goroutines on 2 sub-interpreters, 6 wake-ups a call). A sub-interpreter
// another engine holds (they are the process's) is waited for on released.
func (p *pool) pick(ctx context.Context) (*sub, error) {
	if err := sendContext(ctx, p.sem); err != nil {
		return nil, err
	}
	s, err := p.lock(ctx)
	if err != nil {
		<-p.sem
	}
	return s, err
}

func (p *pool) put(s *sub) {
	s.mu.Unlock()
	<-p.sem
}

// lock locks the first free sub-interpreter, waiting for one if none is.
func (p *pool) lock(ctx context.Context) (*sub, error) {
	for {
		for _, s := range p.subs { // the fast path: no wait channel
			if s.mu.TryLock() {
				return s, nil
			}
		}
		freed := subsReleased.wait() // before trying again: no release is missed
		for _, s := range p.subs {
			if s.mu.TryLock() {
				return s, nil
			}
		}
		select {
		case <-freed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (p *pool) eval(ctx context.Context, f *Function, batch arrow.RecordBatch, mode string, resultType arrow.DataType, nullable bool) (arrow.Array, arrow.Array, error) {
	return p.main.eval(ctx, f, batch, mode, resultType, nullable)
}

func (p *pool) callBatch(ctx context.Context, f *Function, batch arrow.RecordBatch, result *bridge.DataType, extra ...int64) (bridge.Value, error) {
	return p.main.callBatch(ctx, f, batch, result, extra...)
}

// closing holds every sub-interpreter and the main interpreter's gate.
func (p *pool) closing(fn func()) {
	for _, s := range p.subs {
		s.mu.Lock()
	}
	defer func() {
		for _, s := range p.subs {
			s.mu.Unlock()
		}
	}()
	p.main.closing(fn)
}

// close leaves the sub-interpreters to the process (see pool): the engine's
// modules and instances in them went with engine_close.
func (*pool) close() {}
