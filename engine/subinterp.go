package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/bits"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

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
// batches (Eval, Map, Explode, Reduce) and table functions run there, as
// does every function of a module that cannot be imported in a
// sub-interpreter (numpy, pandas and pyarrow refuse: one log line says
// which import refused). A general scalar function of a module that loaded
// everywhere has an instance in every sub-interpreter as well (its open()
// runs in each, as in Flink's parallel subtasks), and each row call goes to
// a free sub-interpreter. A general aggregate function of such a module has
// one too, and each key's accumulator lives in one sub-interpreter
// (subinterp_agg.go). docs/subinterpreters.md describes the whole.
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

	any      *waiters // callers waiting for any of subs
	mu       sync.Mutex
	shards   map[int64]*shards // opened function id (main's) → its instances in the subs, until bound
	pinned   map[int64]*pinned // opened aggregate id (main's) → its instances in the subs, until closed
	affinity Affinity
	modules  map[int64]bool // main's module id → loaded in every sub-interpreter
}

// maxInterpreters bounds Config.Interpreters: a sub-interpreter is one bit
// of subsFree, and a thread visits at most 64 (cgo.Subinterpreter.Call).
const maxInterpreters = 64

// The process's sub-interpreters, started on demand.
var (
	subsMu      sync.Mutex
	subsAll     []*sub
	subsFree    atomic.Uint64              // bit i: sub-interpreter i is not locked
	subsWaiters atomic.Pointer[[]*waiters] // every set of callers that waits for some of them
)

// startSubs returns the first n of the process's sub-interpreters, starting
// the missing ones.
func startSubs(n int) ([]*sub, error) {
	if n > maxInterpreters {
		return nil, fmt.Errorf("pyudf: Config.Interpreters is %d; at most %d sub-interpreters are supported", n, maxInterpreters)
	}
	subsMu.Lock()
	defer subsMu.Unlock()
	for len(subsAll) < n {
		s := &sub{index: len(subsAll), bit: 1 << len(subsAll), own: newOwner(), fr: newFrame(),
			modules: map[int64]int64{}, functions: map[int64]int64{}}
		var exc *cgo.Exception
		s.own.on(func() { s.interp, exc = cgo.NewSubinterpreter() })
		if exc != nil {
			s.own.end()
			return nil, &bridge.PythonError{Op: "start sub-interpreter", Row: -1, Type: exc.Type,
				Message: exc.Message, Traceback: exc.Traceback}
		}
		s.alone = waitersFor(s.bit)
		subsAll = append(subsAll, s)
		subsFree.Or(s.bit)
	}
	return subsAll[:n:n], nil
}

// waiters are the callers that wait for one of the sub-interpreters of mask
// to be unlocked: a pool's callers (any of its sub-interpreters), or those
// of one sub-interpreter (an aggregate key's calls, control requests).
//
// Fairness is the thread-mode gate's (gate.go), over the process's
// sub-interpreters: a caller finding one free takes it with one atomic
// operation even while others queue (barging: a goroutine that calls in a
// loop keeps its sub-interpreter and its core, without a park and a wake-up
// per call, which a FIFO hand-off costs once callers outnumber
// sub-interpreters), and an unlock wakes the oldest queued caller to try
// again. A queued caller that has waited longer than starveAfter turns the
// set fair: an unlock then hands its sub-interpreter straight to the oldest
// queued caller, until the queue is empty or one handed a sub-interpreter
// had waited less than starveAfter. So waits stay bounded for callers with
// a deadline.
type waiters struct {
	mask uint64
	mu   sync.Mutex
	fairQueue[subWaiter]
}

// subWaiter is one queued caller. It is sent -1 (a sub-interpreter is free:
// try for it) or the index of one handed to it (fair mode); it holds at most
// one -1 (sent under mu) and one index, so sends never block.
type subWaiter struct {
	wake  chan int
	since time.Time
}

// waitersFor returns the process's waiters for mask, made on first use.
func waitersFor(mask uint64) *waiters {
	waitersMu.Lock()
	defer waitersMu.Unlock()
	var list []*waiters
	if p := subsWaiters.Load(); p != nil {
		list = *p
	}
	for _, w := range list {
		if w.mask == mask {
			return w
		}
	}
	w := &waiters{mask: mask}
	list = append(list[:len(list):len(list)], w) // a new slice: readers range over the old one
	subsWaiters.Store(&list)
	return w
}

var waitersMu sync.Mutex

// tryLock locks a free sub-interpreter of w's mask, the lowest first, and
// returns its index, or -1 if none is free.
func (w *waiters) tryLock() int {
	for {
		free := subsFree.Load() & w.mask
		if free == 0 {
			return -1
		}
		i := bits.TrailingZeros64(free)
		if subsFree.And(^(uint64(1)<<i))&(1<<i) != 0 {
			return i
		}
	}
}

