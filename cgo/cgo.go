// Package cgo is pyudf's C shim over the CPython C API, with thin Go wrappers.
//
// It is internal machinery of package engine, not API: it changes whenever
// the engine needs it to and carries no stability promise. Use package engine.
//
// The C side is a few coarse functions, one file per concern: interp.c starts
// the interpreter and manages thread states and the GIL, call.c runs calls,
// convert.c converts the argument/result wire format to and from Python
// objects, arrays.c exports numpy results as Arrow arrays, errors.c describes
// exceptions. One Go→C crossing does one whole
// unit of work (one row call, one control request); the GIL is taken and
// released inside it.
//
// Thread model: Init runs once per process on a goroutine locked to its OS
// thread. After that any goroutine may call any function here concurrently; a
// Frame is used by one call at a time. C keeps no Go pointer after a call
// returns: arguments are decoded into Python objects during the call, results
// are written to C memory owned by the Frame.
package cgo

/*
#cgo pkg-config: python3-embed
#include <stdlib.h>
#include "interp.h"
#include "call.h"
#include "arrays.h"
#include "convert.h"
#include <patchlevel.h>
#define PYUDF_STR2(x) #x
#define PYUDF_STR(x) PYUDF_STR2(x)
#define PYUDF_LINKED_VERSION PYUDF_STR(PY_MAJOR_VERSION) "." PYUDF_STR(PY_MINOR_VERSION)

// The hot path passes handles as integers: cgo's pointer check would otherwise
// inspect the frame (a struct with pointers) on every call.
static int call_h(uintptr_t fn, int nargs, uint64_t id, uintptr_t f)
{
	return pyudf_call((PyObject *)fn, nargs, id, (pyudf_frame *)f);
}
static int bare_str_h(uintptr_t fn, uintptr_t f) { return pyudf_bare_str((PyObject *)fn, (pyudf_frame *)f); }
static int64_t bare_add_h(uintptr_t fn, int64_t a, int64_t b) { return pyudf_bare_add((PyObject *)fn, a, b); }
static int eval_rows_h(uintptr_t fn, int as_rows, uintptr_t in, uintptr_t in_schema, uintptr_t type_schema,
		       uintptr_t out, uintptr_t out_schema, uintptr_t err, uintptr_t err_schema,
		       uint64_t id, uintptr_t f)
{
	return pyudf_eval_rows((PyObject *)fn, as_rows, in, in_schema, type_schema, out, out_schema, err,
			       err_schema, id, (pyudf_frame *)f);
}
static int eval_rows_fixed_h(uintptr_t fn, int ncols, int64_t nrows, uint64_t id, uintptr_t f)
{
	pyudf_frame *fr = (pyudf_frame *)f;
	pyudf_column *cols = (pyudf_column *)fr->in.data;
	return pyudf_eval_rows_fixed((PyObject *)fn, ncols, cols, nrows, &cols[ncols], id, fr);
}
// Shrink b back to start bytes if it holds more than keep (its contents are
// dropped: called between calls only).
static void buf_trim(pyudf_buf *b, size_t keep, size_t start)
{
	if (b->cap <= keep)
		return;
	char *data = realloc(b->data, start);
	if (data != NULL) {
		b->data = data;
		b->cap = start;
	}
	b->len = 0;
}
static int eval_vectorized_h(uintptr_t fn, int mode, uintptr_t in, uintptr_t in_schema,
			     int64_t in_id, uintptr_t type_schema, int64_t type_id, uintptr_t out,
			     uintptr_t out_schema, uint64_t id, uintptr_t f)
{
	static const char *modes[] = {"arrow", "pandas", "pandas_map", "explode"};
	return pyudf_eval_vectorized((PyObject *)fn, modes[mode], in, in_schema, in_id, type_schema,
				     type_id, out, out_schema, id, (pyudf_frame *)f);
}
*/
import "C"

