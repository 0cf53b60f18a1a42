import datetime
import decimal
from typing import Dict, List, Optional

import pytest

from pyudf.types import DataTypes, infer_type, to_ddl


@pytest.mark.parametrize("data_type, ddl", [
    (DataTypes.BOOLEAN(), "BOOLEAN"),
    (DataTypes.TINYINT(), "TINYINT"),
    (DataTypes.BIGINT(nullable=False), "BIGINT NOT NULL"),
    (DataTypes.DOUBLE().not_null().nullable(), "DOUBLE"),
    (DataTypes.DECIMAL(10, 2), "DECIMAL(10, 2)"),
    (DataTypes.STRING(), "STRING"),
    (DataTypes.VARCHAR(20), "VARCHAR(20)"),
    (DataTypes.BYTES(), "BYTES"),
    (DataTypes.TIME(3), "TIME(3)"),
    (DataTypes.TIMESTAMP(3), "TIMESTAMP(3)"),
    (DataTypes.TIMESTAMP_LTZ(), "TIMESTAMP_LTZ(6)"),
    (DataTypes.ARRAY(DataTypes.STRING()), "ARRAY<STRING>"),
    (DataTypes.MAP(DataTypes.STRING(), DataTypes.BIGINT()), "MAP<STRING, BIGINT>"),
    (DataTypes.ROW([DataTypes.FIELD("a", DataTypes.INT()),
                    DataTypes.FIELD("b c", DataTypes.STRING())]), "ROW<a INT, `b c` STRING>"),
    ("  ARRAY<INT> ", "ARRAY<INT>"),
])
def test_to_ddl(data_type, ddl):
    assert to_ddl(data_type) == ddl


def test_types_compare_by_ddl():
    assert DataTypes.ARRAY(DataTypes.INT()) == DataTypes.ARRAY(DataTypes.INT())
    assert DataTypes.INT() != DataTypes.INT(nullable=False)
    assert len({DataTypes.INT(), DataTypes.INT()}) == 1


def test_to_ddl_rejects_other_objects():
    with pytest.raises(TypeError, match="unsupported data type"):
        to_ddl(object())


def test_to_ddl_accepts_pyflink_classes_by_name():
    class BigIntType:  # what a real PyFlink type looks like to to_ddl
        _nullable = False
    assert to_ddl(BigIntType()) == "BIGINT NOT NULL"


@pytest.mark.parametrize("hint, ddl", [
    (int, "BIGINT"), (float, "DOUBLE"), (str, "STRING"), (bool, "BOOLEAN"),
    (bytes, "BYTES"), (decimal.Decimal, "DECIMAL(38, 18)"), (datetime.date, "DATE"),
    (datetime.datetime, "TIMESTAMP(6)"), (Optional[int], "BIGINT"),
    (List[str], "ARRAY<STRING>"), (Dict[str, float], "MAP<STRING, DOUBLE>"),
    (object, None), (Optional[List[object]], None),
])
def test_infer_type(hint, ddl):
    assert infer_type(hint) == ddl
