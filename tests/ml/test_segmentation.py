"""Segmentation on producer data: R/F/M recomputed independently, archetypes land in their segments.

Archetype thresholds (shares of each producer archetype's customers, measured at 0.91 / 0.89 / 0.95 /
0.70 / 0.57 on the 4-week, 5,000-customer test data; set with margin):
- loyal_high_spender -> Champions or Loyal                                           >= 0.80
- regular            -> Champions, Loyal, Potential Loyalist, Need Attention, At Risk,
                        Can't Lose (anything but the one-off and lapsed cells)        >= 0.80
- occasional         -> Lost, Hibernating, Need Attention, Promising, New,
                        Potential Loyalist (low frequency and money)                  >= 0.85
- churning           -> At Risk, Can't Lose, Hibernating, Lost, Need Attention         >= 0.60
- new                -> New, Promising, Potential Loyalist, Need Attention             >= 0.50
and loyal_high_spender has the highest Champions share of all archetypes.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import psycopg
import pytest

from ml.rfm import SEGMENT_MAP, SEGMENTS, quintile_scores, rfm_table
from ml.runs import NotEnoughData, RunRecord
from ml.segmentation import cluster_customers
from retail.settings import Settings
from tests.ml.producer_data import SimulatedData, archetypes

EXPECTED = {
    "loyal_high_spender": ({"Champions", "Loyal"}, 0.80),
    "regular": (
        {"Champions", "Loyal", "Potential Loyalist", "Need Attention", "At Risk", "Can't Lose"},
        0.80,
    ),
    "occasional": ({"Lost", "Hibernating", "Need Attention", "Promising", "New", "Potential Loyalist"}, 0.85),
    "churning": ({"At Risk", "Can't Lose", "Hibernating", "Lost", "Need Attention"}, 0.60),
    "new": ({"New", "Promising", "Potential Loyalist", "Need Attention"}, 0.50),
}


def segments(conn: psycopg.Connection, run: RunRecord) -> pd.DataFrame:
    rows = conn.execute(
        "select customer_id, recency_hours, frequency, monetary, r_score, f_score, m_score, rfm_segment,"
        " cluster from ml.customer_segments where run_id = %s order by customer_id",
        (run.run_id,),
    ).fetchall()
    return pd.DataFrame(
        rows,
        columns=[
            "customer_id",
            "recency_hours",
            "frequency",
            "monetary",
            "r",
            "f",
            "m",
            "segment",
            "cluster",
        ],
    )


@pytest.mark.integration
def test_rfm_values_equal_an_independent_pandas_computation(
    ml_db: psycopg.Connection, first_runs: dict[str, RunRecord]
) -> None:
    run = first_runs["segmentation"]
    lines = pd.DataFrame(
        ml_db.execute(
            "select customer_id, transaction_id, sold_at, net_amount from marts.fct_sales"
        ).fetchall(),
        columns=["customer_id", "transaction_id", "sold_at", "net_amount"],
    )
    analysis_time = lines["sold_at"].max()
    assert run.data_to == analysis_time
    known = lines.dropna(subset=["customer_id"])
    expected = known.groupby("customer_id").agg(
        last=("sold_at", "max"), frequency=("transaction_id", "nunique"), monetary=("net_amount", "sum")
    )
    expected["recency_hours"] = [
        int((analysis_time - last).total_seconds() // 3600) for last in expected["last"]
    ]
    stored = segments(ml_db, run).set_index("customer_id")
    assert list(stored.index) == list(expected.index)
    assert (stored["recency_hours"] == expected["recency_hours"]).all()
    assert (stored["frequency"] == expected["frequency"]).all()
    assert (stored["monetary"] == expected["monetary"]).all()  # Decimal = Decimal: exact
    assert run.row_counts["customers"] == len(expected)


@pytest.mark.integration
def test_archetypes_fall_into_their_expected_segments(
    ml_db: psycopg.Connection, first_runs: dict[str, RunRecord], simulated: SimulatedData
) -> None:
    table = segments(ml_db, first_runs["segmentation"])
    table["archetype"] = table["customer_id"].map(archetypes(simulated.plan))
    shares = {}
    for archetype, (expected, threshold) in EXPECTED.items():
        group = table[table["archetype"] == archetype]
        shares[archetype] = group["segment"].isin(expected).mean()
        assert shares[archetype] >= threshold, (archetype, group["segment"].value_counts().to_dict())
    champions = table.groupby("archetype")["segment"].apply(lambda s: (s == "Champions").mean())
    assert champions.idxmax() == "loyal_high_spender"
    # Cluster 1 is the highest-value cluster: where the loyal high spenders are.
    loyal = table[table["archetype"] == "loyal_high_spender"]
    assert (loyal["cluster"] == 1).mean() >= 0.9


@pytest.mark.integration
def test_every_candidate_k_is_scored_and_clusters_are_ordered_by_value(
    ml_db: psycopg.Connection, ml_settings: Settings, first_runs: dict[str, RunRecord]
) -> None:
    run = first_runs["segmentation"]
    scores = {int(k): v for k, v in (run.silhouette_scores or {}).items()}
    assert sorted(scores) == list(range(ml_settings.ml_kmeans_k_min, ml_settings.ml_kmeans_k_max + 1))
    assert run.chosen_k == max(scores, key=lambda k: scores[k])
    stored = ml_db.execute(
        "select silhouette_scores, chosen_k, status from ml.model_runs where run_id = %s", (run.run_id,)
    ).fetchone()
    assert stored == (run.silhouette_scores, run.chosen_k, "succeeded")
    table = segments(ml_db, run)
    assert sorted(table["cluster"].unique()) == list(range(1, run.chosen_k + 1))
    by_cluster = table.groupby("cluster")[["frequency", "monetary"]].median()
    assert by_cluster["monetary"].is_monotonic_decreasing


def test_quintile_ties_share_a_score_whatever_the_order() -> None:
    values = pd.Series([1, 1, 1, 1, 1, 1, 2, 3, 4, 10])
    scores = quintile_scores(values)
    assert scores.tolist() == [1, 1, 1, 1, 1, 1, 4, 4, 5, 5]
    shuffled = values.sample(frac=1, random_state=3)
    assert quintile_scores(shuffled).sort_index().tolist() == scores.tolist()
    assert quintile_scores(pd.Series([5.0, 1.0]), higher_is_better=False).tolist() == [1, 3]


def test_segment_map_covers_every_score_pair_with_the_ten_names() -> None:
    assert sorted(SEGMENT_MAP) == [1, 2, 3, 4, 5]
    assert all(len(row) == 5 for row in SEGMENT_MAP.values())
    assert {name for row in SEGMENT_MAP.values() for name in row} == set(SEGMENTS)


def test_identical_customers_cannot_be_clustered() -> None:
    customers = pd.DataFrame(
        {
            "customer_id": ["C1", "C2", "C3"],
            "last_purchase_at": pd.to_datetime(["2026-11-01T10:00:00Z"] * 3, utc=True),
            "frequency": [2, 2, 2],
            "monetary": [10.0, 10.0, 10.0],
        }
    )
    table = rfm_table(customers, datetime(2026, 11, 2, tzinfo=UTC))
    assert table["rfm_score"].tolist() == ["111"] * 3  # ties share the lowest score
    with pytest.raises(NotEnoughData, match="distinct"):
        cluster_customers(table, 2, 8, 1000)
    assert np.all(table["recency_hours"] == 14)
