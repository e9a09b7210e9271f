"""`retail ml ...`: the ML jobs' command line (a Typer app the `retail` CLI mounts as `ml`).

    retail ml run                       # segmentation, then association rules (what the DAG does)
    retail ml run --only segmentation   # one job: segmentation or rules

Each job reads the marts, publishes one run in `ml.*` and prints a line per run (status, counts, k, rule
count, duration). A skipped run (too little data) is not an error; exit status 1 when a job failed or a
user-fixable error occurred (settings, database unreachable).
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated

import typer

from retail import cli_errors
from retail.db import DatabaseUnavailable
from retail.settings import SettingsError, get_settings

app = typer.Typer(
    help="ML jobs over the marts: RFM + K-Means segments, association rules.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def ml() -> None:
    """ML jobs over the marts: RFM + K-Means segments, association rules."""


class Job(StrEnum):
    segmentation = "segmentation"
    rules = "rules"


@app.command()
@cli_errors.fails_cleanly(SettingsError, DatabaseUnavailable)
def run(
    only: Annotated[Job | None, typer.Option(help="Run one job instead of both.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per run.")] = False,
) -> None:
    """Run the ML jobs now over the current marts and publish their runs."""
    from ml import jobs

    settings = get_settings()
    selected = [only] if only else list(Job)
    for job in selected:
        record = (
            jobs.run_segmentation(settings)
            if job is Job.segmentation
            else jobs.run_association_rules(settings)
        )
        summary = record.summary()
        if as_json:
            typer.echo(json.dumps(summary))
            continue
        details = f"k={record.chosen_k}" if record.kind == "segmentation" else f"rules={record.rule_count}"
        line = f"{record.kind}: {record.status} run {record.run_id} {summary['row_counts']} {details}"
        typer.echo(f"{line} in {record.duration_s:.1f} s" + (f" ({record.reason})" if record.reason else ""))
