#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#include "errors.h"
#include "state.h"

int pyudf_errors_init(PyObject *host)
{
	pyudf_state *st = pyudf_cur;
	st->describe = PyObject_GetAttrString(host, "describe_exception");
	st->cancelled = PyObject_GetAttrString(host, "Cancelled");
	st->as_result_error = PyObject_GetAttrString(host, "as_result_error");
	if (st->cancelled != NULL && !PyType_Check(st->cancelled)) { /* cast for PyObject_TypeCheck below */
		PyErr_SetString(PyExc_TypeError, "pyudf: _host.Cancelled must be a class");
		Py_CLEAR(st->cancelled);
	}
	return st->describe && st->cancelled && st->as_result_error ? 0 : -1;
}

int pyudf_errors_ready(void) { return pyudf_cur->describe != NULL && pyudf_cur->cancelled != NULL; }

PyObject *pyudf_errors_cancelled(void) { return pyudf_cur->cancelled; }

static void put_string(pyudf_buf *err, const char *s, size_t n)
{
	uint32_t len = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
	if (pyudf_buf_reserve(err, 4 + (size_t)len) < 0)
		return; /* out of memory: Go reports an empty description */
	memcpy(err->data + err->len, &len, 4);
	memcpy(err->data + err->len + 4, s, len);
	err->len += 4 + len;
}

void pyudf_error_set(pyudf_buf *err, const char *type, const char *message)
{
	err->len = 0;
	put_string(err, type, strlen(type));
	put_string(err, message, strlen(message));
	put_string(err, "", 0);
}

PyObject *pyudf_error_fetch(void)
{
#if PY_VERSION_HEX >= 0x030C0000
	return PyErr_GetRaisedException();
#else
	PyObject *type, *value, *tb;
	PyErr_Fetch(&type, &value, &tb);
	PyErr_NormalizeException(&type, &value, &tb);
	if (value != NULL && tb != NULL)
		PyException_SetTraceback(value, tb);
	Py_XDECREF(type);
	Py_XDECREF(tb);
	return value;
#endif
}

void pyudf_error_restore(PyObject *exc)
{
#if PY_VERSION_HEX >= 0x030C0000
	PyErr_SetRaisedException(exc);
#else
	if (exc == NULL)
		return;
	PyErr_Restore(Py_NewRef((PyObject *)Py_TYPE(exc)), exc, PyException_GetTraceback(exc));
#endif
}

void pyudf_error_mark_result(void)
{
	PyObject *as_result_error = pyudf_cur->as_result_error;
	if (!PyErr_Occurred() || as_result_error == NULL)
		return;
	PyObject *exc = pyudf_error_fetch();
	PyObject *marked = exc != NULL ? PyObject_CallOneArg(as_result_error, exc) : NULL;
	if (marked == NULL) { /* could not mark it: keep the original */
		PyErr_Clear();
		PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
	} else {
		PyErr_SetObject((PyObject *)Py_TYPE(marked), marked);
		Py_DECREF(marked);
	}
	Py_XDECREF(exc);
}

int pyudf_error_capture(pyudf_buf *err)
{
	PyObject *exc = pyudf_error_fetch();
	if (exc == NULL) {
		pyudf_error_set(err, "SystemError", "error reported without an exception");
		return PYUDF_ERROR;
	}
	pyudf_state *st = pyudf_cur;
	int status = PyObject_TypeCheck(exc, (PyTypeObject *)st->cancelled) ? PYUDF_CANCELLED : PYUDF_ERROR; /* a type: init */
	PyObject *parts = PyObject_CallOneArg(st->describe, exc);
	if (parts == NULL || !PyTuple_Check(parts) || PyTuple_GET_SIZE(parts) != 3) {
		PyErr_Clear();
		pyudf_error_set(err, Py_TYPE(exc)->tp_name, "<exception could not be described>");
	} else {
		err->len = 0;
		for (int i = 0; i < 3; i++) {
			Py_ssize_t n = 0;
			PyObject *part = PyTuple_GET_ITEM(parts, i); /* parts passed PyTuple_Check, size 3 */
			const char *s = PyUnicode_Check(part) ? PyUnicode_AsUTF8AndSize(part, &n) : NULL;
			if (s == NULL) {
				PyErr_Clear();
				s = "";
				n = 0;
			}
			put_string(err, s, (size_t)n);
		}
	}
	Py_XDECREF(parts);
	Py_DECREF(exc);
	return status;
}
