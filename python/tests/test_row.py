import pickle

import pytest

from pyudf import Row


def test_positional_and_named():
    row = Row(1, "a")
    assert row == (1, "a") and row[1] == "a"
    named = Row(id=1, name="a")
    assert named.id == 1 and named["name"] == "a" and named[0] == 1
    assert named.as_dict() == {"id": 1, "name": "a"}
    assert repr(named) == "Row(id=1, name='a')"


def test_factory():
    person = Row("id", "name")
    alice = person(7, "alice")
    assert alice.name == "alice" and alice.as_dict() == {"id": 7, "name": "alice"}


def test_errors():
    with pytest.raises(ValueError):
        Row(1, b=2)
    with pytest.raises(KeyError):
        Row(a=1)["b"]
    with pytest.raises(AttributeError):
        Row(a=1).b
    with pytest.raises(TypeError):
        Row(1).as_dict()
    with pytest.raises(ValueError):
        Row.from_fields(("a",), (1, 2))


def test_pickle_keeps_names():
    row = pickle.loads(pickle.dumps(Row(a=1, b=Row(c=2))))
    assert row.b.c == 2 and row.as_dict(recursive=True) == {"a": 1, "b": {"c": 2}}
