"""Alerts in ``ops.alerts``: where the dashboard and on-call look first when something failed.

Airflow's own task logs say *what* failed in detail; an alert row makes failures queryable next to the
data they concern (same database, read by the analyst role and the dashboard), independent of Airflow's
UI and log retention. Every stage records its alerts here; the DAGs' callbacks are in
``dags/common/callbacks.py``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from retail.db import transaction
from retail.settings import Settings

Severity = Literal["info", "warning", "error", "critical"]
_MAX_MESSAGE_CHARS = 2000


def record_alert(
    settings: Settings,
    source: str,
    message: str,
    severity: Severity = "error",
    context: Mapping[str, Any] | None = None,
) -> int:
    """Insert one alert and return its id."""
    with transaction(settings) as conn:
        row = conn.execute(
            """insert into ops.alerts (source, severity, message, context)
               values (%s, %s, %s, %s::jsonb) returning alert_id""",
            (source, severity, message[:_MAX_MESSAGE_CHARS], json.dumps(dict(context or {}), default=str)),
        ).fetchone()
    assert row is not None  # insert ... returning always yields the row
    return int(row[0])
