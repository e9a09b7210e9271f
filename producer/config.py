"""The simulation model's configuration: `producer/simulation.yaml` loaded into validated pydantic models.

Validation happens once, when the file is read, so a typo stops the producer with a message that names
the key (``archetypes.regular.share: Input should be ...``) instead of skewing the data silently.

    from producer.config import load_simulation_config
    config = load_simulation_config()          # the shipped defaults
    config.affinities                          # ground truth of the planted co-purchases
"""

from __future__ import annotations

import math
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from retail.contracts import PaymentMethod, RefundReason

DEFAULT_CONFIG_PATH = Path(__file__).with_name("simulation.yaml")
STORE_FORMATS = ("express", "supermarket", "hypermarket")
CURVE_NAMES = (*STORE_FORMATS, "online")

Share = Annotated[float, Field(ge=0, le=1)]
Weight = Annotated[float, Field(ge=0)]


class SimulationConfigError(ValueError):
    """The simulation YAML cannot be used; the message names the file and the offending keys."""


class MalformedKind(StrEnum):
    """Kinds of broken messages the test knobs can inject (the speed layer must dead-letter each)."""

    INVALID_JSON = "invalid_json"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    NEGATIVE_QUANTITY = "negative_quantity"
    UNKNOWN_PRODUCT = "unknown_product"
    UNKNOWN_STORE = "unknown_store"
    UNKNOWN_TRANSACTION_REFUND = "unknown_transaction_refund"
    OVERSIZED_PAYLOAD = "oversized_payload"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Archetype(_Section):
    share: Share
    visits_per_week: float = Field(gt=0)
    basket_lines: float = Field(ge=1)
    quantity_multiplier: float = Field(default=1.0, ge=0)
    online_share: Share = 0.1
    churn_half_life_days: float | None = Field(default=None, gt=0)
    arrives_during_window: bool = False


class StoreChoice(_Section):
    home_store_share: Share = 0.85
    same_region_share: Share = 0.7
    home_store_size_exponent: float = Field(default=0.5, ge=0)
    region_utc_offset_hours: dict[str, float] = Field(default_factory=dict)


class Channels(_Section):
    mobile_app_share_of_online: Share = 0.5
    payment_mix: dict[str, dict[PaymentMethod, Weight]]

    @field_validator("payment_mix")
    @classmethod
    def _both_channels(cls, value: dict[str, dict[PaymentMethod, float]]) -> dict:
        missing = {"store", "online"} - value.keys()
        if missing:
            raise ValueError(f"needs a mix for {sorted(missing)}")
        for channel, mix in value.items():
            if sum(mix.values()) <= 0:
                raise ValueError(f"{channel}: weights must not all be zero")
        return value


def _curve(length: int):
    def check(value: dict[str, list[float]]) -> dict[str, list[float]]:
        missing = set(CURVE_NAMES) - value.keys()
        if missing:
            raise ValueError(f"needs curves for {sorted(missing)}")
        for name, weights in value.items():
            if len(weights) != length:
                raise ValueError(f"{name}: needs {length} values, got {len(weights)}")
            if min(weights) < 0 or sum(weights) <= 0:
                raise ValueError(f"{name}: weights must be ≥ 0 and not all zero")
        return value

    return check


class Traffic(_Section):
    hourly: dict[str, list[float]]
    weekday: dict[str, list[float]]

    _hourly_ok = field_validator("hourly")(_curve(24))
    _weekday_ok = field_validator("weekday")(_curve(7))


class Basket(_Section):
    max_lines: int = Field(default=15, ge=1, le=100)
    popularity_zipf_exponent: float = Field(default=0.3, ge=0)
    category_weights: dict[str, Weight]
    extra_units_mean: float = Field(default=0.6, ge=0)
    extra_units_mean_by_category: dict[str, float] = Field(default_factory=dict)
    max_quantity: int = Field(default=12, ge=1, le=10_000)


class Promotions(_Section):
    probability: Share = 0.12
    discount_range: tuple[Share, Share] = (0.05, 0.30)

    @field_validator("discount_range")
    @classmethod
    def _ordered(cls, value: tuple[float, float]) -> tuple[float, float]:
        if value[0] > value[1]:
            raise ValueError("lower bound above upper bound")
        return value


