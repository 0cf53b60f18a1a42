#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arrays.h"
#include "call.h"
#include "interp.h"
#include "errors.h"
#include "state.h"
#include "_cgo_export.h"

static pthread_key_t tstate_key;
/* The thread state pyudf_gil_enter takes the GIL with: the thread's main
 * interpreter one, or the one of the sub-interpreter the thread owns. */
static __thread PyThreadState *thread_tstate __attribute__((tls_model("initial-exec")));
/* The thread's own main interpreter thread state (made on first use). */
static __thread PyThreadState *main_tstate;
/* What pyudf_init was given, for every sub-interpreter's runtime. */
static char *init_bootstrap, *init_sources;

PyObject *pyudf_host(void) { return pyudf_cur->host; }

/* The thread states this thread made to visit sub-interpreters it does not
 * own (pyudf_visit), with the generation of the state they were made for. */
static __thread struct {
	pyudf_state *state;
	uint64_t gen;
	PyThreadState *tstate;
} visits[PYUDF_MAX_VISITS];
static __thread int nvisits;

/* Runs when an OS thread that used Python exits: drop the thread states it
 * made to visit sub-interpreters that still exist, then its main interpreter
 * thread state. */
static void tstate_destroy(void *p)
{
	PyThreadState *ts = p;
	if (!Py_IsInitialized())
		return;
	for (int i = 0; i < nvisits; i++) {
		pyudf_state_lock();
		int alive = visits[i].state->interp != NULL && visits[i].state->gen == visits[i].gen;
		pyudf_state_unlock();
		if (alive) { /* (an ended interpreter deleted its thread states itself) */
			PyEval_RestoreThread(visits[i].tstate);
			PyThreadState_Clear(visits[i].tstate);
			PyThreadState_DeleteCurrent();
		}
	}
	nvisits = 0;
	if (ts == NULL)
		return;
	PyEval_RestoreThread(ts);
	PyThreadState_Clear(ts);
	PyThreadState_DeleteCurrent();
}

/* This thread's main interpreter thread state, made on first use. */
static PyThreadState *main_thread_state(void)
{
	if (main_tstate == NULL) {
		main_tstate = PyThreadState_New(pyudf_main_state.interp);
		pthread_setspecific(tstate_key, main_tstate);
	}
	return main_tstate;
}

void pyudf_gil_enter(void)
{
	PyThreadState *ts = thread_tstate;
	if (ts == NULL)
		ts = thread_tstate = main_thread_state();
	PyEval_RestoreThread(ts);
}

void pyudf_gil_leave(void) { PyEval_SaveThread(); }

void pyudf_main_enter(void) { PyEval_RestoreThread(main_thread_state()); }

int pyudf_visit(pyudf_state *st, struct pyudf_visit *saved)
{
	PyThreadState *ts = NULL;
	for (int i = 0; i < nvisits; i++) {
		if (visits[i].state == st && visits[i].gen == st->gen) {
			ts = visits[i].tstate;
			break;
		}
	}
	if (ts == NULL) {
		if (nvisits == PYUDF_MAX_VISITS)
			return -1;
		main_thread_state(); /* registers tstate_destroy for this thread */
		pyudf_state_lock();  /* st may not end meanwhile */
		if (st->interp != NULL)
			ts = PyThreadState_New(st->interp); /* needs no GIL */
		pyudf_state_unlock();
		if (ts == NULL)
			return -1;
		visits[nvisits].state = st;
		visits[nvisits].gen = st->gen;
		visits[nvisits].tstate = ts;
		nvisits++;
	}
	saved->state = pyudf_cur;
	saved->tstate = thread_tstate;
	pyudf_cur = st;
	thread_tstate = ts;
	return 0;
}

void pyudf_unvisit(const struct pyudf_visit *saved)
{
	pyudf_cur = saved->state;
	thread_tstate = saved->tstate;
}

