"""Property tests of the per-record decode and validate path: whatever bytes arrive, `check_message`
returns a normalized event or a known reason code, and never raises (a raise would fail the task and
re-read the same record after every restart)."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spark.validation import REASONS, check_message
from tests.spark.events import PRODUCTS, STORES, refund, transaction

PRODUCT_IDS = frozenset(PRODUCTS)
STORE_IDS = frozenset(STORES)
RECORD_TS = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)
_BASKET = json.loads(transaction(random.Random(1), RECORD_TS, lines=3).model_dump_json())
_REFUND = json.loads(
    refund(random.Random(2), transaction(random.Random(2), RECORD_TS), RECORD_TS).model_dump_json()
)

# JSON values a field could be replaced by: every type, the edges of numbers and timestamps.
_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.sampled_from(
        [
            "0001-01-01T00:00:00+05:00",
            "9999-12-31T23:30:00-05:00",
            "1997-03-01T10:00:00Z",
            "2999-01-01T00:00:00Z",
            "2026-12-06T08:00:00",
            "NaN",
            "1e400",
        ]
    ),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


def _assert_decided(value: bytes, event_type: str) -> None:
    normalized, reason, error = check_message(
        value, event_type, PRODUCT_IDS, STORE_IDS, RECORD_TS, timedelta(minutes=5)
    )
    if normalized is None:
        assert reason in REASONS and reason != "unexpected_error", (reason, error)
        assert error
    else:
        assert reason is None and error is None


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=st.binary(max_size=2048), event_type=st.sampled_from(["transaction", "refund"]))
def test_arbitrary_bytes_never_raise(value: bytes, event_type: str) -> None:
    _assert_decided(value, event_type)


def _mutate(event: dict, path: list, value: object) -> dict:
    """A copy of `event` with the field at `path` (keys / list indexes) replaced or removed."""
    copy = json.loads(json.dumps(event))
    target = copy
    for step in path[:-1]:
        target = target[step]
    if value is _REMOVE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return copy


_REMOVE = object()
_BASKET_PATHS = (
    [[key] for key in _BASKET if key != "items"]
    + [["items", 0, key] for key in _BASKET["items"][0]]
    + [["items"]]
)
_REFUND_PATHS = [[key] for key in _REFUND]


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(["transaction", "refund"]),
    data=st.data(),
    raw_tail=st.sampled_from([b"", b" ", b"x", b"\xff", b"}", b"NaN"]),
)
def test_mutated_valid_events_never_raise(kind: str, data: st.DataObject, raw_tail: bytes) -> None:
    event, paths = (_BASKET, _BASKET_PATHS) if kind == "transaction" else (_REFUND, _REFUND_PATHS)
    path = data.draw(st.sampled_from(paths))
    value = data.draw(_JSON_VALUES | st.just(_REMOVE))
    payload = json.dumps(_mutate(event, path, value)).encode() + raw_tail
    cut = data.draw(st.integers(min_value=0, max_value=len(payload)))
    _assert_decided(payload if data.draw(st.booleans()) else payload[:cut], kind)


def test_an_unmutated_event_is_valid() -> None:
    for kind, event in (("transaction", _BASKET), ("refund", _REFUND)):
        normalized, reason, _ = check_message(
            json.dumps(event).encode(), kind, PRODUCT_IDS, STORE_IDS, RECORD_TS, timedelta(minutes=5)
        )
        assert reason is None and normalized is not None
