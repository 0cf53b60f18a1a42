#define PY_SSIZE_T_CLEAN
#include <Python.h>
/* datetime.h declares its own static PyDateTimeAPI in every file that includes
 * it; here the macros read the calling interpreter's instead (state.h), which
 * is NULL where the datetime C API does not exist (a sub-interpreter on
 * CPython 3.12, where _datetime refuses to load and datetime is _pydatetime):
 * there, dates go through datetime's classes (the *_py functions below). */
#define PyDateTimeAPI pyudf_datetime_h_api
#include <datetime.h>
#undef PyDateTimeAPI
#define PyDateTimeAPI ((PyDateTime_CAPI *)pyudf_cur->datetime_api)
#include <stdlib.h>
#include <string.h>

#include "convert.h"
#include "interp.h"
#include "state.h"

int pyudf_buf_reserve(pyudf_buf *b, size_t n)
{
	if (b->len + n <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + n)
		cap *= 2;
	char *data = realloc(b->data, cap);
	if (data == NULL)
		return -1;
	b->data = data;
	b->cap = cap;
	return 0;
}

void pyudf_buf_free(pyudf_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

int pyudf_convert_init(PyObject *host)
{
	pyudf_state *st = pyudf_cur;
	(void)pyudf_datetime_h_api; /* datetime.h's own, unused */
	PyObject *datetime = PyImport_ImportModule("datetime");
	if (datetime == NULL)
		return -1;
	st->datetime_api = PyCapsule_Import(PyDateTime_CAPSULE_NAME, 0);
	if (st->datetime_api == NULL) {
		if (!st->sub)
			goto fail; /* the main interpreter always has it */
		PyErr_Clear();
	}
	st->date_type = PyObject_GetAttrString(datetime, "date");
	st->time_type = st->date_type ? PyObject_GetAttrString(datetime, "time") : NULL;
	st->datetime_type = st->time_type ? PyObject_GetAttrString(datetime, "datetime") : NULL;
	PyObject *timezone = st->datetime_type ? PyObject_GetAttrString(datetime, "timezone") : NULL;
	st->utc = timezone ? PyObject_GetAttrString(timezone, "utc") : NULL;
	Py_XDECREF(timezone);
	Py_CLEAR(datetime);
	if (st->utc == NULL)
		goto fail;
	if (!PyType_Check(st->date_type) || !PyType_Check(st->time_type) || !PyType_Check(st->datetime_type)) {
		PyErr_SetString(PyExc_TypeError, "pyudf: datetime's date, time and datetime must be classes");
		goto fail;
	}
	st->astimezone = PyObject_GetAttrString(st->datetime_type, "astimezone");
	PyObject *decimal = PyImport_ImportModule("decimal");
	if (decimal == NULL)
		return -1;
	st->decimal_type = PyObject_GetAttrString(decimal, "Decimal");
	Py_DECREF(decimal);
	st->decimal_str = st->decimal_type ? PyObject_GetAttrString(st->decimal_type, "__str__") : NULL;
	st->row_type = PyObject_GetAttrString(host, "Row");
	st->row_make = st->row_type ? PyObject_GetAttrString(st->row_type, "_make") : NULL;
	st->row_fields = st->row_type ? PyObject_GetAttrString(st->row_type, "_fields") : NULL;
	st->row_values = st->row_type ? PyObject_GetAttrString(st->row_type, "_values") : NULL;
	st->normalize = PyObject_GetAttrString(host, "normalize");
	if (!(st->decimal_type && st->decimal_str && st->astimezone && st->row_type && st->row_make &&
	      st->row_fields && st->row_values && st->normalize))
		return -1;
	/* They are cast to PyTypeObject * for PyObject_TypeCheck below. */
	if (!PyType_Check(st->decimal_type) || !PyType_Check(st->row_type)) {
		PyErr_SetString(PyExc_TypeError, "pyudf: decimal.Decimal and pyudf.Row must be classes");
		return -1;
	}
	/* Row's _fields and _values are __slots__: read through these descriptors
	 * (slot_of), a subclass's attributes of the same names never run. */
	if (!Py_IS_TYPE(st->row_fields, &PyMemberDescr_Type) || !Py_IS_TYPE(st->row_values, &PyMemberDescr_Type)) {
		PyErr_SetString(PyExc_TypeError, "pyudf: pyudf.Row must keep _fields and _values in __slots__");
		return -1;
	}
	return 0;
fail:
	Py_XDECREF(datetime);
	return -1;
}

/* The slot of obj (an instance of row_type, checked by the caller) that the
 * member descriptor slot reads: a new reference, or NULL with AttributeError
 * when the slot is unset. */
static PyObject *slot_of(PyObject *slot, PyObject *obj)
{
	return Py_TYPE(slot)->tp_descr_get(slot, obj, (PyObject *)Py_TYPE(obj));
}

PyObject *pyudf_normalize(PyObject *obj) { return PyObject_CallOneArg(pyudf_cur->normalize, obj); }

static int too_deep(const char *what)
{
	PyErr_Format(PyExc_ValueError, "pyudf: %s " PYUDF_DEEP_TEXT, what);
	return -1;
}

/* --- decoding: wire -> Python ------------------------------------------- */

static int need(const char *p, const char *end, size_t n)
{
	if ((size_t)(end - p) < n) {
		PyErr_SetString(PyExc_ValueError, "pyudf: truncated argument data");
		return -1;
	}
	return 0;
}

#define READ(dst, p) (memcpy(&(dst), (p), sizeof(dst)), (p) += sizeof(dst))

static int read_len(const char **p, const char *end, uint32_t *n)
{
	if (need(*p, end, 4) < 0)
		return -1;
	READ(*n, *p);
	return need(*p, end, 0);
}

/* The count of a container at depth whose n items take at least size bytes
 * each: a count the data cannot hold is refused before anything is allocated. */
static int read_count(const char **p, const char *end, int depth, size_t size, uint32_t *n)
{
	if (depth >= PYUDF_MAX_DEPTH)
		return too_deep("argument");
	if (read_len(p, end, n) < 0)
		return -1;
	return need(*p, end, (size_t)*n * size);
}

static PyObject *decode_value(const char **p, const char *end, int depth);

#define HIGH_BITS 0x8080808080808080ull

/* Copy n bytes from src to dst, 8 at a time; 1 if they were all ASCII (below
 * 0x80), else 0 (dst then holds a part of them). */
static int copy_ascii(uint8_t *dst, const char *src, size_t n)
{
	uint64_t high = 0, w;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		memcpy(&w, src + i, 8);
		memcpy(dst + i, &w, 8);
		high |= w;
	}
	for (; i < n; i++) {
		dst[i] = (uint8_t)src[i];
		high |= (uint8_t)src[i];
	}
	return (high & HIGH_BITS) == 0;
}

