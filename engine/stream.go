package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
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
// that ran it. Close sends the last bundle; Results is closed after the last
// result.
type Stream struct {
	f       *Function
	ctx     context.Context
	size    int
	wait    time.Duration
	results chan StreamResult

	threadMu sync.Mutex // thread mode: one row at a time, so results stay in order

	mu      sync.Mutex
	seq     int64
	pending [][]any // process mode: the bundle being filled
	first   int64   // its first row's Seq
	timer   *time.Timer
	closed  bool
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
	if f.engine.proc != nil {
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
	if s.f.engine.proc == nil { // thread mode: call now
		s.threadMu.Lock()
		defer s.threadMu.Unlock()
	} else if err := s.check(args); err != nil {
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	seq := s.seq
	s.seq++
	if s.f.engine.proc == nil {
		s.mu.Unlock()
		v, err := s.f.Call(s.ctx, args...)
		s.results <- StreamResult{Seq: seq, Value: v, Err: err}
		return nil
	}
	if len(s.pending) == 0 {
		s.first = seq
		s.timer = time.AfterFunc(s.wait, func() {
			s.mu.Lock()
			if s.first == seq && len(s.pending) > 0 {
				s.flushLocked()
			}
			s.mu.Unlock()
		})
	}
	s.pending = append(s.pending, args)
	if len(s.pending) >= s.size {
		s.flushLocked()
	}
	s.mu.Unlock()
	return nil
}

// check refuses, at Send, a row that does not fit the bundle's columns.
func (s *Stream) check(args []any) error {
	for i, a := range args {
		b := array.NewBuilder(memory.DefaultAllocator, arrowconv.ArrowType(s.f.inputs[i]))
		err := appendArrow(b, bridge.ValueOf(a))
		b.Release()
		if err != nil {
			return fmt.Errorf("pyudf: function %q: %s: %w", s.f.name, argumentName(i), err)
		}
	}
	return nil
}

// flushLocked sends the pending bundle to a worker; its results are
// delivered after those of earlier bundles.
func (s *Stream) flushLocked() {
	rows, first := s.pending, s.first
	s.pending = nil
	s.first = -1
	if s.timer != nil {
		s.timer.Stop()
	}
	s.flushes.Add(1)
	go func() {
		defer s.flushes.Done()
		out := s.runBundle(rows)
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
		s.next = first + int64(len(rows))
		s.cond.Broadcast()
		s.mu.Unlock()
	}()
}

// runBundle evaluates one bundle as a record batch, rows that raise
// getting their own error.
func (s *Stream) runBundle(rows [][]any) []StreamResult {
	out := make([]StreamResult, len(rows))
	fail := func(err error) []StreamResult {
		for i := range out {
			out[i].Err = err
		}
		return out
	}
	rec, err := bundleBatch(s.f.inputs, rows)
	if err != nil {
		return fail(fmt.Errorf("pyudf: function %q: %w", s.f.name, err))
	}
	defer rec.Release()
	res, errs, err := s.f.EvalRowErrors(s.ctx, rec)
	if err != nil {
		return fail(err)
	}
	defer res.Release()
	defer errs.Release()
	msgs := errs.(*array.String)
	for i := range out {
		if msgs.IsValid(i) {
			typ, msg, _ := strings.Cut(msgs.Value(i), ": ")
			out[i].Err = &bridge.PythonError{Function: s.f.name, Op: "call", Row: -1, Type: typ, Message: msg}
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
	if len(s.pending) > 0 {
		s.flushLocked()
	}
	s.mu.Unlock()
	go func() {
		s.flushes.Wait()
		close(s.results)
	}()
	return nil
}

// bundleBatch builds a record batch of rows with the declared input types.
func bundleBatch(inputs []*bridge.DataType, rows [][]any) (arrow.RecordBatch, error) {
	fields := make([]arrow.Field, len(inputs))
	for i, t := range inputs {
		fields[i] = arrow.Field{Name: fmt.Sprintf("arg%d", i+1), Type: arrowconv.ArrowType(t), Nullable: true}
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, arrow.NewSchema(fields, nil))
	defer b.Release()
	for r, row := range rows {
		for i, v := range row {
			if err := appendArrow(b.Field(i), bridge.ValueOf(v)); err != nil {
				return nil, fmt.Errorf("row %d, %s: %w", r, argumentName(i), err)
			}
		}
	}
	return b.NewRecordBatch(), nil
}

var errStreamValue = errors.New("value does not fit the column")

// appendArrow appends v to a builder of one of streamTypes' Arrow types.
func appendArrow(b array.Builder, v bridge.Value) error {
	if v.IsNull() {
		b.AppendNull()
		return nil
	}
	k := v.Kind()
	isInt := k >= bridge.KindInt8 && k <= bridge.KindInt64
	switch b := b.(type) {
	case *array.BooleanBuilder:
		if k == bridge.KindBool {
			b.Append(v.AsBool())
			return nil
		}
	case *array.Int8Builder:
		if isInt && v.AsInt64() == int64(int8(v.AsInt64())) {
			b.Append(int8(v.AsInt64()))
			return nil
		}
	case *array.Int16Builder:
		if isInt && v.AsInt64() == int64(int16(v.AsInt64())) {
			b.Append(int16(v.AsInt64()))
			return nil
		}
	case *array.Int32Builder:
		if isInt && v.AsInt64() == int64(int32(v.AsInt64())) {
			b.Append(int32(v.AsInt64()))
			return nil
		}
	case *array.Int64Builder:
		if isInt {
			b.Append(v.AsInt64())
			return nil
		}
	case *array.Float32Builder:
		if k == bridge.KindFloat32 || k == bridge.KindFloat64 {
			b.Append(float32(v.AsFloat64()))
			return nil
		} else if isInt {
			b.Append(float32(v.AsInt64()))
			return nil
		}
	case *array.Float64Builder:
		if k == bridge.KindFloat32 || k == bridge.KindFloat64 {
			b.Append(v.AsFloat64())
			return nil
		} else if isInt {
			b.Append(float64(v.AsInt64()))
			return nil
		}
	case *array.StringBuilder:
		if k == bridge.KindString {
			b.Append(v.AsString())
			return nil
		}
	case *array.BinaryBuilder:
		if k == bridge.KindBytes {
			b.Append(v.AsBytes())
			return nil
		}
	case *array.Date32Builder: // the date of a time.Time's wall clock
		if t, ok := v.Any().(time.Time); ok {
			y, m, d := t.Date()
			b.Append(arrow.Date32FromTime(time.Date(y, m, d, 0, 0, 0, 0, time.UTC)))
			return nil
		}
	case *array.Time64Builder: // microseconds since midnight
		switch x := v.Any().(type) {
		case time.Duration:
			if x >= 0 && x < 24*time.Hour {
				b.Append(arrow.Time64(x / time.Microsecond))
				return nil
			}
		case time.Time:
			b.Append(arrow.Time64(bridge.TimeOfDay(x) / time.Microsecond))
			return nil
		}
	case *array.TimestampBuilder:
		if t, ok := v.Any().(time.Time); ok {
			typ := b.Type().(*arrow.TimestampType)
			if typ.TimeZone == "" { // TIMESTAMP: the wall clock, as if in UTC
				t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
			}
			ts, err := arrow.TimestampFromTime(t.Truncate(time.Microsecond), typ.Unit)
			if err == nil {
				b.Append(ts)
				return nil
			}
		}
	}
	return fmt.Errorf("%w: Go %T for %s", errStreamValue, v.Any(), b.Type())
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
