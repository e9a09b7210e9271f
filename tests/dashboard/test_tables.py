"""How every dashboard table is labelled and formatted (dashboard/tables.py), without a server."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pandas as pd

from dashboard.tables import COLUMNS, column_config, in_zone, numeric, spec

NEW_YORK = ZoneInfo("America/New_York")


def test_money_counts_rates_and_times_get_labels_and_formats() -> None:
    frame = pd.DataFrame(
        {
            "store_name": ["Downtown"],
            "revenue": [Decimal("19507.89")],
            "units": [1234],
            "support": [0.0123],
            "reported_at": [datetime(2026, 12, 6, 15, 0, tzinfo=UTC)],
        }
    )
    config = column_config(frame, NEW_YORK)
    shown = {name: (c["label"], c.get("type_config", {}).get("format")) for name, c in config.items()}
    assert shown == {
        "store_name": ("Store", None),
        "revenue": ("Revenue", "$%,.2f"),
        "units": ("Units sold", "%,d"),
        "support": ("Support", "percent"),
        "reported_at": ("Reported at (America/New_York)", "YYYY-MM-DD HH:mm:ss"),
    }


def test_every_label_is_words_not_a_column_name() -> None:
    assert all("_" not in label for label, _ in COLUMNS.values())
    assert spec("input_rows_per_s") == ("Rows/s in", "decimal")
    assert spec("some_new_column") == ("Some new column", "text")


def test_times_are_the_same_instants_in_the_display_zone_and_money_becomes_numbers() -> None:
    moment = datetime(2026, 12, 6, 15, 0, tzinfo=UTC)
    frame = pd.DataFrame({"latest_at": [moment, None], "revenue": [Decimal("1.10"), Decimal("2.25")]})
    shown = numeric(in_zone(frame, NEW_YORK))
    assert shown["latest_at"][0] == moment  # same instant
    assert shown["latest_at"][0].hour == 10  # 15:00 UTC is 10:00 in New York in December
    assert pd.isna(shown["latest_at"][1])
    assert shown["revenue"].tolist() == [1.10, 2.25]
    assert frame["revenue"][0] == Decimal("1.10")  # the caller's frame is untouched