void pyudf_drain(void)
{
	pyudf_state *st = pyudf_cur;
	PyObject *r = PyEval_EvalCode(st->drain_code, st->drain_globals, st->drain_globals);
	Py_XDECREF(r);
}

/* The loop pyudf_drain runs: its backward jump makes the eval loop look at its
 * signals. */
static int drain_ready(pyudf_state *st)
{
	st->drain_globals = PyDict_New();
	if (st->drain_globals == NULL ||
	    PyDict_SetItemString(st->drain_globals, "__builtins__", PyEval_GetBuiltins()) < 0)
		return -1;
	st->drain_code = Py_CompileString("for _ in (0, 0):\n    pass\n", "<pyudf drain>", Py_file_input);
	return st->drain_code != NULL ? 0 : -1;
}

/* _pyudf_host.log(level, logger_name, message): hand a record to Go's slog. */
static PyObject *native_log(PyObject *self, PyObject *args)
{
	int level;
	const char *name, *msg;
	Py_ssize_t name_len, msg_len;
	if (!PyArg_ParseTuple(args, "is#s#", &level, &name, &name_len, &msg, &msg_len))
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	pyudfLog(level, (char *)name, (int)name_len, (char *)msg, (int)msg_len);
	Py_END_ALLOW_THREADS
	Py_RETURN_NONE;
}

static PyMethodDef native_methods[] = {
    {"log", native_log, METH_VARARGS, "Send a log record to the Go host."},
    {"plain_columns", pyudf_plain_columns, METH_VARARGS,
     "plain_columns(batch_addr, item_sizes) -> ([buffer per column], rows) or None (arrays.h)."},
    {NULL, NULL, 0, NULL},
};

/* Multi-phase init: each interpreter gets its own module object, with its
 * own types in its state (arrays.h). */
static int native_exec(PyObject *module) { return pyudf_arrays_exec(module); }

static PyModuleDef_Slot native_slots[] = {
    {Py_mod_exec, native_exec},
#if PY_VERSION_HEX >= 0x030C0000
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
    {0, NULL},
};

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_pyudf_host",
    .m_doc = "Functions the Go host provides to Python.",
    .m_size = sizeof(pyudf_arrays_types),
    .m_methods = native_methods,
    .m_slots = native_slots,
    .m_traverse = pyudf_arrays_traverse,
    .m_clear = pyudf_arrays_clear,
    .m_free = pyudf_arrays_free,
};

static PyObject *native_init(void) { return PyModuleDef_Init(&native_module); }

/* Execute the bootstrap source and install the in-memory importer. */
static int install_runtime(const char *bootstrap, const char *sources_json)
{
	PyObject *globals = PyDict_New(), *name = PyUnicode_FromString("pyudf_bootstrap");
	PyObject *result = NULL, *json = NULL, *files = NULL;
	int rc = -1;
	if (globals == NULL || name == NULL ||
	    PyDict_SetItemString(globals, "__builtins__", PyEval_GetBuiltins()) < 0 ||
	    PyDict_SetItemString(globals, "__name__", name) < 0)
		goto done;
	result = PyRun_String(bootstrap, Py_file_input, globals, globals);
	if (result == NULL)
		goto done;
	json = PyImport_ImportModule("json");
	files = json ? PyObject_CallMethod(json, "loads", "s", sources_json) : NULL;
	PyObject *install = files ? PyDict_GetItemString(globals, "install") : NULL;
	PyObject *ok = install ? PyObject_CallOneArg(install, files) : NULL;
	rc = ok ? 0 : -1;
	Py_XDECREF(ok);
done:
	Py_XDECREF(files);
	Py_XDECREF(json);
	Py_XDECREF(result);
	Py_XDECREF(name);
	Py_XDECREF(globals);
	return rc;
}

/* Make the embedded runtime importable in the current interpreter (its state
 * pyudf_cur, its GIL held) and fill the state. 0, or -1 with err set. */
