"""Returns in a replayed sales log: each return row becomes a refund of the sale it undoes.

A point-of-sale export records a return as a line with a negative quantity (in the UCI Online Retail
layout, on a cancellation invoice `C…`). The platform's `RefundEvent` names the sale's transaction and
product, so a return is matched to the most recent earlier sale (same customer, same product) that still
has that many units left to refund; units refunded by earlier returns no longer count. A return with no
such sale (a guest, a sale outside the file, more units than were bought) is rejected as
`return_without_sale`. Refund ids derive from the return's invoice and line, so a second replay sends
the same ids.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from retail.contracts import RefundEvent, RefundReason

RETURN_WITHOUT_SALE = "return_without_sale"
_MAX_ID = 64


@dataclass(frozen=True)
class ReturnRow:
    """One return line as read from the file: units given back and the money they were worth."""

    row: dict[str, str]
    number: int  # position of the row in the file, which breaks timestamp ties
    invoice: str
    line: int  # position within its invoice, for a stable refund id
    ts: datetime
    customer_id: str | None
    product_id: str
    quantity: int
    amount: Decimal


@dataclass
class _Sale:
    ts: datetime
    number: int
    transaction_id: str
    remaining: int


@dataclass
class SaleLedger:
    """Units still refundable per sale, by (customer, product); filled in send order."""

    sales: dict[tuple[str, str], list[_Sale]] = field(default_factory=dict)

    def add(
        self, customer_id: str, product_id: str, transaction_id: str, ts: datetime, units: int, number: int
    ) -> None:
        entries = self.sales.setdefault((customer_id, product_id), [])
        for entry in entries:
            if entry.transaction_id == transaction_id:
                entry.remaining += units  # several lines of one product in one basket are one refundable pool
                return
        entries.append(_Sale(ts, number, transaction_id, units))

    def take(self, returned: ReturnRow) -> str | None:
        """The transaction id the return refunds (its units are taken off), or None without a sale."""
        if returned.customer_id is None:
            return None
        candidates = [
            sale
            for sale in self.sales.get((returned.customer_id, returned.product_id), [])
            if sale.ts <= returned.ts and sale.remaining >= returned.quantity
        ]
        if not candidates:
            return None
        sale = max(candidates, key=lambda candidate: (candidate.ts, candidate.number))
        sale.remaining -= returned.quantity
        return sale.transaction_id


def refund_id(invoice: str, line: int, namespace: uuid.UUID) -> str:
    """`C536370.2` for the return's second line; a digest when that would exceed the contract's length."""
    readable = f"{invoice}.{line}"
    return readable if len(readable) <= _MAX_ID else uuid.uuid5(namespace, readable).hex


def refund_event(returned: ReturnRow, transaction_id: str, namespace: uuid.UUID) -> RefundEvent:
    identifier = refund_id(returned.invoice, returned.line, namespace)
    return RefundEvent(
        event_id=uuid.uuid5(namespace, f"refund:{identifier}"),
        refund_id=identifier,
        transaction_id=transaction_id,
        product_id=returned.product_id,
        quantity=returned.quantity,
        amount=returned.amount,
        reason=RefundReason.RETURN,
        event_ts=returned.ts,
    )
