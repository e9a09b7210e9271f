"""Spark schemas derived from the event contracts in `retail.contracts`, never written by hand.

`from_json` in the speed layer and Parquet reads in the batch layer use these, so a field added to a
contract reaches Spark without a second definition.
"""

from __future__ import annotations

import types
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Annotated, Literal, Union, get_args, get_origin
from uuid import UUID

from pydantic import BaseModel
from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DataType,
    DecimalType,
    DoubleType,
    IntegerType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from retail.contracts import MONEY_DIGITS, MONEY_PLACES, RefundEvent, TransactionEvent

_SCALARS: dict[type, DataType] = {
    str: StringType(),
    UUID: StringType(),
    bool: BooleanType(),
    int: IntegerType(),
    float: DoubleType(),
    Decimal: DecimalType(MONEY_DIGITS, MONEY_PLACES),
    datetime: TimestampType(),
}


def _without_none(annotation: object) -> tuple[object, bool]:
    if get_origin(annotation) in (Union, types.UnionType):
        members = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(members) != 1:
            raise TypeError(f"contract unions other than `X | None` have no Spark type: {annotation}")
        return members[0], True
    return annotation, False


def spark_type(annotation: object) -> DataType:
    """The Spark type of one contract annotation."""
    annotation, _ = _without_none(annotation)
    origin = get_origin(annotation)
    if origin is Annotated:
        return spark_type(get_args(annotation)[0])
    if origin is list:
        (element,) = get_args(annotation)
        return ArrayType(spark_type(element), containsNull=False)
    if origin is Literal:
        return spark_type(type(get_args(annotation)[0]))
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel):
            return struct_type(annotation)
        if issubclass(annotation, Enum):
            return StringType()
        for python_type, data_type in _SCALARS.items():
            if issubclass(annotation, python_type):
                return data_type
    raise TypeError(f"no Spark type for contract annotation {annotation!r}")


def struct_type(model: type[BaseModel]) -> StructType:
    """A StructType with one field per model field, in declaration order."""
    fields = []
    for name, info in model.model_fields.items():
        _, optional = _without_none(info.annotation)
        fields.append(
            StructField(name, spark_type(info.annotation), nullable=optional or not info.is_required())
        )
    return StructType(fields)


TRANSACTION_SCHEMA = struct_type(TransactionEvent)
REFUND_SCHEMA = struct_type(RefundEvent)
