"""``autopilot local`` as a user runs it: start it, point a shell at it, try the CLI, stop it with Ctrl-C.

Everything runs through the installed entry point's code in separate processes (the emulator in one, each CLI
command in its own), with no AWS settings from the developer's shell: the export lines are all a user needs.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "policies.yaml"
STARTUP_LIMIT_SECONDS = 180  # a guard against a hang on a loaded machine, not a timing expectation
STOP_LIMIT_SECONDS = 120  # the same: stopping takes about a second

pytestmark = pytest.mark.slow


def _clean_environment(tmp_path: Path) -> dict[str, str]:
    """No AWS or autopilot settings, no config files, no metadata service: only what `autopilot local` says."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AUTOPILOT_"))}
    clean.update({"AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
                  "AWS_EC2_METADATA_DISABLED": "true", "PYTHONUNBUFFERED": "1"})
    return clean


def _exports(path: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.startswith("export "):
            key, _, value = line.removeprefix("export ").partition("=")
            found[key] = shlex.split(value)[0]
    return found


class Local:
    """The running `autopilot local` process and what it told the user."""

    def __init__(self, process: subprocess.Popen[str], exports: dict[str, str], env_file: Path) -> None:
        self.process, self.exports, self.env_file = process, exports, env_file


def _ignore_sigint() -> None:
    """What a shell does to a background job (and some supervisors to their children): SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.fixture(params=["sigint-default", "sigint-inherited-ignored"])
def local(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Local]:
    env_file = tmp_path / "autopilot-local.env"
    process = subprocess.Popen([sys.executable, "-m", "autopilot_tools.cli.main", "local", "--env-file", str(env_file)],
                               cwd=tmp_path, env=_clean_environment(tmp_path), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               preexec_fn=_ignore_sigint if request.param == "sigint-inherited-ignored" else None)
    try:
        deadline = time.monotonic() + STARTUP_LIMIT_SECONDS
        while not env_file.exists():
            if process.poll() is not None:
                pytest.fail(f"autopilot local exited with {process.returncode}: {process.stderr.read()}")  # type: ignore[union-attr]
            if time.monotonic() > deadline:
                pytest.fail("autopilot local did not get ready")
            time.sleep(0.2)
        yield Local(process, _exports(env_file), env_file)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)  # what Ctrl-C sends
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _autopilot(local: Local, tmp_path: Path, *args: Any, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {**_clean_environment(tmp_path), **local.exports, **extra}
    return subprocess.run([sys.executable, "-m", "autopilot_tools.cli.main", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_the_cli_against_autopilot_local(local: Local, tmp_path: Path) -> None:
    assert set(local.exports) >= {"AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                  "AUTOPILOT_TABLE", "AUTOPILOT_DLQ_URL"}
    assert local.exports["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")

    def ok(*args: Any, **extra: str) -> list[str]:
        done = _autopilot(local, tmp_path, *args, **extra)
        assert done.returncode == 0, f"autopilot {' '.join(map(str, args))}: {done.stderr}"
        return done.stdout.splitlines()

    assert ok("apply", EXAMPLES)[-1] == "4 policies: 4 created"
    get = ok("get", "--cluster", "prod", "--service", "web")
    assert get[0] == "prod/web  (ServicePolicy)" and any(line.split() == ["paused:", "no"] for line in get), get
    assert ok("pause", "--cluster", "prod", "--service", "web", "--reason", "trying it") == [
        "paused ServicePolicy prod/web (trying it)"]
    assert ["paused:", "yes", "(trying", "it)"] in [line.split() for line in ok("get", "--cluster", "prod")]
    assert ok("resume", "--cluster", "prod", "--service", "web") == ["resumed ServicePolicy prod/web"]
    history = ok("history", "--cluster", "prod", "--service", "web")
    assert [line.split("  ")[2] for line in history] == ["operator:resumed", "operator:paused", "policy:created"]
    assert ok("delete", "--cluster", "prod", "--service", "api")[0].startswith("deleted ServicePolicy prod/api")
    assert [line.split("  ")[2] for line in ok("history", "--cluster", "prod", "--service", "api")] == [
        "policy:deleted", "policy:created"]

    # the table is also found the way a deployment's is: from the stack's outputs
    without = {k: v for k, v in local.exports.items() if k != "AUTOPILOT_TABLE"}
    done = subprocess.run([sys.executable, "-m", "autopilot_tools.cli.main", "get", "--json"], cwd=ROOT,
                          env={**_clean_environment(tmp_path), **without}, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert sorted(p["target"] for p in json.loads(done.stdout)) == ["batch/nightly-etl", "prod/web", "prod/worker"]

    # a restart that failed five times, as the restart queue's redrive leaves it in the dead-letter queue
    import boto3

    sqs = boto3.client("sqs", endpoint_url=local.exports["AWS_ENDPOINT_URL"], region_name="us-east-1",
                       aws_access_key_id="local", aws_secret_access_key="local")
    sqs.send_message(QueueUrl=local.exports["AUTOPILOT_DLQ_URL"], MessageBody=json.dumps(
        {"cluster": "batch", "family": "nightly-etl", "attempt": 5}))
    letters = ok("dlq", "list")
    assert letters[-1] == f"1 dead letter(s) in {local.exports['AUTOPILOT_DLQ_URL']}"
    assert "restart-queue" in letters[0] and "restart of batch/nightly-etl" in letters[0]


def test_ctrl_c_stops_it_cleanly(local: Local) -> None:
    local.process.send_signal(signal.SIGINT)
    try:
        out, err = local.process.communicate(timeout=STOP_LIMIT_SECONDS)
    except subprocess.TimeoutExpired:
        local.process.send_signal(signal.SIGUSR1)  # faulthandler: every thread's stack, to say where it hangs
        time.sleep(2)
        local.process.kill()
        out, err = local.process.communicate()
        pytest.fail(f"autopilot local did not stop on Ctrl-C within {STOP_LIMIT_SECONDS} s\n{out}\n{err}")
    assert local.process.returncode == 0, err
    assert "ready: Ctrl-C stops the emulator" in out and out.rstrip().endswith(
        "stopped: the emulator and everything in it are gone")
    assert "Traceback" not in err
    assert not local.env_file.exists(), "the export lines of a stopped emulator are removed"


def test_a_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "autopilot_tools.cli.main", "local", "--port", str(port)],
                              env=_clean_environment(tmp_path), capture_output=True, text=True, timeout=120,
                              check=False)
    assert done.returncode == 1
    assert done.stderr.strip() == (f"autopilot local: port {port} on 127.0.0.1 is in use (choose another with "
                                   "--port, or --port 0 for any free one)")


def test_without_moto_it_says_what_to_install() -> None:
    code = ("import sys; sys.modules['moto'] = None; sys.modules['moto.server'] = None\n"
            "from autopilot_tools.cli.main import main; sys.exit(main(['local']))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "pip install -e '.[demo]'" in done.stderr and "Traceback" not in done.stderr
