"""K-Means clusters of customers on log-transformed, standardized R, F and M, k chosen by silhouette.

Why log + standardize: R, F and M are heavy-tailed and on unrelated scales; without it M alone decides
the clusters. k runs over [k_min, k_max]; each candidate's silhouette (on a fixed-seed sample: the exact
score is quadratic in customers) is kept for the run record, and the best one wins (ties: the smaller k).
Clusters are then renumbered by value, 1 = highest mean of (-R, F, M) in standardized units, so cluster 1
means the same thing in every run and the labels stay stable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn import config_context
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler

from ml.runs import NotEnoughData

RANDOM_STATE = 42
N_INIT = 4
SILHOUETTE_WORKING_MEMORY_MB = 128


@dataclass(frozen=True)
class Clustering:
    labels: np.ndarray  # cluster per input row, 1 = highest value
    k: int
    silhouette_scores: dict[int, float]
    cluster_labels: dict[int, str]


def features(rfm: pd.DataFrame) -> np.ndarray:
    """log1p of recency hours, frequency and monetary (clipped at 0), standardized."""
    raw = np.column_stack(
        [
            np.log1p(rfm["recency_hours"].to_numpy(dtype="float64")),
            np.log1p(rfm["frequency"].to_numpy(dtype="float64")),
            np.log1p(np.clip(rfm["monetary"].to_numpy(dtype="float64"), 0, None)),
        ]
    )
    return StandardScaler().fit_transform(raw)


def candidate_ks(distinct_points: int, k_min: int, k_max: int) -> list[int]:
    """k values that silhouette can score: 2 <= k <= distinct points - 1."""
    return [k for k in range(k_min, k_max + 1) if 2 <= k < distinct_points]


def cluster_customers(rfm: pd.DataFrame, k_min: int, k_max: int, sample_size: int) -> Clustering:
    """Fit K-Means for each candidate k, keep the best silhouette, order clusters by value."""
    x = features(rfm)
    distinct = len(np.unique(x, axis=0))
    ks = candidate_ks(distinct, k_min, k_max)
    if not ks:
        raise NotEnoughData(
            f"{len(rfm)} customers with {distinct} distinct (R, F, M) points: "
            f"no k in [{k_min}, {k_max}] can be scored (need at least k + 1 distinct points)"
        )
    scores: dict[int, float] = {}
    fits: dict[int, np.ndarray] = {}
    sample = min(sample_size, len(x))
    for k in ks:
        labels = KMeans(n_clusters=k, random_state=RANDOM_STATE, n_init=N_INIT).fit_predict(x)
        if len(np.unique(labels)) < 2:
            continue
        # Distance chunks of 128 MB instead of sklearn's 1 GB default: same score, a third of the peak RSS.
        with config_context(working_memory=SILHOUETTE_WORKING_MEMORY_MB):
            scores[k] = float(silhouette_score(x, labels, sample_size=sample, random_state=RANDOM_STATE))
        fits[k] = labels
    if not scores:
        raise NotEnoughData("every K-Means candidate collapsed into a single cluster")
    best = max(scores, key=lambda k: (round(scores[k], 12), -k))
    labels = fits[best]
    value = x[:, 1] + x[:, 2] - x[:, 0]  # more visits and money, fewer hours since the last one
    means = pd.Series(value).groupby(labels).mean()
    order = sorted(means.index, key=lambda cluster: (-means[cluster], cluster))
    renumber = {old: new for new, old in enumerate(order, start=1)}
    ordered = np.array([renumber[label] for label in labels], dtype="int16")
    names = {rank: f"value tier {rank} of {best}" for rank in range(1, best + 1)}
    return Clustering(ordered, best, scores, names)
