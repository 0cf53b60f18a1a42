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

/* --- results out: a numpy array's buffer as an ArrowArray ---------------- */

/* What a plain array owns: the buffer view (holding a reference to the
 * object that exports it) and the array's buffer list. */
typedef struct {
	Py_buffer view;
	const void *buffers[2]; /* no validity bitmap, then the values */
} plain;

static _Atomic int64_t live;          /* plain results exported, not yet released */
static _Atomic int64_t live_batches;  /* batches moved into a keeper, not yet released */

int64_t pyudf_plain_live(void) { return live; }

static void release_plain(struct ArrowArray *a)
{
	plain *p = a->private_data;
	pyudf_main_enter(); /* numpy arrays: the main interpreter's (they refuse sub-interpreters) */
	PyBuffer_Release(&p->view);
	pyudf_gil_leave();
	free(p);
	a->release = NULL;
	live--;
}

/* Whether o's flags say it owns its memory (numpy's ndarray.flags.owndata):
 * 1 or 0, or -1 with an exception set. */
static int owns_data(PyObject *o)
{
	PyObject *flags = PyObject_GetAttrString(o, "flags");
	PyObject *owndata = flags != NULL ? PyObject_GetAttrString(flags, "owndata") : NULL;
	int owns = owndata != NULL ? PyObject_IsTrue(owndata) : -1;
	Py_XDECREF(owndata);
	Py_XDECREF(flags);
	return owns;
}

/* Whether the result values are exclusively the result's: the only
 * references to them are the ours (the caller's, a buffer view's), so not
 * a UDF's that fills one output buffer batch after batch
 * (np.multiply(x, 2, out=self.buf)), and they own their memory, or view
 * memory that only they refer to (a view of a temporary). 1 or 0, or -1 with an exception set. On
 * a free-threaded build a reference count does not prove it: 0. */
static int exclusively_results(PyObject *values, Py_ssize_t ours)
{
#ifdef Py_GIL_DISABLED
	return 0;
#else
	if (Py_REFCNT(values) != ours)
		return 0;
	PyObject *base = PyObject_GetAttrString(values, "base");
	if (base == NULL)
		return -1;
	int sole;
	if (base == Py_None) {
		sole = owns_data(values);
	} else if (Py_TYPE(base) == Py_TYPE(values) && Py_REFCNT(base) == 2) { /* the view's and ours */
		PyObject *grand = PyObject_GetAttrString(base, "base");
		sole = grand == NULL ? -1 : grand == Py_None ? owns_data(base) : 0;
		Py_XDECREF(grand);
	} else {
		sole = 0;
	}
	Py_DECREF(base);
	return sole;
#endif
}

int pyudf_export_plain(PyObject *values, uintptr_t out, int *width)
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
	int sole = p->view.ndim == 1 ? exclusively_results(values, p->view.obj == values ? 2 : 1) : 1;
	if (sole <= 0) { /* not exclusively the result's: a copy is (ndarray.copy(): C-contiguous, owned) */
		PyBuffer_Release(&p->view);
		PyObject *copy = sole == 0 ? PyObject_CallMethod(values, "copy", NULL) : NULL;
		int got = copy != NULL ? PyObject_GetBuffer(copy, &p->view, PyBUF_C_CONTIGUOUS) : -1;
		Py_XDECREF(copy); /* the view holds its own reference */
		if (got < 0) {
			free(p);
			return -1;
		}
	}
	if (p->view.ndim != 1) {
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
	*width = (int)p->view.itemsize;
	live++;
	return 0;
}

/* --- batches in: columns over an imported ArrowArray's buffers ----------- */

/* A batch's ArrowArray, moved here out of the struct Go exported it into.
 * Released (and Go's record with it) when the last column over it is gone. */
typedef struct {
	PyObject_HEAD
	struct ArrowArray array;
} keeper;

static void keeper_dealloc(PyObject *self)
{
	keeper *k = (keeper *)self;
	PyTypeObject *type = Py_TYPE(self);
	if (k->array.release != NULL)
		k->array.release(&k->array);
	live_batches--;
	type->tp_free(self);
	Py_DECREF(type); /* a heap type: its instances hold a reference to it */
}

static PyType_Slot keeper_slots[] = {
    {Py_tp_dealloc, keeper_dealloc},
    {Py_tp_doc, "An Arrow batch from Go, kept until no column views it."},
    {0, NULL},
};

static PyType_Spec keeper_spec = {
    .name = "_pyudf_host.PlainBatch",
    .basicsize = sizeof(keeper),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = keeper_slots,
};

/* One column's values: a read-only bytes buffer over the batch's memory. */
typedef struct {
	PyObject_HEAD
	PyObject *batch; /* the keeper */
	void *data;
	Py_ssize_t len;
} column;

static void column_dealloc(PyObject *self)
{
	PyTypeObject *type = Py_TYPE(self);
	Py_DECREF(((column *)self)->batch);
	type->tp_free(self);
	Py_DECREF(type);
}

static int column_getbuffer(PyObject *self, Py_buffer *view, int flags)
{
	column *c = (column *)self;
	return PyBuffer_FillInfo(view, self, c->data, c->len, 1, flags);
}

static PyType_Slot column_slots[] = {
    {Py_tp_dealloc, column_dealloc},
    {Py_bf_getbuffer, column_getbuffer},
    {Py_tp_doc, "A column's values in an Arrow batch from Go (read-only buffer)."},
    {0, NULL},
};

