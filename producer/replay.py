"""Replay an external sales log (one CSV row per line item) into Kafka as basket events.

Rows are grouped into baskets by transaction id and sent in timestamp order, at the original pace, N
times faster or as fast as possible. Nothing is dropped silently: unknown products or stores, returns
without a matching sale and unparseable values are counted per reason and written to a rejects CSV in
the state folder. Returns become refund events of their sale (`producer.returns`). Event ids derive from
the transaction id, so replaying a file twice sends the same ids and the speed layer drops the copies.

    summary = replay(settings, Path("producer/data/sample_sales.csv"),
                     timestamp_format="%m/%d/%Y %H:%M", speed="max")
"""

from __future__ import annotations

import csv
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError

from producer.catalog import load_catalog
from producer.kafka_sink import EventSender
from producer.returns import RETURN_WITHOUT_SALE, ReturnRow, SaleLedger, refund_event
from producer.summary import ProduceSummary
from retail.contracts import (
    MAX_BASKET_LINES,
    Channel,
    LineItem,
    PaymentMethod,
    RefundEvent,
    TransactionEvent,
)
from retail.settings import Settings
from retail.topics import ensure_topics

FIELDS = ("transaction_id", "event_ts", "customer_id", "product_id", "quantity", "unit_price", "store_id")
REQUIRED_FIELDS = ("transaction_id", "event_ts", "product_id", "quantity", "unit_price")
# Column names of the UCI "Online Retail" export, the default mapping when --map is not given.
UCI_MAPPING = {
    "InvoiceNo": "transaction_id",
    "InvoiceDate": "event_ts",
    "CustomerID": "customer_id",
    "StockCode": "product_id",
    "Quantity": "quantity",
    "UnitPrice": "unit_price",
}
# In that export a return is a line of a cancellation invoice, whose number starts with this letter.
UCI_CANCELLATION_PREFIX = "C"
REPLAY_NAMESPACE = uuid.UUID("5b0f3c52-8f0e-4c1e-9a55-2f4d1f0c7e11")
_IDENTIFIER = re.compile(r"^[A-Za-z0-9_.:\-]{1,60}$")
_CENT = Decimal("0.01")
EXAMPLES_PER_REASON = 3


class ReplayError(ValueError):
    """The replay cannot start (bad mapping, missing column, unreadable file); the message says why."""


@dataclass
class Basket:
    transaction_id: str
    ts: datetime
    first_row: int
    store_id: str
    customer_id: str | None
    lines: list[LineItem] = field(default_factory=list)
    rows: list[dict[str, str]] = field(default_factory=list)


@dataclass
class ReplayPlan:
    """The file's baskets and refunds in send order and the rows set aside, each with its reason."""

    baskets: list[Basket]
    columns: list[str]
    rejected: list[tuple[dict[str, str], str]] = field(default_factory=list)
    refunds: list[RefundEvent] = field(default_factory=list)

    def in_send_order(self) -> list[Basket | RefundEvent]:
        """Baskets and refunds by event time; a refund never goes before the sale it refunds."""
        items: list[tuple[datetime, int, Basket | RefundEvent]] = [(b.ts, 0, b) for b in self.baskets]
        items += [(refund.event_ts, 1, refund) for refund in self.refunds]
        items.sort(key=lambda item: (item[0], item[1]))
        return [item[2] for item in items]


def parse_mapping(pairs: list[str] | None) -> dict[str, str]:
    """`["InvoiceNo=transaction_id", ...]` → {column: field}; no pairs → the UCI Online Retail columns."""
    if not pairs:
        return dict(UCI_MAPPING)
    mapping: dict[str, str] = {}
    for pair in pairs:
        column, separator, name = pair.partition("=")
        column, name = column.strip(), name.strip()
        if not separator or not column or not name:
            raise ReplayError(f"--map {pair!r}: expected COLUMN=FIELD (e.g. InvoiceNo=transaction_id)")
        if name not in FIELDS:
            raise ReplayError(f"--map {pair!r}: unknown field {name!r}; fields are {', '.join(FIELDS)}")
        if name in mapping.values():
            raise ReplayError(f"--map: field {name!r} is mapped twice")
        mapping[column] = name
    missing = [name for name in REQUIRED_FIELDS if name not in mapping.values()]
    if missing:
        raise ReplayError(f"--map: no column mapped to {', '.join(missing)}")
    return mapping


def parse_speed(text: str) -> float | None:
    """The --speed value: "original" → 1.0, "10x" → 10.0, "max" → None (no pacing)."""
    value = text.strip().lower()
    if value == "max":
        return None
    if value == "original":
        return 1.0
    try:
        factor = float(value.removesuffix("x"))
    except ValueError:
        factor = 0.0
    if not value.endswith("x") or factor <= 0:
        raise ReplayError(f"--speed {text!r}: use original, max, or a factor like 10x")
    return factor


def parse_timestamp(text: str, timestamp_format: str | None, zone: ZoneInfo) -> datetime:
    value = text.strip()
    parsed = (
        datetime.strptime(value, timestamp_format)
        if timestamp_format
        else datetime.fromisoformat(value.replace("Z", "+00:00"))
    )
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(UTC)


