"""Benchmark: full `dbt build` of the serving layer, then an incremental build after +1 % data.

On its own embedded PostgreSQL, generates line items in SQL (30 stores, 245 products of skewed
popularity, 5,000 loyalty customers plus guests, 30 days with a daily shape, ~2 % refunded, speed and
batch minute metrics with the last two hours open; `generate` is reused by other benches), then times
`dbt build` on it (after an untimed `dbt parse`, so both builds start warm) and again after adding 1 %
(new, late and refunded baskets and their speed-layer rows).

    python -m bench.dbt_build [--quick] [--lines N]

Last line: one JSON object (full_s, incremental_s, ratio, line_items, nodes, load_avg: other work on the
2 cores inflates both figures). Goals (2 cores): full_s <= 60 at 1,000,000 lines; ratio <= 0.2.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import psycopg

from retail.dbt import run_dbt
from retail.settings import Settings
from stack import stack
from tests.scratch import scratch_settings

FULL_LINES = 1_000_000
QUICK_LINES = 50_000
# Average basket size of the generator: 1 + floor(4 * random()^1.5) lines.
LINES_PER_BASKET = 2.15


def load_dimensions(conn: psycopg.Connection, settings: Settings) -> None:
    with conn.cursor() as cursor:
        cursor.execute("truncate raw.products, raw.stores")
        for table, path, columns in (
            (
                "raw.products",
                settings.product_catalog_csv,
                "product_id, sku, name, category, brand, unit_cost, base_price",
            ),
            (
                "raw.stores",
                settings.store_locations_csv,
                "store_id, name, city, region, latitude, longitude, opened_on, square_meters, format",
            ),
        ):
            with cursor.copy(f"copy {table} ({columns}) from stdin with (format csv, header true)") as copy:
                copy.write(Path(path).read_bytes())


# Baskets: `{baskets}` of them from basket number `{first}` on, event times spread between `{start}`
# and `{end}` (with a daily shape: shops open 08:00-22:00 UTC); ingested a few seconds after the event,
# except `{late_share}` of them landing up to 3 hours late (never after now).
GENERATE_BASKETS = """
insert into raw.transactions (transaction_id, event_id, event_ts, store_id, customer_id, channel,
                              payment_method, line_count, schema_version, ingested_at)
with products as (
    select product_id, base_price, row_number() over (order by product_id) as product_number
    from raw.products
), stores as (
    select store_id, row_number() over (order by store_id) as store_number from raw.stores
), baskets as (
    select
        n,
        {start}::timestamptz
            + floor(random() * extract(epoch from {end}::timestamptz - {start}::timestamptz) / 86400)
              * interval '1 day'
            + interval '8 hours' + random() * interval '14 hours' as event_ts,
        1 + floor(30 * power(random(), 1.3))::int as store_number,
        case when random() < 0.2 then null else 1 + floor(5000 * power(random(), 1.5))::int end
            as customer_number,
        random() as channel_draw,
        random() as payment_draw,
        1 + floor(4 * power(random(), 1.5))::int as line_count,
        case when random() < {late_share} then random() * interval '3 hours'
             else random() * interval '5 seconds' end as ingestion_delay
    from generate_series({first}, {first} + {baskets} - 1) as n
)
select
    'T' || lpad(n::text, 9, '0'),
    gen_random_uuid(),
    least(event_ts, {end}::timestamptz),
    stores.store_id,
    case when customer_number is not null then 'C' || lpad(customer_number::text, 5, '0') end,
    case when channel_draw < 0.7 then 'store' when channel_draw < 0.9 then 'online' else 'mobile_app' end,
    case when payment_draw < 0.6 then 'card' when payment_draw < 0.8 then 'cash'
         when payment_draw < 0.95 then 'mobile_wallet' else 'gift_card' end,
    line_count,
    1,
    least(least(event_ts, {end}::timestamptz) + ingestion_delay, now())
