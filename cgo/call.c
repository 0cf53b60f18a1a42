#define PY_SSIZE_T_CLEAN
#include <Python.h>
#if PY_VERSION_HEX < 0x030B0000
#include <longintrepr.h> /* PyLongObject; Python.h includes it from 3.11 */
#endif
#include <stdlib.h>
#include <string.h>

#include "arrays.h"
#include "call.h"
#include "interp.h"
#include "state.h"

/* A frame has cache lines of its own: every call writes it (begin, finish),
 * and frames that threads use side by side (the gate's, the sub-interpreter
 * pool's) would otherwise share the line where one ends and the next begins,
 * and each thread's writes would keep taking it from the other's cache. */
#define PYUDF_CACHE_LINE 64

pyudf_frame *pyudf_frame_new(void)
{
	size_t size = (sizeof(pyudf_frame) + PYUDF_CACHE_LINE - 1) & ~(size_t)(PYUDF_CACHE_LINE - 1);
	pyudf_frame *f = aligned_alloc(PYUDF_CACHE_LINE, size);
	if (f != NULL)
		memset(f, 0, size);
	return f;
}

void pyudf_frame_free(pyudf_frame *f)
{
	if (f == NULL)
		return;
	pyudf_buf_free(&f->in);
	pyudf_buf_free(&f->out);
	pyudf_buf_free(&f->err);
	free(f);
}

#if PY_VERSION_HEX >= 0x030D0000
/* The call this thread is running, from begin to end (cancelled_init). */
static __thread pyudf_frame *current;
#endif

/* Enter Python for call call_id of f: GIL held, the call visible to pyudf_interrupt. */
static void begin(pyudf_frame *f, uint64_t call_id)
{
	pyudf_gil_enter();
	if (f->state != pyudf_cur) { /* the frame's first call (a frame stays in one interpreter) */
		f->gen = pyudf_cur->gen;
		__atomic_store_n(&f->state, pyudf_cur, __ATOMIC_RELEASE);
	}
	f->thread_id = PyThread_get_thread_ident();
	f->tstate = PyThreadState_Get();
	f->call_id = call_id;
	f->running = 1;
	f->interrupted = 0;
	f->out.len = 0;
	f->err.len = 0;
	f->row = -1;
	f->plain = 0;
#if PY_VERSION_HEX >= 0x030D0000
	current = f;
#endif
}

/* The trace function of a trapped call: every new line or call raises Cancelled
 * again, so no except clause or finally block can keep the call running. */
static int trap_trace(PyObject *obj, PyFrameObject *frame, int what, PyObject *arg)
{
	(void)obj, (void)frame, (void)arg;
	if (what != PyTrace_LINE && what != PyTrace_CALL)
		return 0;
	PyErr_SetNone(pyudf_errors_cancelled());
	return -1;
}

#if PY_VERSION_HEX >= 0x030D0000
/* 3.13 keeps _PyEval_SetTrace (set another thread's trace function) internal,
 * but creates an asynchronous exception's object in the thread it fires in: its
 * __init__ (C, so that no Python frame runs while a Cancelled is made) traps the
 * call there. Bound to the instance by PyInstanceMethod_New: args[0] is the
 * exception, whose args BaseException.__new__ has stored. */
static PyObject *cancelled_init(PyObject *unused, PyObject *args, PyObject *kwargs)
{
	(void)unused, (void)args, (void)kwargs;
	pyudf_frame *f = current;
	if (f != NULL && f->running && f->interrupted >= 2 && !f->trapped) {
		f->trapped = 1;
		PyEval_SetTrace(trap_trace, NULL);
	}
	Py_RETURN_NONE;
}

static PyMethodDef cancelled_init_def = {"__init__", (PyCFunction)(void (*)(void))cancelled_init,
					 METH_VARARGS | METH_KEYWORDS, "Trap the call if it swallows Cancelled (call.h)."};

int pyudf_trap_ready(void)
{
	PyObject *fn = PyCFunction_New(&cancelled_init_def, NULL);
	PyObject *method = fn != NULL ? PyInstanceMethod_New(fn) : NULL;
	int rc = method != NULL ? PyObject_SetAttrString(pyudf_errors_cancelled(), "__init__", method) : -1;
	Py_XDECREF(method);
	Py_XDECREF(fn);
	return rc;
}

