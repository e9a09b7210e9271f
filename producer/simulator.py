"""The retail simulation model: customers, their visits, baskets and refunds, as wire-ready events.

Everything random comes from a `random.Random` owned by one customer and seeded from (seed, window start,
customer number). That is what makes a backfill deterministic whatever the number of worker processes:
a customer's visits and baskets depend only on its own generator, and its baskets are built in
event-time order. Scalar draws from `random.Random` cost a fraction of numpy's per-call overhead, and the
producer's budget is a few microseconds per event.

Pure and broker-free: `backfill`, `live` and the tests drive it.
"""

from __future__ import annotations

import math
import random
from bisect import bisect
from dataclasses import dataclass
from datetime import date
from itertools import accumulate
from typing import NamedTuple

from producer.catalog import Catalog
from producer.config import STORE_FORMATS, SimulationConfig, SimulationConfigError
from producer.wire import DAY_MS, line_json, refund_json, transaction_json, uuid_string
from retail.contracts import RefundReason

HOUR_MS = 3_600_000
WEEK_MS = 7 * DAY_MS
MINUTE_MS = 60_000
# 1970-01-01 was a Thursday: weekday (Monday = 0) of epoch day d is (d + 3) % 7.
EPOCH_WEEKDAY = 3
CHANNEL_STORE = "store"
ONLINE_CHANNELS = ("online", "mobile_app")


@dataclass(frozen=True, slots=True)
class Customer:
    index: int
    customer_id: str
    archetype: int
    home_store: int
    # Visits happen in [active_from_ms, ∞); churning customers' rate halves every half-life after churn_from.
    active_from_ms: int
    churn_from_ms: int | None
    rng: random.Random


class Visit(NamedTuple):
    """Sorts by time, then customer and visit number: a total order independent of sharding."""

    ts_ms: int
    customer: int
    number: int
    store: int
    channel: str


class SoldLine(NamedTuple):
    """A basket line; built as a plain tuple on the hot path (same field order), read by position."""

    product: int
    quantity: int
    unit_price_cents: int
    discount_cents: int


def paid_cents(line: tuple[int, int, int, int]) -> int:
    """What the customer paid for the line: quantity × unit price − discount."""
    _, quantity, unit_price_cents, discount_cents = line
    return quantity * unit_price_cents - discount_cents


class SimulatedEvent(NamedTuple):
    """One message for Kafka. `entropy` is 128 random bits of the event used for test-knob decisions
    (duplicate? late?) so turning a knob never changes which events the simulation produces."""

    ts_ms: int
    topic: str  # "transactions" or "refunds": a role, mapped to the configured topic name when sending
    key: bytes
    payload: bytes
    entropy: int


class SimulatedTransaction(NamedTuple):
    event: SimulatedEvent
    transaction_id: str
    lines: tuple[tuple[int, int, int, int], ...]  # SoldLine fields
    # The refund this sale will get (its timestamp may lie beyond the window; callers filter).
    refund: SimulatedEvent | None


def _cumulative(weights: list[float]) -> tuple[list[float], float]:
    cumulative = list(accumulate(weights))
    return cumulative, cumulative[-1]


def customer_id_for(index: int) -> str:
    return f"C{index + 1:05d}"


