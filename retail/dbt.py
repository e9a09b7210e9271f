"""dbt for the serving layer, run in-process with its connection taken from the platform settings.

`dbt_project/profiles.yml` holds no credential: it reads environment variables, which `profile_env`
builds from the settings (the writer role, which owns the marts); Cosmos builds its profile from the
same function. `run_dbt` sets them for one `dbtRunner` invocation and restores the environment after.
Target and log folders go under `<state_dir>/dbt/`, so stacks never share parse state and nothing is
written into the source tree.

    result = run_dbt(settings, ["build"])
    python -m retail.dbt build --select marts      # any dbt arguments, with the default settings
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from retail.settings import PROJECT_ROOT, Settings, get_settings

if TYPE_CHECKING:  # dbt is heavy to import: only the functions that run it import it
    from dbt.cli.main import dbtRunnerResult

DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
# dbtRunner is not safe to invoke concurrently in one process (and the environment is shared).
_INVOCATION_LOCK = threading.Lock()


def dbt_state_dir(settings: Settings) -> Path:
    """Where dbt writes its target (manifest, run results, docs) and logs for this stack."""
    return settings.state_dir / "dbt"


# Every dbt run (CLI and Airflow): no internet on the platform's machines, so dbt must neither phone home
# nor check versions; sessions in UTC, as dbt snapshots stamp versions with a zone-less now().
DBT_SESSION_ENV = {"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DBT_VERSION_CHECK": "false", "PGTZ": "UTC"}


def profile_env(settings: Settings, project_dir: Path = DBT_PROJECT_DIR) -> dict[str, str]:
    """The environment variables `dbt_project/profiles.yml` reads, plus dbt's own folder settings.

    The password variable has dbt's `DBT_ENV_SECRET_` prefix, so dbt scrubs it from its logs.
    """
    host, port = settings.pg_host_port
    password = settings.pg_writer_password.get_secret_value() if settings.pg_writer_password else ""
    state = dbt_state_dir(settings)
    return {
        "DBT_PROJECT_DIR": str(project_dir),
        "DBT_PROFILES_DIR": str(project_dir),
        "DBT_TARGET_PATH": str(state / "target"),
        "DBT_LOG_PATH": str(state / "logs"),
        **DBT_SESSION_ENV,
        "RETAIL_DBT_HOST": host,
        "RETAIL_DBT_PORT": str(port),
        "RETAIL_DBT_DATABASE": settings.pg_database,
        "RETAIL_DBT_USER": settings.pg_writer_user,
        "DBT_ENV_SECRET_RETAIL_DBT_PASSWORD": password,
        "RETAIL_DBT_SCHEMA": "marts",
    }


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def manifest_path(settings: Settings) -> Path:
    return dbt_state_dir(settings) / "target" / "manifest.json"


# dbt commands that create or change relations: their callers hold the writer lock (retail.writer_lock).
_WRITING_COMMANDS = frozenset({"build", "run", "snapshot", "seed", "clone", "retry"})


def writes_relations(args: list[str]) -> bool:
    """Whether a dbt command line builds relations (and so must hold the writer lock)."""
    command = next((arg for arg in args if not arg.startswith("-")), None)
    return command in _WRITING_COMMANDS


def _caller_module() -> str:
    """The first module up the stack other than dbt-common's behavior_flags (what dbt-common computes)."""
    frame = sys._getframe(1)
    while frame is not None:
        name = frame.f_globals.get("__name__")
        if name and name != "dbt_common.behavior_flags":
            return name
        frame = frame.f_back
    return "Unknown"


def cheap_behavior_flag_source() -> None:
    """Make dbt-common name a behavior flag's source without `inspect.stack()`.

    dbt-common 1.39 calls `inspect.stack()` (source lines of every frame, plus `inspect.getmodule`, a scan
    of `sys.modules`) for each flag at every adapter registration, i.e. at every dbt invocation. In a
    process that has Airflow, Spark and Cosmos loaded that was seconds per invocation, tens of them per
    hourly run (bench/batch_dag.py, README Performance). The name only labels a log event; the frame's
    globals give the same one. Idempotent; called before dbt runs in-process.
    """
    from dbt_common import behavior_flags

    behavior_flags.BehaviorFlagRendered._default_source = staticmethod(_caller_module)  # type: ignore[method-assign]


def run_dbt(settings: Settings, args: list[str], project_dir: Path = DBT_PROJECT_DIR) -> dbtRunnerResult:
    """Invoke dbt (e.g. `["build"]`, `["source", "freshness"]`) against the settings' database.

    Returns dbt's result; `result.success` is False when a node failed, `result.exception` is set
    when dbt could not run at all (bad project, unreachable database).
    """
    from dbt.cli.main import dbtRunner

    cheap_behavior_flag_source()
    env = profile_env(settings, project_dir)
    Path(env["DBT_TARGET_PATH"]).mkdir(parents=True, exist_ok=True)
    with _INVOCATION_LOCK, _environment(env):
        return dbtRunner().invoke(list(args))


# What a serving refresh builds: the incremental facts and daily rollups under the *_live views.
SERVING_MODELS = ("fct_sales", "fct_refunds", "agg_sales_daily", "agg_kpis_daily", "agg_customer_daily")


def refresh_serving(settings: Settings) -> dbtRunnerResult:
    """Build the live views' tables incrementally (no tests, no views, no dimensions).

    Between two full builds this moves each table's serving horizon forward, so the live views compute
    only the last few minutes from raw; the full hourly build tests what it wrote.
    """
    return run_dbt(settings, ["run", "--select", *SERVING_MODELS])


def serve_docs(settings: Settings, port: int, host: str | None = None) -> None:
    """Generate the docs site (catalog from the live database) and serve it until interrupted."""
    generated = run_dbt(settings, ["docs", "generate"])
    if not generated.success:
        raise RuntimeError(f"dbt docs generate failed: {generated.exception or 'see the dbt log'}")
    run_dbt(settings, ["docs", "serve", "--port", str(port), "--host", host or settings.host, "--no-browser"])


def main(argv: list[str]) -> int:
    result = run_dbt(get_settings(), argv)
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