/* The str of n bytes of UTF-8 at s. ASCII text (the common case) is copied
 * straight into a new compact ASCII str, checked as it goes; anything else,
 * and texts of 0 or 1 bytes (CPython's cached singletons), goes through
 * CPython's strict UTF-8 decoder, so invalid UTF-8 raises UnicodeDecodeError
 * as before. */
static PyObject *str_from_utf8(const char *s, size_t n)
{
	if (n > 1) {
		PyObject *str = PyUnicode_New((Py_ssize_t)n, 127);
		if (str == NULL)
			return NULL;
		if (copy_ascii(PyUnicode_1BYTE_DATA(str), s, n))
			return str;
		Py_DECREF(str);
	}
	return PyUnicode_DecodeUTF8(s, (Py_ssize_t)n, "strict");
}

static PyObject *decode_text(const char **p, const char *end, int tag)
{
	uint32_t n;
	if (read_len(p, end, &n) < 0 || need(*p, end, n) < 0)
		return NULL;
	const char *s = *p;
	*p += n;
	switch (tag) {
	case PYUDF_STR:
		return str_from_utf8(s, n);
	case PYUDF_BYTES:
		return PyBytes_FromStringAndSize(s, n);
	default: { /* DECIMAL, BIGINT */
		PyObject *text = PyUnicode_DecodeUTF8(s, n, "strict");
		if (text == NULL)
			return NULL;
		PyObject *d = tag == PYUDF_BIGINT ? PyLong_FromUnicodeObject(text, 10)
						  : PyObject_CallOneArg(pyudf_cur->decimal_type, text);
		Py_DECREF(text);
		return d;
	}
	}
}

typedef struct {
	int32_t year;
	uint8_t month, day, hour, minute, second;
	uint32_t usec;
} fields;