class Simulator:
    """Precomputed tables of one (config, catalog) pair; cheap to share, safe to build per process."""

    def __init__(self, config: SimulationConfig, catalog: Catalog) -> None:
        self.config = config
        self.catalog = catalog
        self._check_references()
        products = catalog.products
        self.product_ids = [product.product_id for product in products]
        self.prices = [product.price_cents for product in products]
        self._product_index = {product_id: i for i, product_id in enumerate(self.product_ids)}

        basket = config.basket
        weights = []
        rank_in_category: dict[str, int] = {}
        category_sizes: dict[str, int] = {}
        for product in products:
            category_sizes[product.category] = category_sizes.get(product.category, 0) + 1
        zipf_sums = {
            category: sum(1 / (rank**basket.popularity_zipf_exponent) for rank in range(1, size + 1))
            for category, size in category_sizes.items()
        }
        for product in products:
            rank = rank_in_category[product.category] = rank_in_category.get(product.category, 0) + 1
            share = (1 / rank**basket.popularity_zipf_exponent) / zipf_sums[product.category]
            weights.append(basket.category_weights.get(product.category, 0.0) * share)
        self._product_cum, self._product_total = _cumulative(weights)
        # Product picks by table look-up on 16 random bits: each product owns a share of the 65,536 slots
        # proportional to its weight (resolution 1/65,536, far below the sampling noise of any run).
        self._product_table = [
            min(bisect(self._product_cum, (slot + 0.5) / 0x10000 * self._product_total), len(products) - 1)
            for slot in range(0x10000)
        ]
        extra_units = [
            basket.extra_units_mean_by_category.get(product.category, basket.extra_units_mean)
            for product in products
        ]
        self._max_lines = basket.max_lines
        # Basket size = 1 + Poisson(basket_lines - 1): Knuth's method stops below exp(-mean).
        self._extra_line_limits = [math.exp(-(a.basket_lines - 1)) for a in config.archetypes.values()]
        low, high = config.promotions.discount_range
        self._discount_range = (low, high - low)
        # Units per line = 1 + Poisson(mean × archetype multiplier), capped at max_quantity: per archetype
        # and product, the CDF scaled to 16 bits (quantity = 1 + number of thresholds below the draw).
        self._quantity_cdfs = [
            [
                _poisson_thresholds(mean * archetype.quantity_multiplier, basket.max_quantity)
                for mean in extra_units
            ]
            for archetype in config.archetypes.values()
        ]
        self._promotion_cut = round(config.promotions.probability * 0x10000)
        self._line_cache: dict[int, str] = {}  # product * 2**16 + quantity -> JSON of an undiscounted line

        reasons = [reason.value for reason in RefundReason]
        self._reasons = reasons
        self._reason_cum_by_product = []
        for product in products:
            mix = config.refunds.reasons_by_category.get(product.category, config.refunds.reasons)
            self._reason_cum_by_product.append(_cumulative([mix.get(RefundReason(r), 0.0) for r in reasons]))

        self._affinities: dict[int, list[tuple[int, float]]] = {}
        for rule in config.affinities:
            self._affinities.setdefault(self._product_index[rule.antecedent], []).append(
                (self._product_index[rule.consequent], rule.strength)
            )

        self.archetype_names = list(config.archetypes)
        self.archetypes = list(config.archetypes.values())
        self._archetype_cum, self._archetype_total = _cumulative([a.share for a in self.archetypes])

        stores = catalog.stores
        self.store_ids = [store.store_id for store in stores]
        offsets = config.stores.region_utc_offset_hours
        self._store_offset_ms = [round(offsets.get(store.region, 0.0) * HOUR_MS) for store in stores]
        self._store_curve = [store.format for store in stores]
        self._store_opened_day = [(store.opened_on - date(1970, 1, 1)).days for store in stores]
        self._home_cum, self._home_total = _cumulative(
            [store.square_meters**config.stores.home_store_size_exponent for store in stores]
        )
        by_region: dict[str, list[int]] = {}
        for i, store in enumerate(stores):
            by_region.setdefault(store.region, []).append(i)
        self._region_stores = [by_region[store.region] for store in stores]
        # A store not open yet on the day of a visit sends the customer to the oldest store of its region.
        self._region_fallback = [
            min(by_region[store.region], key=lambda i: stores[i].opened_on) for store in stores
        ]

        traffic = config.traffic
        self._hour_cum = {name: _cumulative(curve) for name, curve in traffic.hourly.items()}
        self._weekday = {name: [7 * w / sum(curve) for w in curve] for name, curve in traffic.weekday.items()}
        self._max_weekday = max(max(curve) for curve in self._weekday.values())

        channels = config.channels
        self._payments = {
            channel: ([method.value for method in mix], *_cumulative(list(mix.values())))
            for channel, mix in channels.payment_mix.items()
        }

    def _check_references(self) -> None:
        """Config keys that name catalog rows must exist, or the model would silently lose structure."""
        config, catalog = self.config, self.catalog
        product_ids = catalog.product_ids
        categories = {product.category for product in catalog.products}
        problems = []
        for i, rule in enumerate(config.affinities):
            for role in ("antecedent", "consequent"):
                if getattr(rule, role) not in product_ids:
                    problems.append(f"affinities.{i}.{role}: {getattr(rule, role)!r} is not in the catalog")
        for key, names in (
            ("basket.category_weights", config.basket.category_weights),
            ("basket.extra_units_mean_by_category", config.basket.extra_units_mean_by_category),
            ("refunds.reasons_by_category", config.refunds.reasons_by_category),
        ):
            problems += [
                f"{key}.{name}: no such category in the catalog" for name in names if name not in categories
            ]
        formats = {store.format for store in catalog.stores} - set(STORE_FORMATS)
        problems += [f"traffic: no curve for store format {name!r}" for name in sorted(formats)]
        regions = {store.region for store in catalog.stores} - set(config.stores.region_utc_offset_hours)
        problems += [f"stores.region_utc_offset_hours: region {name!r} missing" for name in sorted(regions)]
        if not any(config.basket.category_weights.get(category, 0) > 0 for category in categories):
            problems.append("basket.category_weights: every category has weight 0")
        if problems:
            raise SimulationConfigError("\n".join(problems))

    # Customers and visits ------------------------------------------------------------------------

    def customer(self, run_key: str, index: int, start_ms: int, end_ms: int) -> Customer:
        """A customer's traits, drawn from its own generator (seeded by run key and customer number)."""
        rng = random.Random(f"{run_key}/customer/{index}")
        archetype = bisect(self._archetype_cum, rng.random() * self._archetype_total)
        archetype = min(archetype, len(self.archetypes) - 1)
        home = min(bisect(self._home_cum, rng.random() * self._home_total), len(self.store_ids) - 1)
        profile = self.archetypes[archetype]
        window = end_ms - start_ms
        arrival, churn = rng.random(), rng.random()
        active_from = start_ms + int(arrival * window) if profile.arrives_during_window else start_ms
        churn_from = start_ms + int(churn * window / 2) if profile.churn_half_life_days else None
        return Customer(index, customer_id_for(index), archetype, home, active_from, churn_from, rng)

    def pick_store(self, rng: random.Random, home: int) -> int:
        stores = self.config.stores
        if rng.random() < stores.home_store_share:
            return home
        if rng.random() < stores.same_region_share:
            candidates = self._region_stores[home]
            return candidates[int(rng.random() * len(candidates))]
        return int(rng.random() * len(self.store_ids))

    def channel_and_store(self, rng: random.Random, online_share: float, home: int) -> tuple[int, str, str]:
        """(store, channel, traffic curve) of a visit; online baskets are recorded under the home store."""
        if rng.random() < online_share:
            mobile = rng.random() < self.config.channels.mobile_app_share_of_online
            return home, ONLINE_CHANNELS[1] if mobile else ONLINE_CHANNELS[0], "online"
        store = self.pick_store(rng, home)
        return store, CHANNEL_STORE, self._store_curve[store]

    def open_store(self, store: int, local_day: int) -> int | None:
        """The store that serves a visit on that local day: the chosen one, or its region's oldest."""
        if self._store_opened_day[store] <= local_day:
            return store
        fallback = self._region_fallback[store]
        return fallback if self._store_opened_day[fallback] <= local_day else None

    def visits(self, customer: Customer, start_ms: int, end_ms: int) -> list[Visit]:
        """The customer's visits in [start, end): a Poisson process thinned by its weekday curve and
        churn, with the time of day drawn from the store format's (or online) hourly curve."""
        rng = customer.rng
        profile = self.archetypes[customer.archetype]
        candidate_rate = profile.visits_per_week / WEEK_MS * self._max_weekday
        half_life_ms = (profile.churn_half_life_days or 0) * DAY_MS
        visits: list[Visit] = []
        t = float(customer.active_from_ms)
        while True:
            t += rng.expovariate(candidate_rate)
            if t >= end_ms:
                return visits
            store, channel, curve = self.channel_and_store(rng, profile.online_share, customer.home_store)
            offset = self._store_offset_ms[store]
            local_day = int(t + offset) // DAY_MS
            keep = self._weekday[curve][(local_day + EPOCH_WEEKDAY) % 7]
            if customer.churn_from_ms is not None and t > customer.churn_from_ms:
                keep *= 0.5 ** ((t - customer.churn_from_ms) / half_life_ms)
            if rng.random() * self._max_weekday >= keep:
                continue
            cumulative, total = self._hour_cum[curve]
            hour = min(bisect(cumulative, rng.random() * total), 23)
            ts = local_day * DAY_MS + hour * HOUR_MS + int(rng.random() * HOUR_MS) - offset
            served_by = self.open_store(store, local_day)
            if served_by is None or not start_ms <= ts < end_ms or ts < customer.active_from_ms:
                continue
            visits.append(Visit(ts, customer.index, len(visits), served_by, channel))

    # Baskets and refunds -------------------------------------------------------------------------

    def transaction(
        self,
        rng: random.Random,
        *,
        customer_id: str | None,
        archetype: int,
        store: int,
        channel: str,
        ts_ms: int,
    ) -> SimulatedTransaction:
        """A basket with its lines, promotions and payment, plus the refund it will get, if any.

        The hot path of the producer: locals instead of attribute look-ups, and line JSON cached per
        (product, quantity) because most lines carry no discount.
        """
        config = self.config
        rnd = rng.random
        limit = self._extra_line_limits[archetype]
        n_lines = 1
        draw = rnd()
        while draw > limit and n_lines < self._max_lines:
            n_lines += 1
            draw *= rnd()
        # One 48-bit draw per pick: 16 bits choose the product (lookup table), 16 the quantity (CDF of
        # 1 + Poisson), 16 whether the line is promoted. A third of the generator calls of drawing
        # each separately, on the loop that dominates the producer's CPU time.
        getrandbits = rng.getrandbits
        product_table = self._product_table
        quantity_cdfs = self._quantity_cdfs[archetype]
        promotion_cut = self._promotion_cut
        chosen: list[int] = []
        line_bits: list[int] = []
        # A list, not a set: baskets are small enough that scanning beats hashing.
        for _ in range(4 * n_lines):
            bits = getrandbits(48)
            product = product_table[bits & 0xFFFF]
            if product not in chosen:
                chosen.append(product)
                line_bits.append(bits >> 16)
                if len(chosen) == n_lines:
                    break
        # Planted co-purchases: each antecedent in the basket (including ones added by a rule) pulls in
        # its consequent with the rule's strength.
        affinities = self._affinities
        for product in chosen:
            rules = affinities.get(product)
            if rules:
                for consequent, strength in rules:
                    if consequent not in chosen and rnd() < strength:
                        chosen.append(consequent)
                        line_bits.append(getrandbits(32))

        low, spread = self._discount_range
        prices = self.prices
        cached_lines = self._line_cache
        lines = []
        line_payloads = []
        for product, bits in zip(chosen, line_bits, strict=True):
            quantity = 1 + bisect(quantity_cdfs[product], bits & 0xFFFF)
            price = prices[product]
            if (bits >> 16) < promotion_cut:
                discount = int(quantity * price * (low + spread * rnd()))
                line_payloads.append(line_json(self.product_ids[product], quantity, price, discount))
            else:
                discount = 0
                cache_key = (product << 16) | quantity
                text = cached_lines.get(cache_key)
                if text is None:
                    text = cached_lines[cache_key] = line_json(self.product_ids[product], quantity, price, 0)
                line_payloads.append(text)
            lines.append((product, quantity, price, discount))

        in_store = channel == CHANNEL_STORE
        methods, cumulative, total = self._payments["store" if in_store else "online"]
        payment = methods[min(bisect(cumulative, rnd() * total), len(methods) - 1)]
        if in_store and rnd() < config.guest_checkout_share:
            customer_id = None
        entropy = rng.getrandbits(128)
        transaction_id = f"TX-{rng.getrandbits(80):020x}"
        payload = transaction_json(
            event_id=uuid_string(entropy),
            transaction_id=transaction_id,
            ts_ms=ts_ms,
            store_id=self.store_ids[store],
            customer_id=customer_id,
            channel=channel,
            payment_method=payment,
            lines=line_payloads,
        )
        key = transaction_id.encode()
        event = SimulatedEvent(ts_ms, "transactions", key, payload, entropy)
        refund = None
        if rnd() < config.refunds.rate:
            refund = self.refund(rng, transaction_id, key, lines, ts_ms)
        return SimulatedTransaction(event, transaction_id, tuple(lines), refund)

    def refund(
        self,
        rng: random.Random,
        transaction_id: str,
        key: bytes,
        lines: list[tuple[int, int, int, int]] | tuple[tuple[int, int, int, int], ...],
        sold_ms: int,
        refund_ms: int | None = None,
    ) -> SimulatedEvent:
        """A refund of (part of) one line: amount pro rata of what was paid, never more.
        `refund_ms` None draws the delay after the sale from the configured log-normal."""
        refunds = self.config.refunds
        line = SoldLine(*lines[int(rng.random() * len(lines))])
        quantity = line.quantity
        if quantity > 1 and rng.random() >= refunds.full_quantity_share:
            quantity = 1 + int(rng.random() * (line.quantity - 1))
        amount = paid_cents(line) * quantity // line.quantity
        cumulative, total = self._reason_cum_by_product[line.product]
        reason = self._reasons[min(bisect(cumulative, rng.random() * total), len(self._reasons) - 1)]
        delay_minutes = refunds.delay_median_minutes * math.exp(refunds.delay_sigma * rng.gauss(0, 1))
        delay_minutes = min(max(delay_minutes, refunds.delay_min_minutes), refunds.delay_max_minutes)
        entropy = rng.getrandbits(128)
        refund_id = f"RF-{rng.getrandbits(80):020x}"
        ts_ms = refund_ms if refund_ms is not None else sold_ms + max(1, int(delay_minutes * MINUTE_MS))
        payload = refund_json(
            event_id=uuid_string(entropy),
            refund_id=refund_id,
            transaction_id=transaction_id,
            product_id=self.product_ids[line.product],
            quantity=quantity,
            amount_cents=amount,
            reason=reason,
            ts_ms=ts_ms,
        )
        return SimulatedEvent(ts_ms, "refunds", key, payload, entropy)

    # Live mode -----------------------------------------------------------------------------------

    def traffic_factor(self, ts_ms: int) -> float:
        """Relative traffic of the whole chain at an instant (mean 1 over a week), for live arrivals."""
        offset = self._store_offset_ms[0]
        local = ts_ms + offset
        day = local // DAY_MS
        hour = (local % DAY_MS) // HOUR_MS
        factors = []
        for name in ("supermarket", "online"):
            hourly = self.config.traffic.hourly[name]
            factors.append(24 * hourly[hour] / sum(hourly) * self._weekday[name][(day + EPOCH_WEEKDAY) % 7])
        return sum(factors) / len(factors)

    def live_population(self, run_key: str, now_ms: int) -> tuple[list[Customer], list[float]]:
        """Every customer with its relative visit rate, for picking who shops next in live mode."""
        customers = [
            self.customer(run_key, i, now_ms, now_ms + WEEK_MS) for i in range(self.config.customers)
        ]
        rates = [self.archetypes[c.archetype].visits_per_week for c in customers]
        return customers, list(accumulate(rates))


def _poisson_thresholds(mean: float, max_quantity: int) -> list[int]:
    """16-bit thresholds of 1 + Poisson(mean): a draw below thresholds[0] means one unit, and so on."""
    thresholds = []
    probability = math.exp(-mean)
    cumulative = 0.0
    for extra in range(max_quantity - 1):
        cumulative += probability
        threshold = round(cumulative * 0x10000)
        if threshold >= 0x10000:
            break
        thresholds.append(threshold)
        probability *= mean / (extra + 1)
    return thresholds
