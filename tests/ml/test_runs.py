"""Run bookkeeping: deterministic outputs, atomic visibility, skipped runs for too little data."""

from __future__ import annotations

import psycopg
import pytest

from ml import jobs
from ml.jobs import run_all, run_association_rules, run_segmentation
from ml.runs import RunRecord
from retail.dbt import run_dbt
from retail.settings import Settings
from retail.stack import postgres

pytestmark = pytest.mark.integration

SEGMENT_OUTPUT = "select {cols} from ml.customer_segments where run_id = %s order by customer_id"
RULE_OUTPUT = "select {cols} from ml.product_associations where run_id = %s order by rule_rank"


def outputs(conn: psycopg.Connection, run_id: object, query: str) -> list[tuple]:
    """Every column of a run's rows except run_id."""
    table = "customer_segments" if "customer_segments" in query else "product_associations"
    columns = [
        name
        for (name,) in conn.execute(
            "select column_name from information_schema.columns where table_schema = 'ml'"
            " and table_name = %s and column_name <> 'run_id' order by ordinal_position",
            (table,),
        ).fetchall()
    ]
    return conn.execute(query.format(cols=", ".join(columns)), (run_id,)).fetchall()


def latest(conn: psycopg.Connection, kind: str) -> object:
    row = conn.execute("select run_id from ml.latest_runs where kind = %s", (kind,)).fetchone()
    return row[0] if row else None


def test_runs_are_deterministic_and_transitions_show_no_moves(
    ml_db: psycopg.Connection, ml_settings: Settings, first_runs: dict[str, RunRecord]
) -> None:
    second = {record.kind: record for record in run_all(ml_settings)}
    for kind, query in (("segmentation", SEGMENT_OUTPUT), ("association_rules", RULE_OUTPUT)):
        before = outputs(ml_db, first_runs[kind].run_id, query)
        after = outputs(ml_db, second[kind].run_id, query)
        assert before and before == after, kind
        assert second[kind].silhouette_scores == first_runs[kind].silhouette_scores
        assert latest(ml_db, kind) == second[kind].run_id
    transitions = ml_db.execute(
        "select from_segment, to_segment, customers from ml.segment_transitions"
    ).fetchall()
    assert all(source == target for source, target, _ in transitions)
    assert sum(count for *_, count in transitions) == first_runs["segmentation"].row_counts["customers"]


def test_a_run_failing_mid_write_leaves_the_previous_run_visible(
    ml_db: psycopg.Connection,
    ml_settings: Settings,
    first_runs: dict[str, RunRecord],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    visible = latest(ml_db, "segmentation")
    rows_before = ml_db.execute("select count(*) from ml.customer_segments_latest").fetchone()
    real_copy = jobs.copy_rows

    def copy_then_fail(conn: psycopg.Connection, table: str, columns: list[str], rows: object) -> None:
        real_copy(conn, table, columns, rows)  # every row written, then the run breaks before commit
        raise RuntimeError("disk full")

    monkeypatch.setattr(jobs, "copy_rows", copy_then_fail)
    with pytest.raises(RuntimeError, match="disk full"):
        run_segmentation(ml_settings)
    assert latest(ml_db, "segmentation") == visible
    assert ml_db.execute("select count(*) from ml.customer_segments_latest").fetchone() == rows_before
    failed = ml_db.execute(
        "select run_id, reason from ml.model_runs where kind = 'segmentation' and status = 'failed'"
    ).fetchall()
    assert [reason for _, reason in failed] == ["RuntimeError: disk full"]
    assert ml_db.execute(
        "select count(*) from ml.customer_segments where run_id = %s", (failed[0][0],)
    ).fetchone() == (0,)


def test_empty_marts_record_skipped_runs_with_the_reason(platform: Settings) -> None:
    settings = platform.model_copy(update={"pg_database": "retail_ml_empty"})
    postgres.prepare(settings)
    assert run_dbt(settings, ["build"]).success
    segmentation, rules = run_segmentation(settings), run_association_rules(settings)
    assert (segmentation.status, segmentation.reason) == (
        "skipped",
        "no loyalty customers in marts.fct_sales",
    )
    assert (rules.status, rules.reason) == ("skipped", "0 basket(s): association rules need at least two")
    with psycopg.connect(settings.analyst_dsn) as conn:
        assert conn.execute("select count(*) from ml.latest_runs").fetchone() == (0,)
        assert conn.execute("select status, count(*) from ml.model_runs group by 1").fetchall() == [
            ("skipped", 2)
        ]
