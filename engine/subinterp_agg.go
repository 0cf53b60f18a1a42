package engine

import (
	"context"
	"hash/crc32"
	"math"
	"math/big"
	"sync"
	"time"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/pyudf/pyudf/arrowconv"
	"github.com/pyudf/pyudf/bridge"
	"github.com/pyudf/pyudf/cgo"
)

// Aggregates in the sub-interpreter pool. A general aggregate or table
// aggregate function of a module that every sub-interpreter has is opened in
// each of them (its open() runs in each), and each key's accumulator lives in
// exactly one: the one pinHash(key) names, modulo the pool's size. A key's
// calls (Accumulate, Retract, Value, Remove) lock that sub-interpreter alone,
// so keys in different sub-interpreters run on different cores. What spans
// keys spans sub-interpreters:
//
//   - Len adds up every sub-interpreter's count, and Snapshot joins their
//     snapshots into one (on the main interpreter), with every sub-interpreter
//     locked: a snapshot holds every key once, in the format of thread mode,
//     whatever the pool's size.
//   - Restore splits a snapshot by the same hash (on the main interpreter,
//     which also checks it), then restores each part in its sub-interpreter:
//     a snapshot restores into a pool of any size, and into thread and
//     process mode.
//   - Merge moves the accumulators of the keys pinned elsewhere to the target
//     key's sub-interpreter as pickles (export), merges there (merge_from),
//     and only then drops them where they came from: if merge raises,
//     nothing was dropped.
//   - AccumulateBatch converts the batch to Python values with pyarrow on the
//     main interpreter (pyarrow does not load in a sub-interpreter), splits
//     its rows by the hash of their key, and accumulates each part in its
//     sub-interpreter (accumulate_rows), the parts at once.
//
// The main interpreter's instance keeps no accumulators. An aggregate that
// cannot be opened in a sub-interpreter keeps them all on the main one.

// The methods of a KeyedAggregate (python/pyudf/_aggregate.py) that the pool
// takes in every interpreter: the Aggregate's own, and the pool's.
const (
	pAccumulate = iota
	pRetract
	pMerge
	pGetValue
	pRemove
	pSize
	pAccumulateBatch
	pSnapshot
	pRestore
	pSnapshotKey
	pRestoreKey
	pExport // the pool's, from here on
	pMergeFrom
	pAccumulateRows
	pJoinSnapshots
	pSplitSnapshot
	pSplitBatch
	pMethods
)

var pinnedMethods = [pMethods]string{"accumulate", "retract", "merge", "get_value", "remove", "size",
	"accumulate_batch", "snapshot", "restore", "snapshot_key", "restore_key", "export", "merge_from", "accumulate_rows",
	"join_snapshots", "split_snapshot", "split_batch"}

// pinned is an aggregate's instances in the sub-interpreters.
type pinned struct {
	subs [][pMethods]cgo.Object // by sub-interpreter: every method
	main [pMethods]cgo.Object   // the main interpreter's pool methods (pExport on; the rest are its Functions')
	pin  *owner                 // the main instance's thread (Config.Affinity), or nil
	own  bool                   // calls in a sub-interpreter run on its own thread (Config.Affinity)
}

// release drops the objects of s, which the caller has locked.
func (g *pinned) release(s *sub) {
	objs := &g.subs[s.index]
	s.own.on(func() {
		for m := range objs {
			objs[m].Release()
			objs[m] = cgo.Object{}
		}
	})
}

func (g *pinned) releaseMain() {
	g.pin.on(func() {
		for m := range g.main {
			g.main[m].Release()
			g.main[m] = cgo.Object{}
		}
	})
}

var (
	bytesType      = bridge.MustParseType("BYTES NOT NULL")
	bytesArrayType = bridge.MustParseType("ARRAY<BYTES NOT NULL> NOT NULL")
	bigintType     = bridge.MustParseType("BIGINT NOT NULL")
)

// home is the sub-interpreter that holds key's accumulator.
func (p *pool) home(key bridge.Value) *sub {
	return p.subs[pinHash(key)%uint64(len(p.subs))]
}