static void trap(pyudf_frame *f) { (void)f; }
#else
int pyudf_trap_ready(void) { return 0; }

/* Up to 3.12, set the trace function of the call's thread from here. */
static void trap(pyudf_frame *f)
{
	if (_PyEval_SetTrace(f->tstate, trap_trace, NULL) == 0)
		f->trapped = 1;
	else
		PyErr_Clear();
}
#endif

/* Take back a Cancelled that pyudf_interrupt raised in this thread and that has
 * not fired yet, so it cannot fire in whatever the thread runs next.
 * PyThreadState_SetAsyncExc(id, NULL) would clear it but raise the eval loop's
 * "async exception" signal, which on CPython 3.10-3.12 only the eval loop finding
 * a pending exception lowers: every later call would take the slow path. So the
 * eval loop is made to find it (pyudf_drain runs a loop of bytecode), and only
 * if it did not look (no signal up) is the field cleared directly. */
static void withdraw(void)
{
	PyThreadState *ts = PyThreadState_Get();
	if (ts->async_exc == NULL)
		return;
	pyudf_drain();
	PyErr_Clear();
	Py_CLEAR(ts->async_exc);
}

/* Leave Python. A call that was interrupted ends Cancelled whatever it returned
 * (a UDF may swallow Cancelled); with keep_ok (the control path, whose effects
 * the caller must learn of) a call that succeeded stays a success. */
static int finish(pyudf_frame *f, int status, int keep_ok)
{
	f->running = 0; /* pyudf_interrupt raises nothing more in it */
	if (f->call_id > f->ended_id)
		f->ended_id = f->call_id;
#if PY_VERSION_HEX >= 0x030D0000
	current = NULL;
#endif
	if (f->interrupted) {
		if (f->trapped) {
			f->trapped = 0;
			PyEval_SetTrace(NULL, NULL);
		}
		if (status != PYUDF_OK || !keep_ok) {
			PyErr_Clear();
			status = PYUDF_CANCELLED;
		}
		withdraw();
		/* A call that was interrupted (while handling an exception, maybe)
		 * leaves none handled on this thread state: it would become the
		 * __context__ of a later call's exceptions ("During handling of the
		 * above exception"). Only interrupted calls can leave one. */
		PyErr_SetExcInfo(NULL, NULL, NULL);
	}
	if (status == PYUDF_ERROR)
		status = pyudf_error_capture(&f->err);
	pyudf_gil_leave();
	return status;
}

static int end(pyudf_frame *f, int status) { return finish(f, status, 0); }

#define STACK_ARGS 16

int pyudf_call(PyObject *fn, int nargs, uint64_t call_id, pyudf_frame *f)
{
	begin(f, call_id);
	PyObject *small[STACK_ARGS];
	PyObject **argv = nargs <= STACK_ARGS ? small : PyMem_Malloc(sizeof(PyObject *) * nargs);
	int status = PYUDF_ERROR, decoded = 0;
	if (argv == NULL) {
		PyErr_NoMemory();
		return end(f, status);
	}
	const char *p = f->in.data, *stop = f->in.data + f->in.len;
	while (decoded < nargs && (argv[decoded] = pyudf_decode(&p, stop)) != NULL)
		decoded++;
	if (decoded == nargs) {
		PyObject *result = PyObject_Vectorcall(fn, argv, nargs, NULL);
		if (result != NULL) {
			status = pyudf_encode(result, &f->out) == 0 ? PYUDF_OK : PYUDF_ERROR;
			if (status != PYUDF_OK)
				pyudf_error_mark_result();
			Py_DECREF(result);
		}
	}
	for (int i = 0; i < decoded; i++)
		Py_DECREF(argv[i]);
	if (argv != small)
		PyMem_Free(argv);
	return end(f, status);
}

