#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pthread.h>

#include "arrays.h"
#include "call.h"
#include "interp.h"
#include "errors.h"
#include "_cgo_export.h"

static PyInterpreterState *interp;
static PyObject *host;
static PyObject *drain_code, *drain_globals; /* see pyudf_drain */
static pthread_key_t tstate_key;
static __thread PyThreadState *thread_tstate;

PyObject *pyudf_host(void) { return host; }

/* Runs when an OS thread that used Python exits: drop its thread state. */
static void tstate_destroy(void *p)
{
	PyThreadState *ts = p;
	if (ts == NULL || !Py_IsInitialized())
		return;
	PyEval_RestoreThread(ts);
	PyThreadState_Clear(ts);
	PyThreadState_DeleteCurrent();
}

static void adopt(PyThreadState *ts)
{
	thread_tstate = ts;
	pthread_setspecific(tstate_key, ts);
}

void pyudf_gil_enter(void)
{
	PyThreadState *ts = thread_tstate;
	if (ts == NULL) {
		ts = PyThreadState_New(interp);
		adopt(ts);
	}
	PyEval_RestoreThread(ts);
}

void pyudf_gil_leave(void) { PyEval_SaveThread(); }

void pyudf_drain(void)
{
	PyObject *r = PyEval_EvalCode(drain_code, drain_globals, drain_globals);
	Py_XDECREF(r);
}

/* The loop pyudf_drain runs: its backward jump makes the eval loop look at its
 * signals. */
static int drain_ready(void)
{
	drain_globals = PyDict_New();
	if (drain_globals == NULL || PyDict_SetItemString(drain_globals, "__builtins__", PyEval_GetBuiltins()) < 0)
		return -1;
	drain_code = Py_CompileString("for _ in (0, 0):\n    pass\n", "<pyudf drain>", Py_file_input);
	return drain_code != NULL ? 0 : -1;
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

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT, "_pyudf_host", "Functions the Go host provides to Python.", -1,
    native_methods,
};

static PyObject *native_init(void)
{
	return pyudf_arrays_ready() < 0 ? NULL : PyModule_Create(&native_module);
}

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

int pyudf_init(const char *program, const char *bootstrap, const char *sources_json, pyudf_buf *err)
{
	if (pthread_key_create(&tstate_key, tstate_destroy) != 0 ||
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
	interp = PyInterpreterState_Get();
	adopt(PyThreadState_Get());

	int rc = drain_ready() == 0 ? install_runtime(bootstrap, sources_json) : -1;
	if (rc == 0) {
		host = PyImport_ImportModule("pyudf._host");
		rc = host && pyudf_errors_init(host) == 0 && pyudf_trap_ready() == 0 &&
			     pyudf_convert_init(host) == 0 ? 0 : -1;
	}
	if (rc < 0) {
		if (pyudf_errors_ready())
			pyudf_error_capture(err);
		else {
			PyErr_Print();
			pyudf_error_set(err, "InitError", "cannot import the embedded pyudf runtime (see stderr)");
		}
	}
	PyEval_SaveThread();
	return rc;
}
