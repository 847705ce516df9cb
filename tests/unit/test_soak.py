"""The soak (bench/soak, `make soak`) in small: a seeded run of the real handlers over a simulated estate with
faults keeps every invariant, and planted bugs are caught (a soak that cannot fail proves nothing).

Each run takes a few seconds: 60 services, 10 families, 3 simulated hours for the green run; smaller, targeted
estates for the planted bugs (state is process-global: each run patches the modules it plants into, so each
planted run happens in a child process)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def soak(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bench.soak.run", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, check=False)


def last_line(result: subprocess.CompletedProcess[str]) -> re.Match[str]:
    line = result.stdout.strip().splitlines()[-1]
    match = re.fullmatch(r"soak: (\d+) services, (\d+) events, (\d+) faults injected, violations (\d+)", line)
    assert match, line
    return match


def test_the_small_soak_keeps_every_invariant() -> None:
    result = soak("--small")
    match = last_line(result)
    assert result.returncode == 0, result.stdout[-3000:]
    services, events, faults, violations = map(int, match.groups())
    assert (services, violations) == (60, 0)
    assert events > 300 and faults > 50, "a soak without events or faults proves nothing"
    for invariant in ("bounds", "no event lost", "notify or counted", "item size", "derived once", "one rollback",
                      "failure isolation", "foreign events", "paused untouched"):
        assert f"invariant: {invariant}" in result.stdout


TARGETED = ["--services", "30", "--families", "2", "--hours", "2"]


@pytest.mark.parametrize(("bug", "invariant", "extra"), [
    ("no-isolation", "failure isolation", []),  # finding 1 undone
    ("register-twice", "derived once", ["--oom-heavy"]),  # finding 8: an executor that registers twice
    ("no-clamp", "bounds", []),  # scaling past maxTasks
])
def test_a_planted_bug_is_reported(bug: str, invariant: str, extra: list[str]) -> None:
    result = soak(*TARGETED, *extra, "--plant", bug)
    match = last_line(result)
    assert result.returncode == 1 and int(match.group(4)) > 0, result.stdout[-3000:]
    row: Any = re.search(rf"\| invariant: {invariant}\s*\| (\d+) VIOLATIONS", result.stdout)
    assert row, result.stdout[-3000:]
