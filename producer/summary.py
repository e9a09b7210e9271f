"""What a producer run sent, so tests, the demo and the user can account for every message."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class ProduceSummary:
    """Counts of one run (all workers merged).

    `per_topic` counts messages the broker acknowledged, including duplicates and malformed ones, so it
    equals what a consumer reads. `transactions`/`refunds` count distinct valid events.
    """

    mode: str
    transactions: int = 0
    refunds: int = 0
    per_topic: Counter[str] = field(default_factory=Counter)
    malformed: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    late: int = 0
    retried: int = 0
    failed: int = 0
    failure_examples: list[str] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    skipped_examples: dict[str, list[str]] = field(default_factory=dict)
    rejects_path: str | None = None
    workers: int = 1
    elapsed_s: float = 0.0
    # Time from the workers' common start to their last acknowledged send (no process start-up).
    active_s: float = 0.0
    # CPU seconds of the producing processes in that time (all threads: generation, sending, I/O).
    cpu_s: float = 0.0
    interrupted: bool = False

    @property
    def events(self) -> int:
        """Messages acknowledged by the broker, every topic and kind."""
        return sum(self.per_topic.values())

    @property
    def events_per_s(self) -> float:
        return self.events / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def merge(self, other: ProduceSummary) -> None:
        """Add another worker's counts (elapsed time is the caller's wall clock, not a sum)."""
        self.transactions += other.transactions
        self.refunds += other.refunds
        self.per_topic.update(other.per_topic)
        self.malformed.update(other.malformed)
        self.duplicates += other.duplicates
        self.late += other.late
        self.retried += other.retried
        self.failed += other.failed
        self.failure_examples.extend(other.failure_examples[: max(0, 5 - len(self.failure_examples))])
        self.skipped.update(other.skipped)

    def to_dict(self) -> dict[str, object]:
        return {
            "mode": self.mode,
            "events": self.events,
            "transactions": self.transactions,
            "refunds": self.refunds,
            "per_topic": dict(self.per_topic),
            "malformed": dict(self.malformed),
            "duplicates": self.duplicates,
            "late": self.late,
            "retried": self.retried,
            "failed": self.failed,
            "skipped": dict(self.skipped),
            "rejects_path": self.rejects_path,
            "workers": self.workers,
            "elapsed_s": round(self.elapsed_s, 3),
            "active_s": round(self.active_s, 3),
            "cpu_s": round(self.cpu_s, 3),
            "events_per_s": round(self.events_per_s, 1),
            "interrupted": self.interrupted,
        }

    def lines(self) -> list[str]:
        """Human-readable report, one fact per line."""
        stopped = " (stopped by user)" if self.interrupted else ""
        lines = [
            f"{self.mode}{stopped}: {self.events:,} messages in {self.elapsed_s:.1f}s "
            f"({self.events_per_s:,.0f}/s, {self.workers} worker{'s' if self.workers != 1 else ''})",
            f"  transactions {self.transactions:,}, refunds {self.refunds:,}",
        ]
        lines += [f"  topic {topic}: {count:,}" for topic, count in sorted(self.per_topic.items())]
        if self.duplicates or self.late:
            lines.append(f"  duplicates {self.duplicates:,}, late {self.late:,}")
        if self.malformed:
            kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(self.malformed.items()))
            lines.append(f"  malformed: {kinds}")
        if self.skipped:
            lines.append(f"  {sum(self.skipped.values()):,} lines skipped: {self.skipped_text()}")
            if self.rejects_path:
                lines.append(f"  skipped rows written to {self.rejects_path}")
        if self.retried:
            lines.append(f"  {self.retried:,} sends retried after a failure")
        if self.failed:
            lines.append(f"  FAILED: {self.failed:,} messages not acknowledged by the broker")
            lines += [f"    {example}" for example in self.failure_examples]
        return lines

    def skipped_text(self) -> str:
        parts = []
        for reason, count in self.skipped.most_common():
            examples = self.skipped_examples.get(reason, [])
            shown = f" e.g. {', '.join(examples)}" if examples else ""
            parts.append(f"{reason} ({count} line{'s' if count != 1 else ''}{shown})")
        return "; ".join(parts)