int pyudf_control(uint64_t call_id, pyudf_frame *f)
{
	begin(f, call_id);
	int status = PYUDF_ERROR;
	PyObject *reply = PyObject_CallMethod(pyudf_host(), "control", "s#", f->in.data, (Py_ssize_t)f->in.len);
	if (reply != NULL) {
		Py_ssize_t n;
		const char *s = PyUnicode_AsUTF8AndSize(reply, &n);
		if (s != NULL && pyudf_buf_reserve(&f->out, (size_t)n) == 0) {
			memcpy(f->out.data, s, (size_t)n);
			f->out.len = (size_t)n;
			status = PYUDF_OK;
		} else if (s != NULL) {
			PyErr_NoMemory();
		}
		Py_DECREF(reply);
	}
	return finish(f, status, 1);
}

/* pyudf._batch, imported on first use (it imports pyarrow). */
static PyObject *batch_module(void)
{
	pyudf_state *st = pyudf_cur;
	if (st->batch_module == NULL)
		st->batch_module = PyImport_ImportModule("pyudf._batch");
	return st->batch_module;
}

/* "Type: message" of the pending exception, which is cleared; NULL on failure. */
static PyObject *row_error_text(void)
{
	pyudf_buf text = {0};
	pyudf_error_capture(&text);
	PyObject *out = NULL;
	uint32_t n1, n2;
	/* type and message are the first two strings: make "type: message" in place,
	 * once the buffer is known to hold both (a short one, out of memory, is none) */
	if (text.len >= 8 && (memcpy(&n1, text.data, 4), n1 <= text.len - 8) &&
	    (memcpy(&n2, text.data + 4 + n1, 4), n2 <= text.len - 8 - n1)) {
		char *type = text.data + 4, *message = text.data + 8 + n1;
		memmove(type + n1 + 2, message, n2);
		type[n1] = ':';
		type[n1 + 1] = ' ';
		out = PyUnicode_DecodeUTF8(type, n1 + 2 + n2, "replace");
	}
	pyudf_buf_free(&text);
	return out;
}

/* Check what pyudf._batch.columns or rows returned, before the row loop
 * indexes it without checks: a (list of columns, row count) tuple, every
 * column a list of exactly that many values. The counts go into *ncols and
 * *nrows. 0, or -1 with an exception set. */
static int check_columns(PyObject *cols_rows, Py_ssize_t *ncols, Py_ssize_t *nrows)
{
	if (!PyTuple_CheckExact(cols_rows) || PyTuple_GET_SIZE(cols_rows) != 2 ||
	    !PyList_CheckExact(PyTuple_GET_ITEM(cols_rows, 0)) || !PyLong_CheckExact(PyTuple_GET_ITEM(cols_rows, 1))) {
		PyErr_SetString(PyExc_SystemError, "pyudf: the batch's columns are not a (list, int) tuple");
		return -1;
	}
	PyObject *cols = PyTuple_GET_ITEM(cols_rows, 0);
	*ncols = PyList_GET_SIZE(cols);
	*nrows = PyLong_AsSsize_t(PyTuple_GET_ITEM(cols_rows, 1));
	if (*nrows == -1 && PyErr_Occurred())
		return -1;
	if (*nrows < 0) {
		PyErr_Format(PyExc_SystemError, "pyudf: the batch has %zd rows", *nrows);
		return -1;
	}
	for (Py_ssize_t j = 0; j < *ncols; j++) {
		PyObject *col = PyList_GET_ITEM(cols, j);
		if (!PyList_CheckExact(col) || PyList_GET_SIZE(col) != *nrows) {
			PyErr_Format(PyExc_SystemError, "pyudf: column %zd of the batch holds %zd values for %zd rows",
				     j, PyList_CheckExact(col) ? PyList_GET_SIZE(col) : (Py_ssize_t)-1, *nrows);
			return -1;
		}
	}
	return 0;
}

int pyudf_import_batches(pyudf_frame *f)
{
	begin(f, 0);
	return end(f, batch_module() != NULL ? PYUDF_OK : PYUDF_ERROR);
}

/* Row i raised in a batch that fails on its first failing row. The results
 * of the rows before it are converted only after the loop, so check them
 * now: if one does not convert, that row fails first, as in
 * pyudf_eval_rows_fixed, and its error (export_result's) replaces the raised
 * one (not a Cancelled, nor a BaseException that is no Exception, as
 * evaluate_rows catches Exception). Returns 1 when it replaced it. */