// aggCall runs a method of a pinned aggregate (f.shards.agg).
func (p *pool) aggCall(ctx context.Context, f *Function, args []bridge.Value, inputs []*bridge.DataType, result *bridge.DataType) (bridge.Value, error) {
	g, m := f.shards.agg, f.shards.method
	switch m {
	case pMerge:
		return p.aggMerge(ctx, f, g, args)
	case pSize:
		var n int64
		err := p.aggEvery(ctx, f, func(s *sub) error {
			v, err := s.call(ctx, f, g.subs[s.index][pSize], g.own, nil, nil, bigintType)
			n += v.AsInt64()
			return err
		})
		return bridge.Int64(n), err
	case pSnapshot:
		parts := make([]bridge.Value, len(p.subs))
		if err := p.aggEvery(ctx, f, func(s *sub) (err error) {
			parts[s.index], err = s.call(ctx, f, g.subs[s.index][pSnapshot], g.own, nil, nil, bytesType)
			return err
		}); err != nil {
			return bridge.Value{}, err
		}
		return p.callMain(ctx, f, g.main[pJoinSnapshots], parts, nil, bytesType)
	case pRestore:
		split, err := p.callMain(ctx, f, g.main[pSplitSnapshot], []bridge.Value{args[0], bridge.Int64(int64(len(p.subs)))},
			[]*bridge.DataType{bytesType, bigintType}, bytesArrayType)
		if err != nil {
			return bridge.Value{}, err // not a snapshot: every part as it was
		}
		parts := split.Any().([]any)
		var n int64
		err = p.aggEvery(ctx, f, func(s *sub) error {
			v, err := s.call(ctx, f, g.subs[s.index][pRestore], g.own, []bridge.Value{bridge.Bytes(parts[s.index].([]byte))},
				[]*bridge.DataType{bytesType}, bigintType)
			n += v.AsInt64()
			return err
		})
		return bridge.Int64(n), err
	}
	// accumulate, retract, get_value, remove, snapshot_key, restore_key: the key's sub-interpreter
	s := p.home(args[0])
	if err := s.lock(ctx); err != nil {
		return bridge.Value{}, queuedTooLong(ctx, f.name)
	}
	defer s.unlock()
	if f.closed.Load() {
		return bridge.Value{}, ErrClosed
	}
	return s.call(ctx, f, g.subs[s.index][m], g.own, args, inputs, result)
}

// aggEvery runs fn in every sub-interpreter, all of them locked at once (a
// consistent view of every key), and returns the first error.
func (p *pool) aggEvery(ctx context.Context, f *Function, fn func(s *sub) error) error {
	if err := p.lockAllContext(ctx); err != nil {
		return queuedTooLong(ctx, f.name)
	}
	defer p.unlockAll()
	if f.closed.Load() {
		return ErrClosed
	}
	for _, s := range p.subs {
		if err := fn(s); err != nil {
			return err
		}
	}
	return nil
}

// aggMerge merges the accumulators of keys args[1:] into that of key
// args[0] (see the top of this file).
func (p *pool) aggMerge(ctx context.Context, f *Function, g *pinned, args []bridge.Value) (bridge.Value, error) {
	into := p.home(args[0])
	moved := map[*sub][]bridge.Value{} // the sources pinned elsewhere, by their sub-interpreter
	for _, key := range args[1:] {
		if s := p.home(key); s != into {
			moved[s] = append(moved[s], key)
		}
	}
	var locked []*sub // in index order, as lockAll takes them
	for _, s := range p.subs {
		if s == into || moved[s] != nil {
			if err := s.lock(ctx); err != nil {
				for _, t := range locked {
					t.unlock()
				}
				return bridge.Value{}, queuedTooLong(ctx, f.name)
			}
			locked = append(locked, s)
		}
	}
	defer func() {
		for _, s := range locked {
			s.unlock()
		}
	}()
	if f.closed.Load() {
		return bridge.Value{}, ErrClosed
	}
	if len(moved) == 0 {
		return into.call(ctx, f, g.subs[into.index][pMerge], g.own, args, nil, nil)
	}
	var exported [][]byte
	for _, s := range locked {
		if keys := moved[s]; keys != nil {
			v, err := s.call(ctx, f, g.subs[s.index][pExport], g.own, keys, nil, bytesType)
			if err != nil {
				return bridge.Value{}, err
			}
			exported = append(exported, v.AsBytes())
		}
	}
	mergeArgs := append([]bridge.Value{args[0], bridge.ValueOf(exported)}, args[1:]...)
	inputs := make([]*bridge.DataType, len(mergeArgs))
	inputs[1] = bytesArrayType
	if _, err := into.call(ctx, f, g.subs[into.index][pMergeFrom], g.own, mergeArgs, inputs, nil); err != nil {
		return bridge.Value{}, err // nothing dropped: each source is where it was
	}
	for s, keys := range moved { // merged: drop them where they came from, whatever ctx says now
		for _, key := range keys {
			if _, err := s.call(context.Background(), f, g.subs[s.index][pRemove], g.own, []bridge.Value{key}, nil, nil); err != nil {
				return bridge.Value{}, err
			}
		}
	}
	return bridge.Null(), nil
}

