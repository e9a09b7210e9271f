"""The `retail` command line: run the local stack and the platform's jobs.

    retail up          start every service, wait until healthy, print addresses and logins
    retail demo        `up`, then load demo data
    retail produce     live events, historical backfill or CSV replay into Kafka
    retail stream      the speed layer (Spark Structured Streaming), also started by `up`
    retail batch       close hours from the lake (the hourly run's plan), or recompute --start/--end
    retail dlq         list and replay dead-lettered events
    retail ml run      customer segmentation and association rules over the marts
    retail status      one line per component
    retail logs NAME   a service's log
    retail down        stop everything; data stays in the state folder
    retail dbt ARGS    run dbt against the platform's database (e.g. `retail dbt build`)
    retail docs        generate and serve the dbt docs site
    retail db migrate  apply pending database migrations
    retail db init     migrate, load dimensions, create Airflow's database (docker compose's init)
    retail airflow prepare  Airflow's config, metadata and writer pool (docker compose's airflow-init)
    retail secrets     generate local passwords (docker compose reads the same file)

Errors a user can fix print one line, `error: <cause>; <fix>`, and exit with status 1.
"""

from __future__ import annotations

import contextlib
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from dimensions import load as dimensions
from ml.cli import app as ml_app
from producer.cli import app as produce_app
from retail import cli_errors
from retail.db import DatabaseUnavailable, MigrationError, migrate
from retail.settings import Settings, SettingsError, load_settings
from retail.writer_lock import WriterLockTimeout, writer_lock
from spark.cli import batch as batch_command
from spark.cli import dlq_app
from spark.cli import stream as stream_command
from stack import airflow, stack
from stack.errors import StackError
from stack.secrets import ensure_secrets, write_compose_secrets
from stack.supervisor import log_path, tail

