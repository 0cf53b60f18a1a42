/* Conversion between pyudf's argument/result wire format and Python objects.
 *
 * A value is a one-byte tag followed by a fixed or length-prefixed payload, in
 * native byte order (writer and reader share the process):
 *   NULL FALSE TRUE                    no payload
 *   INT    int64        FLOAT  float64
 *   STR BYTES DECIMAL BIGINT           uint32 length + bytes (DECIMAL, BIGINT: decimal text)
 *   DATE       int32 year, uint8 month, uint8 day
 *   TIME       uint8 hour, minute, second, uint32 microsecond
 *   TIMESTAMP, TIMESTAMP_UTC           DATE fields, TIME fields (UTC: an aware datetime)
 *   LIST       uint32 n, n values      MAP  uint32 n, n (key, value) pairs
 *   ROW        uint32 n, n (uint32 name length, name, value)
 *   ROW_VALUES uint32 n, n values: a Row without field names (arguments only)
 * Go encodes arguments (bridge/wire.go) and decodes results; this file does
 * the Python half. Every function here needs the GIL.
 *
 * Containers (LIST, MAP, ROW) nest at most PYUDF_MAX_DEPTH levels, both ways,
 * as in bridge.MaxDepth and pyudf._wire.MAX_DEPTH; deeper values are refused
 * with PYUDF_DEEP_TEXT, so neither C stack can overflow whatever Python's
 * recursion limit is. Which Python results convert to which SQL type is
 * written down once, in bridge/wire.go ("The result rule").
 */
#ifndef PYUDF_CONVERT_H
#define PYUDF_CONVERT_H

#include <stddef.h>
#include <stdint.h>

typedef struct _object PyObject;

enum pyudf_tag {
	PYUDF_NULL = 0,
	PYUDF_FALSE = 1,
	PYUDF_TRUE = 2,
	PYUDF_INT = 3,
	PYUDF_FLOAT = 4,
	PYUDF_STR = 5,
	PYUDF_BYTES = 6,
	PYUDF_DECIMAL = 7,
	PYUDF_DATE = 8,
	PYUDF_TIME = 9,
	PYUDF_TIMESTAMP = 10,
	PYUDF_TIMESTAMP_UTC = 11,
	PYUDF_LIST = 12,
	PYUDF_MAP = 13,
	PYUDF_ROW = 14,
	PYUDF_BIGINT = 15,
	PYUDF_ROW_VALUES = 16,
};

#define PYUDF_MAX_DEPTH 100
#define PYUDF_DEEP_TEXT "nested deeper than 100 levels (or cyclic)"

/* A growable byte buffer in C memory. */
typedef struct {
	char *data;
	size_t len;
	size_t cap;
} pyudf_buf;

/* Make room for n more bytes; 0 on success, -1 when out of memory. */
int pyudf_buf_reserve(pyudf_buf *b, size_t n);
void pyudf_buf_free(pyudf_buf *b);

/* Look up what conversion needs (datetime C API, Decimal, Row, normalize). 0 or -1. */
int pyudf_convert_init(PyObject *host);

/* Decode one value at *p (advanced past it). New reference, or NULL with an exception set. */
PyObject *pyudf_decode(const char **p, const char *end);

/* Append obj to out. 0, or -1 with an exception set. */
int pyudf_encode(PyObject *obj, pyudf_buf *out);

/* pyudf._host.normalize(obj): a result of a type the shim does not convert
 * itself (numpy scalars ...) as one it does. New reference, or NULL with an
 * exception set. */
PyObject *pyudf_normalize(PyObject *obj);

/* Decode count values from n bytes at data and drop them, taking the GIL
 * itself: 0 decoded, 1 refused with an exception, 2 refused without one (a
 * bug). For fuzzing the decoder. */
int pyudf_decode_check(const char *data, size_t n, int count);

#endif
