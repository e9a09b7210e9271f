"""The Spark schemas are derived from the contracts: same fields, same order, matching types."""

from __future__ import annotations

import pytest
from pydantic import BaseModel
from pyspark.sql.types import ArrayType, DecimalType, IntegerType, StringType, StructType, TimestampType

from retail.contracts import RefundEvent, TransactionEvent
from spark.event_schema import REFUND_SCHEMA, TRANSACTION_SCHEMA, spark_type, struct_type


@pytest.mark.parametrize(
    ("model", "schema"), [(TransactionEvent, TRANSACTION_SCHEMA), (RefundEvent, REFUND_SCHEMA)]
)
def test_every_contract_field_is_in_the_spark_schema(model: type[BaseModel], schema: StructType) -> None:
    assert schema.fieldNames() == list(model.model_fields)


def test_types_follow_the_contract() -> None:
    fields = {field.name: field for field in TRANSACTION_SCHEMA.fields}
    assert fields["event_ts"].dataType == TimestampType()
    assert fields["customer_id"].nullable and not fields["store_id"].nullable
    items = fields["items"].dataType
    assert isinstance(items, ArrayType)
    line = {field.name: field.dataType for field in items.elementType.fields}
    assert line == {
        "product_id": StringType(),
        "quantity": IntegerType(),
        "unit_price": DecimalType(12, 2),
        "discount": DecimalType(12, 2),
    }
    assert {field.name: field.dataType for field in REFUND_SCHEMA.fields}["amount"] == DecimalType(12, 2)


def test_a_new_contract_field_reaches_spark_without_a_second_definition() -> None:
    class Extended(BaseModel):
        loyalty_points: int | None = None
        tags: list[str]

    schema = struct_type(Extended)
    assert schema.fieldNames() == ["loyalty_points", "tags"]
    assert schema["tags"].dataType == ArrayType(StringType(), containsNull=False)


def test_unsupported_annotation_is_refused() -> None:
    with pytest.raises(TypeError, match="no Spark type"):
        spark_type(dict)
