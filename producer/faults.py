"""Test-only fault injection: late sends, duplicate sends and malformed messages of named kinds.

Decisions about valid events (duplicate? late? by how much?) are read from random bits the event already
carries (`SimulatedEvent.entropy`), never drawn from the simulation's generators, so turning a knob on
changes how events are sent but not which events exist. Malformed messages are built from a valid basket
and then broken in exactly one way, one message per requested unit, so dead-letter tests can count them.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

from producer.config import Faults, MalformedKind
from producer.simulator import SimulatedEvent, Simulator
from retail.contracts import MAX_EVENT_BYTES

_BITS_32 = 2**32
_BITS_24 = 2**24


@dataclass(frozen=True, slots=True)
class MalformedEvent:
    kind: MalformedKind
    event: SimulatedEvent


def is_duplicate(entropy: int, faults: Faults) -> bool:
    return faults.duplicate_fraction > 0 and (entropy & 0xFFFFFFFF) / _BITS_32 < faults.duplicate_fraction


def lateness_ms(entropy: int, faults: Faults) -> int:
    """How long to hold the event back before sending it (0 = on time)."""
    if faults.late_fraction <= 0 or ((entropy >> 32) & 0xFFFFFF) / _BITS_24 >= faults.late_fraction:
        return 0
    share = ((entropy >> 80) & 0xFFFFFFFF) / _BITS_32
    seconds = faults.min_lateness_seconds + share * (
        faults.max_lateness_seconds - faults.min_lateness_seconds
    )
    return max(1, int(seconds * 1000))


def _unknown_product(simulator: Simulator, rng: random.Random) -> str:
    known = simulator.catalog.product_ids
    while True:
        candidate = f"P9{int(rng.random() * 10_000_000):07d}"
        if candidate not in known:
            return candidate


def _unknown_store(simulator: Simulator, rng: random.Random) -> str:
    known = simulator.catalog.store_ids
    while True:
        candidate = f"S9{int(rng.random() * 100_000):05d}"
        if candidate not in known:
            return candidate


def malformed_event(
    simulator: Simulator, kind: MalformedKind, rng: random.Random, ts_ms: int
) -> MalformedEvent:
    """One message broken in exactly the named way (everything else about it is valid)."""
    base = simulator.transaction(
        rng, customer_id="C00001", archetype=0, store=0, channel="store", ts_ms=ts_ms
    )
    event = base.event
    if kind is MalformedKind.UNKNOWN_TRANSACTION_REFUND:
        missing_id = f"TX-UNKNOWN-{rng.getrandbits(48):012x}"
        refund = simulator.refund(rng, missing_id, missing_id.encode(), base.lines, ts_ms, refund_ms=ts_ms)
        return MalformedEvent(kind, refund)
    if kind is MalformedKind.INVALID_JSON:
        return MalformedEvent(kind, _with_payload(event, event.payload[: len(event.payload) // 2]))
    document = json.loads(event.payload)
    first_line = document["items"][0]
    if kind is MalformedKind.MISSING_FIELD:
        del document["store_id"]
    elif kind is MalformedKind.WRONG_TYPE:
        first_line["quantity"] = "several"
    elif kind is MalformedKind.NEGATIVE_QUANTITY:
        first_line["quantity"] = -first_line["quantity"]
    elif kind is MalformedKind.UNKNOWN_PRODUCT:
        first_line["product_id"] = _unknown_product(simulator, rng)
    elif kind is MalformedKind.UNKNOWN_STORE:
        document["store_id"] = _unknown_store(simulator, rng)
    elif kind is MalformedKind.OVERSIZED_PAYLOAD:
        document["padding"] = "x" * (MAX_EVENT_BYTES + 1024)
    payload = json.dumps(document, separators=(",", ":")).encode()
    return MalformedEvent(kind, _with_payload(event, payload))


def _with_payload(event: SimulatedEvent, payload: bytes) -> SimulatedEvent:
    return SimulatedEvent(event.ts_ms, event.topic, event.key, payload, event.entropy)


def malformed_events(
    simulator: Simulator, faults: Faults, run_key: str, start_ms: int, end_ms: int
) -> list[MalformedEvent]:
    """Exactly `faults.malformed[kind]` messages of each kind, at deterministic times in [start, end)."""
    rng = random.Random(f"{run_key}/malformed")
    events = []
    for kind in MalformedKind:
        for _ in range(faults.malformed.get(kind, 0)):
            ts_ms = start_ms + int(rng.random() * max(1, end_ms - start_ms))
            events.append(malformed_event(simulator, kind, rng, ts_ms))
    events.sort(key=lambda malformed: malformed.event.ts_ms)
    return events