// lock locks a sub-interpreter of w's mask and returns its index, queuing
// if none is free, or returns ctx's error if ctx ends first.
func (w *waiters) lock(ctx context.Context) (int, error) {
	if !w.starving.Load() {
		if i := w.tryLock(); i >= 0 {
			return i, nil
		}
	}
	w.mu.Lock()
	w.waiting.Add(1) // before trying again: an unlock after this try sees it
	if !w.starving.Load() {
		if i := w.tryLock(); i >= 0 {
			w.waiting.Add(-1)
			w.mu.Unlock()
			return i, nil
		}
	}
	if ctx.Err() != nil {
		w.waiting.Add(-1)
		w.mu.Unlock()
		return -1, ctx.Err()
	}
	q := &subWaiter{wake: make(chan int, 2), since: time.Now()}
	w.queue = append(w.queue, q)
	w.wakeNext() // in fair mode one may have been freed before q queued
	w.mu.Unlock()
	for {
		select {
		case i := <-q.wake:
			if i >= 0 { // handed over in fair mode (q dequeued)
				return i, nil
			}
			w.mu.Lock()
			if !slices.Contains(w.queue, q) { // handed one meanwhile: it is in q.wake
				w.mu.Unlock()
				continue
			}
			if !w.starving.Load() {
				if i := w.tryLock(); i >= 0 {
					w.dequeue(q)
					w.wakeNext()
					w.mu.Unlock()
					return i, nil
				}
			}
			if time.Since(q.since) > starveAfter {
				w.starving.Store(true)
				w.wakeNext() // one freed meanwhile goes to the oldest now
			}
			w.mu.Unlock()
		case <-ctx.Done():
			w.mu.Lock()
			if w.dequeue(q) { // nothing is on its way
				w.wakeNext() // in case q was woken for a free one
				w.mu.Unlock()
				return -1, ctx.Err()
			}
			w.mu.Unlock()
			for i := range q.wake { // one was handed over as ctx ended: pass it on
				if i >= 0 {
					unlockSub(i)
					break
				}
			}
			return -1, ctx.Err()
		}
	}
}

// wakeNext serves the oldest queued caller if one of w's sub-interpreters
// is free: in fair mode it hands it over, else it wakes the caller to try
// for it. w.mu is held (so a waiter never holds more than one -1).
func (w *waiters) wakeNext() {
	if len(w.queue) == 0 || subsFree.Load()&w.mask == 0 {
		return
	}
	if w.starving.Load() {
		if i := w.tryLock(); i >= 0 {
			q := w.queue[0]
			w.dequeue(q)
			q.wake <- i
		}
		return
	}
	if len(w.queue[0].wake) == 0 {
		w.queue[0].wake <- -1
	}
}

// unlockSub unlocks sub-interpreter i: in fair mode it goes to the oldest
// queued caller of a set that has it, else it is free again and the oldest
// queued caller of each set that has it is woken to try.
func unlockSub(i int) {
	bit := uint64(1) << i
	list := *subsWaiters.Load()
	for _, w := range list {
		if w.mask&bit == 0 || w.waiting.Load() == 0 || !w.starving.Load() {
			continue
		}
		w.mu.Lock()
		if w.starving.Load() && len(w.queue) > 0 {
			q := w.queue[0]
			w.dequeue(q)
			if time.Since(q.since) < starveAfter {
				w.starving.Store(false) // as sync.Mutex: the queue moves fast enough again
			}
			w.mu.Unlock()
			q.wake <- i
			return
		}
		w.mu.Unlock()
	}
	if subsFree.Or(bit)&bit != 0 {
		panic("pyudf: unlock of an unlocked sub-interpreter")
	}
	for _, w := range list {
		if w.mask&bit != 0 && w.waiting.Load() > 0 {
			w.mu.Lock()
			w.wakeNext()
			w.mu.Unlock()
		}
	}
}

// shards are a function's instances in the sub-interpreters, one each; own
// says its calls run on the sub-interpreter's own thread, where its open()
// ran (an instance with a life cycle: Config.Affinity), else on the caller's.
type shards struct {
	objs []cgo.Object
	own  bool

	agg    *pinned // an aggregate's method instead (objs unused): its instances
	method int     // which method (pAccumulate ...)
}