app = typer.Typer(help="Real-time retail analytics platform.", no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")
airflow_app = typer.Typer(help="Airflow preparation (docker compose's airflow-init).", no_args_is_help=True)
app.add_typer(airflow_app, name="airflow")
app.add_typer(produce_app, name="produce", help="Produce events into Kafka: live, backfill, replay.")
app.command("stream")(stream_command)
app.command("batch")(batch_command)
app.add_typer(ml_app, name="ml", help="ML jobs: RFM + K-Means segments, association rules.")
app.add_typer(dlq_app, name="dlq", help="Dead-lettered events: list them, replay the fixable ones.")

USER_ERRORS = (StackError, SettingsError, DatabaseUnavailable, MigrationError, WriterLockTimeout)
fails_cleanly = cli_errors.fails_cleanly(*USER_ERRORS)


def settings() -> Settings:
    return load_settings()


@app.command()
@fails_cleanly
def up() -> None:
    """Start every service and wait for its health check; harmless when already up."""
    started = time.monotonic()
    current = stack.up(settings(), report=lambda line: typer.echo(f"  {line}"))
    typer.echo(f"Platform up in {time.monotonic() - started:.1f}s.")
    host, port = current.pg_host_port
    password = current.pg_analyst_password.get_secret_value() if current.pg_analyst_password else "<from env>"
    typer.echo(f"  PostgreSQL  {host}:{port}/{current.pg_database}")
    typer.echo(
        f"              analysts: psql postgresql://{current.pg_analyst_user}:{password}@{host}:{port}/"
        f"{current.pg_database}"
    )
    typer.echo(f"              other logins (writer, admin): {current.secrets_file}")
    typer.echo(
        f"  Kafka       {current.bootstrap_servers}  topics: {current.transactions_topic}, "
        f"{current.refunds_topic}"
    )
    if current.spark_cluster:
        typer.echo(
            f"  Spark       {current.spark_master_url}  master UI http://{current.host}:"
            f"{current.spark_master_ui_port}, worker UI http://{current.host}:{current.spark_worker_ui_port}"
        )
    if current.airflow_enabled:
        for line in airflow.login_lines(current):
            typer.echo(line)
    if current.dashboard_enabled:
        typer.echo(f"  Dashboard   {current.dashboard_url}  (Streamlit; reads marts, ml, ops as the analyst)")


@app.command()
@fails_cleanly
def demo() -> None:
    """Bring the platform up, backfill demo history, and build marts and ML on it; safe to run again."""
    up()
    current = ensure_secrets(settings())
    marker = current.state_dir / "demo-loaded.json"
    if marker.is_file():
        typer.echo(f"Demo history was sent before ({marker}); not sending it twice.")
    else:
        from producer.backfill import backfill

        typer.echo(f"Backfilling {current.demo_days:g} days of simulated history into Kafka ...")
        summary = backfill(current, current.demo_days)
        for line in summary.lines():
            typer.echo(f"  {line}")
        if summary.failed:
            raise StackError(
                f"{summary.failed} demo events were not delivered; see the summary above and rerun"
            )
        marker.write_text(json.dumps(summary.to_dict(), default=str, indent=2))
    if not current.stream_enabled:
        typer.echo(
            "The speed layer is off (RETAIL_STREAM_ENABLED=false): marts and ML need it; stopping here."
        )
        return
    expected = json.loads(marker.read_text())["transactions"]
    landed = _wait_for_transactions(current, expected, timeout_s=600)
    typer.echo(f"Speed layer landed {landed:,} of {expected:,} demo baskets in raw.transactions.")

    from ml.jobs import run_all

    # What retail_batch does every hour, over the whole demo history at once. Under the writer lock:
    # Airflow's first scheduled retail_batch run (started by `up`) queues behind it instead of racing it.
    with writer_lock(current, "retail demo"):
        _demo_batch_and_marts(current)
    for record in run_all(current):
        typer.echo(f"  ml {record.kind}: {record.status}" + (f" ({record.reason})" if record.reason else ""))
    typer.echo(
        "Demo ready: query the marts as retail_analyst (README: For analysts), `retail docs` for lineage."
    )
    if current.dashboard_enabled:
        typer.echo(f"Dashboard: {current.dashboard_url}")


def _demo_batch_and_marts(current: Settings) -> None:
    """Recompute the demo history's closed hours from the lake, then build the marts."""
    from retail.dbt import run_dbt
    from spark import batch_job
    from spark.hours import closing_cutoff, floor_hour

    now = datetime.now(UTC)
    first_hour = floor_hour(now - timedelta(days=current.demo_days + 1))
    hours = batch_job.HourRange(first_hour, closing_cutoff(current, now))
    typer.echo(f"Batch layer: recomputing {len(hours.hours())} closed hours from the lake (Spark) ...")
    for attempt in range(12):  # the lake's file sink commits every RETAIL_STREAM_LAKE_TRIGGER_S
        try:
            result = batch_job.recompute_hours(current, hours)
            break
        except batch_job.BatchJobError as error:
            if attempt == 11:
                raise StackError(str(error)) from None
            typer.echo(f"  waiting for the lake: {error}")
            time.sleep(10)
    typer.echo(f"  {result.windows:,} product-minute windows, {result.hours} hours closed")
    typer.echo("Building the marts (dbt build) ...")
    if not run_dbt(current, ["build", "--quiet"]).success:
        raise StackError("dbt build failed on the demo data; see .retail/dbt/logs/dbt.log")


def _wait_for_transactions(current: Settings, expected: int, timeout_s: float) -> int:
    """Poll until the speed layer has landed `expected` baskets (or the timeout passes); returns the count."""
    from retail.db import connect

    deadline = time.monotonic() + timeout_s
    while True:
        with connect(current, "writer") as conn:
            landed = conn.execute("select count(*) from raw.transactions").fetchone()[0]  # type: ignore[index]
        if landed >= expected or time.monotonic() > deadline:
            return landed
        time.sleep(2)


@app.command()
@fails_cleanly
def down() -> None:
    """Stop every service; databases and logs stay in the state folder."""
    current = settings()
    if stack.down(current, report=typer.echo):
        typer.echo(f"Platform stopped; data kept in {current.state_dir}.")
    else:
        typer.echo("Nothing was running.")


@app.command()
@fails_cleanly
def status() -> None:
    """One line per component: state, port, pid, and the last error of a failed one."""
    for component in stack.status(settings()):
        typer.echo(component.line())


@app.command()
@fails_cleanly
def logs(
    name: Annotated[str, typer.Argument(help="Service name, as listed by `retail status`.")],
    lines: Annotated[int, typer.Option("--lines", "-n", help="How many lines from the end.")] = 50,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines.")] = False,
) -> None:
    """Print the end of a service's log."""
    current = settings()
    known = [service.name for service in stack.services(current)]
    if name not in known:
        raise StackError(f"no service named {name!r}; choose one of: {', '.join(known)}")
    path = log_path(current, name)
    if not path.is_file():
        raise StackError(f"{name} has no log yet at {path}; start it with `retail up`")
    for line in tail(path, lines):
        typer.echo(line)
    if follow:
        with path.open("rb") as handle:
            handle.seek(0, 2)
            while True:
                chunk = handle.readline()
                if chunk:
                    typer.echo(chunk.decode(errors="replace").rstrip("\n"))
                else:
                    time.sleep(0.5)


@app.command()
@fails_cleanly
def secrets() -> None:
    """Generate the local passwords into the state folder without starting anything (for docker compose)."""
    current = ensure_secrets(settings())
    folder = write_compose_secrets(current)
    typer.echo(f"Secrets in {current.secrets_file} (mode 0600); docker compose's secret files in {folder}.")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@fails_cleanly
def dbt(context: typer.Context) -> None:
    """Run dbt in dbt_project/ against the platform's database, e.g. `retail dbt build --select marts`."""
    from retail.dbt import run_dbt, writes_relations

    current, args = settings(), list(context.args)
    # Commands that build relations wait for the writer lock; ls, parse, docs, compile do not.
    with writer_lock(current, "retail dbt") if writes_relations(args) else contextlib.nullcontext():
        result = run_dbt(current, args)
    if not result.success:
        raise typer.Exit(1)


@app.command()
@fails_cleanly
def docs(
    port: Annotated[
        int | None, typer.Option(help="Port of the docs site [default: RETAIL_DBT_DOCS_PORT].")
    ] = None,
) -> None:
    """Generate the dbt docs site (lineage, every model and column) and serve it until Ctrl-C."""
    from retail.dbt import serve_docs

    current = settings()
    chosen = port or current.dbt_docs_port
    typer.echo(f"dbt docs: http://{current.host}:{chosen}  (Ctrl-C stops)")
    serve_docs(current, chosen)


@db_app.command("init")
@fails_cleanly
def db_init() -> None:
    """Migrate, load the dimensions when empty and create Airflow's role and database (compose init)."""
    current = settings()
    applied = migrate(current)
    loaded = dimensions.load_if_empty(current)
    if current.airflow_enabled:
        airflow.ensure_database(current)
    typer.echo(f"Migrations applied: {len(applied)}; dimension files loaded: {len(loaded)}.")


@airflow_app.command("prepare")
@fails_cleanly
def airflow_prepare() -> None:
    """Airflow's config files, metadata migration and writer pool (compose airflow-init); needs only
    Airflow's own login, `retail db init` created it."""
    current = settings()
    airflow.write_config(current)
    airflow.migrate_metadata(current)
    airflow.ensure_writer_pool(current)
    typer.echo(f"Airflow prepared in {current.airflow_home}.")


@db_app.command("migrate")
@fails_cleanly
def db_migrate() -> None:
    """Apply pending migrations from db/migrations (each in its own transaction)."""
    applied = migrate(settings())
    typer.echo("Applied: " + ", ".join(applied) if applied else "Database is up to date.")


if __name__ == "__main__":
    app()
