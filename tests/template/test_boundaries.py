"""Import boundaries (.importlinter): the functional core never imports I/O, only autopilot.aws imports boto3.

`make test` also runs `lint-imports`; this test keeps the check in any pytest run and proves the
contract can fail (a throw-away package that breaks it is reported).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.template

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(config: Path, pythonpath: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", str(config)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_contracts_kept() -> None:
    done = lint_imports(ROOT / ".importlinter")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "0 broken" in done.stdout


def test_a_decision_importing_boto3_breaks_the_contract(tmp_path: Path) -> None:
    package = tmp_path / "src" / "autopilot"
    for sub in ("models", "decide", "aws", "store"):
        (package / sub).mkdir(parents=True)
        (package / sub / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    for module in ("execute", "usecases", "wiring", "idempotency", "observability", "localstack", "cli", "demo"):
        (package / f"{module}.py").write_text("")
    (package / "aws" / "clients.py").write_text("import boto3\nimport botocore\n")
    (package / "decide" / "scaling.py").write_text("from autopilot.aws import clients\n")  # indirect boto3
    (package / "models" / "policy.py").write_text("import botocore\n")
    done = lint_imports(ROOT / ".importlinter", pythonpath=tmp_path / "src")
    assert done.returncode == 1, done.stdout
    assert "autopilot.decide.scaling -> autopilot.aws.clients" in done.stdout
    assert "autopilot.models.policy -> botocore" in done.stdout


def test_a_use_case_importing_the_composition_root_breaks_the_contract(tmp_path: Path) -> None:
    """Use cases get their dependencies as ports (autopilot.ports.Dependencies), never from wiring or adapters."""
    package = tmp_path / "src" / "autopilot"
    for sub in ("models", "decide", "aws", "store", "usecases"):
        (package / sub).mkdir(parents=True)
        (package / sub / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    for module in ("execute", "wiring", "ports", "idempotency", "observability"):
        (package / f"{module}.py").write_text("")
    (package / "usecases" / "scale.py").write_text("from autopilot.wiring import Dependencies\n")
    (package / "usecases" / "heal.py").write_text("from autopilot.store import table\n")
    (package / "usecases" / "rollout.py").write_text("from autopilot.ports import Dependencies\n")  # allowed
    done = lint_imports(ROOT / ".importlinter", pythonpath=tmp_path / "src")
    assert done.returncode == 1, done.stdout
    assert "autopilot.usecases.scale -> autopilot.wiring" in done.stdout
    assert "autopilot.usecases.heal -> autopilot.store" in done.stdout
    assert "autopilot.usecases.rollout" not in done.stdout
