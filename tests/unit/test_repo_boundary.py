"""No code or test reads outside the repository: the audit hook bites, and no file names a path beside it."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.repo_boundary import ROOT, OutsideRepository, outside

BESIDE = ROOT.parent / "a-folder-beside-the-clone"  # whatever a developer's machine keeps next to the repository


def test_reading_beside_the_repository_fails() -> None:
    with pytest.raises(OutsideRepository):
        (BESIDE / "anything.json").read_text()
    with pytest.raises(OutsideRepository):
        list(BESIDE.glob("*.json"))


def test_reading_inside_the_repository_works() -> None:
    assert "ecs-autopilot" in (ROOT / "pyproject.toml").read_text()
    assert not outside(ROOT / "tests" / "fixtures")
    assert outside(BESIDE)


# What code uses to reach beside the clone: a quoted path starting with ../, the root's parent, or a parents[]
# index deep enough to leave the repository from where the file is.
LEAVING = re.compile(r"[\"'`]\.\./\w|\bROOT\.parent\b")


@pytest.mark.parametrize(("line", "leaves"), [
    ('path = "../reference/events.json"', True),
    ("open('../data/trace.csv')", True),
    ("samples = ROOT.parent / 'reference'", True),
    ('path = ROOT / "tests" / "fixtures"', False),
    ("here = Path(__file__).parent / 'data'", False),
])
def test_the_scan_recognises_a_path_beside_the_clone(line: str, leaves: bool) -> None:
    assert bool(LEAVING.search(line)) is leaves


def _tracked() -> list[str]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=False)
    if out.returncode != 0:  # not a git checkout (an sdist): scan the tree
        return [str(p.relative_to(ROOT)) for p in ROOT.rglob("*") if p.is_file() and ".venv" not in p.parts]
    return out.stdout.split()


def test_no_code_names_a_path_beside_the_repository() -> None:
    offenders = []
    for name in _tracked():
        if not name.endswith((".py", ".sh", ".toml", ".yaml", ".yml", ".cfg")) and name not in ("Makefile", ".ci/run"):
            continue
        if name in ("tests/unit/test_repo_boundary.py", "tests/repo_boundary.py"):  # they name it to refuse it
            continue
        text = (ROOT / name).read_text(encoding="utf-8", errors="replace")
        lines = enumerate(text.splitlines(), 1)
        offenders += [f"{name}:{n}: {line.strip()}" for n, line in lines if LEAVING.search(line)]
    assert offenders == []


def test_parents_indexes_stay_inside_the_repository() -> None:
    """``Path(__file__).parents[N]`` must not climb above the repository root from that file."""
    offenders = []
    for name in _tracked():
        if not name.endswith(".py"):
            continue
        depth = len(name.split("/")) - 1  # parents[depth] is the root for a file this many folders deep
        for n, line in enumerate((ROOT / name).read_text(encoding="utf-8").splitlines(), 1):
            for index in re.findall(r"__file__\)\.resolve\(\)\.parents\[(\d+)\]", line):
                if int(index) > depth:
                    offenders.append(f"{name}:{n}: parents[{index}] leaves the repository")
    assert offenders == []