static int earlier_result_fails(PyObject *module, PyObject *results, Py_ssize_t i, uintptr_t type_schema)
{
	if (i == 0 || !PyErr_ExceptionMatches(PyExc_Exception) || PyErr_ExceptionMatches(pyudf_errors_cancelled()))
		return 0;
	PyObject *raised = pyudf_error_fetch();
	PyObject *before = PyList_GetSlice(results, 0, i);
	PyObject *bad = before != NULL ? PyObject_CallMethod(module, "first_bad_result", "OK", before,
							      (unsigned long long)type_schema) : NULL;
	Py_XDECREF(before);
	if (bad == NULL || bad == Py_None || !PyExceptionInstance_Check(bad)) {
		PyErr_Clear(); /* the check failed: the raised exception stands */
		Py_XDECREF(bad);
		pyudf_error_restore(raised);
		return 0;
	}
	Py_XDECREF(raised);
	PyErr_SetObject((PyObject *)Py_TYPE(bad), bad);
	Py_DECREF(bad);
	return 1;
}

int pyudf_eval_rows(PyObject *fn, int as_rows, uintptr_t in, uintptr_t in_schema, uintptr_t type_schema,
		    uintptr_t out, uintptr_t out_schema, uintptr_t err, uintptr_t err_schema,
		    uint64_t call_id, pyudf_frame *f)
{
	begin(f, call_id);
	int status = PYUDF_ERROR;
	PyObject *module = batch_module(), *cols_rows = NULL, *results = NULL, *errors = NULL;
	PyObject *small[STACK_ARGS], **argv = small;
	if (module == NULL)
		return end(f, status);
	cols_rows = PyObject_CallMethod(module, as_rows ? "rows" : "columns", "KK", (unsigned long long)in,
					(unsigned long long)in_schema);
	if (cols_rows == NULL)
		goto done;
	Py_ssize_t ncols, nrows;
	if (check_columns(cols_rows, &ncols, &nrows) < 0)
		goto done;
	PyObject *cols = PyTuple_GET_ITEM(cols_rows, 0);
	if (ncols > STACK_ARGS && (argv = PyMem_Malloc(sizeof(PyObject *) * ncols)) == NULL) {
		PyErr_NoMemory();
		goto done;
	}
	results = PyList_New(nrows);
	errors = err ? PyList_New(nrows) : NULL;
	if (results == NULL || (err && errors == NULL))
		goto done;
	for (Py_ssize_t i = 0; i < nrows; i++) {
		for (Py_ssize_t j = 0; j < ncols; j++)
			argv[j] = PyList_GET_ITEM(PyList_GET_ITEM(cols, j), i);
		PyObject *r = PyObject_Vectorcall(fn, argv, ncols, NULL);
		PyObject *message = Py_NewRef(Py_None);
		if (r == NULL) {
			if (errors == NULL || PyErr_ExceptionMatches(pyudf_errors_cancelled())) {
				f->row = i;
				if (errors == NULL && earlier_result_fails(module, results, i, type_schema))
					f->row = -1; /* the error names its row, as export_result's do */
				Py_DECREF(message);
				goto done;
			}
			Py_DECREF(message);
			if ((message = row_error_text()) == NULL)
				goto done;
			r = Py_NewRef(Py_None);
		}
		PyList_SET_ITEM(results, i, r);
		if (errors != NULL)
			PyList_SET_ITEM(errors, i, message);
		else
			Py_DECREF(message);
	}
	/* With errors, a row whose result does not convert gets its reason there. */
	PyObject *ok = PyObject_CallMethod(module, "export_result", "OKKKO", results,
					   (unsigned long long)type_schema, (unsigned long long)out,
					   (unsigned long long)out_schema, errors != NULL ? errors : Py_None);
	if (ok != NULL && errors != NULL) {
		Py_DECREF(ok);
		ok = PyObject_CallMethod(module, "export_errors", "OKK", errors,
					 (unsigned long long)err, (unsigned long long)err_schema);
	}
	status = ok != NULL ? PYUDF_OK : PYUDF_ERROR;
	Py_XDECREF(ok);
done:
	if (argv != small)
		PyMem_Free(argv);
	Py_XDECREF(errors);
	Py_XDECREF(results);
	Py_XDECREF(cols_rows);
	return end(f, status);
}

