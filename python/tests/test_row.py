"""Row and RowKind behave as PyFlink's (pyflink/common/types.py, apache-flink 2.3.0).

The ``doc_`` tests are the examples of PyFlink's own docstrings, with the
outputs apache-flink 2.3.0 gives (its docstring still shows the kwargs sorted,
as 1.x did; 2.x keeps them in keyword order).
"""

import copy
import pickle

import pytest

import pyudf
from pyudf import Row, RowKind
from pyudf.row import _parts, _rows


# --- PyFlink's docstring examples -------------------------------------------

def test_doc_named_row():
    row = Row(name="Alice", age=11)
    assert repr(row) == "Row(name='Alice', age=11)"  # 2.x: keyword order
    assert (row["name"], row["age"]) == ("Alice", 11)
    assert (row.name, row.age) == ("Alice", 11)
    assert "name" in row
    assert "wrong_key" not in row


def test_doc_factory():
    Person = Row("name", "age")
    assert repr(Person) == "<Row('name', 'age')>"  # PyFlink's docstring says <Row(name, age)>; its repr uses %r
    assert "name" in Person
    assert "wrong_key" not in Person
    assert repr(Person("Alice", 11)) == "Row(name='Alice', age=11)"


def test_doc_as_dict():
    assert Row(name="Alice", age=11).as_dict() == {"name": "Alice", "age": 11}
    row = Row(key=1, value=Row(name="a", age=2))
    assert row.as_dict() == {"key": 1, "value": Row(age=2, name="a")}
    assert row.as_dict(True) == {"key": 1, "value": {"name": "a", "age": 2}}


# --- construction ------------------------------------------------------------

def test_positional_and_named():
    row = Row(1, "a")
    assert list(row) == [1, "a"] and len(row) == 2 and row[1] == "a"
    assert not hasattr(row, "_fields") and row._values == [1, "a"]
    named = Row(id=1, name="a")
    assert named._fields == ["id", "name"] and named[0] == 1 and named[-1] == "a"
    with pytest.raises(ValueError, match="Can not use both args and kwargs"):
        Row(1, b=2)
    assert list(Row()) == [] and len(Row()) == 0 and not Row()


def test_factory_rows():
    Person = Row("name", "age")
    alice = Person("Alice", 11)
    assert alice.age == 11 and alice.as_dict() == {"name": "Alice", "age": 11}
    assert alice.get_row_kind() is RowKind.INSERT
    partial = Person("Bob")  # fewer values than names is allowed, as in PyFlink
    assert partial.name == "Bob" and len(partial) == 1
    with pytest.raises(ValueError, match="expected 2 values but got"):
        Person(1, 2, 3)
    Person[0] = "first"  # the factory's names are copied into each row
    assert alice._fields == ["name", "age"]


def test_from_fields_and_of_kind():
    row = Row.from_fields(("a", "b"), (1, 2))
    assert row == Row(a=1, b=2) and row._fields == ["a", "b"]
    assert Row.from_fields(None, (1,)) == Row(1)
    with pytest.raises(ValueError, match="2 names but 1 values"):
        Row.from_fields(("a", "b"), (1,))
    deleted = Row.of_kind(RowKind.DELETE, a=1)
    assert deleted.get_row_kind() is RowKind.DELETE and deleted.a == 1
    assert deleted._is_retract_msg() and not deleted._is_accumulate_msg()
    assert Row(1)._is_accumulate_msg()


# --- reading and writing fields ----------------------------------------------

def test_item_and_attribute_access():
    row = Row(a=1, b=2, c=3)
    assert row[0] == 1 and row[1:] == [2, 3] and row["c"] == 3 and row.b == 2
    with pytest.raises(ValueError):
        row["missing"]  # PyFlink raises ValueError for an unknown name
    with pytest.raises(AttributeError):
        row.missing
    with pytest.raises(AttributeError):
        row._private
    with pytest.raises(IndexError):
        row[3]
    with pytest.raises(AttributeError):
        Row(1)["a"]  # an unnamed row has no names to look in
    with pytest.raises(AttributeError):
        Row(1).a


def test_item_assignment():
    acc = Row(0, 0)  # PyFlink's WeightedAvg accumulator
    acc[0] += 5 * 2
    acc[1] += 2
    assert acc == Row(10, 2)
    row = Row(a=1, b=2, c=3)
    row["b"] = 20
    row[0] = 10
    row[1:] = [200, 300]
    assert row.as_dict() == {"a": 10, "b": 200, "c": 300}
    with pytest.raises(ValueError):
        row["missing"] = 1
    with pytest.raises(KeyError):
        Row(1)["a"] = 2  # unnamed: KeyError, as in PyFlink
    with pytest.raises(IndexError):
        row[5] = 1


def test_attribute_assignment_is_refused():
    row = Row(a=1)
    with pytest.raises(AttributeError):
        row.a = 2  # PyFlink allows only its private attributes
    with pytest.raises(AttributeError):
        row.other = 2
    row.set_field_names(["x"])
    assert row.x == 1 and row.as_dict() == {"x": 1}


def test_contains_iter_len():
    assert "a" in Row(a=5) and 5 not in Row(a=5)  # named: the names
    assert 5 in Row(5) and "a" not in Row(5)      # unnamed: the values
    row = Row(1, None, "x")
    assert list(iter(row)) == [1, None, "x"] and len(row) == 3
    assert tuple(row) == (1, None, "x")
    a, b, c = row
    assert (a, b, c) == (1, None, "x")


def test_get_fields_by_names():
    row = Row(a=1, b=2, c=3)
    assert row.get_fields_by_names(["c", "a"]) == [3, 1]
    assert row.get_fields_by_names(["a", "b", "c"]) == [1, 2, 3]
    assert Row(1, 2).get_fields_by_names(["x"]) == [1, 2]
    with pytest.raises(Exception, match=r"Field names \['z'\] not exist"):
        row.get_fields_by_names(["z"])