static PyType_Spec column_spec = {
    .name = "_pyudf_host.PlainColumn",
    .basicsize = sizeof(column),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = column_slots,
};

int64_t pyudf_plain_batches_live(void) { return live_batches; }

int pyudf_arrays_exec(PyObject *module)
{
	pyudf_arrays_types *t = PyModule_GetState(module);
	if (t == NULL)
		return -1;
	t->keeper = PyType_FromModuleAndSpec(module, &keeper_spec, NULL);
	t->column = t->keeper != NULL ? PyType_FromModuleAndSpec(module, &column_spec, NULL) : NULL;
	return t->column != NULL ? 0 : -1;
}

int pyudf_arrays_traverse(PyObject *module, visitproc visit, void *arg)
{
	pyudf_arrays_types *t = PyModule_GetState(module);
	if (t != NULL) {
		Py_VISIT(t->keeper);
		Py_VISIT(t->column);
	}
	return 0;
}

int pyudf_arrays_clear(PyObject *module)
{
	pyudf_arrays_types *t = PyModule_GetState(module);
	if (t != NULL) {
		Py_CLEAR(t->keeper);
		Py_CLEAR(t->column);
	}
	return 0;
}

void pyudf_arrays_free(void *module) { pyudf_arrays_clear(module); }

/* Whether rows [from, from + length) of column c (a struct's child: the
 * batch's offset and length) hold a null. The null count covers the whole
 * column and may be -1, unknown (Arrow C++ exports slices so): then, or when
 * the batch covers part of the column, the validity bitmap tells, bit by bit
 * from c's own offset, aligned to a byte or not. No bitmap: no nulls. */
static int holds_nulls(const struct ArrowArray *c, int64_t from, int64_t length)
{
	if (c->null_count == 0 || c->buffers[0] == NULL)
		return 0;
	if (c->null_count > 0 && from == 0 && length == c->length)
		return 1;
	const uint8_t *bits = c->buffers[0];
	for (int64_t i = c->offset + from, stop = i + length; i < stop; i++)
		if (!((bits[i >> 3] >> (i & 7)) & 1))
			return 1;
	return 0;
}

PyObject *pyudf_plain_columns(PyObject *self, PyObject *args)
{
	pyudf_arrays_types *types = PyModule_GetState(self);
	if (types == NULL || types->keeper == NULL)
		return NULL;
	unsigned long long addr;
	const char *sizes;
	Py_ssize_t ncols;
	if (!PyArg_ParseTuple(args, "Ky#", &addr, &sizes, &ncols))
		return NULL;
	struct ArrowArray *batch = (struct ArrowArray *)(uintptr_t)addr;
	if (batch == NULL || batch->release == NULL) {
		PyErr_SetString(PyExc_ValueError, "plain_columns: no batch at that address (null or released)");
		return NULL;
	}
	if (batch->n_children != ncols) {
		PyErr_Format(PyExc_ValueError, "plain_columns: the batch has %lld columns, %zd item sizes given",
			     (long long)batch->n_children, ncols);
		return NULL;
	}
	if (batch->length < 0 || batch->offset < 0 || (ncols > 0 && batch->children == NULL)) {
		PyErr_SetString(PyExc_ValueError, "plain_columns: the batch's length, offset or columns are invalid");
		return NULL;
	}
	for (Py_ssize_t i = 0; i < ncols; i++) {
		const struct ArrowArray *c = batch->children[i];
		if (c == NULL || c->release == NULL || c->offset < 0 || c->length < batch->offset + batch->length) {
			PyErr_Format(PyExc_ValueError, "plain_columns: column %zd is missing, released or shorter "
				     "than the batch's %lld rows", i, (long long)batch->length);
			return NULL;
		}
		if (c->n_buffers != 2 || c->buffers == NULL || c->n_children != 0 || c->dictionary != NULL ||
		    (batch->length > 0 && c->buffers[1] == NULL) ||
		    holds_nulls(c, batch->offset, batch->length))
			Py_RETURN_NONE; /* not a fixed-width layout, or nulls */
	}
	PyObject *columns = PyList_New(ncols);
	keeper *k = columns ? PyObject_New(keeper, (PyTypeObject *)types->keeper) : NULL;
	if (k == NULL) {
		Py_XDECREF(columns);
		return NULL;
	}
	k->array = *batch; /* moved: the exporter's struct is marked released */
	batch->release = NULL;
	live_batches++;
	for (Py_ssize_t i = 0; i < ncols; i++) {
		const struct ArrowArray *c = k->array.children[i];
		column *col = PyObject_New(column, (PyTypeObject *)types->column);
		if (col == NULL) {
			Py_DECREF(columns); /* releases the batch once the columns made so far are gone */
			Py_DECREF(k);
			return NULL;
		}
		col->batch = Py_NewRef((PyObject *)k);
		col->data = (char *)c->buffers[1] + (c->offset + k->array.offset) * sizes[i];
		col->len = (Py_ssize_t)(k->array.length * sizes[i]);
		PyList_SET_ITEM(columns, i, (PyObject *)col);
	}
	PyObject *result = Py_BuildValue("(NL)", columns, (long long)k->array.length);
	Py_DECREF(k);
	return result;
}
