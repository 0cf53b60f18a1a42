/* Calls into Python: the per-row hot path, the JSON control path, interruption.
 *
 * A frame is C memory that one call at a time uses: the result or reply is
 * written to out, an error to err. Go keeps a pool of frames; nothing in a
 * frame points to Go memory. Each function takes and releases the GIL itself,
 * so it may be called from any thread without holding it. A frame's calls all
 * run in one interpreter: the main one, or one sub-interpreter, on the
 * thread that owns it (interp.h).
 */
#ifndef PYUDF_CALL_H
#define PYUDF_CALL_H

#include "convert.h"
#include "errors.h"

typedef struct {
	pyudf_buf in;             /* arguments, written by Go before a call */
	pyudf_buf out;            /* encoded result (pyudf_call) or JSON reply (pyudf_control) */
	pyudf_buf err;            /* error description, as errors.h describes */
	unsigned long thread_id;  /* Python thread id of the call in progress */
	struct _ts *tstate;       /* and its PyThreadState */
	uint64_t call_id;         /* which call is in progress; set and read with the GIL */
	uint64_t ended_id;        /* the latest call that has ended */
	int running;              /* a call is in progress */
	int interrupted;          /* how many times pyudf_interrupt raised in it */
	int trapped;              /* its thread has the trap's trace function (pyudf_interrupt) */
	struct pyudf_state *state; /* the interpreter its calls run in (state.h), set by the first */
	uint64_t gen;             /* and that state's gen then */
	int64_t row;              /* the batch row whose call failed, or -1 */
	int plain;                /* pyudf_eval_vectorized: the width in bytes of a result's values
				     that went out plain (arrays.h), else 0 */
} pyudf_frame;

pyudf_frame *pyudf_frame_new(void);
void pyudf_frame_free(pyudf_frame *f);

/* fn(*args) with nargs arguments decoded from f->in, result encoded into f->out.
 * call_id names this call for pyudf_interrupt. Returns an enum pyudf_status. */
int pyudf_call(PyObject *fn, int nargs, uint64_t call_id, pyudf_frame *f);

/* pyudf._host.control(request), the JSON request in f->in, the reply in f->out.
 * Returns an enum pyudf_status. */
int pyudf_control(uint64_t call_id, pyudf_frame *f);

/* Import pyudf._batch (pyarrow, pandas, numpy), which the batch calls below
 * import on first use, in a call pyudf_interrupt never reaches: an exception
 * raised inside numpy's import leaves numpy unimportable for the life of the
 * process. Returns an enum pyudf_status. */
int pyudf_import_batches(pyudf_frame *f);

/* Batches cross as Arrow C Data Interface structs in C memory, passed by
 * address: in/in_schema the batch (moved into Python), type_schema the result
 * type as a one-field schema (read only), out/out_schema where the result is
 * exported. */

/* Row-wise: fn(*row) for every row of the batch, the loop here, the results
 * built into an Arrow array of the result type. With err/err_schema non-zero
 * a row whose call raises gets a null result and its message in a STRING
 * array exported there; otherwise the first such row ends the call, its index
 * in f->row. With as_rows, fn gets one pyudf.Row per row instead of the
 * columns as arguments (PyFlink's row-based map). Returns an enum pyudf_status. */
int pyudf_eval_rows(PyObject *fn, int as_rows, uintptr_t in, uintptr_t in_schema, uintptr_t type_schema,
		    uintptr_t out, uintptr_t out_schema, uintptr_t err, uintptr_t err_schema,
		    uint64_t call_id, pyudf_frame *f);

/* A fixed-width Arrow column (or result) that the row loop reads (writes)
 * directly: values and validity bitmap in C memory, position offset. */
enum pyudf_column_type {
	PYUDF_COL_BOOL = 1,
	PYUDF_COL_INT8 = 2,
	PYUDF_COL_INT16 = 3,
	PYUDF_COL_INT32 = 4,
	PYUDF_COL_INT64 = 5,
	PYUDF_COL_UINT8 = 6,
	PYUDF_COL_UINT16 = 7,
	PYUDF_COL_UINT32 = 8,
	PYUDF_COL_FLOAT32 = 9,
	PYUDF_COL_FLOAT64 = 10,
};

