"""The demo's virtual clock: cooldowns, holds and back-offs pass in simulated time, never real sleeps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class VirtualClock:
    """A callable clock (what ``Dependencies.clock`` expects) that only moves when the story says so."""

    def __init__(self, start: datetime) -> None:
        self.start = start.astimezone(UTC)
        self.now = self.start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now = self.now + timedelta(seconds=seconds)
        return self.now

    def set(self, moment: datetime) -> None:
        if moment < self.now:
            raise ValueError("the virtual clock never goes backwards")
        self.now = moment

    @property
    def elapsed(self) -> float:
        """Seconds since the scenario started."""
        return (self.now - self.start).total_seconds()

    def offset(self, moment: datetime) -> float:
        return (moment - self.start).total_seconds()


def story_start() -> datetime:
    """A scenario's T+0: now, rounded down to the minute (so reconciler ticks fall on whole minutes)."""
    return datetime.now(UTC).replace(second=0, microsecond=0)


def clock_label(seconds: float) -> str:
    """``T+03:20`` (minutes:seconds since the scenario began; hours when needed)."""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"T+{hours}:{minutes:02d}:{secs:02d}" if hours else f"T+{minutes:02d}:{secs:02d}"
