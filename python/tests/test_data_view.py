"""PyFlink's accumulator data views: ListView and MapView."""

import pickle

import pytest

from pyflink.common import Row
from pyflink.table import DataTypes, ListView, MapView
from pyflink.table.data_view import ListView as DataViewListView
from pyudf import _host
from pyudf.types import to_ddl


def test_list_view():
    view = ListView()
    assert list(view) == [] and list(view.get()) == []
    view.add("a")
    view.add_all(["b", "c"])
    assert list(view) == ["a", "b", "c"] and list(view.get()) == ["a", "b", "c"]
    assert "|".join(view) == "a|b|c"
    view.clear()
    assert list(view) == []
    assert DataViewListView is ListView


def test_map_view():
    view = MapView()
    assert view.is_empty()
    view.put("a", 1)
    view.put_all({"b": 2, "c": 3})
    assert view.get("b") == 2 and view.contains("a") and not view.contains("z")
    assert list(view) == ["a", "b", "c"]  # iteration yields the keys, as in PyFlink
    assert list(view.keys()) == ["a", "b", "c"] and list(view.values()) == [1, 2, 3]
    assert list(view.items()) == [("a", 1), ("b", 2), ("c", 3)]
    view.remove("a")
    with pytest.raises(KeyError):
        view.get("a")
    with pytest.raises(KeyError):
        view.remove("a")
    assert not view.is_empty()
    view.clear()
    assert view.is_empty()


def test_equality_and_hashing():
    a, b = ListView(), ListView()
    a.add(1)
    assert a != b
    b.add(1)
    assert a == b and a != [1]
    m, n = MapView(), MapView()
    m.put("k", 1)
    n.put("k", 1)
    assert m == n and m != {"k": 1}
    for view in (a, m):
        with pytest.raises(TypeError):
            hash(view)


def test_pickled_in_an_accumulator():
    """An aggregate's Snapshot/Restore pickles accumulators holding data views."""
    tags, counts = ListView(), MapView()
    tags.add_all(["x", "y"])
    counts.put("x", 2)
    acc = pickle.loads(pickle.dumps(Row(tags, counts, "|")))
    assert list(acc[0]) == ["x", "y"] and dict(acc[1].items()) == {"x": 2} and acc[2] == "|"
    acc[0].add("z")
    assert list(acc[0]) == ["x", "y", "z"] and list(tags) == ["x", "y"]


def test_converts_like_a_list_or_dict():
    tags, counts = ListView(), MapView()
    tags.add_all([1, 2])
    counts.put("x", 2)
    assert _host.normalize(tags) == [1, 2] and type(_host.normalize(tags)) is list
    assert _host.normalize(counts) == {"x": 2} and type(_host.normalize(counts)) is dict


def test_view_types():
    assert to_ddl(DataTypes.LIST_VIEW(DataTypes.STRING())) == "ARRAY<STRING> NOT NULL"
    assert to_ddl(DataTypes.MAP_VIEW(DataTypes.STRING(), DataTypes.BIGINT())) == \
        "MAP<STRING, BIGINT> NOT NULL"
