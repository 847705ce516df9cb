"""``autopilot local``: the stack's table, queues and topic on the embedded AWS emulator, for the CLI to talk to.

It starts moto's server on 127.0.0.1, creates the stateful resources of template.yaml on it (the same code
the demo and the tests use: autopilot_tools.localstack), registers a CloudFormation stack whose outputs name
them (so ``--stack`` discovery works as against a deployment), prints the ``export`` lines that point another
shell at it, and keeps serving until Ctrl-C (or SIGTERM). No AWS account is needed and nothing leaves the
machine; everything lives in memory and is gone when it stops.

The functions themselves do not run here (moto emits no events): this is for trying ``apply``, ``get``,
``pause``, ``resume``, ``history``, ``delete`` and ``dlq`` as they behave against a deployed stack.
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import json
import shlex
import signal
import socket
import sys
import threading
import warnings
from pathlib import Path
from typing import Any, TextIO

from autopilot_tools.cli.discovery import DEFAULT_STACK
from autopilot_tools.demo.emulator import (
    REGION,
    Emulator,
    emulator_missing,
    preserved_environment,
    terminate_as_interrupt,
)
from autopilot_tools.localstack import LocalStack, create_stack, load_template

# Dummy credentials: the emulator accepts any; real ones must never be sent to it (nor these to AWS).
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}  # nosec B105
READY = "ready: Ctrl-C stops the emulator (everything in it is lost)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autopilot local",
        description="Serve the stack's table, queues and topic on an embedded AWS emulator (moto) for the "
                    "autopilot CLI: no AWS account needed. Prints the export lines for another shell and runs "
                    "until Ctrl-C.")
    parser.add_argument("--port", type=int, default=0,
                        help="port on 127.0.0.1 (default: any free port; the export lines say which)")
    parser.add_argument("--clusters", default="prod,batch",
                        help="the stack's ManagedClusters parameter (default: %(default)s, as examples/policies.yaml)")
    parser.add_argument("--stack", default=DEFAULT_STACK,
                        help="name of the emulated stack; the CLI finds it with --stack (default: %(default)s)")
    parser.add_argument("--env-file", type=Path, metavar="PATH",
                        help="also write the export lines to PATH (for `source PATH`); removed on exit")
    return parser


def environment(endpoint: str, stack: LocalStack) -> dict[str, str]:
    """What a shell needs to use the emulator: endpoint, region, dummy credentials, and where things are."""
    return {
        "AWS_ENDPOINT_URL": endpoint, "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION, **LOCAL_CREDENTIALS,
        "AUTOPILOT_TABLE": stack.ref("StateTable"), "AUTOPILOT_STACK": stack.stack_name,
        "AUTOPILOT_DLQ_URL": stack.ref("DeadLetterQueue"), "AUTOPILOT_RESTART_QUEUE_URL": stack.ref("RestartQueue"),
    }


def export_lines(env: dict[str, str]) -> list[str]:
    """``unset AWS_PROFILE`` (its credentials would win over none) and one ``export KEY=VALUE`` per variable."""
    return ["unset AWS_PROFILE AWS_SESSION_TOKEN"] + [f"export {k}={shlex.quote(v)}" for k, v in env.items()]


def register_outputs(stack: LocalStack, template: dict[str, Any]) -> None:
    """A CloudFormation stack named like the emulated one, whose outputs are the template's outputs that name
    the emulated resources: the CLI's table discovery (and dlq's) work exactly as against a deployment."""
    from autopilot.aws.clients import client

    outputs: dict[str, Any] = {}
    for name, output in (template.get("Outputs") or {}).items():
        try:
            value = stack.resolve(output["Value"])
        except KeyError:  # an output about a resource the emulator does not create (a function's ARN)
            continue
        outputs[name] = {"Value": str(value)}
    body = {"Resources": {"Placeholder": {"Type": "AWS::CloudFormation::WaitConditionHandle"}}, "Outputs": outputs}
    with warnings.catch_warnings():  # moto says it does not model the placeholder: it needs no model
        warnings.simplefilter("ignore", UserWarning)
        client("cloudformation").create_stack(StackName=stack.stack_name, TemplateBody=json.dumps(body))


def _port_free(port: int) -> bool:
    if port == 0:
        return True
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True



def _write_env_file(path: Path, lines: list[str]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(path)  # appears complete or not at all: a script may wait for it


def serve(args: argparse.Namespace, out: TextIO, stop: threading.Event) -> int:
    """Start, create, print, wait for ``stop`` (or Ctrl-C), stop. Returns the exit code."""
    template = load_template()
    clusters = ",".join(c.strip() for c in args.clusters.split(",") if c.strip())
    if hasattr(signal, "SIGUSR1") and threading.current_thread() is threading.main_thread():
        # `kill -USR1 <pid>` prints every thread's stack to stderr: what a stop that hangs is waiting for
        faulthandler.register(signal.SIGUSR1, all_threads=True)
    with preserved_environment(), terminate_as_interrupt():
        emulator = Emulator(port=args.port)
        try:
            emulator.start()
            from autopilot.aws.clients import client

            stack = create_stack(client, stack_name=args.stack, parameters={"ManagedClusters": clusters},
                                 template=template)
            register_outputs(stack, template)
            lines = export_lines(environment(emulator.endpoint, stack))
            out.write(f"ecs-autopilot local emulator (moto) on {emulator.endpoint}: stack {stack.stack_name} "
                      f"(ManagedClusters={clusters}) with the table, queues and topic of template.yaml.\n"
                      "In another shell (no AWS account needed):\n\n")
            out.write("\n".join(lines) + "\n\n")
            out.write("then, for example:\n"
                      "  autopilot apply examples/policies.yaml\n"
                      "  autopilot get --cluster prod --service web\n"
                      "  autopilot pause --cluster prod --service web --reason 'trying it'\n"
                      "  autopilot resume --cluster prod --service web\n"
                      "  autopilot history\n"
                      "  autopilot dlq list\n"
                      "The functions do not run here (the emulator emits no events: `autopilot demo` plays them).\n")
            if args.env_file:
                _write_env_file(args.env_file, lines)
                out.write(f"(also written to {args.env_file}: source it)\n")
            out.write(READY + "\n")
            out.flush()
            while not stop.wait(1.0):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            emulator.stop()
            if args.env_file:
                with contextlib.suppress(OSError):
                    args.env_file.unlink()
        out.write("stopped: the emulator and everything in it are gone\n")
        out.flush()
    return 0


def run(argv: list[str] | None = None, stop: threading.Event | None = None) -> int:
    args = _parser().parse_args(argv)
    missing = emulator_missing()
    if missing:
        sys.stderr.write(f"autopilot local: {missing}\n")
        return 2
    if not 0 <= args.port <= 65535:
        sys.stderr.write(f"autopilot local: --port {args.port} is not a port number\n")
        return 2
    if not _port_free(args.port):
        sys.stderr.write(f"autopilot local: port {args.port} on 127.0.0.1 is in use (choose another with --port, "
                         "or --port 0 for any free one)\n")
        return 1
    return serve(args, sys.stdout, stop or threading.Event())
