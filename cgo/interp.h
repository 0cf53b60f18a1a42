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
 *
 * Sub-interpreters (CPython >= 3.12): an OS thread may create one, with its
 * own GIL, and then owns it: from then until it ends it, every function here
 * and in call.h that the thread calls works in that sub-interpreter (its
 * thread state, its state.h objects), and no other thread runs code in it
 * (pyudf_interrupt enters it briefly). Objects it hands out belong to it:
 * calls and releases of them happen on its thread.
 */
#ifndef PYUDF_INTERP_H
#define PYUDF_INTERP_H

#include "convert.h"

struct pyudf_state;

/* program: the interpreter executable to behave as (its venv and prefix), or
 * "" for libpython's own prefix. bootstrap: source of pyudf/_bootstrap.py.
 * sources_json: {"path": "source"} of the embedded packages. On failure returns
 * -1 with the reason in err (as errors.h describes). Called once, by one thread. */
int pyudf_init(const char *program, const char *bootstrap, const char *sources_json, pyudf_buf *err);

/* Take and release the GIL with this OS thread's own thread state (in the
 * sub-interpreter the thread owns, if any, else in the main interpreter). */
void pyudf_gil_enter(void);
void pyudf_gil_leave(void);

/* Take the main interpreter's GIL with this thread's main thread state, even
 * on a thread that owns a sub-interpreter (for objects known to be the main
 * interpreter's: numpy arrays). pyudf_gil_leave releases it. */
void pyudf_main_enter(void);

/* Run a few bytecodes in which the eval loop checks its signals: a pending
 * asynchronous exception fires in them (and is left set; the caller clears it). */
void pyudf_drain(void);

/* The pyudf._host module of the calling thread's interpreter (borrowed; valid
 * after a successful pyudf_init). */
PyObject *pyudf_host(void);

/* Create a sub-interpreter with its own GIL on the calling thread, which owns
 * it from then on, with the embedded runtime that pyudf_init installed
 * imported in it. Needs pyudf_init first, no GIL held, and a thread that owns
 * no sub-interpreter yet. Returns its state, or NULL with err set (CPython
 * before 3.12 always: NotSupportedError naming the version). The thread
 * leaves with no GIL held. */
struct pyudf_state *pyudf_subinterp_new(pyudf_buf *err);

/* End the sub-interpreter st, on the thread that created it, no GIL held,
 * no call running in it. The thread works in the main interpreter again.
 * 0, or -1 with err set (another thread's, or NULL). */
int pyudf_subinterp_end(struct pyudf_state *st, pyudf_buf *err);

/* Visit sub-interpreter st from a thread that does not own it, for one call
 * (pyudf_call_in, call.h): the thread's own thread state for st, made on
 * first use and kept (at most PYUDF_MAX_VISITS interpreters per thread;
 * deleted when the thread exits), becomes the one pyudf_gil_enter takes, and
 * st the thread's state. Returns what pyudf_unvisit restores, or NULL when
 * st cannot be visited (it ended, or too many). No GIL held. */
#define PYUDF_MAX_VISITS 64
struct pyudf_visit {
	struct pyudf_state *state;
	struct _ts *tstate; /* PyThreadState */
};
int pyudf_visit(struct pyudf_state *st, struct pyudf_visit *saved);
void pyudf_unvisit(const struct pyudf_visit *saved);

/* Count the interpreters that exist and their thread states (tests check for
 * leaks with it). Takes the main GIL itself. */
void pyudf_interpreters(int *interps, int *tstates);

/* List the thread states as pairs (interpreter number, the main one 0; OS
 * thread id, 0 before CPython 3.11) into pairs, n pairs at most; returns how
 * many there are, which may be more than n. Takes the main GIL itself. */
int pyudf_thread_states(unsigned long *pairs, int n);

#endif
