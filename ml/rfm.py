"""RFM values, quintile scores and named segments, as pure functions over a customer frame.

- Recency: whole hours from the customer's last purchase to the analysis time (the latest sale in the
  data, recorded with the run), floored. Frequency: distinct baskets. Monetary: net revenue.
- Scores 1-5 by quintile with deterministic ties: a customer's score is 1 + floor(5 * (r - 1) / n) where
  r is the *minimum* rank of its value (pandas `rank(method="min")`) among n customers. Equal values always
  get the same score, whatever the input order; when a value is shared by more than a fifth of the
  customers (frequency 1 is common), the next scores are simply skipped. Recency is ranked descending
  (recent = 5), frequency and monetary ascending (more = 5).
- Segment: from R and FM = round-half-up((F + M) / 2) through `SEGMENT_MAP` (a 5 x 5 grid after the
  usual RFM segment map, which names cells by recency and frequency; M joins F so a big spender with
  few visits is not treated as a one-off).
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

SEGMENTS = (
    "Champions",
    "Loyal",
    "Potential Loyalist",
    "New",
    "Promising",
    "Need Attention",
    "At Risk",
    "Can't Lose",
    "Hibernating",
    "Lost",
)

# SEGMENT_MAP[r_score][fm_score - 1]. Read a row as "bought this recently" and a column as "this much".
SEGMENT_MAP: dict[int, tuple[str, str, str, str, str]] = {
    5: ("New", "Potential Loyalist", "Potential Loyalist", "Champions", "Champions"),
    4: ("Promising", "Potential Loyalist", "Potential Loyalist", "Loyal", "Champions"),
    3: ("Need Attention", "Need Attention", "Need Attention", "Loyal", "Loyal"),
    2: ("Hibernating", "Hibernating", "At Risk", "At Risk", "Can't Lose"),
    1: ("Lost", "Lost", "At Risk", "At Risk", "Can't Lose"),
}


def quintile_scores(values: pd.Series, higher_is_better: bool = True) -> pd.Series:
    """Scores 1-5 from the minimum rank of each value: ties share a score, order never matters."""
    n = len(values)
    if n == 0:
        return pd.Series([], dtype="int16", index=values.index)
    ranks = (values if higher_is_better else -values).rank(method="min").to_numpy()
    scores = 1 + np.floor(5 * (ranks - 1) / n)
    return pd.Series(scores.astype("int16"), index=values.index)


def recency_hours(last_purchase_at: pd.Series, analysis_time: datetime) -> pd.Series:
    """Whole hours between each last purchase and the analysis time (floored, never negative)."""
    delta = pd.Timestamp(analysis_time) - last_purchase_at
    hours = delta.dt.total_seconds() // 3600
    return hours.clip(lower=0).astype("int64")


def segment_name(r_score: int, fm_score: int) -> str:
    return SEGMENT_MAP[r_score][fm_score - 1]


def fm_scores(f_score: pd.Series, m_score: pd.Series) -> pd.Series:
    """Mean of F and M rounded half up (integer arithmetic: no float rounding surprises)."""
    return ((f_score.astype("int64") + m_score.astype("int64") + 1) // 2).astype("int16")


def rfm_table(customers: pd.DataFrame, analysis_time: datetime) -> pd.DataFrame:
    """customer_id, last_purchase_at, recency_hours, frequency, monetary, scores, rfm_score, rfm_segment.

    `customers` is `ml.marts.customer_sales()`; the result is sorted by customer_id.
    """
    table = customers.sort_values("customer_id", kind="stable").reset_index(drop=True).copy()
    table["recency_hours"] = recency_hours(table["last_purchase_at"], analysis_time)
    table["r_score"] = quintile_scores(table["recency_hours"], higher_is_better=False)
    table["f_score"] = quintile_scores(table["frequency"])
    table["m_score"] = quintile_scores(table["monetary"])
    table["rfm_score"] = (
        table["r_score"].astype(str) + table["f_score"].astype(str) + table["m_score"].astype(str)
    )
    fm = fm_scores(table["f_score"], table["m_score"])
    table["rfm_segment"] = [segment_name(r, f) for r, f in zip(table["r_score"], fm, strict=True)]
    return table