static int bit(const uint8_t *bits, int64_t i) { return (bits[i >> 3] >> (i & 7)) & 1; }

static void set_bit(uint8_t *bits, int64_t i, int on)
{
	if (on)
		bits[i >> 3] |= (uint8_t)(1u << (i & 7));
	else
		bits[i >> 3] &= (uint8_t)~(1u << (i & 7));
}

/* The value of r if it is an exact int of at most one digit (most values
 * are), read without a call into CPython. 1 if it is, else 0. */
static inline int compact_int(PyObject *r, long long *v)
{
	if (!PyLong_CheckExact(r))
		return 0;
#if PY_VERSION_HEX >= 0x030C0000
	if (!_PyLong_IsCompact((PyLongObject *)r))
		return 0;
	*v = _PyLong_CompactValue((PyLongObject *)r);
#else
	Py_ssize_t size = Py_SIZE(r);
	if (size < -1 || size > 1)
		return 0;
	*v = size == 0 ? 0 : size * (long long)((PyLongObject *)r)->ob_digit[0];
#endif
	return 1;
}

/* Values the row loop makes for one row and no longer needs at the next: an
 * int or float that nothing but the loop refers to any more (the UDF did not
 * keep it) takes the next row's value in place, instead of being freed and
 * another allocated. CPython itself reuses a float this way when an operation
 * consumes its last reference. Reused: exact ints of one digit outside the
 * small-int cache (so a cached small int is never made twice) and exact
 * floats; never an object anyone else holds. Not on free-threaded builds,
 * where a reference count of 1 does not mean sole ownership. */
static int set_int_in_place(PyObject *o, long long v)
{
#ifdef Py_GIL_DISABLED
	return 0;
#else
	unsigned long long magnitude = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
	if (o == NULL || !PyLong_CheckExact(o) || Py_REFCNT(o) != 1 || (v >= -5 && v <= 256) ||
	    magnitude >= PyLong_BASE)
		return 0;
	PyLongObject *l = (PyLongObject *)o;
#if PY_VERSION_HEX >= 0x030C0000
	/* lv_tag: digit count << _PyLong_NON_SIZE_BITS | sign (0 positive, 2 negative) */
	if ((l->long_value.lv_tag >> _PyLong_NON_SIZE_BITS) != 1 ||
	    (l->long_value.lv_tag & _PyLong_SIGN_MASK) == 1)
		return 0;
	l->long_value.lv_tag = ((uintptr_t)1 << _PyLong_NON_SIZE_BITS) | (v < 0 ? 2 : 0);
	l->long_value.ob_digit[0] = (digit)magnitude;
#else
	if (Py_SIZE(l) != 1 && Py_SIZE(l) != -1)
		return 0;
	Py_SET_SIZE(l, v < 0 ? -1 : 1);
	l->ob_digit[0] = (digit)magnitude;
#endif
	return 1;
#endif
}

static int set_float_in_place(PyObject *o, double v)
{
#ifdef Py_GIL_DISABLED
	return 0;
#else
	if (o == NULL || !PyFloat_CheckExact(o) || Py_REFCNT(o) != 1)
		return 0;
	((PyFloatObject *)o)->ob_fval = v;
	return 1;
#endif
}

/* The value at row i of c in *held, which owns it (a reference the caller
 * borrows), or NULL with an exception set. *held comes in as the value of the
 * row before (or NULL), which is reused in place when it can be. */
