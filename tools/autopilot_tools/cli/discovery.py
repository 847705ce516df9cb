"""Which state table the CLI talks to: ``--table``, then ``AUTOPILOT_TABLE``, then the stack's outputs."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_STACK = "ecs-autopilot"
TABLE_OUTPUT = "StateTableName"


class CliError(Exception):
    """A problem the user can fix, reported as one line (exit code 1 unless stated)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class TableChoice:
    name: str
    source: str  # how it was found, for messages: "--table", "AUTOPILOT_TABLE", "stack ecs-autopilot"


def stack_outputs(stack: str) -> tuple[dict[str, str], str] | None:
    """The outputs and status of a deployed CloudFormation stack, or None if there is no such stack."""
    from autopilot.aws.clients import client

    cloudformation = client("cloudformation")
    try:
        stacks = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except cloudformation.exceptions.ClientError as exc:
        error: dict[str, Any] = exc.response.get("Error", {})
        if error.get("Code") == "ValidationError" and "does not exist" in str(error.get("Message", "")):
            return None
        raise
    if not stacks:
        return None
    outputs = {o["OutputKey"]: o.get("OutputValue", "") for o in stacks[0].get("Outputs", [])}
    return outputs, str(stacks[0].get("StackStatus", "?"))


def find_table(table: str | None, stack: str, environ: Mapping[str, str] | None = None) -> TableChoice:
    """The table to use, in the contract's order; a clear CliError if none can be found."""
    environ = os.environ if environ is None else environ
    if table:
        return TableChoice(table, "--table")
    if environ.get("AUTOPILOT_TABLE"):
        return TableChoice(environ["AUTOPILOT_TABLE"], "AUTOPILOT_TABLE")
    found = stack_outputs(stack)
    hint = "pass --table NAME, set AUTOPILOT_TABLE, or name the deployed stack with --stack"
    if found is None:
        raise CliError(f"no state table: stack {stack!r} was not found in this region; {hint}")
    outputs, status = found
    if not outputs.get(TABLE_OUTPUT):
        raise CliError(f"no state table: stack {stack!r} ({status}) has no output {TABLE_OUTPUT}; {hint}")
    return TableChoice(outputs[TABLE_OUTPUT], f"stack {stack}")