from baskets
join stores on stores.store_number = baskets.store_number
"""

GENERATE_LINES = """
insert into raw.transaction_items (transaction_id, line_number, product_id, quantity, unit_price,
                                   discount, event_ts, store_id, ingested_at)
with products as (
    select product_id, base_price, row_number() over (order by product_id) as product_number
    from raw.products
), lines as (
    select
        t.transaction_id, t.event_ts, t.store_id, t.ingested_at, line_number,
        1 + floor(245 * power(random(), 2))::int as product_number,
        1 + floor(3 * power(random(), 3))::int as quantity,
        random() < 0.2 as is_discounted
    from raw.transactions t
    cross join lateral generate_series(1, t.line_count) as line_number
    where t.transaction_id > {after}
)
select
    lines.transaction_id, lines.line_number, products.product_id, lines.quantity, products.base_price,
    case when lines.is_discounted then round(lines.quantity * products.base_price * 0.1, 2) else 0 end,
    lines.event_ts, lines.store_id, lines.ingested_at
from lines
join products on products.product_number = lines.product_number
"""

# Refunds of `{share}` of the lines of baskets sold at or after {since}, `{delay}` after the sale
# (and not after {end}); usually the whole line, sometimes half of it. Landed 2 seconds later.
GENERATE_REFUNDS = """
insert into raw.refunds (refund_id, event_id, transaction_id, product_id, quantity, amount, reason,
                         event_ts, schema_version, ingested_at)
with picked as (
    select
        i.transaction_id, i.line_number, i.product_id, i.quantity,
        i.quantity * i.unit_price - i.discount as paid,
        {delay} as refunded_at,
        random() as draw
    from raw.transaction_items i
    where i.event_ts >= {since}::timestamptz and random() < {share}
)
select
    'R' || picked.transaction_id || '-' || picked.line_number || '-' || {tag},
    gen_random_uuid(),
    picked.transaction_id, picked.product_id, picked.quantity,
    case when picked.draw < 0.7 then picked.paid else round(picked.paid / 2, 2) end,
    (array['damaged', 'wrong_item', 'not_as_described', 'changed_mind', 'late_delivery', 'other'])
        [1 + floor(picked.draw * 6)::int],
    picked.refunded_at, 1, picked.refunded_at + interval '2 seconds'
from picked
where picked.refunded_at <= {end}::timestamptz
on conflict do nothing
"""

# Minute metrics of both layers, recomputed from raw (what the stream and the batch job would have
# written, and when): the speed layer misses the late baskets, the batch layer has everything and has
# closed every hour but the last two, each 5 minutes after its end.
SPEED_METRICS = """
insert into speed.product_metrics_minute as m (window_start, product_id, units, gross_revenue, discount,
                                               transactions, refunds, refund_amount, updated_at)
select window_start, product_id, sum(units), sum(gross), sum(discount), sum(transactions), sum(refunds),
       sum(refund_amount), max(ingested_at)
from (
    select date_trunc('minute', i.event_ts) as window_start, i.product_id, i.quantity as units,
           i.quantity * i.unit_price as gross, i.discount, 1 as transactions, 0 as refunds,
           0::numeric as refund_amount, i.ingested_at
    from raw.transaction_items i
    where i.ingested_at - i.event_ts < interval '5 minutes' and i.ingested_at > {since}::timestamptz
    union all
    select date_trunc('minute', r.event_ts), r.product_id, 0, 0, 0, 0, 1, r.amount, r.ingested_at
    from raw.refunds r
    where r.ingested_at > {since}::timestamptz
) contributions
group by window_start, product_id
on conflict (window_start, product_id) do update set
    units = m.units + excluded.units, gross_revenue = m.gross_revenue + excluded.gross_revenue,
    discount = m.discount + excluded.discount, transactions = m.transactions + excluded.transactions,
    refunds = m.refunds + excluded.refunds, refund_amount = m.refund_amount + excluded.refund_amount,
    updated_at = excluded.updated_at