static PyObject *column_value(const pyudf_column *c, int64_t row, PyObject **held)
{
	int64_t i = c->offset + row;
	const void *values = (const void *)c->values;
	PyObject *value;
	long long n, same;
	double x;
	if (c->validity != 0 && !bit((const uint8_t *)c->validity, i)) {
		value = Py_NewRef(Py_None);
		goto made;
	}
	if (c->type == PYUDF_COL_INT64) { /* the common case, before the jump table of the others */
		n = ((const int64_t *)values)[i];
		goto integer;
	}
	switch (c->type) {
	case PYUDF_COL_BOOL:
		value = PyBool_FromLong(bit(values, i));
		goto made;
	case PYUDF_COL_INT8:
		n = ((const int8_t *)values)[i];
		goto integer;
	case PYUDF_COL_INT16:
		n = ((const int16_t *)values)[i];
		goto integer;
	case PYUDF_COL_INT32:
		n = ((const int32_t *)values)[i];
		goto integer;
	case PYUDF_COL_UINT8:
		n = ((const uint8_t *)values)[i];
		goto integer;
	case PYUDF_COL_UINT16:
		n = ((const uint16_t *)values)[i];
		goto integer;
	case PYUDF_COL_UINT32:
		n = ((const uint32_t *)values)[i];
		goto integer;
	case PYUDF_COL_FLOAT32:
		x = ((const float *)values)[i];
		goto floating;
	case PYUDF_COL_FLOAT64:
		x = ((const double *)values)[i];
		goto floating;
	}
	PyErr_Format(PyExc_SystemError, "pyudf: unknown column type %d", c->type);
	return NULL;
integer:
	if (*held != NULL && compact_int(*held, &same) && same == n)
		return *held; /* the row before's value again (a small int, say): nothing to make */
	if (set_int_in_place(*held, n))
		return *held;
	value = PyLong_FromLongLong(n);
	goto made;
floating:
	if (set_float_in_place(*held, x))
		return *held;
	value = PyFloat_FromDouble(x);
made:
	if (value == NULL)
		return NULL;
	Py_XSETREF(*held, value);
	return value;
}

static const char *column_sql_name(int type)
{
	static const char *names[] = {"", "BOOLEAN", "TINYINT", "SMALLINT", "INT", "BIGINT",
				      "", "", "", "FLOAT", "DOUBLE"};
	return type > 0 && type <= PYUDF_COL_FLOAT64 ? names[type] : "?";
}

/* Store result r at row i of out, whose validity bit is set already. 0, or -1
 * with an exception set. It accepts what Call accepts (the result rule in
 * bridge/wire.go): the exact types here, and anything else once it went
 * through pyudf._host.normalize (numpy scalars); ints are read from their
 * digits, never through a method a subclass may override. */
static int store_result(pyudf_column *out, int64_t i, PyObject *r, int normalized)
{
	uint8_t *validity = (uint8_t *)out->validity;
	void *values = (void *)out->values;
	long long v;
	if (out->type == PYUDF_COL_INT64 && compact_int(r, &v)) { /* the common case first */
		((int64_t *)values)[i] = v;
		return 0;
	}
	if (r == Py_None) {
		set_bit(validity, i, 0);
		out->offset++; /* the null count */
		return 0;
	}
	if (out->type == PYUDF_COL_BOOL) {
		if (!PyBool_Check(r))
			goto wrong_type;
		set_bit(values, i, r == Py_True);
		return 0;
	}
	if (out->type == PYUDF_COL_FLOAT32 || out->type == PYUDF_COL_FLOAT64) {
		double v;
		if (PyFloat_Check(r))
			v = PyFloat_AS_DOUBLE(r);
		else if (PyLong_Check(r) && !PyBool_Check(r))
			v = PyLong_AsDouble(r);
		else
			goto wrong_type;
		if (v == -1.0 && PyErr_Occurred())
			return -1;
		if (out->type == PYUDF_COL_FLOAT32) {
			float f = (float)v;
			if (isinf(f) && !isinf(v))
				goto overflow; /* NaN and the infinities pass; a finite value must fit */
			((float *)values)[i] = f;
		} else {
			((double *)values)[i] = v;
		}
		return 0;
	}
	int overflow = 0;
	if (!compact_int(r, &v)) {
		if (!PyLong_Check(r) || PyBool_Check(r))
			goto wrong_type;
		v = PyLong_AsLongLongAndOverflow(r, &overflow);
		if (v == -1 && PyErr_Occurred())
			return -1;
	}
	switch (out->type) {
	case PYUDF_COL_INT8:
		if (overflow || v < INT8_MIN || v > INT8_MAX)
			goto overflow;
		((int8_t *)values)[i] = (int8_t)v;
		return 0;
	case PYUDF_COL_INT16:
		if (overflow || v < INT16_MIN || v > INT16_MAX)
			goto overflow;
		((int16_t *)values)[i] = (int16_t)v;
		return 0;
	case PYUDF_COL_INT32:
		if (overflow || v < INT32_MIN || v > INT32_MAX)
			goto overflow;
		((int32_t *)values)[i] = (int32_t)v;
		return 0;
	case PYUDF_COL_INT64:
		if (overflow)
			goto overflow;
		((int64_t *)values)[i] = v;
		return 0;
	}
wrong_type:
	if (!normalized) {
		PyObject *plain = pyudf_normalize(r);
		if (plain != NULL) {
			int rc = store_result(out, i, plain, 1);
			Py_DECREF(plain);
			return rc;
		}
		if (!PyErr_ExceptionMatches(PyExc_TypeError))
			return -1;
		PyErr_Clear(); /* "cannot convert": say what was wanted instead */
	}
	PyErr_Format(PyExc_TypeError, "result: Python %.100s is not a %s", Py_TYPE(r)->tp_name,
		     column_sql_name(out->type));
	return -1;
overflow:
	PyErr_Format(PyExc_OverflowError, "result: %R overflows %s", r, column_sql_name(out->type));
	return -1;
}

