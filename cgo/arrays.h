/* Results that leave Python as Arrow C Data arrays without going through pyarrow.
 *
 * A Pandas UDF's result is most often a Series over a numpy array of exactly
 * the declared type. pyudf._batch then hands that array to the C shim, which
 * exports its buffer as it is: an ArrowArray with no validity buffer whose
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
 * at address out. 0, or -1 with an exception set and *out untouched. The GIL
 * must be held. */
int pyudf_export_plain(PyObject *values, uintptr_t out);

/* The number of arrays pyudf_export_plain made that were not released yet. */
int64_t pyudf_plain_live(void);

#endif