static int read_date(const char **p, const char *end, fields *f)
{
	if (need(*p, end, 6) < 0)
		return -1;
	READ(f->year, *p);
	READ(f->month, *p);
	READ(f->day, *p);
	return 0;
}

static int read_time(const char **p, const char *end, fields *f)
{
	if (need(*p, end, 7) < 0)
		return -1;
	READ(f->hour, *p);
	READ(f->minute, *p);
	READ(f->second, *p);
	READ(f->usec, *p);
	return 0;
}

static PyObject *decode_list(const char **p, const char *end, int depth)
{
	uint32_t n;
	if (read_count(p, end, depth, 1, &n) < 0)
		return NULL;
	PyObject *list = PyList_New(n);
	for (uint32_t i = 0; list && i < n; i++) {
		PyObject *item = decode_value(p, end, depth + 1);
		if (item == NULL)
			Py_CLEAR(list);
		else
			PyList_SET_ITEM(list, i, item);
	}
	return list;
}

static PyObject *decode_map(const char **p, const char *end, int depth)
{
	uint32_t n;
	if (read_count(p, end, depth, 2, &n) < 0)
		return NULL;
	PyObject *dict = PyDict_New();
	for (uint32_t i = 0; dict && i < n; i++) {
		PyObject *key = decode_value(p, end, depth + 1);
		PyObject *value = key ? decode_value(p, end, depth + 1) : NULL;
		if (value == NULL || PyDict_SetItem(dict, key, value) < 0)
			Py_CLEAR(dict);
		Py_XDECREF(key);
		Py_XDECREF(value);
	}
	return dict;
}

static PyObject *decode_row(const char **p, const char *end, int depth)
{
	uint32_t n;
	if (read_count(p, end, depth, 5, &n) < 0)
		return NULL;
	/* Lists, as Row keeps them; the Row takes them without copies. Items not
	 * yet set are NULL, which a list's deallocation skips. */
	PyObject *names = PyList_New(n), *values = PyList_New(n), *row = NULL;
	if (names == NULL || values == NULL)
		goto done;
	for (uint32_t i = 0; i < n; i++) {
		PyObject *name = decode_text(p, end, PYUDF_STR);
		if (name == NULL)
			goto done;
		PyList_SET_ITEM(names, i, name);
		PyObject *value = decode_value(p, end, depth + 1);
		if (value == NULL)
			goto done;
		PyList_SET_ITEM(values, i, value);
	}
	row = PyObject_CallFunctionObjArgs(pyudf_cur->row_make, names, values, NULL);
done:
	Py_XDECREF(names);
	Py_XDECREF(values);
	return row;
}