def test_as_dict():
    with pytest.raises(TypeError, match="Cannot convert a Row class into dict"):
        Row(1).as_dict()
    nested = Row(a=[Row(x=1)], b={"k": Row(y=2)}, c=Row(3))
    assert nested.as_dict() == {"a": [Row(x=1)], "b": {"k": Row(y=2)}, "c": Row(3)}
    with pytest.raises(TypeError):
        nested.as_dict(recursive=True)  # the unnamed Row(3) cannot be a dict, as in PyFlink
    assert Row(a=[Row(x=1)], b={"k": Row(y=2)}).as_dict(recursive=True) == {
        "a": [{"x": 1}], "b": {"k": {"y": 2}}}


# --- row kind ----------------------------------------------------------------

def test_row_kind():
    assert [k.value for k in RowKind] == [0, 1, 2, 3]
    assert [str(k) for k in RowKind] == ["+I", "-U", "+U", "-D"]
    assert RowKind(2) is RowKind.UPDATE_AFTER and RowKind["DELETE"] is RowKind.DELETE
    row = Row(1)
    assert row.get_row_kind() is RowKind.INSERT
    row.set_row_kind(RowKind.UPDATE_BEFORE)
    assert row.get_row_kind() is RowKind.UPDATE_BEFORE


# --- repr, equality, hashing -------------------------------------------------

def test_repr():
    assert repr(Row(1, "a")) == "<Row(1, 'a')>"
    assert repr(Row(a=1, b="x")) == "Row(a=1, b='x')"
    assert repr(Row(a=Row(b=None))) == "Row(a=Row(b=None))"
    assert str(Row()) == "<Row()>"


def test_equality():
    assert Row(1, 2) == Row(1, 2) and Row(1, 2) != Row(2, 1)
    assert Row(1, 2) != (1, 2) and Row(1, 2) != [1, 2]  # only a Row equals a Row
    assert Row(a=1, b=2) == Row(b=2, a=1)  # named: the same names, values compared by name
    assert Row(a=1, b=2) != Row(a=2, b=1)
    assert Row(a=1) != Row(1) and Row(1) != Row(a=1)
    assert Row(a=1) != Row(b=1)
    kinded = Row(1)
    kinded.set_row_kind(RowKind.DELETE)
    assert kinded != Row(1)  # the row kind counts

    class Sub(Row):
        __slots__ = ()
    assert Sub(1) != Row(1)  # and the class


def test_hash():
    assert hash(Row(1, "a")) == hash((1, "a")) == hash(Row(x=1, y="a"))
    assert len({Row(1, 2), Row(1, 2), Row(2, 1)}) == 2
    with pytest.raises(TypeError):
        hash(Row([1]))  # unhashable values make an unhashable row, as a tuple would


# --- pickling and copies -----------------------------------------------------

@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickle(protocol):
    row = Row(a=1, b=Row(c=[2, Row(3)]))
    row.set_row_kind(RowKind.UPDATE_AFTER)
    back = pickle.loads(pickle.dumps(row, protocol))
    assert back == row and back.b.c[1] == Row(3)
    assert back.get_row_kind() is RowKind.UPDATE_AFTER
    assert back.as_dict() == {"a": 1, "b": Row(c=[2, Row(3)])}
    acc = pickle.loads(pickle.dumps(Row(0, 0), protocol))
    acc[0] += 1  # still mutable
    assert acc == Row(1, 0) and not hasattr(acc, "_fields")


def test_pickle_of_old_snapshots():
    # Accumulators pickled before Row was PyFlink's (Row.from_fields(names, values)) still load.
    old = (b"\x80\x04\x95L\x00\x00\x00\x00\x00\x00\x00\x8c\x08builtins\x94\x8c\x07getattr\x94\x93\x94"
           b"\x8c\tpyudf.row\x94\x8c\x03Row\x94\x93\x94\x8c\x0bfrom_fields\x94\x86\x94R\x94\x8c\x01a"
           b"\x94\x85\x94K\x01\x85\x94\x86\x94R\x94.")
    assert pickle.loads(old) == Row(a=1)


def test_copies_are_independent():
    row = Row(a=[1])
    shallow, deep = copy.copy(row), copy.deepcopy(row)
    shallow[0] = "changed"
    deep["a"].append(2)
    assert row == Row(a=[1]) and shallow == Row(a="changed") and deep == Row(a=[1, 2])


# --- what the converters read ------------------------------------------------

def test_parts_read_the_slots():
    class Tricky(Row):
        __slots__ = ()

        @property
        def _values(self):  # never read by the converters
            raise AssertionError("read through the subclass")

    row = object.__new__(Tricky)
    Row.__dict__["_fields"].__set__(row, ["a"])
    Row.__dict__["_values"].__set__(row, [1])
    assert _parts(row) == (["a"], [1])
    assert _parts(Row(1, 2)) == (None, [1, 2])


def test_batch_rows_share_names():
    rows = _rows(["a", "b"], [(1, 2), (3, 4)])
    assert rows == [Row(a=1, b=2), Row(a=3, b=4)]
    rows[0][0] = 10  # each row has its own values
    assert rows[1].a == 3 and rows[0]._from_dict is False


def test_the_same_class_everywhere():
    import pyflink.common
    import pyflink.common.types
    import pyflink.table
    assert pyflink.common.Row is pyflink.common.types.Row is pyflink.table.Row is pyudf.Row
    assert pyflink.common.RowKind is pyflink.common.types.RowKind is pyudf.RowKind
