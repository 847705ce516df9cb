"""``autopilot``: argument parsing, dispatch, and turning every failure into one line and an exit code.

Exit codes: 0 success, 1 failure (invalid policies, AWS errors), 2 usage errors and commands that are
not available. Set AUTOPILOT_DEBUG=1 to see the traceback of an unexpected error.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import Any

from autopilot import __version__
from autopilot_tools.cli import commands, external
from autopilot_tools.cli.discovery import DEFAULT_STACK, CliError

PROG = "autopilot"

SCHEMA_HELP = """\
Print the JSON Schema of a policy document, for editors that validate YAML as you type.

With the YAML extension of VS Code (or any yaml-language-server client):
  autopilot schema > autopilot-policy.schema.json
then put this line at the top of your policy file:
  # yaml-language-server: $schema=./autopilot-policy.schema.json
or map the schema to your policy files in the editor's settings ("yaml.schemas").
"""

_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnrecognizedClientException",
           "InvalidClientTokenId", "ExpiredToken", "ExpiredTokenException", "InvalidSignatureException",
           "SignatureDoesNotMatch"}


def _table_options() -> argparse.ArgumentParser:
    """Options of every command that reads or writes the state table."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("state table")
    group.add_argument("--table", help="the DynamoDB state table (default: $AUTOPILOT_TABLE, then the stack's "
                                       "StateTableName output)")
    group.add_argument("--stack", default=os.environ.get("AUTOPILOT_STACK") or DEFAULT_STACK,
                       help=f"the deployed CloudFormation stack to find the table in (default: $AUTOPILOT_STACK "
                            f"or {DEFAULT_STACK})")
    group.add_argument("--region", help="AWS region (default, as the AWS CLI: $AWS_REGION, then $AWS_DEFAULT_REGION, "
                                        "then the profile's region); for get, history, pause, resume and delete also "
                                        "the region of the services (see --hub-region)")
    group.add_argument("--hub-region", help="the region of the hub stack and its table when --region names a member "
                                            "region (default: $AUTOPILOT_HUB_REGION, then --region)")
    return parent