class Refunds(_Section):
    rate: Share = 0.10
    full_quantity_share: Share = 0.7
    delay_median_minutes: float = Field(default=1440, gt=0)
    delay_sigma: float = Field(default=1.3, ge=0)
    delay_min_minutes: float = Field(default=5, gt=0)
    delay_max_minutes: float = Field(default=43200, gt=0)
    reasons: dict[RefundReason, Weight]
    reasons_by_category: dict[str, dict[RefundReason, Weight]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _delays_ordered(self) -> Refunds:
        if self.delay_min_minutes > self.delay_max_minutes:
            raise ValueError("delay_min_minutes is above delay_max_minutes")
        return self


class Affinity(_Section):
    """A planted co-purchase: P(consequent added to the basket | antecedent in it) = strength."""

    antecedent: str
    consequent: str
    strength: float = Field(gt=0, le=1)


class Live(_Section):
    curve_strength: Share = 0.5
    refund_pool_size: int = Field(default=20_000, ge=1)
    refund_min_age_seconds: float = Field(default=60, ge=0)


class Backfill(_Section):
    max_skew_minutes: float = Field(default=720, ge=60)


class Faults(_Section):
    """Test-only knobs. Everything is off by default; lateness is drawn uniformly in [min, max]."""

    late_fraction: Share = 0.0
    min_lateness_seconds: float = Field(default=0, ge=0)
    max_lateness_seconds: float = Field(default=900, ge=0)
    duplicate_fraction: Share = 0.0
    malformed: dict[MalformedKind, Annotated[int, Field(ge=0)]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _lateness_ordered(self) -> Faults:
        if self.min_lateness_seconds > self.max_lateness_seconds:
            raise ValueError("min_lateness_seconds is above max_lateness_seconds")
        return self

    @property
    def active(self) -> bool:
        return bool(self.late_fraction or self.duplicate_fraction or any(self.malformed.values()))


class SimulationConfig(_Section):
    customers: int = Field(default=5000, ge=1, le=10_000_000)
    guest_checkout_share: Share = 0.04
    archetypes: dict[str, Archetype]
    stores: StoreChoice = StoreChoice()
    channels: Channels
    traffic: Traffic
    basket: Basket
    promotions: Promotions = Promotions()
    refunds: Refunds
    affinities: list[Affinity] = Field(default_factory=list)
    live: Live = Live()
    backfill: Backfill = Backfill()
    faults: Faults = Faults()

    @field_validator("archetypes")
    @classmethod
    def _shares_add_up(cls, value: dict[str, Archetype]) -> dict[str, Archetype]:
        if not value:
            raise ValueError("needs at least one archetype")
        total = sum(archetype.share for archetype in value.values())
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(f"shares must add up to 1, they add up to {total:g}")
        return value

    @field_validator("affinities")
    @classmethod
    def _one_rule_per_pair(cls, value: list[Affinity]) -> list[Affinity]:
        pairs = [(rule.antecedent, rule.consequent) for rule in value]
        if len(pairs) != len(set(pairs)):
            raise ValueError("a (antecedent, consequent) pair is listed twice")
        if any(rule.antecedent == rule.consequent for rule in value):
            raise ValueError("antecedent and consequent must differ")
        return value


def describe_config_error(path: Path, error: ValidationError) -> str:
    """One line per problem, naming the key the way it is written in the YAML file."""
    lines = []
    for problem in error.errors():
        key = ".".join(str(part) for part in problem["loc"]) or "<top level>"
        lines.append(f"{path}: {key}: {problem['msg']} (got {problem.get('input')!r})")
    return "\n".join(lines)


def load_simulation_config(path: Path | str | None = None) -> SimulationConfig:
    """Read and validate a simulation YAML (default: the shipped `producer/simulation.yaml`)."""
    config_path = Path(path) if path else DEFAULT_CONFIG_PATH
    try:
        raw = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise SimulationConfigError(f"{config_path}: cannot read the simulation config: {error}") from None
    if not isinstance(raw, dict):
        raise SimulationConfigError(f"{config_path}: expected a mapping of keys at the top level")
    try:
        return SimulationConfig.model_validate(raw)
    except ValidationError as error:
        raise SimulationConfigError(describe_config_error(config_path, error)) from None