def _customer_id(text: str) -> str | None:
    value = text.strip()
    if not value:
        return None
    # Spreadsheet exports turn numeric ids into floats ("17850.0").
    return value.removesuffix(".0") if re.fullmatch(r"\d+\.0", value) else value


def read_plan(
    path: Path,
    mapping: dict[str, str],
    *,
    product_ids: frozenset[str],
    store_ids: frozenset[str],
    default_store: str,
    timestamp_format: str | None = None,
    timezone: str = "UTC",
    cancellation_prefix: str | None = None,
) -> ReplayPlan:
    """Parse the file into baskets and refunds; every row joins one or is rejected with a reason.

    `cancellation_prefix`: invoices starting with it hold returns whatever the quantity's sign (UCI: "C").
    """
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ReplayError(
            f"--timezone {timezone!r}: not a known time zone (e.g. UTC, Europe/London)"
        ) from None
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as error:
        raise ReplayError(f"cannot read {path}: {error.strerror}") from None
    with handle:
        reader = csv.DictReader(handle)
        columns = list(reader.fieldnames or [])
        missing = [column for column in mapping if column not in columns]
        if missing:
            raise ReplayError(
                f"{path}: no column {', '.join(map(repr, missing))} (columns: {', '.join(columns)})"
            )
        by_field = {name: column for column, name in mapping.items()}
        baskets: dict[str, Basket] = {}
        returns: list[ReturnRow] = []
        rejected: list[tuple[dict[str, str], str]] = []
        for number, row in enumerate(reader):
            value = {name: (row.get(column) or "").strip() for name, column in by_field.items()}
            reason, parsed = _check_row(
                value, product_ids, store_ids, default_store, timestamp_format, zone, cancellation_prefix
            )
            if reason:
                rejected.append((row, reason))
                continue
            transaction_id, ts, store_id, customer_id, line, is_return = parsed  # type: ignore[misc]
            if is_return:
                position = sum(1 for r in returns if r.invoice == transaction_id) + 1
                amount = line.unit_price * line.quantity
                returns.append(
                    ReturnRow(
                        row,
                        number,
                        transaction_id,
                        position,
                        ts,
                        customer_id,
                        line.product_id,
                        line.quantity,
                        amount,
                    )
                )
                continue
            basket = baskets.get(transaction_id)
            if basket is None:
                basket = baskets[transaction_id] = Basket(transaction_id, ts, number, store_id, customer_id)
            basket.ts = min(basket.ts, ts)
            basket.lines.append(line)
            basket.rows.append(row)
    ordered = sorted(baskets.values(), key=lambda basket: (basket.ts, basket.first_row))
    refunds = _match_returns(ordered, returns, rejected)
    return ReplayPlan(ordered, columns, rejected, refunds)


def _match_returns(
    baskets: list[Basket], returns: list[ReturnRow], rejected: list[tuple[dict[str, str], str]]
) -> list[RefundEvent]:
    """Refunds of the returns that have a sale to refund; the others join `rejected`."""
    ledger = SaleLedger()
    for order, basket in enumerate(baskets):
        if basket.customer_id is None:
            continue
        for transaction_id, lines in basket_parts(basket):
            for line in lines:
                ledger.add(
                    basket.customer_id, line.product_id, transaction_id, basket.ts, line.quantity, order
                )
    refunds = []
    for returned in sorted(returns, key=lambda r: (r.ts, r.number)):
        sale = ledger.take(returned)
        if sale is None:
            rejected.append((returned.row, RETURN_WITHOUT_SALE))
        else:
            refunds.append(refund_event(returned, sale, REPLAY_NAMESPACE))
    return refunds


def _check_row(
    value: dict[str, str],
    product_ids: frozenset[str],
    store_ids: frozenset[str],
    default_store: str,
    timestamp_format: str | None,
    zone: ZoneInfo,
    cancellation_prefix: str | None,
) -> tuple[str | None, tuple | None]:
    transaction_id = value["transaction_id"]
    if not _IDENTIFIER.match(transaction_id):
        return f"invalid transaction id {transaction_id!r}", None
    try:
        quantity = int(Decimal(value["quantity"]))
    except (InvalidOperation, ValueError):
        return f"invalid quantity {value['quantity']!r}", None
    if quantity == 0:
        return "zero quantity", None
    is_return = quantity < 0 or bool(cancellation_prefix and transaction_id.startswith(cancellation_prefix))
    quantity = abs(quantity)
    product_id = value["product_id"]
    if product_id not in product_ids:
        return f"unknown product {product_id}", None
    store_id = value.get("store_id") or default_store
    if store_id not in store_ids:
        return f"unknown store {store_id}", None
    try:
        ts = parse_timestamp(value["event_ts"], timestamp_format, zone)
    except ValueError:
        hint = f" (format {timestamp_format})" if timestamp_format else " (ISO 8601; see --timestamp-format)"
        return f"unparseable timestamp{hint}", None
    customer_id = _customer_id(value.get("customer_id", ""))
    if customer_id is not None and not _IDENTIFIER.match(customer_id):
        return f"invalid customer id {customer_id!r}", None
    try:
        price = Decimal(value["unit_price"]).quantize(_CENT, rounding=ROUND_HALF_UP)
        line = LineItem(product_id=product_id, quantity=quantity, unit_price=price)
    except (InvalidOperation, ValueError) as error:
        detail = error.errors()[0]["msg"] if isinstance(error, ValidationError) else "not a number"
        return f"invalid line ({detail})", None
    return None, (transaction_id, ts, store_id, customer_id, line, is_return)