static PyObject *decode_value(const char **p, const char *end, int depth)
{
	if (end - *p >= 9 && **p == PYUDF_INT) { /* the commonest argument */
		int64_t v;
		memcpy(&v, *p + 1, 8);
		*p += 9;
		return PyLong_FromLongLong(v);
	}
	if (need(*p, end, 1) < 0)
		return NULL;
	uint8_t tag = (uint8_t) * (*p)++;
	fields f = {0};
	switch (tag) {
	case PYUDF_NULL:
		Py_RETURN_NONE;
	case PYUDF_FALSE:
		Py_RETURN_FALSE;
	case PYUDF_TRUE:
		Py_RETURN_TRUE;
	case PYUDF_INT: {
		int64_t v;
		if (need(*p, end, 8) < 0)
			return NULL;
		READ(v, *p);
		return PyLong_FromLongLong(v);
	}
	case PYUDF_FLOAT: {
		double v;
		if (need(*p, end, 8) < 0)
			return NULL;
		READ(v, *p);
		return PyFloat_FromDouble(v);
	}
	case PYUDF_STR:
	case PYUDF_BYTES:
	case PYUDF_DECIMAL:
	case PYUDF_BIGINT:
		return decode_text(p, end, tag);
	case PYUDF_DATE:
		if (read_date(p, end, &f) < 0)
			return NULL;
		if (PyDateTimeAPI == NULL)
			return PyObject_CallFunction(pyudf_cur->date_type, "iii", f.year, f.month, f.day);
		return PyDate_FromDate(f.year, f.month, f.day);
	case PYUDF_TIME:
		if (read_time(p, end, &f) < 0)
			return NULL;
		if (PyDateTimeAPI == NULL)
			return PyObject_CallFunction(pyudf_cur->time_type, "iiiI", f.hour, f.minute, f.second,
						     (unsigned)f.usec);
		return PyTime_FromTime(f.hour, f.minute, f.second, f.usec);
	case PYUDF_TIMESTAMP:
	case PYUDF_TIMESTAMP_UTC: {
		if (read_date(p, end, &f) < 0 || read_time(p, end, &f) < 0)
			return NULL;
		PyObject *tz = tag == PYUDF_TIMESTAMP_UTC ? pyudf_cur->utc : Py_None;
		if (PyDateTimeAPI == NULL)
			return PyObject_CallFunction(pyudf_cur->datetime_type, "iiiiiiIO", f.year, f.month, f.day,
						     f.hour, f.minute, f.second, (unsigned)f.usec, tz);
		return PyDateTimeAPI->DateTime_FromDateAndTime(f.year, f.month, f.day, f.hour, f.minute,
							       f.second, f.usec, tz, PyDateTimeAPI->DateTimeType);
	}
	case PYUDF_LIST:
		return decode_list(p, end, depth);
	case PYUDF_MAP:
		return decode_map(p, end, depth);
	case PYUDF_ROW:
		return decode_row(p, end, depth);
	case PYUDF_ROW_VALUES: { /* a Row without names: Row._make(None, values) */
		PyObject *values = decode_list(p, end, depth);
		PyObject *row = values ? PyObject_CallFunctionObjArgs(pyudf_cur->row_make, Py_None, values, NULL) : NULL;
		Py_XDECREF(values);
		return row;
	}
	default:
		PyErr_Format(PyExc_ValueError, "pyudf: unknown argument tag %d", tag);
		return NULL;
	}
}

PyObject *pyudf_decode(const char **p, const char *end) { return decode_value(p, end, 0); }

/* --- encoding: Python -> wire ------------------------------------------- */

static int put(pyudf_buf *out, const void *data, size_t n)
{
	if (pyudf_buf_reserve(out, n) < 0) {
		PyErr_NoMemory();
		return -1;
	}
	memcpy(out->data + out->len, data, n);
	out->len += n;
	return 0;
}

static int put_tag(pyudf_buf *out, uint8_t tag) { return put(out, &tag, 1); }

/* A length-prefixed text with tag (0: none, a ROW field name), room made once. */
static int put_text(pyudf_buf *out, uint8_t tag, const char *s, Py_ssize_t n)
{
	if ((size_t)n > UINT32_MAX) {
		PyErr_SetString(PyExc_OverflowError, "value larger than 4 GiB");
		return -1;
	}
	uint32_t len = (uint32_t)n;
	if (pyudf_buf_reserve(out, 5 + (size_t)len) < 0) {
		PyErr_NoMemory();
		return -1;
	}
	char *w = out->data + out->len;
	if (tag != 0)
		*w++ = (char)tag;
	memcpy(w, &len, 4);
	memcpy(w + 4, s, len);
	out->len = (size_t)(w + 4 + len - out->data);
	return 0;
}

/* A str: a compact ASCII one's characters are its UTF-8, read in place; any
 * other goes through PyUnicode_AsUTF8AndSize, which refuses what cannot be
 * UTF-8 (a lone surrogate) with UnicodeEncodeError. */
static int put_str(pyudf_buf *out, uint8_t tag, PyObject *str)
{
	Py_ssize_t n;
	const char *s;
	if (PyUnicode_IS_COMPACT_ASCII(str)) {
		n = PyUnicode_GET_LENGTH(str);
		s = (const char *)PyUnicode_1BYTE_DATA(str);
	} else if ((s = PyUnicode_AsUTF8AndSize(str, &n)) == NULL) {
		return -1;
	}
	return put_text(out, tag, s, n);
}


/* text, which must be a str, with the given tag; the reference is consumed. */
static int put_str_obj(pyudf_buf *out, uint8_t tag, PyObject *text)
{
	if (text == NULL)
		return -1;
	int rc = -1;
	if (!PyUnicode_Check(text)) {
		PyErr_Format(PyExc_TypeError, "pyudf: __str__ returned %.100s, not str", Py_TYPE(text)->tp_name);
	} else {
		rc = put_str(out, tag, text);
	}
	Py_DECREF(text);
	return rc;
}

