"""Run bookkeeping: deterministic outputs, atomic visibility, skipped runs for too little data."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from ml import jobs
from ml.jobs import run_all, run_association_rules, run_segmentation
from ml.runs import RunRecord, due, insert_run, prune_runs
from retail.dbt import run_dbt
from retail.settings import Settings
from stack import postgres

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
    # Two runs over the same data are not a week apart: no transitions to show (no hour-to-hour noise).
    assert ml_db.execute("select count(*) from ml.segment_transitions").fetchone() == (0,)


def _copy_run(conn: psycopg.Connection, run_id: object, shift: timedelta) -> object:
    """A succeeded segmentation run like `run_id`, its data window and timestamps moved by `shift`."""
    new_id = uuid.uuid4()
    conn.execute(
        """insert into ml.model_runs (run_id, kind, status, reason, parameters, data_from, data_to,
               row_counts, silhouette_scores, chosen_k, rule_count, started_at, finished_at, duration_s)
           select %(new)s, kind, status, reason, parameters, data_from + %(shift)s, data_to + %(shift)s,
               row_counts, silhouette_scores, chosen_k, rule_count, started_at + %(shift)s,
               finished_at + %(shift)s, duration_s
           from ml.model_runs where run_id = %(old)s""",
        {"new": new_id, "old": run_id, "shift": shift},
    )
    conn.execute(
        """insert into ml.customer_segments
           select %s, customer_id, last_purchase_at, recency_hours, frequency, monetary, r_score, f_score,
               m_score, rfm_score, rfm_segment, cluster, cluster_label
           from ml.customer_segments where run_id = %s""",
        (new_id, run_id),
    )
    return new_id


def test_transitions_compare_the_latest_run_with_one_a_week_back(
    ml_db: psycopg.Connection, ml_settings: Settings, first_runs: dict[str, RunRecord]
) -> None:
    latest_run = latest(ml_db, "segmentation")
    with ml_db.transaction():
        copies = [
            _copy_run(ml_db, latest_run, -timedelta(days=7)),
            _copy_run(ml_db, latest_run, -timedelta(days=3)),  # nearer, within the horizon: not compared
            # The latest again (run_number orders runs), so the two above are older.
            _copy_run(ml_db, latest_run, timedelta(0)),
        ]
    transitions = ml_db.execute(
        "select from_segment, to_segment, customers from ml.segment_transitions"
    ).fetchall()
    assert all(source == target for source, target, _ in transitions)
    assert sum(count for *_, count in transitions) == first_runs["segmentation"].row_counts["customers"]
    with ml_db.transaction():
        ml_db.execute("delete from ml.model_runs where run_id = any(%s)", (copies,))
    assert latest(ml_db, "segmentation") == latest_run


def test_retention_keeps_the_last_runs_and_one_per_week(ml_settings: Settings) -> None:
    settings = ml_settings.model_copy(update={"pg_database": "retail_ml_retention", "ml_keep_runs": 3})
    postgres.prepare(settings)
    start = datetime(2026, 9, 7, 12, tzinfo=UTC)  # a Monday
    runs = []
    with psycopg.connect(settings.writer_dsn) as conn, conn.transaction():
        for day in range(21):  # three weeks of daily runs, then a failed one
            record = RunRecord(kind="segmentation", parameters={}, started_at=start + timedelta(days=day))
            record.finished_at = record.started_at + timedelta(minutes=1)
            insert_run(conn, record)
            runs.append(record.run_id)
        failed = RunRecord(kind="segmentation", parameters={}, status="failed", reason="x")
        failed.finished_at = failed.started_at
        insert_run(conn, failed)
    assert prune_runs(settings, "segmentation") == 21 + 1 - 3 - 2 - 1
    with psycopg.connect(settings.writer_dsn) as conn:
        kept = {row[0] for row in conn.execute("select run_id from ml.model_runs where status = 'succeeded'")}
    # The last three (days 18-20) and the newest of each earlier week (Sundays: days 6 and 13).
    assert kept == {runs[i] for i in (6, 13, 18, 19, 20)}
    assert prune_runs(settings, "segmentation") == 0


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


def test_an_asset_triggered_run_is_due_only_after_the_minimum_interval(
    ml_settings: Settings, first_runs: dict[str, RunRecord]
) -> None:
    finished = first_runs["segmentation"].finished_at
    assert finished is not None
    assert not due(ml_settings, finished + timedelta(hours=1))
    assert due(ml_settings, finished + timedelta(hours=ml_settings.ml_min_interval_hours + 1, days=1))