def _target_options(parser: argparse.ArgumentParser, *, required: bool, family: bool = True) -> None:
    parser.add_argument("--cluster", required=required, help="ECS cluster name")
    which = parser.add_mutually_exclusive_group(required=required)
    which.add_argument("--service", help="ECS service name (ServicePolicy)")
    if family:
        which.add_argument("--family", help="task definition family (TaskPolicy)")
    parser.add_argument("--account", help="the services' AWS account (default: the hub's own); --region names "
                                          "their region")
    parser.set_defaults(places=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Manage ecs-autopilot policies and look at what it did.",
        epilog="Exit codes: 0 ok, 1 failed (invalid policy, AWS error), 2 usage error.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    table = _table_options()

    p = sub.add_parser("validate", help="check policy files; print each error with file, document, field and why",
                       description="Check policy files without storing anything. Prints 'ok: FILE (N policies)' or "
                                   "one line per error: 'FILE: document D: FIELD: REASON'. Exit 1 on any error.")
    p.add_argument("files", nargs="+", metavar="FILE", help="policy YAML file ('-' reads standard input)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    _allow_empty(p)
    p.set_defaults(handler=commands.cmd_validate)

    p = sub.add_parser("schema", help="print the policy JSON Schema (for editors)", description=SCHEMA_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(handler=commands.cmd_schema)

    p = sub.add_parser("apply", parents=[table], help="validate policy files, then store them",
                       description="Validate every document, then store each policy; nothing is stored if any "
                                   "document is invalid. Prints created, updated (with what changed) or unchanged. "
                                   "Every change goes into the audit trail (who, when, which fields): "
                                   "autopilot history shows it.")
    p.add_argument("files", nargs="+", metavar="FILE", help="policy YAML file ('-' reads standard input)")
    p.add_argument("--dry-run", action="store_true", help="show what would change without storing anything")
    _allow_empty(p)
    p.set_defaults(handler=commands.cmd_apply)

    p = sub.add_parser("get", parents=[table], help="show stored policies and their state (LKG, holds, cooldowns)")
    _target_options(p, required=False)
    p.add_argument("--json", action="store_true", help="print policies and full state as JSON")
    p.set_defaults(handler=commands.cmd_get)

    p = sub.add_parser("delete", parents=[table], help="remove a policy (autopilot stops acting on it)",
                       description="Remove a policy; the audit trail records who removed it and what it said.")
    _target_options(p, required=True)
    p.set_defaults(handler=commands.cmd_delete)

    p = sub.add_parser("pause", parents=[table], help="stop acting on a service until resumed (no redeploy)",
                       description="Pause a managed service or task family: every decision about it is recorded "
                                   "as skipped:paused until 'autopilot resume'.")
    _target_options(p, required=True)
    p.add_argument("--reason", help="why (shown by get and recorded in the audit trail)")
    p.set_defaults(handler=commands.cmd_pause)

    p = sub.add_parser("resume", parents=[table], help="act on a paused service again")
    _target_options(p, required=True)
    p.set_defaults(handler=commands.cmd_resume)

    p = sub.add_parser("history", parents=[table], help="the audit trail, newest first")
    _target_options(p, required=False)
    p.add_argument("--since", help="how far back: 30m, 1h, 2d, 1w or an ISO time (default 24h)")
    p.add_argument("--limit", type=_positive, default=50, help="at most this many entries (default 50)")
    p.add_argument("--json", action="store_true", help="print entries as JSON")
    p.set_defaults(handler=commands.cmd_history)

    for name, spec in external.EXTERNAL_COMMANDS.items():  # dispatched before parsing; listed for --help
        sub.add_parser(name, help=spec.help, add_help=False)
    return parser


def _allow_empty(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--allow-empty", action="store_true",
                        help="accept a file without any policy (by default that is an error: a truncated file or "
                             "the wrong path)")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def chosen_region(explicit: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """The region a command uses, in the AWS CLI v2's order: --region, then AWS_REGION, then (left to botocore)
    AWS_DEFAULT_REGION and the profile's region. boto3 alone ignores AWS_REGION; the AWS CLI and the Lambda
    runtime set and honour it, so users expect it to work."""
    environ = os.environ if environ is None else environ
    return explicit or environ.get("AWS_REGION") or None


@contextmanager
def _region(region: str | None) -> Iterator[None]:
    """Use ``region`` for this command's AWS clients (boto3 reads AWS_DEFAULT_REGION); restored afterwards."""
    already = os.environ.get("AWS_DEFAULT_REGION") == region and os.environ.get("AWS_REGION") in (None, region)
    if not region or already:  # nothing to change: boto3 picks this region anyway
        yield
        return
    from autopilot.aws.clients import reset_clients

    saved = {k: os.environ.get(k) for k in ("AWS_DEFAULT_REGION", "AWS_REGION")}
    os.environ["AWS_DEFAULT_REGION"] = os.environ["AWS_REGION"] = region
    reset_clients()
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        reset_clients()


def describe_error(exc: BaseException, args: Any = None) -> str:
    """One line a user can act on, for the errors botocore and the store raise (botocore not imported)."""
    name = type(exc).__name__
    table = getattr(args, "resolved_table", None)
    region = getattr(args, "region", None) or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    in_region = f" in region {region}" if region else ""
    if name in ("NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError"):
        return ("no usable AWS credentials: configure a profile (AWS_PROFILE, aws configure / aws sso login) "
                "or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    if name == "NoRegionError":
        return ("no AWS region configured: pass --region, set AWS_REGION (or AWS_DEFAULT_REGION), or set region "
                "in your AWS profile (aws configure)")
    if name in ("EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "ConnectionClosedError"):
        return f"cannot reach AWS ({name}): {exc}"
    if name == "TokenRetrievalError" or name.startswith("SSOToken"):
        return f"AWS SSO login needed: {exc}"
    if name == "ParamValidationError":  # e.g. a --table name DynamoDB would never accept
        return f"invalid request: {' '.join(str(exc).split())}"
    if name == "ValidationError":  # a stored item this version's models cannot read
        first = " ".join(str(exc).split())[:300]
        return f"stored data this version of autopilot cannot read (is the CLI older than the stack?): {first}"
    if name == "ConcurrentUpdate":
        return f"the state of {exc} kept changing; try again"
    if name == "PolicyOwned":  # a policy a CloudFormation stack declares (or the CLI, for a stack)
        return str(exc)
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and "Error" in response:
        code = str(response["Error"].get("Code", "?"))
        message = " ".join(str(response["Error"].get("Message", "")).split())
        operation = getattr(exc, "operation_name", "the request")
        if code == "ResourceNotFoundException" and table:
            return f"table {table!r} not found{in_region} (check --table, AUTOPILOT_TABLE, --stack and --region)"
        from autopilot.aws.errors import is_throttling  # botocore's own list of throttling codes

        if is_throttling(response):
            return f"AWS is throttling {operation} ({code}) even after retries; wait a minute and try again"
        if code in _DENIED:
            return f"AWS refused {operation} ({code}): {message}"
        return f"{operation} failed ({code}): {message}"
    text = " ".join(str(exc).split())
    return f"unexpected {name}: {text} (set AUTOPILOT_DEBUG=1 for the traceback)"


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    return exc.code if isinstance(exc.code, int) else 1


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit code (the console script exits with it)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in external.EXTERNAL_COMMANDS:
        def run_external() -> int:
            with _region(chosen_region(None)):
                return external.run(argv[0], argv[1:])

        return _guarded(run_external, None)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: usage errors (2) and --help/--version (0)
        return _exit_code(exc)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2

    def run() -> int:
        hub = getattr(args, "hub_region", None) or os.environ.get("AUTOPILOT_HUB_REGION") or None
        args.hub_region = hub
        with _region(chosen_region(hub or getattr(args, "region", None))):
            return int(handler(args))

    return _guarded(run, args)


def _guarded(run: Any, args: Any) -> int:
    try:
        return int(run())
    except CliError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except SystemExit as exc:  # an external command's own argparse
        return _exit_code(exc)
    except BrokenPipeError:  # `autopilot history | head`: stop quietly, and keep Python's exit flush quiet too
        with suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        if os.environ.get("AUTOPILOT_DEBUG"):
            raise
        print(f"{PROG}: error: {describe_error(exc, args)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
