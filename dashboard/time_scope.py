"""Time scopes: the window every number on a page obeys, and the previous window of the same length.

Pure helpers (no Streamlit): a scope splits into whole UTC days, read from the daily rollups, and the
partial days at its edges, read from the line-level facts. That keeps a 7-day scope over millions of
lines as cheap as a 15-minute one, and the sum of both parts equals a computation over the lines alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

RELATIVE_SCOPES: dict[str, timedelta] = {
    "Last 15 minutes": timedelta(minutes=15),
    "Last hour": timedelta(hours=1),
    "Last 24 hours": timedelta(days=1),
    "Last 7 days": timedelta(days=7),
}
CUSTOM = "Custom"


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


@dataclass(frozen=True)
class Scope:
    """The half-open window [start, end) in UTC."""

    start: datetime
    end: datetime

    @classmethod
    def last(cls, length: timedelta, now: datetime) -> Scope:
        end = now.astimezone(UTC).replace(microsecond=0)
        return cls(end - length, end)

    @classmethod
    def days(cls, first: date, last: date) -> Scope:
        """Whole UTC days, `last` included."""
        return cls(_midnight(first), _midnight(last + timedelta(days=1)))

    def previous(self) -> Scope:
        return Scope(self.start - (self.end - self.start), self.start)

    @property
    def length(self) -> timedelta:
        return self.end - self.start

    @property
    def whole_days(self) -> tuple[date, date]:
        """[first, end) of the UTC days lying entirely inside the scope (first == end when none)."""
        first = (
            self.start.date()
            if self.start == _midnight(self.start.date())
            else self.start.date() + timedelta(1)
        )
        end = self.end.date()
        return (first, end) if first < end else (self.start.date(), self.start.date())

    def params(self) -> dict[str, object]:
        """Query parameters: the window, its whole days (rollups) and the dates it touches (index)."""
        day_from, day_to = self.whole_days
        return {
            "start": self.start,
            "end": self.end,
            "day_from": day_from,
            "day_to": day_to,
            "day_from_ts": _midnight(day_from),
            "day_to_ts": _midnight(day_to),
            "first_day": self.start.date(),
            "last_day": (self.end - timedelta(microseconds=1)).date(),
        }

    def label(self, zone: ZoneInfo | None = None) -> str:
        """The window as shown: in `zone` (the display time zone), UTC by default."""
        zone = zone or ZoneInfo("UTC")
        return f"{shown_time(self.start, zone)} → {shown_time(self.end, zone)} {zone.key}"


def shown_time(moment: datetime, zone: ZoneInfo) -> str:
    """A moment as the dashboard writes it in captions: local wall-clock time in `zone`, to the second."""
    return f"{moment.astimezone(zone):%Y-%m-%d %H:%M:%S}"
