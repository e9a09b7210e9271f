"""Market-basket association rules with mlxtend: baskets are transactions, items are products.

The basket x product one-hot matrix is built as a scipy CSR matrix and handed to mlxtend as a sparse
DataFrame, so memory grows with the lines, not baskets x catalog. Baskets above the size cap are left out
before this module sees them (`ml.marts.basket_items`). Only rules with lift > 1 are kept, ranked by
score = lift x confidence (how the dashboard ranks "customers who bought X also buy ...").
"""

from __future__ import annotations

import math
import warnings
from typing import Literal

import numpy as np
import pandas as pd
from mlxtend.frequent_patterns import apriori, association_rules, fpgrowth
from scipy import sparse

from ml.runs import NotEnoughData

RULE_COLUMNS = [
    "rule_rank",
    "antecedents",
    "consequents",
    "antecedent_names",
    "consequent_names",
    "baskets",
    "support",
    "confidence",
    "lift",
    "leverage",
    "conviction",
    "score",
]


def one_hot(items: pd.DataFrame) -> pd.DataFrame:
    """Sparse boolean basket x product frame (columns = product ids, sorted) from (basket, product) pairs."""
    baskets = pd.Categorical(items["transaction_id"])
    products = pd.Categorical(items["product_id"], categories=sorted(items["product_id"].unique()))
    matrix = sparse.csr_matrix(
        (np.ones(len(items), dtype=bool), (baskets.codes, products.codes)),
        shape=(len(baskets.categories), len(products.categories)),
    )
    with warnings.catch_warnings():
        # pandas warns that a bool sparse column's fill value 0 is not a bool; it is read as False.
        warnings.simplefilter("ignore", FutureWarning)
        return pd.DataFrame.sparse.from_spmatrix(matrix, columns=list(products.categories))


def mine_rules(
    items: pd.DataFrame,
    names: dict[str, str],
    *,
    algorithm: Literal["fpgrowth", "apriori"],
    min_support: float,
    min_confidence: float,
    max_len: int,
) -> tuple[pd.DataFrame, int]:
    """Rules with lift > 1 from (transaction_id, product_id) pairs; returns (rules, basket count)."""
    n_baskets = items["transaction_id"].nunique()
    if n_baskets < 2:
        raise NotEnoughData(f"{n_baskets} basket(s): association rules need at least two")
    encoded = one_hot(items)
    miner = fpgrowth if algorithm == "fpgrowth" else apriori
    itemsets = miner(encoded, min_support=min_support, use_colnames=True, max_len=max_len)
    if itemsets.empty or itemsets["itemsets"].map(len).max() < 2:
        return pd.DataFrame(columns=RULE_COLUMNS), n_baskets
    rules = association_rules(
        itemsets,
        num_itemsets=n_baskets,
        metric="confidence",
        min_threshold=min_confidence,
        return_metrics=["support", "confidence", "lift", "leverage", "conviction"],
    )
    rules = rules[rules["lift"] > 1].copy()
    if rules.empty:  # itemsets, but no rule reached the confidence and lift thresholds
        return pd.DataFrame(columns=RULE_COLUMNS), n_baskets
    return _ranked(rules, names, n_baskets), n_baskets


def _ranked(rules: pd.DataFrame, names: dict[str, str], n_baskets: int) -> pd.DataFrame:
    """Stable rank by score, then antecedents and consequents (sorted product ids) to break ties."""
    rules["antecedents"] = rules["antecedents"].map(sorted)
    rules["consequents"] = rules["consequents"].map(sorted)
    rules["antecedent_names"] = rules["antecedents"].map(lambda ids: [names.get(i, i) for i in ids])
    rules["consequent_names"] = rules["consequents"].map(lambda ids: [names.get(i, i) for i in ids])
    rules["baskets"] = (rules["support"] * n_baskets).round().astype("int64")
    rules["conviction"] = rules["conviction"].map(
        lambda v: math.inf if v is None or np.isinf(v) else float(v)
    )
    rules["score"] = rules["lift"] * rules["confidence"]
    rules["_a"] = rules["antecedents"].map(" ".join)
    rules["_c"] = rules["consequents"].map(" ".join)
    rules = rules.sort_values(["score", "_a", "_c"], ascending=[False, True, True], kind="stable")
    rules["rule_rank"] = np.arange(1, len(rules) + 1)
    return rules[RULE_COLUMNS].reset_index(drop=True)
