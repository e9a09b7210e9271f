"""`retail produce ...`: the producer's command line (a Typer app the `retail` CLI mounts).

    retail produce live --rate 50                  # until Ctrl-C, then flush and report
    retail produce backfill --days 30              # 30 days of history, as fast as possible
    retail produce replay --csv producer/data/sample_sales.csv --timestamp-format "%m/%d/%Y %H:%M"

Each command reads the platform settings (`retail.settings.get_settings()`), prints a summary of what
was sent, and exits 1 when a message could not be delivered or a user-fixable error occurred.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from kafka.errors import KafkaError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from producer.backfill import DEFAULT_SEED, BackfillError, backfill
from producer.config import (
    Faults,
    MalformedKind,
    SimulationConfig,
    SimulationConfigError,
    load_simulation_config,
)
from producer.kafka_sink import IdempotenceDisabledError
from producer.live import live
from producer.replay import ReplayError, parse_mapping, replay
from producer.summary import ProduceSummary
from retail import cli_errors
from retail.settings import SettingsError, get_settings

app = typer.Typer(
    help="Produce retail events into Kafka: live, historical backfill, or replay of a sales CSV.",
    no_args_is_help=True,
    add_completion=False,
)

USER_ERRORS = (
    SettingsError,
    SimulationConfigError,
    ReplayError,
    BackfillError,
    IdempotenceDisabledError,
    KafkaError,
    ValueError,
)

ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="Simulation YAML (default: producer/simulation.yaml).")
]
LateOption = Annotated[
    float | None, typer.Option(help="Test knob: share of events sent late (event time kept).", min=0, max=1)
]
MaxLatenessOption = Annotated[
    float | None, typer.Option(help="Test knob: maximum lateness in seconds.", min=0)
]
DuplicateOption = Annotated[
    float | None, typer.Option(help="Test knob: share of events sent twice (same event_id).", min=0, max=1)
]
MalformedOption = Annotated[
    list[str] | None,
    typer.Option(
        "--malformed",
        help="Test knob: KIND=COUNT, exactly COUNT malformed messages of KIND (repeatable); kinds: "
        + ", ".join(kind.value for kind in MalformedKind),
    ),
]


fails_cleanly = cli_errors.fails_cleanly(*USER_ERRORS)


def parse_malformed(pairs: list[str] | None) -> dict[MalformedKind, int]:
    counts: dict[MalformedKind, int] = {}
    for pair in pairs or []:
        kind, separator, count = pair.partition("=")
        try:
            counts[MalformedKind(kind.strip())] = int(count) if separator else 1
        except ValueError:
            raise typer.BadParameter(
                f"{pair!r}: expected KIND=COUNT with KIND one of {', '.join(k.value for k in MalformedKind)}",
                param_hint="--malformed",
            ) from None
    return counts


def build_faults(
    config: SimulationConfig,
    late_fraction: float | None,
    max_lateness: float | None,
    duplicate_fraction: float | None,
    malformed: list[str] | None,
) -> Faults:
    """The config's `faults` section with the command-line knobs applied on top."""
    update: dict[str, object] = {}
    if late_fraction is not None:
        update["late_fraction"] = late_fraction
    if max_lateness is not None:
        update["max_lateness_seconds"] = max_lateness
        update["min_lateness_seconds"] = min(config.faults.min_lateness_seconds, max_lateness)
    if duplicate_fraction is not None:
        update["duplicate_fraction"] = duplicate_fraction
    if malformed:
        update["malformed"] = parse_malformed(malformed)
    return Faults.model_validate({**config.faults.model_dump(), **update})


def print_summary(summary: ProduceSummary) -> None:
    for line in summary.lines():
        typer.echo(line)
    if summary.failed:
        raise typer.Exit(1)