static int runtime_ready(pyudf_buf *err)
{
	pyudf_state *st = pyudf_cur;
	int rc = drain_ready(st) == 0 ? install_runtime(init_bootstrap, init_sources) : -1;
	if (rc == 0) {
		st->host = PyImport_ImportModule("pyudf._host");
		rc = st->host && pyudf_errors_init(st->host) == 0 && pyudf_trap_ready() == 0 &&
			     pyudf_convert_init(st->host) == 0 ? 0 : -1;
	}
	if (rc < 0) {
		if (pyudf_errors_ready()) {
			pyudf_error_capture(err);
		} else {
			PyErr_Print();
			pyudf_error_set(err, "InitError", "cannot import the embedded pyudf runtime (see stderr)");
		}
	}
	return rc;
}

int pyudf_init(const char *program, const char *bootstrap, const char *sources_json, pyudf_buf *err)
{
	init_bootstrap = strdup(bootstrap);
	init_sources = strdup(sources_json);
	if (init_bootstrap == NULL || init_sources == NULL || pthread_key_create(&tstate_key, tstate_destroy) != 0 ||
	    PyImport_AppendInittab("_pyudf_host", native_init) < 0) {
		pyudf_error_set(err, "InitError", "cannot prepare the interpreter");
		return -1;
	}
	PyConfig config;
	PyConfig_InitPythonConfig(&config);
	config.install_signal_handlers = 0; /* Go owns signals */
	config.parse_argv = 0;
	PyStatus status = PyStatus_Ok();
	if (program != NULL && program[0] != '\0')
		status = PyConfig_SetBytesString(&config, &config.program_name, program);
	if (!PyStatus_Exception(status))
		status = Py_InitializeFromConfig(&config);
	PyConfig_Clear(&config);
	if (PyStatus_Exception(status)) {
		pyudf_error_set(err, "InitError", status.err_msg ? status.err_msg : "Py_InitializeFromConfig failed");
		return -1;
	}
	pyudf_main_state.interp = PyInterpreterState_Get();
	thread_tstate = main_tstate = PyThreadState_Get();
	pthread_setspecific(tstate_key, main_tstate);
	int rc = runtime_ready(err);
	PyEval_SaveThread();
	return rc;
}

#if PY_VERSION_HEX >= 0x030C0000
pyudf_state *pyudf_subinterp_new(pyudf_buf *err)
{
	if (pyudf_main_state.host == NULL) {
		pyudf_error_set(err, "InitError", "the main interpreter is not initialized (cgo.Init first)");
		return NULL;
	}
	if (pyudf_cur != &pyudf_main_state) {
		pyudf_error_set(err, "InitError", "this thread owns a sub-interpreter already");
		return NULL;
	}
	pyudf_state *st = pyudf_state_get();
	if (st == NULL) {
		pyudf_error_set(err, "MemoryError", "out of memory for a sub-interpreter");
		return NULL;
	}
	/* Own GIL (the point: one core each) and so own allocator state
	 * (use_main_obmalloc = 0 is required with it); only extensions that
	 * declare per-interpreter-GIL support load (check_multi_interp_extensions:
	 * numpy and other single-phase modules refuse with an ImportError instead
	 * of sharing state across GILs). Threads are allowed (user code and the
	 * standard library use threading), daemon threads not: Py_EndInterpreter
	 * joins non-daemon threads, a daemon one would outlive its interpreter.
	 * fork is refused: forking a Go process from a Python thread leaves a child
	 * with one thread and a broken Go runtime. exec (subprocess, which forks
	 * and execs in C without running Python in between) is allowed, as in the
	 * main interpreter, so that UDF code behaves the same in either. */
	PyInterpreterConfig config = {
	    .use_main_obmalloc = 0,
	    .allow_fork = 0,
	    .allow_exec = 1,
	    .allow_threads = 1,
	    .allow_daemon_threads = 0,
	    .check_multi_interp_extensions = 1,
	    .gil = PyInterpreterConfig_OWN_GIL,
	};
	pyudf_main_enter(); /* the C API is called with a GIL held: the main one's */
	PyThreadState *ts = NULL;
	PyStatus status = Py_NewInterpreterFromConfig(&ts, &config);
	if (PyStatus_Exception(status) || ts == NULL) {
		/* the main interpreter's thread state is current again */
		pyudf_error_set(err, "InitError", status.err_msg ? status.err_msg : "Py_NewInterpreterFromConfig failed");
		PyEval_SaveThread();
		pyudf_state_put(st);
		return NULL;
	}
	/* ts is current, with the new interpreter's own GIL; the main GIL is released */
	st->interp = ts->interp;
	st->owner = ts;
	pyudf_cur = st;
	if (runtime_ready(err) < 0) {
		pyudf_state_clear(st);
		Py_EndInterpreter(ts);
		pyudf_cur = &pyudf_main_state;
		pyudf_state_put(st);
		return NULL;
	}
	thread_tstate = ts;
	PyEval_SaveThread();
	return st;
}