typedef struct {
	int32_t type;      /* enum pyudf_column_type */
	int32_t unused;
	uintptr_t validity; /* address of the bitmap; 0: no nulls (input only) */
	uintptr_t values;   /* address of the values */
	int64_t offset;    /* input: first row's position; result: set to the null count */
} pyudf_column;

/* Row-wise over fixed-width columns without pyarrow: fn(*row) for each of
 * nrows rows of cols[0:ncols] (a null is None), the results written to *out
 * (a null result clears its validity bit). A result of the wrong type or out
 * of range fails the call with the row in f->row. Returns an enum pyudf_status. */
int pyudf_eval_rows_fixed(PyObject *fn, int ncols, const pyudf_column *cols, int64_t nrows,
			  pyudf_column *out, uint64_t call_id, pyudf_frame *f);

/* Vectorized: fn once on the whole batch, the result exported to out/out_schema.
 * mode "pandas": fn(*columns as pd.Series); "arrow": fn(*columns as pyarrow
 * Arrays); "pandas_map": fn(batch as a DataFrame) returning a DataFrame;
 * "explode": fn(*row) for each row, a table function's rows flattened into a
 * struct array with the input row's index first. Except for "explode",
 * in_schema and type_schema may be 0: the schema Python keeps under in_id or
 * type_id is meant (a nonzero id with a schema: keep it under that id).
 * A result pyudf._batch hands back as a plain array (a numpy array of exactly
 * the result type) is exported by pyudf_export_plain into out alone, out_schema
 * untouched, and f->plain set to its values' width: Go imports it with the
 * type it declared. */
int pyudf_eval_vectorized(PyObject *fn, const char *mode, uintptr_t in, uintptr_t in_schema,
			  int64_t in_id, uintptr_t type_schema, int64_t type_id, uintptr_t out,
			  uintptr_t out_schema, uint64_t call_id, pyudf_frame *f);

/* The object the host registered under key (new reference), or NULL with f->err set. */
PyObject *pyudf_take(long long key, pyudf_frame *f);

/* Drop a reference the Go side holds. */
void pyudf_release(PyObject *obj);

/* Raise the host's Cancelled exception in call call_id of f if it is running.
 * Returns 0 once that call has ended, else 1 (raised, or not begun yet): the
 * caller raises again at an interval until 0, since a UDF may catch Cancelled.
 * From the second raise on, the call is trapped: its thread gets a trace
 * function that raises Cancelled again at every line and call, so no except
 * clause, finally block or __del__ that swallows it can keep the call running
 * (the call's end removes it). A call that was interrupted ends
 * PYUDF_CANCELLED even if it then returned a value. A call blocked in C
 * (time.sleep) sees the exception only when it is back in bytecode. Any
 * thread may interrupt a call in any interpreter: for a sub-interpreter that
 * the calling thread does not own, it enters that interpreter with a thread
 * state made for the raise, and returns 0 if the interpreter has ended. */
int pyudf_interrupt(pyudf_frame *f, uint64_t call_id);

/* Prepare the host's Cancelled class for trapping (on 3.13, an __init__: see
 * call.c). 0, or -1 with an exception set. */
int pyudf_trap_ready(void);

/* The benchmark floor: take the GIL, fn(a, b) on two ints, release it. No frame, no
 * conversion beyond int64. Returns the result, or INT64_MIN on any error. */
int64_t pyudf_bare_add(PyObject *fn, int64_t a, int64_t b);

/* The string floor beside it: take the GIL, fn(s) on the str of the UTF-8 in
 * f->in (no wire format), the result's UTF-8 into f->out, release it, with
 * CPython's own conversions (PyUnicode_DecodeUTF8, PyUnicode_AsUTF8AndSize).
 * 0, or -1 on any error (cleared). */
int pyudf_bare_str(PyObject *fn, pyudf_frame *f);

#endif