int pyudf_eval_rows_fixed(PyObject *fn, int ncols, const pyudf_column *cols, int64_t nrows,
			  pyudf_column *out, uint64_t call_id, pyudf_frame *f)
{
	begin(f, call_id);
	/* argv[j] holds column j's value for the current row (see column_value). */
	PyObject *small[STACK_ARGS] = {NULL}, **argv = small;
	int status = PYUDF_ERROR;
	if (ncols > STACK_ARGS && (argv = PyMem_Calloc(ncols, sizeof(PyObject *))) == NULL) {
		PyErr_NoMemory();
		return end(f, status);
	}
	out->offset = 0;
	memset((void *)out->validity, 0xff, (size_t)((nrows + 7) / 8)); /* store_result clears nulls */
	int64_t i = 0;
	for (; i < nrows; i++) {
		int j = 0;
		while (j < ncols && column_value(&cols[j], i, &argv[j]) != NULL)
			j++;
		PyObject *r = j == ncols ? PyObject_Vectorcall(fn, argv, ncols, NULL) : NULL;
		int stored = r != NULL ? store_result(out, i, r, 0) : -1;
		if (r != NULL && stored < 0)
			pyudf_error_mark_result(); /* the UDF returned, its result did not fit */
		Py_XDECREF(r);
		if (stored < 0)
			break;
	}
	if (i == nrows)
		status = PYUDF_OK;
	else
		f->row = i;
	for (int j = 0; j < ncols; j++)
		Py_XDECREF(argv[j]);
	if (argv != small)
		PyMem_Free(argv);
	return end(f, status);
}

int pyudf_eval_vectorized(PyObject *fn, const char *mode, uintptr_t in, uintptr_t in_schema,
			  int64_t in_id, uintptr_t type_schema, int64_t type_id, uintptr_t out,
			  uintptr_t out_schema, uint64_t call_id, pyudf_frame *f)
{
	begin(f, call_id);
	PyObject *module = batch_module();
	PyObject *ok = NULL;
	if (module != NULL && strcmp(mode, "explode") == 0)
		ok = PyObject_CallMethod(module, "explode", "OKKKKK", fn, (unsigned long long)in,
					 (unsigned long long)in_schema, (unsigned long long)type_schema,
					 (unsigned long long)out, (unsigned long long)out_schema);
	else if (module != NULL)
		ok = PyObject_CallMethod(module, "evaluate_vectorized", "OsKKLKLKK", fn, mode,
					 (unsigned long long)in, (unsigned long long)in_schema,
					 (long long)in_id, (unsigned long long)type_schema,
					 (long long)type_id, (unsigned long long)out,
					 (unsigned long long)out_schema);
	int status = ok != NULL ? PYUDF_OK : PYUDF_ERROR;
	if (ok != NULL && ok != Py_None) {
		if (pyudf_export_plain(ok, out, &f->plain) < 0)
			status = PYUDF_ERROR;
	}
	Py_XDECREF(ok);
	return end(f, status);
}

