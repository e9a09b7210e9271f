"""Which facts count and how a minute is aggregated: SQL that both layers run in PostgreSQL.

The stream runs it inside each micro-batch's transaction (`spark.postgres_sink`), on the raw tables; the
batch job (`spark.batch_job`) runs it on session-temporary copies of the raw tables, filled from the
lake. A fact counts when it is the first, in Kafka order, to land with its event id and its transaction
(refund) id: the raw tables' unique keys decide, through `insert ... on conflict do nothing`. Each
function returns one statement (a data-modifying CTE body, or a select) over the relations it is given.
"""

from __future__ import annotations

_BASKET = (
    "transaction_id, event_id, event_ts, store_id, customer_id, channel, payment_method, line_count,"
    " schema_version, kafka_partition, kafka_offset"
)
_LINE = (
    "transaction_id",
    "line_number",
    "product_id",
    "quantity",
    "unit_price",
    "discount",
    "event_ts",
    "store_id",
)
_REFUND = (
    "refund_id, event_id, transaction_id, product_id, quantity, amount, reason, event_ts, schema_version,"
    " kafka_partition, kafka_offset"
)
METRIC_COLUMNS = ("units", "gross_revenue", "discount", "transactions", "refunds", "refund_amount")

# A side with nothing to add (a topic's sink aggregates only its own facts).
NO_LINES = (
    "(select null::timestamptz as event_ts, null::text as product_id, null::text as transaction_id,"
    " null::integer as quantity, null::numeric as unit_price, null::numeric as discount where false)"
)
NO_REFUNDS = (
    "(select null::timestamptz as event_ts, null::text as product_id, null::numeric as amount where false)"
)


def land_baskets(staged: str, target: str = "raw.transactions") -> str:
    """Insert the staged baskets that count into `target`; returns the added ones' keys and event time."""
    return f"""insert into {target} ({_BASKET})
        select {_BASKET} from {staged} order by kafka_partition, kafka_offset
        on conflict do nothing
        returning transaction_id, kafka_partition, kafka_offset, event_ts"""


def land_lines(staged: str, added: str, target: str = "raw.transaction_items") -> str:
    """Insert the lines of the baskets `added` (matched by Kafka record, so another basket under a used
    id adds none); returns what `minute_metrics` needs of them."""
    return f"""insert into {target} ({", ".join(_LINE)})
        select {", ".join(f"i.{c}" for c in _LINE)}
        from {staged} i join {added} b using (transaction_id, kafka_partition, kafka_offset)
        on conflict do nothing
        returning transaction_id, product_id, quantity, unit_price, discount, event_ts"""


def land_refunds(staged: str, target: str = "raw.refunds") -> str:
    """Insert the staged refunds that count into `target`; returns what `minute_metrics` needs."""
    return f"""insert into {target} ({_REFUND})
        select {_REFUND} from {staged} order by kafka_partition, kafka_offset
        on conflict do nothing
        returning product_id, amount, event_ts"""


def minute_metrics(lines: str, refunds: str) -> str:
    """Per product and UTC minute of event time: the columns of *.product_metrics_minute, from sales
    lines (transaction_id, product_id, quantity, unit_price, discount, event_ts) and refunds (product_id,
    amount, event_ts). A basket's lines share its event time, so per-batch counts of distinct baskets
    add up across batches."""
    return f"""select date_trunc('minute', event_ts, 'UTC') as window_start, product_id,
            sum(units)::bigint as units,
            sum(gross_revenue)::numeric(18, 2) as gross_revenue,
            sum(discount)::numeric(18, 2) as discount,
            count(distinct transaction_id) as transactions,
            sum(refunds)::bigint as refunds,
            sum(refund_amount)::numeric(18, 2) as refund_amount
        from (
            select event_ts, product_id, quantity as units, quantity * unit_price as gross_revenue,
                discount, transaction_id, 0 as refunds, 0 as refund_amount
            from {lines} sales
            union all
            select event_ts, product_id, 0, 0, 0, null, 1, amount from {refunds} returned
        ) contributions
        group by 1, 2"""
