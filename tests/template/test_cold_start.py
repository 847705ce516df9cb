"""Cold-start settings the deploy carries (issue 10): precompiled bytecode, no pydantic plugin discovery."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from autopilot_tools.localstack import load_template

pytestmark = pytest.mark.template

ROOT = Path(__file__).resolve().parents[2]


def test_make_layer_bytecode_ships_unchecked_hash_pycs(tmp_path: Path) -> None:
    """Lambda cannot write __pycache__ under /opt: the layer must carry bytecode valid whatever the mtimes."""
    layer = tmp_path / "AutopilotLayer" / "python" / "pkg"
    layer.mkdir(parents=True)
    (layer / "__init__.py").write_text("")
    (layer / "mod.py").write_text("VALUE = 1\n")
    function = tmp_path / "ScalerFunction"
    function.mkdir()
    (function / "app.py").write_text("def lambda_handler(event, context):\n    return event\n")
    env = dict(os.environ, MAKEFLAGS="")
    done = subprocess.run(["make", "-s", "layer-bytecode", f"SAM_BUILD={tmp_path}", f"PY={sys.executable}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    tag = sys.implementation.cache_tag
    for source in (layer / "mod.py", layer / "__init__.py", function / "app.py"):
        pyc = source.parent / "__pycache__" / f"{source.stem}.{tag}.pyc"
        header = pyc.read_bytes()[:8]
        assert header[:4] == importlib.util.MAGIC_NUMBER, source
        assert int.from_bytes(header[4:8], "little") == 0b01, f"{pyc}: not an unchecked hash-based pyc"


def test_pydantic_plugin_discovery_is_off() -> None:
    """No plugin is used; discovering them scans every installed distribution's entry points on each cold start."""
    variables = load_template()["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["PYDANTIC_DISABLE_PLUGINS"] == "__all__"
    code = "from pydantic.plugin._loader import get_plugins; import sys; sys.exit(0 if get_plugins() == () else 1)"
    done = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYDANTIC_DISABLE_PLUGINS="__all__"),
                          capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, "pydantic no longer honours PYDANTIC_DISABLE_PLUGINS=__all__"
