#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdlib.h>

#include "arrays.h"
#include "interp.h"

/* struct ArrowArray, as the Arrow C Data Interface specifies it (an ABI). */
struct ArrowArray {
	int64_t length;
	int64_t null_count;
	int64_t offset;
	int64_t n_buffers;
	int64_t n_children;
	const void **buffers;
	struct ArrowArray **children;
	struct ArrowArray *dictionary;
	void (*release)(struct ArrowArray *);
	void *private_data;
};

/* What a plain array owns: the buffer view (holding a reference to the
 * object that exports it) and the array's buffer list. */
typedef struct {
	Py_buffer view;
	const void *buffers[2]; /* no validity bitmap, then the values */
} plain;

static _Atomic int64_t live;

int64_t pyudf_plain_live(void) { return live; }

static void release_plain(struct ArrowArray *a)
{
	plain *p = a->private_data;
	pyudf_gil_enter();
	PyBuffer_Release(&p->view);
	pyudf_gil_leave();
	free(p);
	a->release = NULL;
	live--;
}

int pyudf_export_plain(PyObject *values, uintptr_t out)
{
	plain *p = calloc(1, sizeof *p);
	if (p == NULL) {
		PyErr_NoMemory();
		return -1;
	}
	if (PyObject_GetBuffer(values, &p->view, PyBUF_C_CONTIGUOUS) < 0) {
		free(p);
		return -1;
	}
	if (p->view.ndim != 1 || p->view.itemsize <= 0) {
		PyErr_Format(PyExc_TypeError, "pyudf: a plain result must be one-dimensional, not %d-dimensional",
			     p->view.ndim);
		PyBuffer_Release(&p->view);
		free(p);
		return -1;
	}
	p->buffers[1] = p->view.buf;
	*(struct ArrowArray *)out = (struct ArrowArray){
		.length = p->view.len / p->view.itemsize,
		.n_buffers = 2,
		.buffers = p->buffers,
		.release = release_plain,
		.private_data = p,
	};
	live++;
	return 0;
}
