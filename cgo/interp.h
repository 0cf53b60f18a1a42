/* Interpreter lifecycle and the GIL.
 *
 * pyudf_init starts CPython once per process (Go owns signals, so Python
 * installs no handlers), makes the embedded runtime importable and imports
 * pyudf._host. It never finalizes: the interpreter lives as long as the process.
 *
 * Any OS thread may then enter Python with pyudf_gil_enter/pyudf_gil_leave.
 * Each OS thread gets one PyThreadState on first use, kept in a thread-local
 * and reused by every later call on that thread; it is deleted only when the
 * thread exits.
 */
#ifndef PYUDF_INTERP_H
#define PYUDF_INTERP_H

#include "convert.h"

/* program: the interpreter executable to behave as (its venv and prefix), or
 * "" for libpython's own prefix. bootstrap: source of pyudf/_bootstrap.py.
 * sources_json: {"path": "source"} of the embedded packages. On failure returns
 * -1 with the reason in err (as errors.h describes). Called once, by one thread. */
int pyudf_init(const char *program, const char *bootstrap, const char *sources_json, pyudf_buf *err);

/* Take and release the GIL with this OS thread's own thread state. */
void pyudf_gil_enter(void);
void pyudf_gil_leave(void);

/* Run a few bytecodes in which the eval loop checks its signals: a pending
 * asynchronous exception fires in them (and is left set; the caller clears it). */
void pyudf_drain(void);

/* The pyudf._host module (borrowed; valid after a successful pyudf_init). */
PyObject *pyudf_host(void);

#endif