int pyudf_subinterp_end(pyudf_state *st, pyudf_buf *err)
{
	if (st == NULL || pyudf_cur != st || thread_tstate != st->owner) {
		pyudf_error_set(err, "RuntimeError", "a sub-interpreter must be ended by the thread that created it");
		return -1;
	}
	/* No interrupter may be entering it from now on (call.c checks interp). */
	pyudf_state_lock();
	st->interp = NULL;
	pyudf_state_unlock();
	PyThreadState *ts = st->owner;
	PyEval_RestoreThread(ts);
	pyudf_state_clear(st);
	Py_EndInterpreter(ts); /* leaves no thread state current, no GIL held */
	thread_tstate = main_tstate;
	pyudf_cur = &pyudf_main_state;
	pyudf_state_put(st);
	return 0;
}
#else
pyudf_state *pyudf_subinterp_new(pyudf_buf *err)
{
	char message[160];
	const char *version = Py_GetVersion();
	size_t n = strcspn(version, " ");
	snprintf(message, sizeof message,
		 "sub-interpreters with their own GIL need CPython 3.12 or later; this is %.*s", (int)n, version);
	pyudf_error_set(err, "NotSupportedError", message);
	return NULL;
}

int pyudf_subinterp_end(pyudf_state *st, pyudf_buf *err)
{
	(void)st;
	pyudf_error_set(err, "NotSupportedError", "no sub-interpreters before CPython 3.12");
	return -1;
}
#endif

void pyudf_interpreters(int *interps, int *tstates)
{
	*interps = *tstates = 0;
	pyudf_main_enter();
	for (PyInterpreterState *i = PyInterpreterState_Head(); i != NULL; i = PyInterpreterState_Next(i)) {
		(*interps)++;
		for (PyThreadState *t = PyInterpreterState_ThreadHead(i); t != NULL; t = PyThreadState_Next(t))
			(*tstates)++;
	}
	PyEval_SaveThread();
}

int pyudf_thread_states(unsigned long *pairs, int n)
{
	int interp = 0, found = 0;
	pyudf_main_enter();
	for (PyInterpreterState *i = PyInterpreterState_Head(); i != NULL; i = PyInterpreterState_Next(i), interp++) {
		for (PyThreadState *t = PyInterpreterState_ThreadHead(i); t != NULL; t = PyThreadState_Next(t), found++) {
			if (found >= n)
				continue;
			pairs[2 * found] = (unsigned long)interp;
#if PY_VERSION_HEX >= 0x030B0000
			pairs[2 * found + 1] = t->native_thread_id;
#else
			pairs[2 * found + 1] = 0; /* no OS thread id before CPython 3.11 */
#endif
		}
	}
	PyEval_SaveThread();
	return found;
}