/* An int beyond int64 as decimal text. The digits come from an exact int
 * (PyNumber_Index copies a subclass's value into one), never from the
 * object's own __str__, which a subclass may override. */
static int put_bigint(pyudf_buf *out, PyObject *obj)
{
	PyObject *exact = PyNumber_Index(obj);
	if (exact == NULL)
		return -1;
	int rc = -1;
	if (PyLong_CheckExact(exact))
		rc = put_str_obj(out, PYUDF_BIGINT, PyObject_Str(exact));
	else
		PyErr_SetString(PyExc_TypeError, "pyudf: an int did not convert to an exact int");
	Py_DECREF(exact);
	return rc;
}

static int put_date(pyudf_buf *out, int32_t y, uint8_t m, uint8_t d)
{
	return put(out, &y, 4) < 0 || put(out, &m, 1) < 0 ? -1 : put(out, &d, 1);
}

static int put_time(pyudf_buf *out, uint8_t h, uint8_t mi, uint8_t s, uint32_t us)
{
	if (put(out, &h, 1) < 0 || put(out, &mi, 1) < 0 || put(out, &s, 1) < 0)
		return -1;
	return put(out, &us, 4);
}

/* obj passed PyDateTime_Check, so its fields are a datetime's (a subclass
 * shares the layout). Its tzinfo is read from the struct, and an aware one is
 * moved to UTC by datetime.astimezone itself, not by an override, and the
 * result is type-checked before its fields are read. */
static int encode_datetime(PyObject *obj, pyudf_buf *out)
{
	pyudf_state *st = pyudf_cur;
	int aware = PyDateTime_DATE_GET_TZINFO(obj) != Py_None;
	PyObject *dt = aware ? PyObject_CallFunctionObjArgs(st->astimezone, obj, st->utc, NULL) : Py_NewRef(obj);
	if (dt == NULL)
		return -1;
	int rc = -1;
	if (!PyDateTime_Check(dt))
		PyErr_Format(PyExc_TypeError, "pyudf: astimezone returned %.100s, not a datetime",
			     Py_TYPE(dt)->tp_name);
	else
		rc = put_tag(out, aware ? PYUDF_TIMESTAMP_UTC : PYUDF_TIMESTAMP);
	if (rc == 0)
		rc = put_date(out, PyDateTime_GET_YEAR(dt), PyDateTime_GET_MONTH(dt),
			      PyDateTime_GET_DAY(dt));
	if (rc == 0)
		rc = put_time(out, PyDateTime_DATE_GET_HOUR(dt), PyDateTime_DATE_GET_MINUTE(dt),
			      PyDateTime_DATE_GET_SECOND(dt), PyDateTime_DATE_GET_MICROSECOND(dt));
	Py_DECREF(dt);
	return rc;
}

/* The fields encode_dates_py reads, in order, and their ranges. */
static const char *const field_names[] = {"year", "month", "day", "hour", "minute", "second", "microsecond"};
static const long field_min[] = {1, 1, 1, 0, 0, 0, 0};
static const long field_max[] = {9999, 12, 31, 23, 59, 59, 999999};

/* Without the datetime C API (state.h): the fields of obj, an instance of
 * cls, read through cls's own descriptors (a subclass's override of year,
 * say, never runs), n fields from field_names[first] into v. Each must be an
 * exact int in its range (the pure-Python classes keep them in attributes a
 * subclass could change). 0, or -1 with an exception set. */
static int fields_py(PyObject *cls, PyObject *obj, int first, int n, long *v)
{
	const char *const *names = field_names + first;
	for (int i = 0; i < n; i++) {
		PyObject *d = PyObject_GetAttrString(cls, names[i]);
		descrgetfunc get = d != NULL ? Py_TYPE(d)->tp_descr_get : NULL;
		PyObject *x = get != NULL ? get(d, obj, cls) : NULL;
		if (d != NULL && get == NULL)
			PyErr_Format(PyExc_TypeError, "pyudf: %.100s.%s is not a descriptor",
				     ((PyTypeObject *)cls)->tp_name, names[i]);
		Py_XDECREF(d);
		if (x == NULL)
			return -1;
		v[i] = PyLong_CheckExact(x) ? PyLong_AsLong(x) : -1;
		Py_DECREF(x);
		if (v[i] < field_min[first + i] || v[i] > field_max[first + i]) {
			if (!PyErr_Occurred())
				PyErr_Format(PyExc_ValueError, "pyudf: %.100s.%s is out of range",
					     ((PyTypeObject *)cls)->tp_name, names[i]);
			return -1;
		}
	}
	return 0;
}