"""

BATCH_METRICS = """
insert into batch.product_metrics_minute (window_start, product_id, units, gross_revenue, discount,
                                          transactions, refunds, refund_amount, batch_run_id, computed_at)
select window_start, product_id, sum(units), sum(gross), sum(discount), sum(transactions), sum(refunds),
       sum(refund_amount), 'bench', date_trunc('hour', window_start) + interval '65 minutes'
from (
    select date_trunc('minute', i.event_ts) as window_start, i.product_id, i.quantity as units,
           i.quantity * i.unit_price as gross, i.discount, 1 as transactions, 0 as refunds,
           0::numeric as refund_amount
    from raw.transaction_items i
    where i.event_ts < {closed_until}::timestamptz
    union all
    select date_trunc('minute', r.event_ts), r.product_id, 0, 0, 0, 0, 1, r.amount
    from raw.refunds r
    where r.event_ts < {closed_until}::timestamptz
) contributions
group by window_start, product_id;
insert into batch.closed_hours (hour_start, batch_run_id, closed_at)
select hour_start, 'bench', hour_start + interval '65 minutes'
from (
    select generate_series(date_trunc('hour', min(event_ts)), {closed_until}::timestamptz - interval '1 hour',
                           interval '1 hour') as hour_start
    from raw.transaction_items
) hours
"""


def literal(value: object) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def generate(conn: psycopg.Connection, lines: int, end: str) -> int:
    baskets = round(lines / LINES_PER_BASKET)
    start = f"({end}::timestamptz - interval '30 days')"
    closed_until = f"(date_trunc('hour', {end}::timestamptz) - interval '1 hour')"
    with conn.cursor() as cursor:
        cursor.execute(
            "truncate raw.transactions, raw.transaction_items, raw.refunds, speed.product_metrics_minute,"
            " batch.product_metrics_minute, batch.closed_hours"
        )
        cursor.execute("select setseed(0.42)")
        cursor.execute(
            GENERATE_BASKETS.format(first=1, baskets=baskets, start=start, end=end, late_share=0.005)
        )
        cursor.execute(GENERATE_LINES.format(after="''"))
        cursor.execute(
            GENERATE_REFUNDS.format(
                since="'-infinity'",
                share=0.02,
                end=end,
                tag="'a'",
                delay="i.event_ts + random() * interval '10 days'",
            )
        )
        cursor.execute(SPEED_METRICS.format(since="'-infinity'"))
        cursor.execute(BATCH_METRICS.format(closed_until=closed_until))
        return cursor.execute("select count(*) from raw.transaction_items").fetchone()[0]


def add_one_percent(conn: psycopg.Connection, lines: int, end: str) -> int:
    """+1 % line items landing now: baskets of the last 30 minutes (0.5 % of them events up to 3 hours
    old), and refunds of 0.02 % of all lines, mostly of baskets the previous build already holds."""
    with conn.cursor() as cursor:
        last_id, landed_after = cursor.execute(
            "select max(transaction_id), now() from raw.transactions"
        ).fetchone()
        baskets = round(lines * 0.01 / LINES_PER_BASKET)
        cursor.execute(
            GENERATE_BASKETS.format(
                first=int(last_id[1:]) + 1, baskets=baskets, start=end, end="now()", late_share=0.005
            ).replace(
                "+ interval '8 hours' + random() * interval '14 hours'", "+ random() * interval '30 minutes'"
            )
        )
        cursor.execute(
            "update raw.transactions set ingested_at = now(),"
            " event_ts = case when random() < 0.005 then event_ts - random() * interval '3 hours'"
            " else event_ts end"
            f" where transaction_id > {literal(last_id)}"
        )
        cursor.execute(GENERATE_LINES.format(after=literal(last_id)))
        cursor.execute(
            GENERATE_REFUNDS.format(
                since="'-infinity'",
                share=0.0002,
                end="now()",
                tag="'b'",
                delay="now() - random() * interval '30 minutes'",
            )
        )
        cursor.execute("update raw.refunds set ingested_at = now() where refund_id like '%-b'")
        cursor.execute(SPEED_METRICS.format(since=literal(landed_after)))
        return cursor.execute("select count(*) from raw.transaction_items").fetchone()[0]


def analyze_sources(settings: Settings) -> None:
    """Fresh planner statistics on the tables the generator wrote, as autovacuum keeps them on a live
    platform. As their owner: the writer's `analyze` silently skips tables it does not own, and a
    build planned without statistics scans whole tables where the platform would use an index."""
    with psycopg.connect(settings.admin_dsn, autocommit=True) as conn:
        conn.execute(
            "analyze raw.products, raw.stores, raw.transactions, raw.transaction_items, raw.refunds,"
            " speed.product_metrics_minute, batch.product_metrics_minute, batch.closed_hours"
        )


def timed_build(settings: Settings, label: str, loads: list[float], nodes: list[int]) -> float:
    loads.append(round(os.getloadavg()[0], 2))
    started = time.perf_counter()
    result = run_dbt(settings, ["build", "--quiet"])
    elapsed = time.perf_counter() - started
    if not result.success:
        raise SystemExit(f"{label} dbt build failed: {result.exception or 'see the dbt output above'}")
    nodes.append(len(result.result.results))
    slowest = sorted(result.result.results, key=lambda node: node.execution_time, reverse=True)[:6]
    print(
        f"{label}: {elapsed:.1f} s; slowest nodes: "
        + ", ".join(f"{node.node.name} {node.execution_time:.1f}s" for node in slowest)
    )
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_LINES:,} line items")
    parser.add_argument("--lines", type=int, help=f"line items (default {FULL_LINES:,})")
    parser.add_argument("--keep", action="store_true", help="leave the state folder (and print it)")
    args = parser.parse_args()
    target_lines = args.lines or (QUICK_LINES if args.quick else FULL_LINES)

    state = Path(tempfile.mkdtemp(prefix="retail-bench-dbt-"))
    settings = scratch_settings(state / ".retail")
    try:
        settings = stack.up(settings, report=lambda line: None)
        with psycopg.connect(settings.writer_dsn, autocommit=True) as conn:
            end = conn.execute("select date_trunc('minute', now()) - interval '30 minutes'").fetchone()[0]
            end_literal = literal(end.isoformat())
            started = time.perf_counter()
            load_dimensions(conn, settings)
            line_items = generate(conn, target_lines, end_literal)
            analyze_sources(settings)
            print(f"generated {line_items:,} line items in {time.perf_counter() - started:.1f} s")

            parse = run_dbt(settings, ["parse", "--quiet"])
            if not parse.success:
                raise SystemExit(f"dbt parse failed: {parse.exception}")
            loads: list[float] = []
            nodes: list[int] = []
            full_s = timed_build(settings, "full build", loads, nodes)

            total = add_one_percent(conn, line_items, end_literal)
            analyze_sources(settings)
            print(f"added {total - line_items:,} line items (+{(total - line_items) / line_items:.1%})")
            incremental_s = timed_build(settings, "incremental build", loads, nodes)
    finally:
        stack.down(settings)
        if args.keep:
            print(f"state folder kept: {state}", file=sys.stderr)
        else:
            shutil.rmtree(state, ignore_errors=True)

    ratio = incremental_s / full_s
    print(f"full build:        {full_s:6.1f} s  (goal <= 60 s at 1M line items)")
    print(f"incremental build: {incremental_s:6.1f} s  (ratio {ratio:.2f}, goal <= 0.2)")
    print(
        json.dumps(
            {
                "full_s": round(full_s, 2),
                "incremental_s": round(incremental_s, 2),
                "ratio": round(ratio, 3),
                "line_items": line_items,
                "nodes": nodes[0],
                "load_avg": loads,
            }
        )
    )


if __name__ == "__main__":
    main()