import (
	"encoding/binary"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Status is how a call into Python ended.
type Status int

// The statuses of a call, as C's enum pyudf_status.
const (
	OK        Status = C.PYUDF_OK
	Error     Status = C.PYUDF_ERROR     // a Python exception; see Frame.Err
	Cancelled Status = C.PYUDF_CANCELLED // interrupted by Frame.Interrupt
)

var (
	initOnce sync.Once
	initErr  *Exception
)

// Init starts the interpreter, once per process; later calls return the first
// call's result. program is the interpreter executable whose prefix and venv
// to use ("" for libpython's own); bootstrap and sourcesJSON make the embedded
// runtime importable (see interp.h).
//
// The OS thread that starts CPython is its main thread: there, and only there,
// Python code may install signal handlers (signal.signal), which would take
// signals away from Go's os/signal. So that no user call ever runs there, the
// goroutine that ran Init stays locked to that thread, parked, for the life
// of the process.
func Init(program, bootstrap, sourcesJSON string) *Exception {
	initOnce.Do(func() {
		done := make(chan struct{})
		go func() {
			runtime.LockOSThread() // never unlocked: see above
			func() {
				defer close(done)
				cp, cb, cs := C.CString(program), C.CString(bootstrap), C.CString(sourcesJSON)
				defer C.free(unsafe.Pointer(cp))
				defer C.free(unsafe.Pointer(cb))
				defer C.free(unsafe.Pointer(cs))
				var err C.pyudf_buf
				defer C.pyudf_buf_free(&err)
				if C.pyudf_init(cp, cb, cs, &err) != 0 {
					initErr = parseException(cBytes(err.data, err.len))
				}
			}()
			select {} // park: the thread must neither run other goroutines nor exit
		}()
		<-done
	})
	return initErr
}

// Exception describes a Python exception (or an interpreter failure).
type Exception struct {
	Type, Message, Traceback string
}

func parseException(b []byte) *Exception {
	var parts [3]string
	for i := range parts {
		if len(b) < 4 {
			break
		}
		n := int(binary.NativeEndian.Uint32(b))
		b = b[4:]
		n = min(n, len(b))
		parts[i] = string(b[:n])
		b = b[n:]
	}
	return &Exception{Type: parts[0], Message: parts[1], Traceback: parts[2]}
}

func cBytes(p *C.char, n C.size_t) []byte {
	if p == nil || n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(p)), int(n))
}

// Object is a strong reference to a Python object, held by Go. Release it once.
type Object struct{ p *C.PyObject }

// Release drops the reference; the zero Object has none.
func (o Object) Release() {
	if o.p != nil {
		C.pyudf_release(o.p)
	}
}

// Frame is the C-side state of one call at a time: result and error buffers,
// and what Interrupt needs to find the call.
type Frame struct {
	c     *C.pyudf_frame
	calls uint64 // id of the latest call; only the goroutine using the frame writes it
}

// A frame's buffers start at FrameStart bytes and grow as a call needs. One
// outsized call (a 100 MB argument or result) must not keep its buffers that
// large for the engine's life: a buffer past FrameKeep bytes is shrunk back
// to FrameStart once the call no longer needs it (see Trim).
const (
	FrameStart = 256
	FrameKeep  = 1 << 20
)

// frames are the live frames' C structs, for FrameBytes.
var frames sync.Map // *C.pyudf_frame -> struct{}

// NewFrame allocates a frame in C memory, freed when the frame becomes
// unreachable.
func NewFrame() *Frame {
	f := &Frame{c: C.pyudf_frame_new()}
	if f.c == nil || C.pyudf_buf_reserve(&f.c.in, FrameStart) != 0 || C.pyudf_buf_reserve(&f.c.out, FrameStart) != 0 {
		panic("pyudf: out of C memory for a call frame")
	}
	frames.Store(f.c, struct{}{})
	runtime.AddCleanup(f, func(c *C.pyudf_frame) {
		frames.Delete(c)
		C.pyudf_frame_free(c)
	}, f.c)
	return f
}

// FrameBytes is the capacity of every live frame's buffers (argument,
// result, error), in bytes. Read it while no call runs (tests do, to check
// that an outsized call's buffers were shrunk).
func FrameBytes() int {
	total := 0
	frames.Range(func(k, _ any) bool {
		c := k.(*C.pyudf_frame)
		total += int(c.in.cap + c.out.cap + c.err.cap)
		return true
	})
	return total
}

// trimIn shrinks the argument buffer once a call has consumed it. The
// capacity is read here, so a call in steady state crosses into C no more.
func (f *Frame) trimIn() {
	if f.c.in.cap > FrameKeep {
		C.buf_trim(&f.c.in, FrameKeep, FrameStart)
	}
}

