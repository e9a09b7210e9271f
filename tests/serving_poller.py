"""A poller querying every relation the analyst sees in `marts`, for the outage tests of rebuilds.

Shared by the `retail dbt build` test (tests/dbt) and the hourly `retail_batch` run's test (tests/dags):
both assert that no query fails while a writer rebuilds the marts (tables, `*_live` views, the serving
view `fct_product_metrics_minute`).

Usage::

    with MartPoller(settings) as poller:
        run_the_rebuild()
    assert poller.errors == [] and len(poller.rounds) >= 10
"""

from __future__ import annotations

import threading
import time
from types import TracebackType

import psycopg

from retail.settings import Settings


class MartPoller:
    """Queries each relation of `schema` as the analyst role, `hz` rounds a second, in a thread.

    The relations are listed once, before the rebuild starts, so a relation that vanishes during it is
    an error (not silently skipped). Errors are kept as one line each: `relation: message`.
    """

    def __init__(self, settings: Settings, schema: str = "marts", hz: float = 5.0) -> None:
        self.settings, self.schema, self.period = settings, schema, 1.0 / hz
        self.relations: list[str] = []
        self.errors: list[str] = []
        self.rounds: list[float] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="mart-poller", daemon=True)

    def list_relations(self) -> list[str]:
        """The relations of the schema the analyst can see now (information_schema shows only those)."""
        with psycopg.connect(self.settings.analyst_dsn) as reader:
            rows = reader.execute(
                "select table_name from information_schema.tables where table_schema = %s order by 1",
                (self.schema,),
            ).fetchall()
        return [name for (name,) in rows]

    def __enter__(self) -> MartPoller:
        self.relations = self.list_relations()
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._done.set()
        self._thread.join(timeout=60)

    def _poll(self) -> None:
        with psycopg.connect(self.settings.analyst_dsn, autocommit=True) as reader:
            while not self._done.is_set():
                started = time.monotonic()
                for name in self.relations:
                    try:
                        reader.execute(f'select 1 from {self.schema}."{name}" limit 1').fetchall()
                    except psycopg.Error as error:
                        self.errors.append(f"{name}: {str(error).splitlines()[0]}")
                self.rounds.append(time.monotonic() - started)
                self._done.wait(max(0.0, self.period - (time.monotonic() - started)))
