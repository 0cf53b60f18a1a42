/* Python exceptions -> error text the Go side turns into *bridge.PythonError.
 *
 * An error is written to a buffer as three strings, each a uint32 length and
 * UTF-8 bytes: the exception's qualified type name, its message, and the
 * formatted traceback. Functions here need the GIL.
 */
#ifndef PYUDF_ERRORS_H
#define PYUDF_ERRORS_H

#include "convert.h"

/* What a call into Python ended with. */
enum pyudf_status {
	PYUDF_OK = 0,
	PYUDF_ERROR = 1,     /* a Python exception, described in the error buffer */
	PYUDF_CANCELLED = 2, /* interrupted by pyudf_interrupt */
};

/* Remember the host's describe_exception function and Cancelled class in the
 * calling thread's interpreter state (state.h). 0 or -1. */
int pyudf_errors_init(PyObject *host);

/* Whether pyudf_errors_init succeeded (exceptions can be described). */
int pyudf_errors_ready(void);

/* The exception class pyudf_interrupt raises in the interrupted thread (borrowed). */
PyObject *pyudf_errors_cancelled(void);

/* Turn the pending exception, raised while converting a UDF's result, into
 * the host's ResultError when it is a TypeError, ValueError or
 * OverflowError (Go reports those as *bridge.ConversionError); other
 * exceptions (MemoryError, Cancelled) stay as they are. */
void pyudf_error_mark_result(void);

/* Move the pending exception into err and clear it. Returns PYUDF_CANCELLED
 * when it is the host's Cancelled exception, PYUDF_ERROR otherwise. */
int pyudf_error_capture(pyudf_buf *err);

/* The pending exception, normalized, as a new reference (NULL: none); clears
 * it. pyudf_error_restore(exc) raises it again and takes the reference. */
PyObject *pyudf_error_fetch(void);
void pyudf_error_restore(PyObject *exc);

/* Write an error that did not come from a Python exception. */
void pyudf_error_set(pyudf_buf *err, const char *type, const char *message);

#endif
