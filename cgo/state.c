#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pthread.h>
#include <stdlib.h>

#include "state.h"

pyudf_state pyudf_main_state;
__thread pyudf_state *pyudf_cur __attribute__((tls_model("initial-exec"))) = &pyudf_main_state;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pyudf_state *free_list;

void pyudf_state_lock(void) { pthread_mutex_lock(&lock); }
void pyudf_state_unlock(void) { pthread_mutex_unlock(&lock); }

pyudf_state *pyudf_state_get(void)
{
	pyudf_state *fresh = calloc(1, sizeof *fresh); /* in case the free list is empty */
	pyudf_state_lock();
	pyudf_state *st = free_list;
	if (st != NULL) {
		free_list = st->next;
	} else {
		st = fresh;
		fresh = NULL;
	}
	if (st != NULL) { /* under the lock: an interrupter compares gen under it */
		uint64_t gen = st->gen + 1;
		*st = (pyudf_state){0};
		st->gen = gen;
		st->sub = 1;
	}
	pyudf_state_unlock();
	free(fresh);
	return st;
}

void pyudf_state_put(pyudf_state *st)
{
	pyudf_state_lock();
	st->interp = NULL;
	st->owner = NULL;
	st->next = free_list;
	free_list = st;
	pyudf_state_unlock();
}

void pyudf_state_clear(pyudf_state *st)
{
	Py_CLEAR(st->host);
	Py_CLEAR(st->drain_code);
	Py_CLEAR(st->drain_globals);
	Py_CLEAR(st->describe);
	Py_CLEAR(st->cancelled);
	Py_CLEAR(st->as_result_error);
	st->datetime_api = NULL; /* borrowed from the datetime module's capsule */
	Py_CLEAR(st->date_type);
	Py_CLEAR(st->time_type);
	Py_CLEAR(st->datetime_type);
	Py_CLEAR(st->decimal_type);
	Py_CLEAR(st->decimal_str);
	Py_CLEAR(st->row_type);
	Py_CLEAR(st->row_make);
	Py_CLEAR(st->row_fields);
	Py_CLEAR(st->row_values);
	Py_CLEAR(st->normalize);
	Py_CLEAR(st->utc);
	Py_CLEAR(st->astimezone);
	Py_CLEAR(st->batch_module);
}