@app.command("live")
@fails_cleanly
def live_command(
    rate: Annotated[
        float, typer.Option(help="Mean transactions per second (Poisson arrivals).", min=0.001)
    ] = 10.0,
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (default: Ctrl-C).")
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Random seed (default: random, so ids never repeat).")
    ] = None,
    config: ConfigOption = None,
    late_fraction: LateOption = None,
    max_lateness: MaxLatenessOption = None,
    duplicate_fraction: DuplicateOption = None,
    malformed: MalformedOption = None,
) -> None:
    """Send transactions as they happen, until Ctrl-C; then flush and report counts."""
    simulation = load_simulation_config(config)
    faults = build_faults(simulation, late_fraction, max_lateness, duplicate_fraction, malformed)
    settings = get_settings()
    typer.echo(f"Producing ~{rate:g} transactions/s to {settings.bootstrap_servers}; Ctrl-C to stop.")

    def report(summary: ProduceSummary) -> None:
        typer.echo(f"  {summary.transactions:,} transactions, {summary.refunds:,} refunds so far")

    summary = live(
        settings, rate, seed=seed, duration_s=duration, config=simulation, faults=faults, report=report
    )
    print_summary(summary)


@app.command("backfill")
@fails_cleanly
def backfill_command(
    days: Annotated[float, typer.Option(help="Days of history to generate, ending now.", min=0.001)] = 30.0,
    seed: Annotated[int, typer.Option(help="Same seed and window ⇒ identical events.")] = DEFAULT_SEED,
    end: Annotated[
        datetime | None,
        typer.Option(
            help="End of the window, UTC (default: now, to the minute).",
            formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"],
        ),
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes (default: CPU count).", min=1)] = None,
    customers: Annotated[int | None, typer.Option(help="Override the population size.", min=1)] = None,
    config: ConfigOption = None,
    late_fraction: LateOption = None,
    max_lateness: MaxLatenessOption = None,
    duplicate_fraction: DuplicateOption = None,
    malformed: MalformedOption = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Generate D days of past events as fast as the broker takes them (several worker processes)."""
    simulation = load_simulation_config(config)
    if customers:
        simulation = simulation.model_copy(update={"customers": customers})
    faults = build_faults(simulation, late_fraction, max_lateness, duplicate_fraction, malformed)
    settings = get_settings()
    window_end = end.replace(tzinfo=UTC) if end else None
    with Progress(
        TextColumn("backfill"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), disable=not progress
    ) as bar:
        task = bar.add_task("backfill", total=None)

        def advance(sent: int, total: int) -> None:
            bar.update(task, completed=sent, total=max(total, sent))

        summary = backfill(
            settings,
            days,
            seed=seed,
            end=window_end,
            workers=workers,
            config=simulation,
            faults=faults,
            progress=advance,
        )
    print_summary(summary)


@app.command("replay")
@fails_cleanly
def replay_command(
    csv: Annotated[
        Path, typer.Option("--csv", help="Sales log: one row per line item.", exists=True, dir_okay=False)
    ],
    mapping: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            help="COLUMN=FIELD, repeated; fields: transaction_id, event_ts, customer_id, product_id, "
            "quantity, unit_price, store_id. Default: the UCI Online Retail columns (InvoiceNo, ...).",
        ),
    ] = None,
    speed: Annotated[str, typer.Option(help="original, Nx (e.g. 60x) or max.")] = "max",
    timestamp_format: Annotated[
        str | None, typer.Option(help="strptime format of the timestamps (default: ISO 8601).")
    ] = None,
    timezone: Annotated[str, typer.Option(help="Time zone of timestamps without an offset.")] = "UTC",
    store: Annotated[str, typer.Option(help="Store id for rows without a store column.")] = "S001",
    rejects: Annotated[
        Path | None, typer.Option(help="Where to write skipped rows (default: <state dir>/replay/).")
    ] = None,
) -> None:
    """Replay a point-of-sale export as basket events, in timestamp order; unknown rows are reported."""
    settings = get_settings()
    summary = replay(
        settings,
        csv,
        mapping=parse_mapping(mapping),
        speed=speed,
        timestamp_format=timestamp_format,
        timezone=timezone,
        store_id=store,
        rejects_path=rejects,
    )
    print_summary(summary)