/* encode_value's dates and times without the datetime C API: 1 when obj is
 * none of them (nothing written), else 0, or -1 with an exception set. */
static int encode_dates_py(PyObject *obj, pyudf_buf *out)
{
	pyudf_state *st = pyudf_cur;
	long v[7];
	if (PyObject_TypeCheck(obj, (PyTypeObject *)st->datetime_type)) { /* checked a type at init */
		PyObject *d = PyObject_GetAttrString(st->datetime_type, "tzinfo");
		descrgetfunc get = d != NULL ? Py_TYPE(d)->tp_descr_get : NULL;
		PyObject *tz = get != NULL ? get(d, obj, st->datetime_type) : NULL;
		if (d != NULL && get == NULL)
			PyErr_SetString(PyExc_TypeError, "pyudf: datetime.tzinfo is not a descriptor");
		Py_XDECREF(d);
		if (tz == NULL)
			return -1;
		int aware = tz != Py_None;
		Py_DECREF(tz);
		PyObject *dt = aware ? PyObject_CallFunctionObjArgs(st->astimezone, obj, st->utc, NULL)
				     : Py_NewRef(obj);
		if (dt == NULL)
			return -1;
		int rc = -1;
		if (!PyObject_TypeCheck(dt, (PyTypeObject *)st->datetime_type))
			PyErr_Format(PyExc_TypeError, "pyudf: astimezone returned %.100s, not a datetime",
				     Py_TYPE(dt)->tp_name);
		else if (fields_py(st->datetime_type, dt, 0, 7, v) == 0 &&
			 put_tag(out, aware ? PYUDF_TIMESTAMP_UTC : PYUDF_TIMESTAMP) == 0 &&
			 put_date(out, (int32_t)v[0], (uint8_t)v[1], (uint8_t)v[2]) == 0)
			rc = put_time(out, (uint8_t)v[3], (uint8_t)v[4], (uint8_t)v[5], (uint32_t)v[6]);
		Py_DECREF(dt);
		return rc;
	}
	if (PyObject_TypeCheck(obj, (PyTypeObject *)st->date_type)) {
		if (fields_py(st->date_type, obj, 0, 3, v) < 0 || put_tag(out, PYUDF_DATE) < 0)
			return -1;
		return put_date(out, (int32_t)v[0], (uint8_t)v[1], (uint8_t)v[2]);
	}
	if (PyObject_TypeCheck(obj, (PyTypeObject *)st->time_type)) {
		if (fields_py(st->time_type, obj, 3, 4, v) < 0 || put_tag(out, PYUDF_TIME) < 0)
			return -1;
		return put_time(out, (uint8_t)v[0], (uint8_t)v[1], (uint8_t)v[2], (uint32_t)v[3]);
	}
	return 1;
}

static int encode_value(PyObject *obj, pyudf_buf *out, int normalized, int depth);

/* The items of a list or tuple (a subclass too) as a tuple that holds them:
 * converting one item may run Python code (normalize, a Row's _fields ...)
 * that changes a list, so a list is copied first; a tuple cannot change. */
static PyObject *items_of(PyObject *obj)
{
	if (PyTuple_Check(obj))
		return Py_NewRef(obj);
	return PyList_AsTuple(obj); /* obj passed PyList_Check */
}