def basket_parts(basket: Basket) -> list[tuple[str, list[LineItem]]]:
    """The basket's transaction id(s) and lines: above the contract's line limit, numbered parts."""
    chunks = [basket.lines[i : i + MAX_BASKET_LINES] for i in range(0, len(basket.lines), MAX_BASKET_LINES)]
    if len(chunks) == 1:
        return [(basket.transaction_id, chunks[0])]
    return [(f"{basket.transaction_id}-{part}", lines) for part, lines in enumerate(chunks, start=1)]


def basket_events(basket: Basket, channel: Channel, payment_method: PaymentMethod) -> list[TransactionEvent]:
    """One event per basket part (see `basket_parts`)."""
    events = []
    for transaction_id, lines in basket_parts(basket):
        events.append(
            TransactionEvent(
                event_id=uuid.uuid5(REPLAY_NAMESPACE, transaction_id),
                transaction_id=transaction_id,
                event_ts=basket.ts,
                store_id=basket.store_id,
                customer_id=basket.customer_id,
                channel=channel,
                payment_method=payment_method,
                items=lines,
            )
        )
    return events


def write_rejects(path: Path, columns: list[str], rejected: list[tuple[dict[str, str], str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*columns, "reject_reason"], extrasaction="ignore")
        writer.writeheader()
        for row, reason in rejected:
            writer.writerow({**row, "reject_reason": reason})


def default_rejects_path(settings: Settings, csv_path: Path) -> Path:
    return settings.state_dir / "replay" / f"{csv_path.stem}.rejects.csv"


def replay(
    settings: Settings,
    csv_path: Path,
    *,
    mapping: dict[str, str] | None = None,
    speed: str = "max",
    timestamp_format: str | None = None,
    timezone: str = "UTC",
    store_id: str = "S001",
    channel: Channel = Channel.STORE,
    payment_method: PaymentMethod = PaymentMethod.CARD,
    rejects_path: Path | None = None,
    stop: threading.Event | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> ProduceSummary:
    """Send the file's baskets and refunds to their topics; returns counts including skipped rows."""
    factor = parse_speed(speed)
    catalog = load_catalog(settings)
    if store_id not in catalog.store_ids:
        raise ReplayError(f"--store {store_id!r} is not in {settings.store_locations_csv}")
    mapping = mapping or dict(UCI_MAPPING)
    plan = read_plan(
        csv_path,
        mapping,
        product_ids=catalog.product_ids,
        store_ids=catalog.store_ids,
        default_store=store_id,
        timestamp_format=timestamp_format,
        timezone=timezone,
        cancellation_prefix=UCI_CANCELLATION_PREFIX if mapping == UCI_MAPPING else None,
    )
    summary = ProduceSummary(mode="replay")
    for row, reason in plan.rejected:
        summary.skipped[reason] += 1
        examples = summary.skipped_examples.setdefault(reason, [])
        invoice = _invoice_of(row, mapping)
        if len(examples) < EXAMPLES_PER_REASON and invoice and invoice not in examples:
            examples.append(invoice)
    if plan.rejected:
        target = rejects_path or default_rejects_path(settings, csv_path)
        write_rejects(target, plan.columns, plan.rejected)
        summary.rejects_path = str(target)

    ensure_topics(settings)
    sender = EventSender(settings, client_id="retail-replay")
    began = time.monotonic()
    try:
        ordered = plan.in_send_order()
        first_ts = _event_time(ordered[0]) if ordered else None
        for item in ordered:
            if stop is not None and stop.is_set():
                summary.interrupted = True
                break
            if factor is not None and first_ts is not None:
                wait = began + (_event_time(item) - first_ts).total_seconds() / factor - time.monotonic()
                if wait > 0:
                    sleep(wait)
            if isinstance(item, RefundEvent):
                sender.send("refunds", item.key, item.model_dump_json().encode())
                summary.refunds += 1
                continue
            for event in basket_events(item, channel, payment_method):
                sender.send("transactions", event.key, event.model_dump_json().encode())
                summary.transactions += 1
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        sender.finish(summary)
    summary.elapsed_s = summary.active_s = time.monotonic() - began
    return summary


def _event_time(item: Basket | RefundEvent) -> datetime:
    return item.event_ts if isinstance(item, RefundEvent) else item.ts


def _invoice_of(row: dict[str, str], mapping: dict[str, str]) -> str:
    for column, name in mapping.items():
        if name == "transaction_id":
            return (row.get(column) or "").strip()
    return ""