// Trim shrinks whatever buffer of f an outsized call grew past FrameKeep
// back to FrameStart. It ends the validity of Out and Err: call it when the
// frame goes back to its pool. Every call trims the buffers it no longer
// needs itself (the arguments when it returns, the last result and error
// when it starts), so Trim only makes it sooner.
func (f *Frame) Trim() {
	f.trimIn()
	f.trimOut()
}

// trimOut shrinks the result and error buffers, before a call overwrites them.
func (f *Frame) trimOut() {
	if f.c.out.cap > FrameKeep {
		C.buf_trim(&f.c.out, FrameKeep, FrameStart)
	}
	if f.c.err.cap > FrameKeep {
		C.buf_trim(&f.c.err, FrameKeep, FrameStart)
	}
}

// NextCall returns the id the next Call or Control on f will have.
func (f *Frame) NextCall() uint64 { return f.calls + 1 }

// Skip uses up call id without a call, if the next call would have it (a call
// that panicked before reaching C): an interrupter still holding id then can
// never match a later call.
func (f *Frame) Skip(id uint64) {
	if f.calls+1 == id {
		f.calls++
	}
}

// Args returns an empty slice over the frame's C argument buffer. Append the
// encoded arguments to it and pass the result to Call: arguments that fit
// are never copied.
func (f *Frame) Args() []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(f.c.in.data)), int(f.c.in.cap))[:0]
}

// setIn makes b the frame's input, copying it unless it is already there.
func (f *Frame) setIn(b []byte) {
	if len(b) > 0 && unsafe.SliceData(b) != (*byte)(unsafe.Pointer(f.c.in.data)) {
		f.c.in.len = 0
		if C.pyudf_buf_reserve(&f.c.in, C.size_t(len(b))) != 0 {
			panic("pyudf: out of C memory for call arguments")
		}
		copy(unsafe.Slice((*byte)(unsafe.Pointer(f.c.in.data)), len(b)), b)
	}
	f.c.in.len = C.size_t(len(b))
}

// Call runs fn(*args), nargs values encoded in args (see convert.h). On OK the
// encoded result is in Out.
func (f *Frame) Call(fn Object, args []byte, nargs int) Status {
	f.trimOut()
	f.setIn(args)
	f.calls++
	st := Status(C.call_h(C.uintptr_t(uintptr(unsafe.Pointer(fn.p))), C.int(nargs),
		C.uint64_t(f.calls), C.uintptr_t(uintptr(unsafe.Pointer(f.c)))))
	f.trimIn()
	return st
}

// Control runs one JSON request through pyudf._host.control; the reply is in Out.
func (f *Frame) Control(request []byte) Status {
	f.trimOut()
	f.setIn(request)
	f.calls++
	st := Status(C.pyudf_control(C.uint64_t(f.calls), f.c))
	f.trimIn()
	return st
}

// Batch names the Arrow C Data Interface structs of one batch evaluation, by
// address (they are C memory): the input batch, the result type (a one-field
// schema), the result, and for per-row errors the error column (Err zero: off).
// For EvalVectorized, InID and TypeID name the input schema and the result
// type on the Python side (arrowconv.Sent); InSchema or Type is 0 when Python
// holds that schema already.
type Batch struct {
	In, InSchema, Type, Out, OutSchema, Err, ErrSchema uintptr
	InID, TypeID                                       int64
	// Rows: EvalRows passes each row as one pyudf.Row (PyFlink's map).
	Rows bool
}

// The ways EvalVectorized calls a function (call.h).
const (
	VectorArrow     = 0 // fn(*columns as pyarrow Arrays)
	VectorPandas    = 1 // fn(*columns as pd.Series)
	VectorPandasMap = 2 // fn(batch as a pd.DataFrame) -> DataFrame
	VectorExplode   = 3 // fn(*row) per row -> rows, flattened with the input row's index
)

// EvalRows calls fn once per row of the batch (see call.h). When a row's call
// fails the batch, Row tells which.
func (f *Frame) EvalRows(fn Object, b Batch) Status {
	f.trimOut()
	f.calls++
	rows := C.int(0)
	if b.Rows {
		rows = 1
	}
	return Status(C.eval_rows_h(C.uintptr_t(uintptr(unsafe.Pointer(fn.p))), rows, C.uintptr_t(b.In),
		C.uintptr_t(b.InSchema), C.uintptr_t(b.Type), C.uintptr_t(b.Out), C.uintptr_t(b.OutSchema),
		C.uintptr_t(b.Err), C.uintptr_t(b.ErrSchema), C.uint64_t(f.calls), C.uintptr_t(uintptr(unsafe.Pointer(f.c)))))
}