/* A LIST, or a ROW with the given field names (a tuple of the items' length). */
static int encode_sequence(PyObject *obj, pyudf_buf *out, PyObject *names, int depth)
{
	if (depth >= PYUDF_MAX_DEPTH)
		return too_deep("result");
	PyObject *items = items_of(obj);
	if (items == NULL)
		return -1;
	Py_ssize_t n = PyTuple_GET_SIZE(items);
	if (names != NULL && PyTuple_GET_SIZE(names) != n)
		names = NULL;
	uint32_t len = (uint32_t)n;
	int rc = (size_t)n > UINT32_MAX ? (PyErr_SetString(PyExc_OverflowError, "pyudf: more than 2^32 items"), -1) : 0;
	if (rc == 0)
		rc = put_tag(out, names ? PYUDF_ROW : PYUDF_LIST) < 0 || put(out, &len, 4) < 0 ? -1 : 0;
	for (Py_ssize_t i = 0; rc == 0 && i < n; i++) {
		if (names) {
			PyObject *name = PyTuple_GET_ITEM(names, i);
			Py_ssize_t nlen;
			const char *s = PyUnicode_Check(name) ? PyUnicode_AsUTF8AndSize(name, &nlen) : NULL;
			if (s == NULL) {
				if (!PyErr_Occurred())
					PyErr_SetString(PyExc_TypeError, "Row field names must be str");
				rc = -1;
				break;
			}
			rc = put_text(out, 0, s, nlen);
		}
		if (rc == 0)
			rc = encode_value(PyTuple_GET_ITEM(items, i), out, 0, depth + 1);
	}
	Py_DECREF(items);
	return rc;
}

/* A MAP. The (key, value) pairs are taken first (PyDict_Items holds them):
 * converting a key or value may run Python code that changes the dict. */
static int encode_dict(PyObject *obj, pyudf_buf *out, int depth)
{
	if (depth >= PYUDF_MAX_DEPTH)
		return too_deep("result");
	PyObject *pairs = PyDict_Items(obj);
	if (pairs == NULL)
		return -1;
	Py_ssize_t n = PyList_GET_SIZE(pairs);
	if ((size_t)n > UINT32_MAX) {
		Py_DECREF(pairs);
		PyErr_SetString(PyExc_OverflowError, "a dict result has more than 2^32-1 items");
		return -1;
	}
	uint32_t len = (uint32_t)n;
	int rc = put_tag(out, PYUDF_MAP) < 0 || put(out, &len, 4) < 0 ? -1 : 0;
	for (Py_ssize_t i = 0; rc == 0 && i < n; i++) {
		PyObject *pair = PyList_GET_ITEM(pairs, i); /* a 2-tuple PyDict_Items made */
		if (encode_value(PyTuple_GET_ITEM(pair, 0), out, 0, depth + 1) < 0 ||
		    encode_value(PyTuple_GET_ITEM(pair, 1), out, 0, depth + 1) < 0)
			rc = -1;
	}
	Py_DECREF(pairs);
	return rc;
}

/* obj passed PyObject_TypeCheck(row_type). Its values (a list or tuple) and
 * field names (a list or tuple of str; unset, None or anything else: no names)
 * are read from Row's slots; the names are copied into a tuple first, as
 * encoding a value may run code that changes the list. */
static int encode_row(PyObject *obj, pyudf_buf *out, int depth)
{
	PyObject *values = slot_of(pyudf_cur->row_values, obj);
	if (values == NULL)
		return -1;
	if (!PyList_Check(values) && !PyTuple_Check(values)) {
		PyErr_Format(PyExc_TypeError, "Row values must be a list, not %.200s", Py_TYPE(values)->tp_name);
		Py_DECREF(values);
		return -1;
	}
	PyObject *fields = slot_of(pyudf_cur->row_fields, obj), *names = NULL;
	if (fields == NULL) {
		if (!PyErr_ExceptionMatches(PyExc_AttributeError)) {
			Py_DECREF(values);
			return -1;
		}
		PyErr_Clear();
	} else if (PyList_Check(fields) || PyTuple_Check(fields)) {
		names = items_of(fields);
		if (names == NULL) {
			Py_DECREF(fields);
			Py_DECREF(values);
			return -1;
		}
	}
	Py_XDECREF(fields);
	int rc = encode_sequence(values, out, names, depth);
	Py_XDECREF(names);
	Py_DECREF(values);
	return rc;
}

/* Every cast below follows a check of the object's type (exact, or a
 * subclass whose C layout is the checked type's); values are read from that
 * layout or through the base type's own method, never through a method a
 * subclass may override. */
