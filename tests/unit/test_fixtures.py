"""The published AWS samples the tests rely on are in the repository, complete and unmodified in shape.

A glob over a missing folder silently finds nothing and empties parametrised tests; this test fails instead.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import PUBLISHED_EVENTS, ROOT

LISTED = re.findall(r"^\| `([^`]+\.json)` \|", (PUBLISHED_EVENTS / "README.md").read_text(), flags=re.M)
DEMO_COPIES = ROOT / "tools" / "autopilot_tools" / "demo" / "aws_events"


def test_every_listed_sample_is_present_and_nothing_unlisted() -> None:
    present = sorted(p.name for p in PUBLISHED_EVENTS.glob("*.json"))
    assert len(LISTED) >= 22
    assert sorted(LISTED) == present


@pytest.mark.parametrize("name", LISTED)
def test_sample_parses_as_an_aws_event(name: str) -> None:
    event = json.loads((PUBLISHED_EVENTS / name).read_text(encoding="utf-8-sig"))
    assert isinstance(event, dict)
    assert event.get("source") or event.get("detail-type"), "every AWS event names its source"


@pytest.mark.parametrize("path", sorted(DEMO_COPIES.glob("*.json")), ids=lambda p: p.name)
def test_demo_copies_are_byte_identical(path: Path) -> None:
    assert path.read_bytes() == (PUBLISHED_EVENTS / path.name).read_bytes()


def test_demo_has_its_samples() -> None:
    assert len(list(DEMO_COPIES.glob("*.json"))) >= 9
