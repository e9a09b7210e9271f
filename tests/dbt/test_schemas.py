"""Schemas per dbt layer and what the analyst role reads (README "For analysts", "Database").

dbt builds staging, intermediate, snapshots and marts into schemas of those names; `retail_analyst`
reads exactly `marts` and the documented `ml`/`ops` relations, and a relation dbt adds later follows
the same rule (default privileges). A database built with the old layout (every layer in `marts`)
moves to the new one through migration 050 without losing the snapshot's history.
"""

from __future__ import annotations

import json
import re

import psycopg
import pytest

from retail.db import MIGRATIONS_DIR, migrate
from retail.dbt import manifest_path, run_dbt
from retail.settings import PROJECT_ROOT, Settings

pytestmark = pytest.mark.integration

# What the analyst role reads besides marts (README "For analysts"): the ML outputs and the operational
# relations the dashboard's pages show.
ANALYST_ML_OPS = {
    "ml.model_runs",
    "ml.customer_segments",
    "ml.product_associations",
    "ml.latest_runs",
    "ml.customer_segments_latest",
    "ml.segment_transitions",
    "ml.product_associations_latest",
    "ml.product_recommendations",
    "ops.alerts",
    "ops.dag_runs",
    "ops.dead_letter_redacted",
    "ops.kafka_log_changes",
    "ops.kafka_log_ends",
    "ops.kafka_log_landed",
    "ops.landed_offsets",
    "ops.late_events",
    "ops.rejected_rows",
    "ops.serving_horizons",
    "ops.stream_failures",
    "ops.stream_progress",
    "ops.stream_status",
    "ops.table_freshness",
    "ops.task_runs",
}

# Every relation the session's role can select from, in schemas it may use (system schemas aside).
READABLE = """
select n.nspname || '.' || c.relname
from pg_class as c
join pg_namespace as n on n.oid = c.relnamespace
where c.relkind in ('r', 'p', 'v', 'm', 'f')
  and n.nspname not in ('pg_catalog', 'information_schema')
  and n.nspname not like 'pg\\_toast%'
  and has_schema_privilege(n.oid, 'USAGE')
  and has_table_privilege(c.oid, 'SELECT')
"""


def manifest_marts(settings: Settings) -> set[str]:
    """The models dbt builds in marts, from the build's manifest."""
    manifest = json.loads(manifest_path(settings).read_text(encoding="utf-8"))
    return {
        f"marts.{node['name']}"
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["schema"] == "marts"
    }


def readable(settings: Settings) -> set[str]:
    with psycopg.connect(settings.analyst_dsn, autocommit=True) as analyst:
        return {name for (name,) in analyst.execute(READABLE).fetchall()}


def layers(conn: psycopg.Connection) -> dict[str, str]:
    """Schema of each relation dbt built in any layer (dbt's scratch relations aside)."""
    found = conn.execute(
        "select c.relname, n.nspname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname in ('staging', 'intermediate', 'snapshots', 'marts') and c.relkind in ('r', 'v')"
    ).fetchall()
    return dict(found)


def test_each_layer_is_built_in_its_own_schema(built: object, dbt_writer: psycopg.Connection) -> None:
    assert built.success, built.exception  # type: ignore[attr-defined]
    schemas = layers(dbt_writer)
    assert {schema for name, schema in schemas.items() if name.startswith("stg_")} == {"staging"}
    assert schemas["snap_raw__products"] == "snapshots"
    assert {schema for name, schema in schemas.items() if not name.startswith(("stg_", "snap_"))} == {"marts"}


def test_analyst_reads_exactly_the_documented_relations(built: object, dbt_settings: Settings) -> None:
    marts = manifest_marts(dbt_settings)
    assert {"marts.fct_sales_live", "marts.fct_product_metrics_minute", "marts.rpt_reconciliation"} <= marts
    assert readable(dbt_settings) == marts | ANALYST_ML_OPS

    with psycopg.connect(dbt_settings.analyst_dsn, autocommit=True) as analyst:
        for relation in sorted(marts | ANALYST_ML_OPS):
            schema, name = relation.split(".")
            analyst.execute(f'select * from {schema}."{name}" limit 1').fetchall()

    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    guide = readme.split("## For analysts", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"`([a-z_]+(?:\.[a-z_]+)?)`", guide))
    undocumented = [
        relation
        for relation in sorted(marts | ANALYST_ML_OPS)
        if relation not in documented and relation.split(".")[1] not in documented
    ]
    assert undocumented == []


def test_new_relations_are_readable_in_marts_only(
    built: object, dbt_settings: Settings, dbt_writer: psycopg.Connection
) -> None:
    """Default privileges: a relation the writer (dbt) creates later is readable in marts, nowhere else
    (an ml/ops relation for analysts is granted by its migration)."""
    schemas = ("marts", "staging", "intermediate", "snapshots", "raw", "speed", "batch", "ml", "ops")
    try:
        for schema in schemas:
            dbt_writer.execute(f"create table {schema}.schema_test_probe (id integer)")
        assert {name for name in readable(dbt_settings) if name.endswith(".schema_test_probe")} == {
            "marts.schema_test_probe"
        }
    finally:
        for schema in schemas:
            dbt_writer.execute(f"drop table if exists {schema}.schema_test_probe")


def test_a_database_with_every_layer_in_marts_moves_to_the_new_layout(
    built: object, dbt_settings: Settings, dbt_writer: psycopg.Connection
) -> None:
    """The layout before migrations 050-051 (staging views and the snapshot in marts, readable by the
    analyst through marts' default privileges; rpt_reconciliation without its late-events columns) ends
    as the new one after `retail up`'s migrate and a dbt build: the snapshot keeps its history, and the
    live views built on staging views answer in between."""
    admin = psycopg.connect(dbt_settings.admin_dsn, autocommit=True)
    with admin:
        history = admin.execute("select * from snapshots.snap_raw__products order by dbt_scd_id").fetchall()
        assert history
        for name, schema in layers(dbt_writer).items():
            if schema != "marts":
                kind = "view" if name.startswith("stg_") else "table"
                admin.execute(f"alter {kind} {schema}.{name} set schema marts")
                admin.execute(f"grant select on marts.{name} to {dbt_settings.pg_analyst_user}")
        assert {schema for schema in layers(dbt_writer).values()} == {"marts"}
        admin.execute("alter table marts.rpt_reconciliation drop column explained_by_late_events")
        admin.execute("delete from ops.schema_migrations where version between 50 and 51")

    applied = migrate(dbt_settings, MIGRATIONS_DIR)

    assert applied == ["050_dbt_layer_schemas", "051_reconciliation_late_events_columns"]
    assert "marts.stg_raw__transactions" not in readable(dbt_settings)
    with psycopg.connect(dbt_settings.analyst_dsn, autocommit=True) as analyst:
        assert analyst.execute("select count(*) from marts.fct_sales_live").fetchone()[0] > 0
    build = run_dbt(dbt_settings, ["build"])
    assert build.success, build.exception
    schemas = layers(dbt_writer)
    assert {schema for name, schema in schemas.items() if name.startswith("stg_")} == {"staging"}
    assert schemas["snap_raw__products"] == "snapshots"
    assert (
        dbt_writer.execute("select * from snapshots.snap_raw__products order by dbt_scd_id").fetchall()
        == history
    )
    assert readable(dbt_settings) == manifest_marts(dbt_settings) | ANALYST_ML_OPS
    assert dbt_writer.execute(
        "select count(*) filter (where explained_by_late_events) from marts.rpt_reconciliation"
    ).fetchone() == (1,)
