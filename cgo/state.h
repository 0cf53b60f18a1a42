/* The shim's Python objects, one set per interpreter.
 *
 * Everything the C files cache from Python (pyudf._host, its functions and
 * classes, decimal.Decimal, the datetime C API ...) lives in one pyudf_state
 * per interpreter: the main interpreter's, and one per sub-interpreter
 * (CPython >= 3.12, interp.h). An OS thread works in exactly one interpreter
 * at a time: the main one, or the sub-interpreter it created and owns.
 * pyudf_cur is that interpreter's state for the calling thread, so the hot
 * path reaches it with one thread-local read.
 *
 * A state struct is never freed: a sub-interpreter's, when it ends, is
 * cleared and kept for the next one, with gen incremented, so that a frame
 * that still names it (pyudf_interrupt from another thread) can tell that
 * its interpreter is gone.
 */
#ifndef PYUDF_STATE_H
#define PYUDF_STATE_H

#include <Python.h>

typedef struct pyudf_state {
	PyInterpreterState *interp; /* NULL: not in use (a sub-interpreter that ended) */
	uint64_t gen;               /* incremented when the struct is taken for a new interpreter */
	int sub;                    /* a sub-interpreter (not the main one) */
	PyThreadState *owner;       /* a sub-interpreter's thread state, its owner thread's */
	struct pyudf_state *next;   /* the free list */

	/* interp.c */
	PyObject *host;                        /* pyudf._host */
	PyObject *drain_code, *drain_globals;  /* pyudf_drain */
	/* errors.c */
	PyObject *describe;        /* pyudf._host.describe_exception */
	PyObject *cancelled;       /* pyudf._host.Cancelled (a class) */
	PyObject *as_result_error; /* pyudf._host.as_result_error */
	/* convert.c */
	void *datetime_api;        /* PyDateTime_CAPI *, or NULL where _datetime does not load
				      (a sub-interpreter on 3.12 runs the pure-Python datetime) */
	PyObject *date_type, *time_type, *datetime_type; /* datetime's classes */
	PyObject *decimal_type, *decimal_str;            /* decimal.Decimal, its __str__ */
	PyObject *row_type, *row_make, *row_fields, *row_values; /* pyudf.Row and its slots */
	PyObject *normalize;       /* pyudf._host.normalize */
	PyObject *utc;             /* datetime.timezone.utc */
	PyObject *astimezone;      /* datetime.datetime.astimezone, unbound */
	/* call.c */
	PyObject *batch_module;    /* pyudf._batch, imported on first use */
} pyudf_state;

/* The calling thread's interpreter's state (the main one's until the thread
 * creates a sub-interpreter). */
extern __thread pyudf_state *pyudf_cur __attribute__((tls_model("initial-exec")));

/* The main interpreter's state. */
extern pyudf_state pyudf_main_state;

/* A cleared state for a new sub-interpreter (gen incremented), or NULL when
 * out of memory. pyudf_state_put gives it back. Both take a process-wide lock. */
pyudf_state *pyudf_state_get(void);
void pyudf_state_put(pyudf_state *st);

/* Drop every object st holds (the GIL of its interpreter held). */
void pyudf_state_clear(pyudf_state *st);

/* The lock under which a sub-interpreter ends and under which another thread
 * enters one to interrupt a call (call.c): an interrupter never finds it
 * half-ended. */
void pyudf_state_lock(void);
void pyudf_state_unlock(void);

#endif