// sub is one sub-interpreter and the thread that owns it. The owner runs its
// control requests and takes and releases its objects; row calls enter it
// from the caller's thread (pool.call).
type sub struct {
	index  int
	bit    uint64 // 1 << index
	alone  *waiters
	own    *owner
	interp *cgo.Subinterpreter
	fr     *frame // the lock holder's (one call at a time: lock)

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
	return &pool{main: main, subs: subs, any: waitersFor(uint64(1)<<n - 1), logger: e.logger,
		shards: map[int64]*shards{}, pinned: map[int64]*pinned{}, modules: map[int64]bool{}, affinity: cfg.Affinity}, nil
}

func (*pool) ownThreads() bool { return true } // the main interpreter's instances
func (*pool) bundles() int     { return 0 }

func (p *pool) aggregateState(int64) *aggState { return nil } // pinned by key (subinterp_agg.go), or on the main interpreter

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
		p.mu.Lock()
		g := p.pinned[id]
		delete(p.pinned, id)
		p.mu.Unlock()
		p.everySub(ctx, func(s *sub) error {
			if g != nil {
				g.release(s)
			}
			sid, ok := s.functions[id]
			if !ok {
				return nil
			}
			delete(s.functions, id)
			return s.control(ctx, op, withField(req, "function", sid), nil)
		})
		if g != nil {
			g.releaseMain()
		}
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
// scalar function or a general aggregate or table aggregate function of a
// module every sub-interpreter has, in each of them.
func (p *pool) open(ctx context.Context, pin *owner, op string, req map[string]any, reply any) error {
	module := req["module"].(int64)
	p.mu.Lock()
	everywhere := p.modules[module]
	p.mu.Unlock()
	if everywhere {
		req = withField(req, "pinned", true) // an aggregate's reply names the methods of pinnedMethods
	}
	var raw json.RawMessage
	if err := p.main.control(ctx, pin, op, req, &raw); err != nil {
		return err
	}
	var opened openReply
	if err := json.Unmarshal(raw, &opened); err != nil {
		return err
	}
	own := p.affinity == AffinityInstance || (p.affinity == AffinityAuto && opened.LifeCycle)
	switch {
	case !everywhere || opened.Missing || opened.FuncType != "general":
	case opened.Kind == "scalar":
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
			p.shards[opened.Function] = &shards{objs: objs, own: own}
			p.mu.Unlock()
		}
	case opened.Kind == "aggregate" || opened.Kind == "table aggregate":
		g, err := p.openPinned(ctx, pin, op, req, &opened)
		if err != nil { // the main interpreter's instance keeps every key
			p.logger.Info("pyudf: an aggregate function runs on the main interpreter: it cannot be opened in a sub-interpreter",
				"function", req["name"], "reason", err.Error())
			p.dropPinned(ctx, req["engine"], opened.Function, g)
		} else {
			g.own = own
			p.mu.Lock()
			p.pinned[opened.Function] = g
			p.mu.Unlock()
		}
	}
	return json.Unmarshal(raw, reply)
}

// openPinned takes the main interpreter's pool methods of an aggregate
// (pExport and after) and opens it in every sub-interpreter. On failure the
// returned pinned holds what was taken, for dropPinned.
func (p *pool) openPinned(ctx context.Context, pin *owner, op string, req map[string]any, opened *openReply) (*pinned, error) {
	g := &pinned{subs: make([][pMethods]cgo.Object, len(p.subs)), pin: pin}
	fr := getFrame()
	defer putFrame(fr)
	for m := pExport; m < pMethods; m++ {
		var st cgo.Status
		if g.main[m], st = fr.Take(opened.Methods[pinnedMethods[m]]); st != cgo.OK {
			return g, fr.failure(ctx, st, "", op)
		}
	}
	module := req["module"].(int64)
	return g, p.everySub(ctx, func(s *sub) error {
		var mine openReply
		if err := s.control(ctx, op, withField(req, "module", s.modules[module]), &mine); err != nil {
			return err
		}
		s.functions[opened.Function] = mine.Function
		var st cgo.Status
		s.own.on(func() {
			for m, name := range pinnedMethods {
				if g.subs[s.index][m], st = s.fr.Take(mine.Methods[name]); st != cgo.OK {
					return
				}
			}
		})
		if st != cgo.OK {
			return s.fr.failure(ctx, st, "", op)
		}
		return nil
	})
}

// dropPinned releases an aggregate's objects in the sub-interpreters and
// closes its instances there, and releases the main interpreter's pool
// methods (its instance stays).
func (p *pool) dropPinned(ctx context.Context, engine any, id int64, g *pinned) {
	p.everySub(ctx, func(s *sub) error {
		g.release(s)
		sid, ok := s.functions[id]
		if !ok {
			return nil
		}
		delete(s.functions, id)
		return s.control(ctx, "close", map[string]any{"op": "function_close", "engine": engine, "function": sid}, nil)
	})
	g.releaseMain()
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
		if err := s.lock(ctx); err != nil {
			return err
		}
		err := fn(s)
		s.unlock()
		if first == nil {
			first = err
		}
	}
	return first
}

