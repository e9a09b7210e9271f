"""Command line of the speed layer, mounted by `stack.cli`:

    retail stream [--reset-checkpoints]
    retail batch [--start HOUR --end HOUR]
    retail dlq list [--reason R] [--limit N]
    retail dlq replay --reason R [--limit N]

Run standalone with `python -m spark.cli ...`.
"""

from __future__ import annotations

from typing import Annotated

import typer

from retail.db import DatabaseUnavailable
from retail.settings import SettingsError, load_settings
from spark import dead_letter
from spark.validation import FIXABLE_REASONS, REASONS

app = typer.Typer(
    help="Speed layer: streaming job and dead letters.", no_args_is_help=True, add_completion=False
)
dlq_app = typer.Typer(help="Inspect and replay ops.dead_letter.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")


def _fail(error: Exception) -> typer.Exit:
    for line in str(error).splitlines():
        typer.echo(f"error: {line}", err=True)
    return typer.Exit(1)


@app.command()
def stream(
    reset_checkpoints: Annotated[
        bool,
        typer.Option(
            "--reset-checkpoints",
            help="Move the checkpoints (and the lake's file-sink logs) aside and exit; the next start "
            "re-reads every topic from its earliest offset. Use after the broker lost data.",
        ),
    ] = False,
) -> None:
    """Run the speed layer (Kafka -> Spark -> PostgreSQL and the lake) until stopped."""
    from spark import streaming_job  # imports pyspark: only when this command runs

    try:
        settings = load_settings()
        if reset_checkpoints:
            backup = streaming_job.reset_checkpoints(settings)
            typer.echo(f"checkpoints moved to {backup}" if backup else "no checkpoints to move")
            return
        code = streaming_job.main(settings)
    except (SettingsError, DatabaseUnavailable, streaming_job.StreamFailed) as error:
        raise _fail(error) from None
    raise typer.Exit(code)


@app.command()
def batch(
    start: Annotated[
        str | None, typer.Option(help="First hour to recompute, UTC (e.g. 2026-11-24T09:00Z).")
    ] = None,
    end: Annotated[str | None, typer.Option(help="Hour after the last one to recompute.")] = None,
) -> None:
    """Recompute minute metrics of closed hours from the lake (retail_batch's Spark step), by hand.

    Without --start/--end it closes what the hourly run closes. It holds the writer lock
    (retail.writer_lock): it waits while Airflow or another `retail` command writes the batch tables.
    """
    from retail.writer_lock import WriterLockTimeout, writer_lock
    from spark import batch_job  # imports pyspark: only when this command runs

    args = [*(["--start", start] if start else []), *(["--end", end] if end else [])]
    try:
        with writer_lock(load_settings(), "retail batch"):
            code = batch_job.main(args)
    except (SettingsError, DatabaseUnavailable, WriterLockTimeout) as error:
        raise _fail(error) from None
    raise typer.Exit(code)


@dlq_app.command("list")
def list_dead_letters(
    reason: Annotated[str | None, typer.Option(help=f"Only this reason: {', '.join(REASONS)}.")] = None,
    limit: Annotated[int, typer.Option(help="How many of the latest records to show.")] = 20,
) -> None:
    """Counts per reason and topic, then the latest dead letters."""
    try:
        settings = load_settings()
        totals = dead_letter.counts(settings)
        records = dead_letter.latest(settings, reason, limit)
    except (SettingsError, DatabaseUnavailable) as error:
        raise _fail(error) from None
    if not totals:
        typer.echo("no dead letters")
        return
    typer.echo(f"{'reason':<24} {'topic':<24} {'pending':>8} {'replayed':>8}")
    for row in totals:
        typer.echo(f"{row.reason:<24} {row.topic:<24} {row.pending:>8} {row.replayed:>8}")
    typer.echo("")
    for record in records:
        state = "replayed" if record.replayed_at else "pending"
        typer.echo(
            f"#{record.dead_letter_id} {record.topic}[{record.kafka_partition}]@{record.kafka_offset} "
            f"{record.reason} ({state}): {record.error[:160]}"
        )


@dlq_app.command("replay")
def replay_dead_letters(
    reason: Annotated[str, typer.Option(help=f"Reason to replay, e.g. {' or '.join(FIXABLE_REASONS)}.")],
    limit: Annotated[int | None, typer.Option(help="At most this many records.")] = None,
) -> None:
    """Re-submit pending dead letters with REASON to their topics (after fixing the cause)."""
    if reason not in REASONS:
        raise _fail(ValueError(f"unknown reason {reason!r}; one of: {', '.join(REASONS)}"))
    try:
        sent = dead_letter.replay(load_settings(), reason, limit)
    except (SettingsError, DatabaseUnavailable) as error:
        raise _fail(error) from None
    typer.echo(f"replayed {sent} dead letter(s) with reason {reason}")


if __name__ == "__main__":
    app()