static int encode_value(PyObject *obj, pyudf_buf *out, int normalized, int depth)
{
	if (PyUnicode_CheckExact(obj)) /* the commonest result after an int, the costliest to move */
		return put_str(out, PYUDF_STR, obj);
	if (PyLong_CheckExact(obj) && out->len + 9 <= out->cap) { /* the commonest result */
		int overflow;
		int64_t v = PyLong_AsLongLongAndOverflow(obj, &overflow);
		if (!overflow && !(v == -1 && PyErr_Occurred())) {
			out->data[out->len] = PYUDF_INT;
			memcpy(out->data + out->len + 1, &v, 8);
			out->len += 9;
			return 0;
		}
		PyErr_Clear();
	}
	if (obj == Py_None)
		return put_tag(out, PYUDF_NULL);
	if (PyBool_Check(obj))
		return put_tag(out, obj == Py_True ? PYUDF_TRUE : PYUDF_FALSE);
	if (PyLong_Check(obj)) {
		/* reads the digits of the int (a subclass's too), calls no method */
		int overflow;
		long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);
		if (overflow)
			return put_bigint(out, obj);
		if (v == -1 && PyErr_Occurred())
			return -1;
		int64_t v64 = v;
		return put_tag(out, PYUDF_INT) < 0 ? -1 : put(out, &v64, 8);
	}
	if (PyFloat_Check(obj)) {
		double v = PyFloat_AS_DOUBLE(obj);
		return put_tag(out, PYUDF_FLOAT) < 0 ? -1 : put(out, &v, 8);
	}
	if (PyUnicode_Check(obj))
		return put_str(out, PYUDF_STR, obj);
	if (PyBytes_Check(obj))
		return put_text(out, PYUDF_BYTES, PyBytes_AS_STRING(obj), PyBytes_GET_SIZE(obj));
	if (PyByteArray_Check(obj))
		return put_text(out, PYUDF_BYTES, PyByteArray_AS_STRING(obj), PyByteArray_GET_SIZE(obj));
	if (PyDateTimeAPI == NULL) {
		int rc = encode_dates_py(obj, out);
		if (rc <= 0)
			return rc;
	} else if (PyDateTime_Check(obj))
		return encode_datetime(obj, out);
	else if (PyDate_Check(obj)) {
		if (put_tag(out, PYUDF_DATE) < 0)
			return -1;
		return put_date(out, PyDateTime_GET_YEAR(obj), PyDateTime_GET_MONTH(obj),
				PyDateTime_GET_DAY(obj));
	}
	else if (PyTime_Check(obj)) {
		if (put_tag(out, PYUDF_TIME) < 0)
			return -1;
		return put_time(out, PyDateTime_TIME_GET_HOUR(obj), PyDateTime_TIME_GET_MINUTE(obj),
				PyDateTime_TIME_GET_SECOND(obj), PyDateTime_TIME_GET_MICROSECOND(obj));
	}
	pyudf_state *st = pyudf_cur;
	if (PyObject_TypeCheck(obj, (PyTypeObject *)st->decimal_type)) /* checked a type at init */
		return put_str_obj(out, PYUDF_DECIMAL, PyObject_CallOneArg(st->decimal_str, obj));
	if (PyObject_TypeCheck(obj, (PyTypeObject *)st->row_type))
		return encode_row(obj, out, depth);
	if (PyList_Check(obj) || PyTuple_Check(obj))
		return encode_sequence(obj, out, NULL, depth);
	if (PyDict_Check(obj))
		return encode_dict(obj, out, depth);
	if (normalized) {
		PyErr_Format(PyExc_TypeError, "cannot convert a Python %.200s to a SQL value",
			     Py_TYPE(obj)->tp_name);
		return -1;
	}
	PyObject *plain = pyudf_normalize(obj);
	if (plain == NULL)
		return -1;
	int rc = encode_value(plain, out, 1, depth);
	Py_DECREF(plain);
	return rc;
}

int pyudf_encode(PyObject *obj, pyudf_buf *out) { return encode_value(obj, out, 0, 0); }

/* For fuzzing the decoder from Go: decode count values from data (any bytes)
 * and drop them. 0 when they decoded, 1 when the data was refused with an
 * exception (cleared), which is the only other outcome allowed. */
int pyudf_decode_check(const char *data, size_t n, int count)
{
	pyudf_gil_enter();
	const char *p = data, *end = data + n;
	int rc = 0;
	for (int i = 0; rc == 0 && i < count; i++) {
		PyObject *v = pyudf_decode(&p, end);
		if (v == NULL)
			rc = 1;
		Py_XDECREF(v);
	}
	if (rc == 1 && !PyErr_Occurred())
		rc = 2; /* NULL without an exception: a bug */
	PyErr_Clear();
	pyudf_gil_leave();
	return rc;
}
