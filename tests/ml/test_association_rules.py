"""Association rules on producer data: planted affinities recovered, every stored figure recounted.

The producer plants co-purchases (`producer/simulation.yaml` `affinities`: P(consequent | antecedent) =
strength). Among the single-product rules, the top K product pairs by score (K = number of planted
rules) must be the planted pairs (precision and recall >= 0.9), each strongest in the planted direction.
"""

from __future__ import annotations

import math
from itertools import pairwise

import pandas as pd
import psycopg
import pytest

from ml import marts
from ml.association_rules import mine_rules, one_hot
from ml.runs import NotEnoughData, RunRecord
from producer.config import load_simulation_config
from retail.settings import Settings

pytestmark = pytest.mark.integration


def stored_rules(conn: psycopg.Connection, run: RunRecord) -> pd.DataFrame:
    rows = conn.execute(
        "select rule_rank, antecedents, consequents, baskets, support, confidence, lift, leverage,"
        " conviction, score from ml.product_associations where run_id = %s order by rule_rank",
        (run.run_id,),
    ).fetchall()
    return pd.DataFrame(
        rows,
        columns=[
            "rank",
            "antecedents",
            "consequents",
            "baskets",
            "support",
            "confidence",
            "lift",
            "leverage",
            "conviction",
            "score",
        ],
    )


def test_planted_affinities_are_the_top_rules(
    ml_db: psycopg.Connection, first_runs: dict[str, RunRecord]
) -> None:
    rules = stored_rules(ml_db, first_runs["association_rules"])
    planted = {(rule.antecedent, rule.consequent) for rule in load_simulation_config().affinities}
    singles = rules[(rules["antecedents"].map(len) == 1) & (rules["consequents"].map(len) == 1)]
    best_direction: dict[frozenset[str], tuple[str, str]] = {}
    for antecedents, consequents in zip(singles["antecedents"], singles["consequents"], strict=True):
        best_direction.setdefault(
            frozenset((antecedents[0], consequents[0])), (antecedents[0], consequents[0])
        )
    top = list(best_direction.values())[: len(planted)]
    found = set(top) & planted
    precision, recall = len(found) / len(top), len(found) / len(planted)
    assert precision >= 0.9 and recall >= 0.9, (top, planted)


def test_stored_figures_equal_a_brute_force_recount(
    ml_db: psycopg.Connection, ml_settings: Settings, first_runs: dict[str, RunRecord]
) -> None:
    rules = stored_rules(ml_db, first_runs["association_rules"])
    assert len(rules) == first_runs["association_rules"].rule_count > 0
    lines = ml_db.execute("select transaction_id, product_id from marts.fct_sales").fetchall()
    baskets: dict[str, set[str]] = {}
    for transaction_id, product_id in lines:
        baskets.setdefault(transaction_id, set()).add(product_id)
    kept = [items for items in baskets.values() if len(items) <= ml_settings.ml_max_basket_lines]
    n = len(kept)

    def share(products: list[str]) -> float:
        wanted = set(products)
        return sum(1 for items in kept if wanted <= items) / n

    for rule in rules.itertuples():
        both = share([*rule.antecedents, *rule.consequents])
        antecedent, consequent = share(rule.antecedents), share(rule.consequents)
        assert math.isclose(rule.support, both, rel_tol=1e-9)
        assert rule.baskets == round(both * n)
        assert math.isclose(rule.confidence, both / antecedent, rel_tol=1e-9)
        assert math.isclose(rule.lift, both / (antecedent * consequent), rel_tol=1e-9)
        assert math.isclose(rule.leverage, both - antecedent * consequent, rel_tol=1e-9, abs_tol=1e-12)
        expected_conviction = math.inf if both == antecedent else (1 - consequent) / (1 - both / antecedent)
        assert math.isclose(rule.conviction, expected_conviction, rel_tol=1e-9)
        assert rule.lift > 1 and rule.confidence >= ml_settings.ml_min_confidence
        assert rule.support >= ml_settings.ml_min_support
        assert len(rule.antecedents) + len(rule.consequents) <= ml_settings.ml_max_itemset_len
        assert math.isclose(rule.score, rule.lift * rule.confidence, rel_tol=1e-12)
    assert list(rules["rank"]) == list(range(1, len(rules) + 1))
    assert all(a >= b for a, b in pairwise(rules["score"]))


def test_also_bought_answers_for_a_product_and_a_basket(
    ml_analyst: psycopg.Connection, first_runs: dict[str, RunRecord]
) -> None:
    [(product, name, score)] = ml_analyst.execute(
        "select product_id, product_name, score from ml.also_bought(array['P0009'], 1)"
    ).fetchall()
    assert (product, name) == ("P0010", "Jetline 2700 Ink Cartridge Black")
    assert score > 1
    basket = ml_analyst.execute(
        "select product_id from ml.also_bought(array['P0001', 'P0018', 'P0002'])"
    ).fetchall()
    suggested = [row[0] for row in basket]
    assert suggested[0] == "P0017" and "P0002" not in suggested and "P0001" not in suggested
    top = ml_analyst.execute(
        "select recommended_product_id from ml.product_recommendations"
        " where product_id = 'P0003' and recommendation_rank = 1"
    ).fetchone()
    assert top == ("P0004",)


def test_apriori_finds_the_same_rules_and_the_cap_drops_large_baskets(
    ml_settings: Settings, first_runs: dict[str, RunRecord]
) -> None:
    with psycopg.connect(ml_settings.writer_dsn) as conn:
        items, dropped = marts.basket_items(conn, ml_settings.ml_max_basket_lines)
        names = marts.product_names(conn)
        capped, capped_dropped = marts.basket_items(conn, 5)
    assert dropped == 0
    assert capped_dropped > 0 and capped.groupby("transaction_id").size().max() == 5
    assert capped["transaction_id"].nunique() + capped_dropped == items["transaction_id"].nunique()
    options = {"min_support": 0.004, "min_confidence": 0.2, "max_len": 3}
    fp, n = mine_rules(items, names, algorithm="fpgrowth", **options)
    ap, _ = mine_rules(items, names, algorithm="apriori", **options)
    assert n == first_runs["association_rules"].row_counts["baskets"]
    pd.testing.assert_frame_equal(fp, ap)


def test_one_hot_is_sparse_and_tiny_inputs_are_refused() -> None:
    items = pd.DataFrame({"transaction_id": ["T1", "T1", "T2"], "product_id": ["B", "A", "A"]})
    encoded = one_hot(items)
    assert list(encoded.columns) == ["A", "B"]
    assert all(isinstance(dtype, pd.SparseDtype) for dtype in encoded.dtypes)
    assert encoded.sparse.to_dense().to_numpy().tolist() == [[True, True], [True, False]]
    with pytest.raises(NotEnoughData, match="1 basket"):
        mine_rules(
            items[items["transaction_id"] == "T1"],
            {},
            algorithm="fpgrowth",
            min_support=0.1,
            min_confidence=0.1,
            max_len=2,
        )


def test_no_rule_above_the_thresholds_is_an_empty_result() -> None:
    """Pairs are frequent but no rule is confident enough: an empty rule set, not an error."""
    items = pd.DataFrame(
        {
            "transaction_id": ["T1", "T1", "T2", "T3", "T4", "T5"],
            "product_id": ["A", "B", "A", "B", "A", "B"],
        }
    )
    rules, baskets = mine_rules(
        items, {}, algorithm="fpgrowth", min_support=0.1, min_confidence=0.9, max_len=2
    )
    assert baskets == 5
    assert rules.empty
