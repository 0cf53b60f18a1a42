package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/pyudf/pyudf/arrowconv"
	"github.com/pyudf/pyudf/bridge"
)

// StreamResult is the result of one row sent to a Stream: Seq numbers the
// rows in the order Send took them, from 0.
type StreamResult struct {
	Seq   int64
	Value any
	Err   error
}

// Stream runs a scalar function over rows sent one at a time, for streaming
// pipelines, and delivers every row's result, in order, on Results.
//
// In thread mode each row is called at once: there is no batching delay.
// In process mode rows are bundled as PyFlink bundles them: a bundle goes to
// a worker as one Arrow record batch when it holds Config.BundleSize rows or
// its first row has waited Config.BundleTime. A row that raises gets its
// own error; a bundle whose worker dies gives every row in it the error.
// Nothing is dropped: every row sent gets a result.
//
// Read Results while sending: in thread mode Send blocks while Results is
// full; in process mode a bundle's results wait to be read in the goroutine
// that ran it, and Send blocks while twice Config.Workers bundles are in
// flight (filled, run or waiting for their results to be read), so a
// producer faster than the workers or than the reader of Results is held
// back instead of piling up bundles. A Send blocked so returns the error of
// the stream's context if it ends. Close sends the last bundle; Results is
// closed after the last result.
type Stream struct {
	f       *Function
	ctx     context.Context
	size    int
	wait    time.Duration
	results chan StreamResult

	threadMu sync.Mutex // not bundled: one row at a time, so results stay in order

	mu      sync.Mutex
	seq     int64
	bundle  *array.RecordBuilder // bundled (process mode): the bundle being filled; nil: each row is called at once
	pending int                  // its rows
	first   int64                // its first row's Seq
	timer   *time.Timer
	closed  bool
	slots   chan struct{}  // process mode: one per bundle in flight, the bound of back-pressure
	held    bool           // bundled (process mode): the bundle being filled; nil: each row is called at once holds a slot
	flushes sync.WaitGroup // process mode: bundles being run or delivered
	next    int64          // process mode: the Seq whose results are due next
	cond    *sync.Cond
}

// streamTypes are the SQL types a process-mode Stream builds bundles of.
var streamTypes = map[bridge.Kind]bool{
	bridge.BooleanType: true, bridge.TinyIntType: true, bridge.SmallIntType: true, bridge.IntType: true,
	bridge.BigIntType: true, bridge.FloatType: true, bridge.DoubleType: true, bridge.CharType: true,
	bridge.VarCharType: true, bridge.BinaryType: true, bridge.VarBinaryType: true,
	bridge.DateType: true, bridge.TimeType: true, bridge.TimestampType: true, bridge.TimestampLTZType: true,
}

// streamable says whether a process-mode Stream builds bundles of type t:
// not nested types, not DECIMAL, no finer than microseconds (Python's own limit).
func streamable(t *bridge.DataType) bool {
	switch t.Kind {
	case bridge.TimeType, bridge.TimestampType, bridge.TimestampLTZType:
		return t.Precision <= 6
	}
	return streamTypes[t.Kind]
}

// Stream opens a stream over a general scalar function. ctx bounds every
// call the stream makes.
func (f *Function) Stream(ctx context.Context) (*Stream, error) {
	if f.funcType != "general" || f.kind != "scalar" {
		return nil, f.wrongUse("Stream")
	}
	cfg := f.engine.cfg
	s := &Stream{f: f, ctx: ctx, size: cfg.BundleSize, wait: cfg.BundleTime}
	if s.size <= 0 {
		s.size = 1000
	}
	if s.wait <= 0 {
		s.wait = time.Second
	}
	bundles := f.engine.backend.bundles() // 0: each row is called at once
	if bundles > 0 {
		if f.inputs == nil || f.result == nil {
			return nil, fmt.Errorf("%w: function %q: a process-mode Stream bundles rows into Arrow batches and needs declared input and result types",
				ErrUnsupported, f.name)
		}
		for _, t := range append(append([]*bridge.DataType{}, f.inputs...), f.result) {
			if !streamable(t) {
				return nil, fmt.Errorf("%w: function %q: a process-mode Stream takes BOOLEAN, integer, FLOAT, DOUBLE, string, binary, DATE, TIME and TIMESTAMP types, not %s",
					ErrUnsupported, f.name, t)
			}
		}
	}
	if bundles > 0 {
		fields := make([]arrow.Field, len(f.inputs))
		for i, t := range f.inputs {
			fields[i] = arrow.Field{Name: fmt.Sprintf("arg%d", i+1), Type: arrowconv.ArrowType(t), Nullable: true}
		}
		s.bundle = array.NewRecordBuilder(memory.DefaultAllocator, arrow.NewSchema(fields, nil))
		s.slots = make(chan struct{}, bundles)
	}
	s.results = make(chan StreamResult, s.size)
	s.cond = sync.NewCond(&s.mu)
	return s, nil
}

