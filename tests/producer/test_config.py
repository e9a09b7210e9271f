"""The simulation YAML: shipped defaults load, mistakes are reported by key, catalog references checked."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from producer.catalog import load_catalog
from producer.config import DEFAULT_CONFIG_PATH, SimulationConfigError, load_simulation_config
from producer.simulator import Simulator
from retail.settings import load_settings


def write_variant(tmp_path: Path, change) -> Path:
    raw = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    change(raw)
    path = tmp_path / "simulation.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_defaults_match_the_issue() -> None:
    config = load_simulation_config()
    assert config.customers == 5000
    assert config.refunds.rate == pytest.approx(0.10)
    assert set(config.archetypes) == {"loyal_high_spender", "regular", "occasional", "churning", "new"}
    assert config.archetypes["churning"].churn_half_life_days
    assert config.archetypes["new"].arrives_during_window
    assert not config.faults.active


def test_affinities_are_the_planted_products() -> None:
    affinities = load_simulation_config().affinities
    planted = {f"P{n:04d}" for n in range(1, 19)}
    assert len(affinities) == 9
    assert {rule.antecedent for rule in affinities} | {rule.consequent for rule in affinities} == planted
    assert all(0.3 <= rule.strength <= 0.7 for rule in affinities)


def test_error_names_the_key(tmp_path: Path) -> None:
    def break_share(raw: dict) -> None:
        raw["archetypes"]["regular"]["share"] = "lots"

    with pytest.raises(SimulationConfigError, match=r"archetypes\.regular\.share"):
        load_simulation_config(write_variant(tmp_path, break_share))


def test_shares_must_add_up(tmp_path: Path) -> None:
    def skew(raw: dict) -> None:
        raw["archetypes"]["regular"]["share"] = 0.9

    with pytest.raises(SimulationConfigError, match="add up to 1"):
        load_simulation_config(write_variant(tmp_path, skew))


def test_unknown_keys_are_refused(tmp_path: Path) -> None:
    def typo(raw: dict) -> None:
        raw["refunds"]["rat"] = 0.2

    with pytest.raises(SimulationConfigError, match=r"refunds\.rat"):
        load_simulation_config(write_variant(tmp_path, typo))


def test_affinity_products_must_exist_in_the_catalog(tmp_path: Path) -> None:
    def unknown(raw: dict) -> None:
        raw["affinities"][0]["consequent"] = "P9999"

    config = load_simulation_config(write_variant(tmp_path, unknown))
    with pytest.raises(SimulationConfigError, match=r"affinities\.0\.consequent: 'P9999'"):
        Simulator(config, load_catalog(load_settings(_env_file=None)))