// control runs one control request in the sub-interpreter, on its own
// thread; the caller holds its lock.
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
	if f.method != "" { // an aggregate's method: in the sub-interpreters if it is pinned there
		p.mu.Lock()
		g := p.pinned[f.id]
		p.mu.Unlock()
		if g != nil {
			m := slices.Index(pinnedMethods[:], f.method)
			if m < 0 {
				return fmt.Errorf("pyudf: aggregate method %q of %q has no place in the sub-interpreter pool (engine defect)", f.method, f.name)
			}
			f.shards = &shards{agg: g, method: m, own: g.own}
		}
		return nil
	}
	p.mu.Lock()
	f.shards = p.shards[f.id]
	delete(p.shards, f.id)
	p.mu.Unlock()
	return nil
}

func (p *pool) unbind(f *Function) {
	p.main.unbind(f)
	if f.shards != nil && f.shards.agg == nil { // (an aggregate's objects go with function_close)
		for _, s := range p.subs {
			s.lock(context.Background())
			s.own.on(f.shards.objs[s.index].Release)
			s.unlock()
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
	switch {
	case f.shards == nil:
		return p.main.call(ctx, f, args, inputs, result)
	case f.shards.agg != nil:
		return p.aggCall(ctx, f, args, inputs, result)
	}
	s, err := p.pick(ctx)
	if err != nil {
		return bridge.Value{}, queuedTooLong(ctx, f.name)
	}
	defer p.put(s)
	if f.closed.Load() {
		return bridge.Value{}, ErrClosed
	}
	return s.call(ctx, f, f.shards.objs[s.index], f.shards.own, args, inputs, result)
}

// call runs obj, an object of the sub-interpreter, on one row as f's call:
// on its own thread if own (Config.Affinity), else on this one. The caller
// has locked s.
func (s *sub) call(ctx context.Context, f *Function, obj cgo.Object, own bool, args []bridge.Value, inputs []*bridge.DataType, result *bridge.DataType) (bridge.Value, error) {
	fr := s.fr
	buf, err := f.appendArgs(fr.Args(), args, inputs)
	if err != nil {
		return bridge.Value{}, err
	}
	n := len(args) // (the closures below take n, so that args does not escape)
	var st cgo.Status
	switch {
	case own: // on the sub-interpreter's own thread, as open ran (Config.Affinity)
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

// pick locks a free sub-interpreter, the first free one in order, waiting
// for one if none is (see waiters), or returns ctx's error if ctx ends
// first; put unlocks it.
func (p *pool) pick(ctx context.Context) (*sub, error) {
	i, err := p.any.lock(ctx)
	if err != nil {
		return nil, err
	}
	return subsAll[i], nil
}

func (p *pool) put(s *sub) { unlockSub(s.index) }

// lock locks the sub-interpreter, or returns ctx's error if ctx ends first.
func (s *sub) lock(ctx context.Context) error {
	_, err := s.alone.lock(ctx)
	return err
}

func (s *sub) unlock() { unlockSub(s.index) }

func (p *pool) eval(ctx context.Context, f *Function, batch arrow.RecordBatch, mode string, resultType arrow.DataType, nullable bool) (arrow.Array, arrow.Array, error) {
	return p.main.eval(ctx, f, batch, mode, resultType, nullable)
}

func (p *pool) callBatch(ctx context.Context, f *Function, batch arrow.RecordBatch, result *bridge.DataType, extra ...int64) (bridge.Value, error) {
	if f.shards != nil && f.shards.agg != nil {
		return p.aggBatch(ctx, f, batch, int(extra[0]))
	}
	return p.main.callBatch(ctx, f, batch, result, extra...)
}

// closing holds every sub-interpreter and the main interpreter's gate.
func (p *pool) closing(fn func()) {
	p.lockAll()
	defer p.unlockAll()
	p.main.closing(fn)
}

// lockAll locks every sub-interpreter of the pool, in order (as everyone
// that holds more than one takes them: no deadlock).
func (p *pool) lockAll() { p.lockAllContext(context.Background()) }

// lockAllContext is lockAll, or ctx's error (nothing locked) if ctx ends first.
func (p *pool) lockAllContext(ctx context.Context) error {
	for i, s := range p.subs {
		if err := s.lock(ctx); err != nil {
			for _, t := range p.subs[:i] {
				t.unlock()
			}
			return err
		}
	}
	return nil
}

func (p *pool) unlockAll() {
	for _, s := range p.subs {
		s.unlock()
	}
}

// close leaves the sub-interpreters to the process (see pool): the engine's
// modules and instances in them went with engine_close.
func (*pool) close() {}