PyObject *pyudf_take(long long key, pyudf_frame *f)
{
	begin(f, 0);
	PyObject *obj = PyObject_CallMethod(pyudf_host(), "take", "L", key);
	end(f, obj != NULL ? PYUDF_OK : PYUDF_ERROR);
	return obj;
}

void pyudf_release(PyObject *obj)
{
	if (obj == NULL)
		return;
	pyudf_gil_enter();
	Py_DECREF(obj);
	pyudf_gil_leave();
}

/* pyudf_interrupt's work, with the GIL of the interpreter the call runs in
 * held; cancelled is that interpreter's Cancelled class. */
static int interrupt_held(pyudf_frame *f, uint64_t call_id, PyObject *cancelled)
{
	int pending = f->ended_id < call_id;
	if (pending && f->running && f->call_id == call_id &&
	    PyThreadState_SetAsyncExc(f->thread_id, cancelled) == 1 &&
	    ++f->interrupted >= 2 && !f->trapped)
		trap(f);
	return pending;
}

int pyudf_interrupt(pyudf_frame *f, uint64_t call_id)
{
	pyudf_state *st = __atomic_load_n(&f->state, __ATOMIC_ACQUIRE);
	int pending;
	if (st == NULL) /* no call has begun on f yet */
		return call_id > 0;
	if (st == pyudf_cur) { /* this thread's interpreter */
		pyudf_gil_enter();
		pending = interrupt_held(f, call_id, st->cancelled);
		pyudf_gil_leave();
	} else if (!st->sub) { /* the main one, from a thread that owns a sub-interpreter */
		pyudf_main_enter();
		pending = interrupt_held(f, call_id, st->cancelled);
		pyudf_gil_leave();
	} else {
		/* Another thread's sub-interpreter: enter it with a thread state of
		 * this thread's for the time of the raise, under the lock that
		 * pyudf_subinterp_end takes before it ends the interpreter. Its
		 * interpreter gone (or the struct reused), its calls have ended. */
		pyudf_state_lock();
		if (st->interp == NULL || st->gen != f->gen) {
			pyudf_state_unlock();
			return 0;
		}
		PyThreadState *ts = PyThreadState_New(st->interp);
		if (ts == NULL) {
			pyudf_state_unlock();
			return 1; /* try again at the next interval */
		}
		PyEval_RestoreThread(ts);
		pending = interrupt_held(f, call_id, st->cancelled);
		PyThreadState_Clear(ts);
		PyThreadState_DeleteCurrent();
		pyudf_state_unlock();
	}
	return pending;
}

int64_t pyudf_bare_add(PyObject *fn, int64_t a, int64_t b)
{
	pyudf_gil_enter();
	int64_t out = INT64_MIN;
	PyObject *argv[2] = {PyLong_FromLongLong(a), PyLong_FromLongLong(b)};
	PyObject *result = argv[0] && argv[1] ? PyObject_Vectorcall(fn, argv, 2, NULL) : NULL;
	if (result != NULL) {
		out = PyLong_AsLongLong(result);
		Py_DECREF(result);
	}
	Py_XDECREF(argv[0]);
	Py_XDECREF(argv[1]);
	PyErr_Clear();
	pyudf_gil_leave();
	return out;
}

int pyudf_bare_str(PyObject *fn, pyudf_frame *f)
{
	pyudf_gil_enter();
	int rc = -1;
	PyObject *arg = PyUnicode_DecodeUTF8(f->in.data, (Py_ssize_t)f->in.len, "strict");
	PyObject *result = arg ? PyObject_Vectorcall(fn, &arg, 1, NULL) : NULL;
	Py_ssize_t n;
	const char *s = result && PyUnicode_Check(result) ? PyUnicode_AsUTF8AndSize(result, &n) : NULL;
	f->out.len = 0;
	if (s != NULL && pyudf_buf_reserve(&f->out, (size_t)n) == 0) {
		memcpy(f->out.data, s, (size_t)n);
		f->out.len = (size_t)n;
		rc = 0;
	}
	Py_XDECREF(result);
	Py_XDECREF(arg);
	PyErr_Clear();
	pyudf_gil_leave();
	return rc;
}
