"""moto's in-process server on 127.0.0.1, and the process environment that points boto3 at it.

Everything the demo changes in ``os.environ`` is restored on exit, so running the demo inside a test
process (or twice) leaves no trace; the server stops on normal exit, error and Ctrl-C alike.
"""

from __future__ import annotations

import logging
import os
import signal
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

ACCOUNT_ID = "123456789012"  # moto's default account: what ARNs in the emulator carry
REGION = "us-east-1"

# Settings in a developer's shell that could send the demo's calls anywhere but the emulator.
_UNSAFE_PREFIXES = ("AWS_ENDPOINT_URL_",)
_UNSAFE = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "AWS_USE_FIPS_ENDPOINT",
           "AWS_USE_DUALSTACK_ENDPOINT", "AWS_CA_BUNDLE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE")


EMULATOR_MISSING = ("the demo runs on moto, an embedded AWS emulator, which is not installed.\n"
                    "  install it with: pip install 'ecs-autopilot[demo]'   (from a clone: pip install -e '.[demo]')")


def emulator_missing() -> str | None:
    """Why the emulator cannot start (moto is an optional extra of the CLI), or None."""
    try:
        import moto.server  # noqa: F401
    except ImportError:
        return EMULATOR_MISSING
    return None


def reset_caches(*, keep_clients: bool = False) -> None:
    """Forget cached boto3 clients, settings and dependencies (they captured the previous environment)."""
    from autopilot import settings, wiring
    from autopilot.aws.clients import reset_clients

    if not keep_clients:
        reset_clients()
    settings.settings.cache_clear()
    wiring.dependencies.cache_clear()


@contextmanager
def preserved_environment() -> Iterator[None]:
    """Restore ``os.environ`` exactly as it was, whatever happens inside."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        reset_caches()


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM and SIGINT stop as Ctrl-C does: through the finally blocks that stop the emulator.

    SIGINT too, because Python leaves it ignored when the process inherited it ignored (a shell's background
    job, some process supervisors and test runners): Ctrl-C must stop the emulator whoever started it."""
    def interrupt(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGINT)}
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class Emulator:
    """One moto server for the whole demo; ``reset()`` gives each scenario an empty account."""

    def __init__(self, port: int = 0) -> None:
        self._server: Any = None
        self._port = port  # 0: any free port
        self.endpoint = ""

    def start(self) -> None:
        # No request lines or server tracebacks in the timeline: an emulator error reaches the caller anyway.
        logging.getLogger("werkzeug").setLevel(logging.CRITICAL + 1)
        from moto.server import ThreadedMotoServer

        from autopilot_tools.demo.backdoor import speed_up_dispatch

        speed_up_dispatch()

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=self._port, verbose=False)
        server.start()
        self._server = server
        host, port = server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        for key in list(os.environ):
            if key.startswith(_UNSAFE_PREFIXES) or key in _UNSAFE:
                del os.environ[key]
        os.environ.update({
            "AWS_ENDPOINT_URL": self.endpoint,
            # Dummy credentials for the local emulator, so no real account can ever be reached (bandit B105).
            "AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo", "AWS_SESSION_TOKEN": "demo",  # nosec B105
            "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION,
            "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        })
        reset_caches()

    def reset(self) -> None:
        """Empty every service of the emulator (POST /moto-api/reset)."""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")  # noqa: S310 - http://127.0.0.1
        # Our own emulator on 127.0.0.1 (bandit B310, ruff S310: the URL is built here, never user input).
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310  # nosec B310
            response.read()
        reset_caches(keep_clients=True)  # same endpoint: boto3 clients stay valid, settings do not

    def stop(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            server.stop()
            from autopilot_tools.demo.backdoor import restore

            restore()

    def __enter__(self) -> Emulator:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
