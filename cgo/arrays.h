/* Arrow C Data arrays between Go and numpy, without going through pyarrow.
 *
 * Batches in: a Pandas UDF whose columns are all numbers without nulls gets
 * them from pyudf_plain_columns (the Python function
 * _pyudf_host.plain_columns): read-only buffers over the batch's memory, for
 * np.frombuffer, with no pyarrow import. The batch's ArrowArray is moved into
 * an object the columns share and released, with the GIL held, when the last
 * of them is gone.
 *
 * Results out: a Pandas UDF's result is most often a Series over a numpy array of exactly
 * the declared type. pyudf._batch then hands that array to the C shim, which
 * exports its buffer (as it is when the array is exclusively the result's,
 * else a copy of it): an ArrowArray with no validity buffer whose
 * private data keeps the numpy array alive until the consumer (Go) releases
 * it. Go imports it with the result type it declared, so no ArrowSchema is
 * made. The release callback may run on any thread; it takes the GIL.
 */
#ifndef PYUDF_ARRAYS_H
#define PYUDF_ARRAYS_H

#include <Python.h>
#include <stdint.h>

/* Export values (an object with a one-dimensional, contiguous buffer of
 * fixed-width values and no nulls, such as a numpy array) into the ArrowArray
 * at address out, and the width of one value in bytes into *width (for Go to
 * check against the type it declared). The buffer goes out as it is only when
 * it is exclusively the result's: the caller's reference to values is the
 * only one, and values own their memory or view a temporary that does;
 * otherwise (the UDF keeps the array to fill it again, a view of its buffer)
 * a copy goes out, so Go's result never changes under it. 0, or -1 with an
 * exception set and *out untouched. The GIL must be held. */
int pyudf_export_plain(PyObject *values, uintptr_t out, int *width);

/* The number of arrays pyudf_export_plain made that were not released yet. */
int64_t pyudf_plain_live(void);

/* The state of a _pyudf_host module (one per interpreter): the types of
 * pyudf_plain_columns' objects. */
typedef struct {
	PyObject *keeper; /* PlainBatch */
	PyObject *column; /* PlainColumn */
} pyudf_arrays_types;

/* _pyudf_host's Py_mod_exec: make the types in its state. 0, or -1 with an
 * exception set. The others are its m_traverse, m_clear and m_free. */
int pyudf_arrays_exec(PyObject *module);
int pyudf_arrays_traverse(PyObject *module, visitproc visit, void *arg);
int pyudf_arrays_clear(PyObject *module);
void pyudf_arrays_free(void *module);

/* _pyudf_host.plain_columns(batch_addr, item_sizes): the columns of the batch
 * exported at batch_addr as ([one read-only buffer per column], rows), the
 * batch moved out of its struct; item_sizes holds one byte per column, its
 * values' width. None, with the batch left where it is, when a column has
 * nulls or is not one buffer of fixed-width values. */
PyObject *pyudf_plain_columns(PyObject *self, PyObject *args);

/* The number of batches pyudf_plain_columns took that were not released yet. */
int64_t pyudf_plain_batches_live(void);

#endif