// Column is a fixed-width Arrow column in C memory that EvalRowsFixed reads
// or writes directly; Type is one of the Col constants.
type Column struct {
	Type             int32
	Validity, Values uintptr // addresses; Validity 0: no nulls (inputs only)
	Offset           int64   // position of the first row
}

// Column types, as call.h's enum pyudf_column_type.
const (
	ColBool    = C.PYUDF_COL_BOOL
	ColInt8    = C.PYUDF_COL_INT8
	ColInt16   = C.PYUDF_COL_INT16
	ColInt32   = C.PYUDF_COL_INT32
	ColInt64   = C.PYUDF_COL_INT64
	ColUint8   = C.PYUDF_COL_UINT8
	ColUint16  = C.PYUDF_COL_UINT16
	ColUint32  = C.PYUDF_COL_UINT32
	ColFloat32 = C.PYUDF_COL_FLOAT32
	ColFloat64 = C.PYUDF_COL_FLOAT64
)

// EvalRowsFixed calls fn once per row over fixed-width columns, reading and
// writing the Arrow buffers directly (see call.h), and returns the number of
// null results. When a row fails, Row tells which.
func (f *Frame) EvalRowsFixed(fn Object, cols []Column, nrows int, out Column) (nulls int64, st Status) {
	f.trimOut()
	n := len(cols) + 1
	f.c.in.len = 0
	if C.pyudf_buf_reserve(&f.c.in, C.size_t(n)*C.sizeof_pyudf_column) != 0 {
		panic("pyudf: out of C memory for column descriptors")
	}
	descs := unsafe.Slice((*C.pyudf_column)(unsafe.Pointer(f.c.in.data)), n)
	for i, c := range append(cols, out) {
		descs[i] = C.pyudf_column{_type: C.int32_t(c.Type), validity: C.uintptr_t(c.Validity),
			values: C.uintptr_t(c.Values), offset: C.int64_t(c.Offset)}
	}
	f.calls++
	st = Status(C.eval_rows_fixed_h(C.uintptr_t(uintptr(unsafe.Pointer(fn.p))), C.int(len(cols)),
		C.int64_t(nrows), C.uint64_t(f.calls), C.uintptr_t(uintptr(unsafe.Pointer(f.c)))))
	nulls = int64(descs[len(cols)].offset)
	f.trimIn()
	return nulls, st
}

// EvalVectorized calls fn once on the whole batch, in one of the Vector modes.
func (f *Frame) EvalVectorized(fn Object, mode int, b Batch) Status {
	f.trimOut()
	f.calls++
	return Status(C.eval_vectorized_h(C.uintptr_t(uintptr(unsafe.Pointer(fn.p))), C.int(mode), C.uintptr_t(b.In),
		C.uintptr_t(b.InSchema), C.int64_t(b.InID), C.uintptr_t(b.Type), C.int64_t(b.TypeID),
		C.uintptr_t(b.Out), C.uintptr_t(b.OutSchema), C.uint64_t(f.calls), C.uintptr_t(uintptr(unsafe.Pointer(f.c)))))
}

// ImportBatches imports the batch calls' Python side (pyarrow, pandas, numpy)
// in a call that Interrupt never reaches (see call.h).
func (f *Frame) ImportBatches() Status { return Status(C.pyudf_import_batches(f.c)) }

// Row is the batch row whose call ended the last EvalRows, or -1.
func (f *Frame) Row() int { return int(f.c.row) }

// PlainResult is, when EvalVectorized's result went out plain (into
// Batch.Out alone, with no schema, to be imported with the declared type),
// the width of its values in bytes; else 0.
func (f *Frame) PlainResult() int { return int(f.c.plain) }

// PlainLive is the number of plain results exported and not yet released
// (tests check for leaks with it).
func PlainLive() int64 { return int64(C.pyudf_plain_live()) }

// PlainBatchesLive is the number of batches Python took as plain columns
// (arrays.h) and has not released yet.
func PlainBatchesLive() int64 { return int64(C.pyudf_plain_batches_live()) }

// Take fetches the object the host registered under key.
func (f *Frame) Take(key int64) (Object, Status) {
	f.trimOut()
	p := C.pyudf_take(C.longlong(key), f.c)
	if p == nil {
		return Object{}, Error
	}
	return Object{p}, OK
}

