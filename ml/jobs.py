"""The ML jobs end to end: read the marts, fit, publish the run (or record why it was skipped).

    from ml.jobs import run_all
    records = run_all(get_settings())      # segmentation, then association rules

Too little data (no customers, a single basket, identical customers) is not an error: the run is
recorded as 'skipped' with the reason and the previous run stays the visible one. Any other error
records a 'failed' run and is raised again (Airflow retries it). A job reads the marts in one
REPEATABLE READ transaction (a consistent snapshot, even while dbt rebuilds them), and prunes old runs
after publishing (`ml.runs.prune_runs`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from ml import marts
from ml.association_rules import mine_rules
from ml.rfm import rfm_table
from ml.runs import NotEnoughData, RunRecord, copy_rows, prune_runs, publish, record_without_outputs
from ml.segmentation import N_INIT, RANDOM_STATE, cluster_customers
from retail.db import connect
from retail.settings import Settings

SEGMENT_COLUMNS = [
    "customer_id",
    "last_purchase_at",
    "recency_hours",
    "frequency",
    "monetary",
    "r_score",
    "f_score",
    "m_score",
    "rfm_score",
    "rfm_segment",
    "cluster",
    "cluster_label",
]


def segmentation_parameters(settings: Settings) -> dict[str, Any]:
    return {
        "k_min": settings.ml_kmeans_k_min,
        "k_max": settings.ml_kmeans_k_max,
        "silhouette_sample_size": settings.ml_silhouette_sample_size,
        "random_state": RANDOM_STATE,
        "n_init": N_INIT,
    }


def rules_parameters(settings: Settings) -> dict[str, Any]:
    return {
        "algorithm": settings.ml_rules_algorithm,
        "min_support": settings.ml_min_support,
        "min_confidence": settings.ml_min_confidence,
        "max_itemset_len": settings.ml_max_itemset_len,
        "max_basket_lines": settings.ml_max_basket_lines,
    }


@contextmanager
def marts_snapshot(settings: Settings) -> Iterator[psycopg.Connection]:
    """A read-only REPEATABLE READ transaction: every query of a job sees the marts as of its first one."""
    with connect(settings) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        with conn.transaction():
            yield conn


def _guarded(settings: Settings, record: RunRecord, body: Callable[[], RunRecord]) -> RunRecord:
    """Run a job body; too little data records a skipped run, any other error a failed one (re-raised)."""
    try:
        published = body()
    except NotEnoughData as reason:
        return record_without_outputs(settings, record, "skipped", str(reason))
    except Exception as error:
        record_without_outputs(settings, record, "failed", f"{type(error).__name__}: {error}")
        raise
    prune_runs(settings, record.kind)  # after the commit: a pruning error cannot unpublish the run
    return published


def run_segmentation(settings: Settings) -> RunRecord:
    """RFM + K-Means over every loyalty customer in fct_sales, published as one run."""
    record = RunRecord(kind="segmentation", parameters=segmentation_parameters(settings))

    def body() -> RunRecord:
        with marts_snapshot(settings) as conn:
            window = marts.data_window(conn)
            customers = marts.customer_sales(conn)
        record.data_from, record.data_to = window.start, window.end
        record.row_counts = {"customers": len(customers), "baskets": window.baskets}
        if customers.empty or window.end is None:
            raise NotEnoughData("no loyalty customers in marts.fct_sales")
        table = rfm_table(customers, window.end)
        clustering = cluster_customers(
            table, settings.ml_kmeans_k_min, settings.ml_kmeans_k_max, settings.ml_silhouette_sample_size
        )
        table["cluster"] = clustering.labels
        table["cluster_label"] = table["cluster"].map(clustering.cluster_labels)
        table["monetary"] = table["monetary"].round(2)
        record.silhouette_scores = {
            str(k): score for k, score in sorted(clustering.silhouette_scores.items())
        }
        record.chosen_k = clustering.k
        record.row_counts["segments"] = len(table)

        def write(conn: psycopg.Connection) -> None:
            rows = table[SEGMENT_COLUMNS].itertuples(index=False, name=None)
            copy_rows(
                conn,
                "ml.customer_segments",
                ["run_id", *SEGMENT_COLUMNS],
                ((record.run_id, *r) for r in rows),
            )

        return publish(settings, record, write)

    return _guarded(settings, record, body)


def run_association_rules(settings: Settings) -> RunRecord:
    """Frequent itemsets and rules over the baskets of fct_sales, published as one run."""
    record = RunRecord(kind="association_rules", parameters=rules_parameters(settings))

    def body() -> RunRecord:
        with marts_snapshot(settings) as conn:
            window = marts.data_window(conn)
            items, dropped = marts.basket_items(conn, settings.ml_max_basket_lines)
            names = marts.product_names(conn)
        record.data_from, record.data_to = window.start, window.end
        record.row_counts = {"baskets": int(items["transaction_id"].nunique()), "baskets_over_cap": dropped}
        rules, _ = mine_rules(
            items,
            names,
            algorithm=settings.ml_rules_algorithm,
            min_support=settings.ml_min_support,
            min_confidence=settings.ml_min_confidence,
            max_len=settings.ml_max_itemset_len,
        )
        record.rule_count = len(rules)
        record.row_counts["rules"] = len(rules)

        def write(conn: psycopg.Connection) -> None:
            columns = list(rules.columns)
            rows = rules.itertuples(index=False, name=None)
            copy_rows(
                conn, "ml.product_associations", ["run_id", *columns], ((record.run_id, *r) for r in rows)
            )

        return publish(settings, record, write)

    return _guarded(settings, record, body)


def run_all(settings: Settings) -> list[RunRecord]:
    return [run_segmentation(settings), run_association_rules(settings)]