// Results delivers one StreamResult per row sent, in order.
func (s *Stream) Results() <-chan StreamResult { return s.results }

// Send hands one row to the stream.
func (s *Stream) Send(args ...any) error {
	if err := s.f.checkArgs(len(args)); err != nil {
		return err
	}
	var row []any        // bundled: the arguments as the bundle's column values
	if s.bundle == nil { // not bundled: call now
		s.threadMu.Lock()
		defer s.threadMu.Unlock()
	} else {
		var err error
		if row, err = s.columnValues(args); err != nil {
			return err
		}
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	if s.slots != nil && !s.held { // this row starts a bundle: wait for a slot
		s.mu.Unlock()
		if err := s.acquireSlot(); err != nil {
			return err
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			<-s.slots
			return ErrClosed
		}
		if s.held { // another Send started the bundle meanwhile
			<-s.slots
		}
		s.held = true
	}
	seq := s.seq
	s.seq++
	if s.bundle == nil {
		s.mu.Unlock()
		v, err := s.f.Call(s.ctx, args...)
		s.results <- StreamResult{Seq: seq, Value: v, Err: err}
		return nil
	}
	if s.pending == 0 {
		s.first = seq
		s.timer = time.AfterFunc(s.wait, func() {
			s.mu.Lock()
			if s.first == seq && s.pending > 0 {
				s.flushLocked()
			}
			s.mu.Unlock()
		})
	}
	for i, x := range row {
		appendColumnValue(s.bundle.Field(i), x)
	}
	s.pending++
	if s.pending >= s.size {
		s.flushLocked()
	}
	s.mu.Unlock()
	return nil
}

// acquireSlot waits until fewer bundles than the bound are in flight, or
// the stream's context ends.
func (s *Stream) acquireSlot() error {
	select {
	case s.slots <- struct{}{}:
		return nil
	default:
	}
	select {
	case s.slots <- struct{}{}:
		return nil
	case <-s.ctx.Done():
		return fmt.Errorf("pyudf: function %q: stream: %w", s.f.name, s.ctx.Err())
	}
}

// columnValues converts a row's arguments to the values of the bundle's
// columns, refusing, at Send, a row that does not fit them.
func (s *Stream) columnValues(args []any) ([]any, error) {
	row := make([]any, len(args))
	for i, a := range args {
		var err error
		if row[i], err = columnValue(s.bundle.Schema().Field(i).Type, bridge.ValueOf(a)); err != nil {
			return nil, fmt.Errorf("pyudf: function %q: %s: %w", s.f.name, argumentName(i), err)
		}
	}
	return row, nil
}

// flushLocked sends the pending bundle to a worker; its results are
// delivered after those of earlier bundles.
func (s *Stream) flushLocked() {
	rec, n, first := s.bundle.NewRecordBatch(), s.pending, s.first
	s.pending = 0
	s.first = -1
	s.held = false // the slot goes with the bundle, freed once its results are read
	if s.timer != nil {
		s.timer.Stop()
	}
	s.flushes.Add(1)
	go func() {
		defer s.flushes.Done()
		defer func() { <-s.slots }()
		out := s.runBundle(rec)
		s.mu.Lock()
		for s.next != first {
			s.cond.Wait()
		}
		s.mu.Unlock()
		for i, r := range out {
			r.Seq = first + int64(i)
			s.results <- r
		}
		s.mu.Lock()
		s.next = first + int64(n)
		s.cond.Broadcast()
		s.mu.Unlock()
	}()
}

// runBundle evaluates one bundle (and releases it), rows that raise
// getting their own error.
func (s *Stream) runBundle(rec arrow.RecordBatch) []StreamResult {
	defer rec.Release()
	out := make([]StreamResult, rec.NumRows())
	res, errs, err := s.f.EvalRowErrors(s.ctx, rec)
	if err != nil {
		for i := range out {
			out[i].Err = err
		}
		return out
	}
	defer res.Release()
	defer errs.Release()
	msgs := errs.(*array.String)
	for i := range out {
		if msgs.IsValid(i) {
			out[i].Err = RowErrorOf(s.f.name, -1, msgs.Value(i))
			continue
		}
		out[i].Value = arrowValue(res, i)
	}
	return out
}

// Close sends the last bundle and returns; Results is closed once every
// row's result is delivered. Later Sends fail with ErrClosed.
func (s *Stream) Close() error {
	s.threadMu.Lock() // thread mode: let a Send in progress deliver first
	defer s.threadMu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	if s.pending > 0 {
		s.flushLocked()
	}
	if s.bundle != nil {
		s.bundle.Release()
	}
	s.mu.Unlock()
	go func() {
		s.flushes.Wait()
		close(s.results)
	}()
	return nil
}

var errStreamValue = errors.New("value does not fit the column")

// columnValue converts v to the value a column of Arrow type t (one of
// streamTypes') holds: bool, int8 ... int64, float32, float64, string,
// []byte, arrow.Date32, arrow.Time64, arrow.Timestamp, or nil for NULL.
func columnValue(t arrow.DataType, v bridge.Value) (any, error) {
	if v.IsNull() {
		return nil, nil
	}
	k := v.Kind()
	isInt := k >= bridge.KindInt8 && k <= bridge.KindInt64
	isFloat := k == bridge.KindFloat32 || k == bridge.KindFloat64
	n := v.AsInt64()
	switch t.ID() {
	case arrow.BOOL:
		if k == bridge.KindBool {
			return v.AsBool(), nil
		}
	case arrow.INT8:
		if isInt && n == int64(int8(n)) {
			return int8(n), nil
		}
	case arrow.INT16:
		if isInt && n == int64(int16(n)) {
			return int16(n), nil
		}
	case arrow.INT32:
		if isInt && n == int64(int32(n)) {
			return int32(n), nil
		}
	case arrow.INT64:
		if isInt {
			return n, nil
		}
	case arrow.FLOAT32:
		if isFloat {
			return float32(v.AsFloat64()), nil
		} else if isInt {
			return float32(n), nil
		}
	case arrow.FLOAT64:
		if isFloat {
			return v.AsFloat64(), nil
		} else if isInt {
			return float64(n), nil
		}
	case arrow.STRING:
		if k == bridge.KindString {
			return v.AsString(), nil
		}
	case arrow.BINARY:
		if k == bridge.KindBytes {
			return v.AsBytes(), nil
		}
	case arrow.DATE32: // the date of a time.Time's wall clock
		if tm, ok := v.Any().(time.Time); ok {
			y, m, d := tm.Date()
			return arrow.Date32FromTime(time.Date(y, m, d, 0, 0, 0, 0, time.UTC)), nil
		}
	case arrow.TIME64: // microseconds since midnight
		switch x := v.Any().(type) {
		case time.Duration:
			if x >= 0 && x < 24*time.Hour {
				return arrow.Time64(x / time.Microsecond), nil
			}
		case time.Time:
			return arrow.Time64(bridge.TimeOfDay(x) / time.Microsecond), nil
		}
	case arrow.TIMESTAMP:
		if tm, ok := v.Any().(time.Time); ok {
			typ := t.(*arrow.TimestampType)
			if typ.TimeZone == "" { // TIMESTAMP: the wall clock, as if in UTC
				tm = time.Date(tm.Year(), tm.Month(), tm.Day(), tm.Hour(), tm.Minute(), tm.Second(), tm.Nanosecond(), time.UTC)
			}
			if ts, err := arrow.TimestampFromTime(tm.Truncate(time.Microsecond), typ.Unit); err == nil {
				return ts, nil
			}
		}
	}
	return nil, fmt.Errorf("%w: Go %T for %s", errStreamValue, v.Any(), t)
}

// appendColumnValue appends x, from columnValue for b's type, to b.
func appendColumnValue(b array.Builder, x any) {
	if x == nil {
		b.AppendNull()
		return
	}
	switch b := b.(type) {
	case *array.BooleanBuilder:
		b.Append(x.(bool))
	case *array.Int8Builder:
		b.Append(x.(int8))
	case *array.Int16Builder:
		b.Append(x.(int16))
	case *array.Int32Builder:
		b.Append(x.(int32))
	case *array.Int64Builder:
		b.Append(x.(int64))
	case *array.Float32Builder:
		b.Append(x.(float32))
	case *array.Float64Builder:
		b.Append(x.(float64))
	case *array.StringBuilder:
		b.Append(x.(string))
	case *array.BinaryBuilder:
		b.Append(x.([]byte))
	case *array.Date32Builder:
		b.Append(x.(arrow.Date32))
	case *array.Time64Builder:
		b.Append(x.(arrow.Time64))
	case *array.TimestampBuilder:
		b.Append(x.(arrow.Timestamp))
	}
}

// arrowValue is element i of a, of one of streamTypes' Arrow types, as the
// Go value Call returns for it.
func arrowValue(a arrow.Array, i int) any {
	if a.IsNull(i) {
		return nil
	}
	switch a := a.(type) {
	case *array.Boolean:
		return a.Value(i)
	case *array.Int8:
		return a.Value(i)
	case *array.Int16:
		return a.Value(i)
	case *array.Int32:
		return a.Value(i)
	case *array.Int64:
		return a.Value(i)
	case *array.Float32:
		return a.Value(i)
	case *array.Float64:
		return a.Value(i)
	case *array.String:
		return a.Value(i)
	case *array.Binary:
		v := a.Value(i)
		return append(make([]byte, 0, len(v)), v...) // never nil: nil is NULL
	case *array.Date32:
		return a.Value(i).ToTime()
	case *array.Time64:
		return time.Duration(a.Value(i)) * time.Microsecond
	case *array.Timestamp:
		return a.Value(i).ToTime(a.DataType().(*arrow.TimestampType).Unit)
	}
	return nil
}
