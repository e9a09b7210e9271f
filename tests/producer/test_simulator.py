"""The simulation model without a broker: contracts, determinism, refunds, affinities, shape, fault knobs."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from pydantic import ValidationError

from producer.backfill import BackfillPlan, Outgoing, simulate_backfill, window
from producer.catalog import Catalog, load_catalog
from producer.config import Faults, MalformedKind, SimulationConfig, load_simulation_config
from producer.faults import malformed_event
from producer.simulator import Simulator
from retail.contracts import MAX_EVENT_BYTES, RefundEvent, TransactionEvent
from retail.settings import load_settings

END = datetime(2026, 11, 2, tzinfo=UTC)


@pytest.fixture(scope="module")
def config() -> SimulationConfig:
    return load_simulation_config()


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(load_settings(_env_file=None))


def make_plan(
    config: SimulationConfig,
    catalog: Catalog,
    *,
    days: float = 14,
    seed: int = 1,
    workers: int = 1,
    end: datetime = END,
    faults: Faults | None = None,
) -> BackfillPlan:
    start_ms, end_ms = window(days, end)
    return BackfillPlan(config, catalog, faults or Faults(), seed, start_ms, end_ms, workers)


def all_messages(plan: BackfillPlan) -> list[Outgoing]:
    return [message for worker in range(plan.workers) for message in simulate_backfill(plan, worker)]


@pytest.fixture(scope="module")
def fortnight(config: SimulationConfig, catalog: Catalog) -> list[Outgoing]:
    return all_messages(make_plan(config, catalog))


@pytest.fixture(scope="module")
def parsed(fortnight: list[Outgoing]) -> tuple[list[TransactionEvent], list[RefundEvent]]:
    transactions = [
        TransactionEvent.model_validate_json(m.payload) for m in fortnight if m.role == "transactions"
    ]
    refunds = [RefundEvent.model_validate_json(m.payload) for m in fortnight if m.role == "refunds"]
    return transactions, refunds


def test_every_event_validates_and_is_keyed_by_its_transaction(fortnight: list[Outgoing]) -> None:
    assert len(fortnight) > 5_000
    for message in fortnight:
        model = TransactionEvent if message.role == "transactions" else RefundEvent
        event = model.model_validate_json(message.payload)
        assert message.key == event.key
        assert len(message.payload) < MAX_EVENT_BYTES


def test_wire_format_is_what_the_contract_serializes(fortnight: list[Outgoing]) -> None:
    for message in fortnight[:500]:
        model = TransactionEvent if message.role == "transactions" else RefundEvent
        event = model.model_validate_json(message.payload)
        ours, theirs = json.loads(message.payload), json.loads(event.model_dump_json())
        assert datetime.fromisoformat(ours.pop("event_ts")) == datetime.fromisoformat(theirs.pop("event_ts"))
        assert ours == theirs


def test_ids_are_unique(parsed: tuple[list[TransactionEvent], list[RefundEvent]]) -> None:
    transactions, refunds = parsed
    event_ids = [e.event_id for e in transactions] + [e.event_id for e in refunds]
    assert len(event_ids) == len(set(event_ids))
    assert len({e.transaction_id for e in transactions}) == len(transactions)
    assert len({e.refund_id for e in refunds}) == len(refunds)


def test_same_seed_same_events_whatever_the_worker_count(config: SimulationConfig, catalog: Catalog) -> None:
    one = all_messages(make_plan(config, catalog, days=3, workers=1))
    three = all_messages(make_plan(config, catalog, days=3, workers=3))
    again = all_messages(make_plan(config, catalog, days=3, workers=1))
    assert one == again  # same order too, with the same worker count
    assert sorted(m.payload for m in one) == sorted(m.payload for m in three)
    other_seed = all_messages(make_plan(config, catalog, days=3, seed=2))
    assert not {m.payload for m in one} & {m.payload for m in other_seed}


def test_each_worker_sends_in_event_time_order(config: SimulationConfig, catalog: Catalog) -> None:
    plan = make_plan(config, catalog, days=3, workers=2)
    for worker in range(2):
        times = [json.loads(m.payload)["event_ts"] for m in simulate_backfill(plan, worker)]
        assert times == sorted(times)


def test_events_stay_in_the_window(parsed: tuple[list[TransactionEvent], list[RefundEvent]]) -> None:
    transactions, refunds = parsed
    start = END - timedelta(days=14)
    assert all(start <= e.event_ts < END for e in transactions + refunds)


def test_no_sale_before_a_store_opened(config: SimulationConfig, catalog: Catalog) -> None:
    opening = {store.store_id: store.opened_on for store in catalog.stores}
    assert opening["S004"].isoformat() == "2024-12-19"
    plan = make_plan(config, catalog, days=30, end=datetime(2025, 1, 5, tzinfo=UTC))
    sales = [
        TransactionEvent.model_validate_json(m.payload)
        for m in all_messages(plan)
        if m.role == "transactions"
    ]
    at_s004 = [e for e in sales if e.store_id == "S004"]
    assert at_s004, "S004 sells once it is open"
    # Local midnight in the Northeast (UTC-5) of the opening day.
    opened_at = datetime.combine(opening["S004"], datetime.min.time(), UTC) + timedelta(hours=5)
    assert min(e.event_ts for e in at_s004) >= opened_at
    for event in sales:
        assert event.event_ts.date() >= opening[event.store_id] - timedelta(days=1)


def test_refunds_reference_an_earlier_sale_and_never_exceed_what_was_paid(
    fortnight: list[Outgoing],
) -> None:
    sold: dict[str, TransactionEvent] = {}
    refund_count = 0
    for message in fortnight:
        if message.role == "transactions":
            event = TransactionEvent.model_validate_json(message.payload)
            sold[event.transaction_id] = event
            continue
        refund = RefundEvent.model_validate_json(message.payload)
        refund_count += 1
        sale = sold[refund.transaction_id]  # sent before its refund
        assert message.key == sale.key
        assert sale.event_ts < refund.event_ts <= sale.event_ts + timedelta(days=30)
        lines = [line for line in sale.items if line.product_id == refund.product_id]
        assert len(lines) == 1
        line = lines[0]
        assert 0 < refund.quantity <= line.quantity
        assert refund.amount <= line.paid_amount * refund.quantity / line.quantity
        assert refund.amount >= 0
    share = refund_count / len(sold)
    # ~10% refunded; those whose refund falls after the window's end are not sent yet.
    assert 0.06 < share < 0.11


def test_refund_reasons_differ_by_category(
    catalog: Catalog, parsed: tuple[list[TransactionEvent], list[RefundEvent]]
) -> None:
    category = {product.product_id: product.category for product in catalog.products}
    reasons: dict[str, Counter[str]] = defaultdict(Counter)
    for refund in parsed[1]:
        reasons[category[refund.product_id]][refund.reason] += 1
    fresh = reasons["Produce"] + reasons["Dairy & Eggs"] + reasons["Meat & Seafood"]
    dry = reasons["Snacks"] + reasons["Household"] + reasons["Pasta & Grains"]
    assert fresh["damaged"] / fresh.total() > 2 * dry["damaged"] / dry.total()
    assert dry["changed_mind"] / dry.total() > 2 * fresh["changed_mind"] / fresh.total()


def test_planted_affinities_show_in_a_plain_co_occurrence_count(
    config: SimulationConfig, parsed: tuple[list[TransactionEvent], list[RefundEvent]]
) -> None:
    baskets = [{line.product_id for line in event.items} for event in parsed[0]]
    for rule in config.affinities:
        with_antecedent = [basket for basket in baskets if rule.antecedent in basket]
        assert len(with_antecedent) >= 30, rule
        confidence = sum(rule.consequent in basket for basket in with_antecedent) / len(with_antecedent)
        base_rate = sum(rule.consequent in basket for basket in baskets) / len(baskets)
        # P(consequent | antecedent) ≥ strength, up to sampling noise (3 standard errors).
        noise = 3 * (rule.strength * (1 - rule.strength) / len(with_antecedent)) ** 0.5
        assert confidence >= rule.strength - noise, rule
        assert confidence > 4 * base_rate, rule


def test_baskets_look_like_baskets(
    config: SimulationConfig, parsed: tuple[list[TransactionEvent], list[RefundEvent]]
) -> None:
    transactions = parsed[0]
    sizes = [len(event.items) for event in transactions]
    assert min(sizes) == 1
    assert max(sizes) <= config.basket.max_lines + len(config.affinities)
    assert 4 <= sum(sizes) / len(sizes) <= 8
    lines = [line for event in transactions for line in event.items]
    promoted = [line for line in lines if line.discount > 0]
    assert 0.08 < len(promoted) / len(lines) < 0.16
    assert all(line.discount <= Decimal("0.31") * line.gross_amount for line in promoted)
    channels = Counter(event.channel for event in transactions)
    assert 0.08 < (channels["online"] + channels["mobile_app"]) / len(transactions) < 0.25
    guests = sum(event.customer_id is None for event in transactions)
    assert 0 < guests < 0.06 * len(transactions)


def test_store_traffic_follows_the_hour_curve(
    catalog: Catalog, parsed: tuple[list[TransactionEvent], list[RefundEvent]]
) -> None:
    config = load_simulation_config()
    region = {store.store_id: store.region for store in catalog.stores}
    offsets = config.stores.region_utc_offset_hours
    hours = Counter(
        (event.event_ts + timedelta(hours=offsets[region[event.store_id]])).hour
        for event in parsed[0]
        if event.channel == "store"
    )
    assert sum(hours[h] for h in range(0, 6)) == 0  # every store curve is zero before 6 a.m.
    assert hours[17] + hours[18] > 3 * (hours[8] + hours[9]) / 2


def test_archetypes_give_rfm_segments_meaning(
    config: SimulationConfig, catalog: Catalog, parsed: tuple[list[TransactionEvent], list[RefundEvent]]
) -> None:
    plan = make_plan(config, catalog)
    simulator = Simulator(config, catalog)
    archetype = {
        c.customer_id: simulator.archetype_names[c.archetype]
        for c in (
            simulator.customer(plan.run_key, i, plan.start_ms, plan.end_ms) for i in range(config.customers)
        )
    }
    members = Counter(archetype.values())
    visits: Counter[str] = Counter()
    spend: defaultdict[str, Decimal] = defaultdict(Decimal)
    halves: dict[str, Counter[int]] = defaultdict(Counter)
    middle = END - timedelta(days=7)
    for event in parsed[0]:
        if event.customer_id is None:
            continue
        kind = archetype[event.customer_id]
        visits[kind] += 1
        spend[kind] += sum(line.paid_amount for line in event.items)
        halves[kind][int(event.event_ts >= middle)] += 1

    def per_member(counter: dict) -> dict[str, float]:
        return {kind: float(counter[kind]) / members[kind] for kind in members}

    frequency, monetary = per_member(visits), per_member(spend)
    assert frequency["loyal_high_spender"] > 1.5 * frequency["regular"] > 3 * frequency["occasional"]
    assert monetary["loyal_high_spender"] > 3 * monetary["regular"]
    assert halves["churning"][1] < 0.8 * halves["churning"][0]  # visit rate decays
    assert halves["new"][1] > 1.5 * halves["new"][0]  # new customers arrive over the window


@pytest.mark.parametrize("kind", list(MalformedKind))
def test_each_malformed_kind_is_broken_in_exactly_its_way(
    config: SimulationConfig, catalog: Catalog, kind: MalformedKind
) -> None:
    import random

    simulator = Simulator(config, catalog)
    event = malformed_event(simulator, kind, random.Random(kind.value), 1_780_000_000_000).event
    payload = event.payload
    if kind is MalformedKind.INVALID_JSON:
        with pytest.raises(json.JSONDecodeError):
            json.loads(payload)
        return
    document = json.loads(payload)
    if kind is MalformedKind.OVERSIZED_PAYLOAD:
        assert len(payload) > MAX_EVENT_BYTES
        return
    if kind is MalformedKind.UNKNOWN_TRANSACTION_REFUND:
        assert event.topic == "refunds"
        refund = RefundEvent.model_validate_json(payload)
        assert refund.transaction_id.startswith("TX-UNKNOWN-")
        return
    assert event.topic == "transactions"
    expected_error = {
        MalformedKind.MISSING_FIELD: "missing",
        MalformedKind.WRONG_TYPE: "number_type",  # strict contract: a string is not a number
        MalformedKind.NEGATIVE_QUANTITY: "greater_than",
    }
    if kind in expected_error:
        with pytest.raises(ValidationError) as error:
            TransactionEvent.model_validate_json(payload)
        assert [problem["type"] for problem in error.value.errors()] == [expected_error[kind]]
        return
    sale = TransactionEvent.model_validate_json(payload)  # valid by contract, unknown to the dimensions
    if kind is MalformedKind.UNKNOWN_PRODUCT:
        assert sale.items[0].product_id not in catalog.product_ids
        assert document["store_id"] in catalog.store_ids
    else:
        assert sale.store_id not in catalog.store_ids


def test_fault_knobs_change_how_events_are_sent_not_which(config: SimulationConfig, catalog: Catalog) -> None:
    clean = all_messages(make_plan(config, catalog, days=3, workers=2))
    faults = Faults(
        late_fraction=0.05,
        min_lateness_seconds=600,
        max_lateness_seconds=1800,
        duplicate_fraction=0.1,
        malformed={MalformedKind.WRONG_TYPE: 3, MalformedKind.UNKNOWN_STORE: 2},
    )
    noisy = all_messages(make_plan(config, catalog, days=3, workers=2, faults=faults))
    kinds = Counter(message.counts_as for message in noisy)
    assert kinds["wrong_type"] == 3 and kinds["unknown_store"] == 2
    valid = [m for m in noisy if m.counts_as in ("transaction", "refund")]
    assert sorted(m.payload for m in valid) == sorted(m.payload for m in clean)
    duplicates = [m for m in noisy if m.counts_as == "duplicate"]
    assert 0.07 * len(clean) < len(duplicates) < 0.13 * len(clean)
    assert {m.payload for m in duplicates} <= {m.payload for m in valid}
    late = [m for m in valid if m.late]
    assert 0.03 * len(clean) < len(late) < 0.07 * len(clean)