// Out is the result of the last call: a view of C memory, valid until the
// frame's next call.
func (f *Frame) Out() []byte { return cBytes(f.c.out.data, f.c.out.len) }

// Err describes the exception that ended the last call.
func (f *Frame) Err() *Exception { return parseException(cBytes(f.c.err.data, f.c.err.len)) }

// Interrupt raises Cancelled in call id of f if that call is running, and
// reports whether the call may still need it: false once the call has ended.
// Call it again at an interval until false (see call.h). Safe from any
// goroutine, at any time.
func (f *Frame) Interrupt(id uint64) bool { return C.pyudf_interrupt(f.c, C.uint64_t(id)) != 0 }

// BareAdd is the benchmark floor: fn(a, b) with the GIL taken and released
// around it and nothing else (no frame, no wire format).
func BareAdd(fn Object, a, b int64) int64 {
	return int64(C.bare_add_h(C.uintptr_t(uintptr(unsafe.Pointer(fn.p))), C.int64_t(a), C.int64_t(b)))
}

// BareStr is the benchmark floor of a STRING call, as BareAdd is of add:
// fn(s) with the GIL taken and released around it, s and the result moved
// with CPython's own conversions and no wire format. ok is false on any error.
func (f *Frame) BareStr(fn Object, s string) (result string, ok bool) {
	f.trimOut()
	f.setIn(unsafe.Slice(unsafe.StringData(s), len(s)))
	rc := C.bare_str_h(C.uintptr_t(uintptr(unsafe.Pointer(fn.p))), C.uintptr_t(uintptr(unsafe.Pointer(f.c))))
	f.trimIn()
	return string(f.Out()), rc == 0
}

// LogFunc receives Python's log records and print output: the Python level
// number (logging.INFO is 20), the logger name ("stdout" and "stderr" for
// print) and the message.
type LogFunc func(level int, logger, message string)

var logFunc atomic.Pointer[LogFunc]

// SetLogFunc sets where Python's log records go (nil drops them).
func SetLogFunc(fn LogFunc) {
	if fn == nil {
		logFunc.Store(nil)
		return
	}
	logFunc.Store(&fn)
}

//export pyudfLog
func pyudfLog(level C.int, name *C.char, nameLen C.int, msg *C.char, msgLen C.int) {
	if fn := logFunc.Load(); fn != nil {
		(*fn)(int(level), C.GoStringN(name, nameLen), C.GoStringN(msg, msgLen))
	}
}

// LinkedVersion is the "major.minor" of the CPython this package was built against.
const LinkedVersion = C.PYUDF_LINKED_VERSION

// MaxDepth is the C codec's nesting limit (PYUDF_MAX_DEPTH), for a test
// that checks it agrees with bridge.MaxDepth.
const MaxDepth = C.PYUDF_MAX_DEPTH

// DecodeCheck decodes count values from b with the C decoder and drops them:
// 0 when they decoded, 1 when the data was refused with a Python exception,
// 2 when it was refused without one. For fuzzing; needs Init.
func DecodeCheck(b []byte, count int) int {
	if len(b) == 0 {
		b = []byte{0}[:0:1]
	}
	return int(C.pyudf_decode_check((*C.char)(unsafe.Pointer(unsafe.SliceData(b))), C.size_t(len(b)), C.int(count)))
}

// WireTags lists the C side's wire tags (enum pyudf_tag), indexed by name,
// so a test can check that bridge's constants agree.
func WireTags() map[string]int {
	return map[string]int{
		"NULL": C.PYUDF_NULL, "FALSE": C.PYUDF_FALSE, "TRUE": C.PYUDF_TRUE, "INT": C.PYUDF_INT,
		"FLOAT": C.PYUDF_FLOAT, "STR": C.PYUDF_STR, "BYTES": C.PYUDF_BYTES, "DECIMAL": C.PYUDF_DECIMAL,
		"DATE": C.PYUDF_DATE, "TIME": C.PYUDF_TIME, "TIMESTAMP": C.PYUDF_TIMESTAMP,
		"TIMESTAMP_UTC": C.PYUDF_TIMESTAMP_UTC, "LIST": C.PYUDF_LIST, "MAP": C.PYUDF_MAP,
		"ROW": C.PYUDF_ROW, "BIGINT": C.PYUDF_BIGINT, "ROW_VALUES": C.PYUDF_ROW_VALUES,
	}
}