// aggBatch is AccumulateBatch of a pinned aggregate: the rows split by key
// on the main interpreter, each part accumulated in its sub-interpreter, all
// parts at once. It returns the number of rows.
func (p *pool) aggBatch(ctx context.Context, f *Function, batch arrow.RecordBatch, keyColumn int) (bridge.Value, error) {
	if err := batchesReady(f.name); err != nil {
		return bridge.Value{}, err
	}
	g := f.shards.agg
	exp := arrowconv.ExportRecordBatch(batch)
	split, err := p.callMain(ctx, f, g.main[pSplitBatch], []bridge.Value{bridge.Int64(int64(exp.ArrayAddr())),
		bridge.Int64(int64(exp.SchemaAddr())), bridge.Int64(int64(keyColumn)), bridge.Int64(int64(len(p.subs)))}, nil, bytesArrayType)
	exp.Free()
	if err != nil {
		return bridge.Value{}, err
	}
	parts := split.Any().([]any)
	errs := make([]error, len(p.subs))
	var wg sync.WaitGroup
	for _, s := range p.subs {
		rows := parts[s.index].([]byte)
		if len(rows) == 0 {
			continue
		}
		wg.Go(func() {
			if err := s.lock(ctx); err != nil {
				errs[s.index] = queuedTooLong(ctx, f.name)
				return
			}
			defer s.unlock()
			if f.closed.Load() {
				errs[s.index] = ErrClosed
				return
			}
			_, errs[s.index] = s.call(ctx, f, g.subs[s.index][pAccumulateRows], g.own, []bridge.Value{bridge.Bytes(rows)},
				[]*bridge.DataType{bytesType}, bigintType)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return bridge.Value{}, err
		}
	}
	return bridge.Int64(batch.NumRows()), nil
}

// callMain calls obj, an object of the main interpreter, on one row as f's
// call, through the main interpreter's gate (so that f's close waits for it).
func (p *pool) callMain(ctx context.Context, f *Function, obj cgo.Object, args []bridge.Value, inputs []*bridge.DataType, result *bridge.DataType) (bridge.Value, error) {
	gt := p.main.gate
	fr, err := gt.enter(ctx, f.name)
	if err != nil {
		return bridge.Value{}, err
	}
	defer gt.leave(fr)
	if f.closed.Load() {
		return bridge.Value{}, ErrClosed
	}
	buf, err := f.appendArgs(fr.Args(), args, inputs)
	if err != nil {
		return bridge.Value{}, err
	}
	st := fr.run(ctx, func() cgo.Status { return fr.Call(obj, buf, len(args)) })
	return fr.value(ctx, st, f.name, result)
}

// pinHash is a hash of an aggregate key, the Go twin of pin_hash in
// python/pyudf/_aggregate.py: both compute it from the key's value in Python
// (what Go's value converts to), equal for keys that are equal in Python.
// Integers and bools: their value modulo 2**64; integral floats as that
// integer, other floats by their bits (NaN: 0); strings and bytes by the
// CRC-32 of their bytes; times by microseconds since the epoch (the UTC
// instant); a *big.Int as an integer. Other keys: 0 (the first
// sub-interpreter).
func pinHash(v bridge.Value) uint64 {
	switch v.Kind() {
	case bridge.KindBool, bridge.KindInt8, bridge.KindInt16, bridge.KindInt32, bridge.KindInt64:
		if v.Kind() == bridge.KindBool {
			if v.AsBool() {
				return mix64(1)
			}
			return mix64(0)
		}
		return mix64(uint64(v.AsInt64()))
	case bridge.KindFloat32, bridge.KindFloat64:
		return floatHash(v.AsFloat64())
	case bridge.KindString:
		s := v.AsString()
		return mix64(uint64(crc32.ChecksumIEEE(unsafe.Slice(unsafe.StringData(s), len(s)))) | 1<<32)
	case bridge.KindBytes:
		return mix64(uint64(crc32.ChecksumIEEE(v.AsBytes())) | 1<<32)
	case bridge.KindAny:
		switch x := v.Any().(type) {
		case time.Time:
			return mix64(uint64(x.UnixMicro()))
		case *big.Int:
			return mix64(low64(x))
		}
	}
	return 0
}

var mask64 = new(big.Int).SetUint64(math.MaxUint64)

// low64 is x modulo 2**64 (two's complement for a negative x).
func low64(x *big.Int) uint64 { return new(big.Int).And(x, mask64).Uint64() }

func floatHash(f float64) uint64 {
	switch {
	case f != f:
		return 0
	case math.IsInf(f, 0) || f != math.Trunc(f):
		return mix64(math.Float64bits(f))
	case f >= -(1<<63) && f < 1<<63:
		return mix64(uint64(int64(f)))
	}
	i, _ := new(big.Float).SetFloat64(f).Int(nil)
	return mix64(low64(i))
}

// mix64 is splitmix64's finalizer.
func mix64(x uint64) uint64 {
	x += 0x9E3779B97F4A7C15
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9
	x = (x ^ (x >> 27)) * 0x94D049BB133111EB
	return x ^ (x >> 31)
}
