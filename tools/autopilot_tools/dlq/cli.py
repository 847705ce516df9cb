"""``autopilot dlq``: list dead-lettered events, and redrive them after the cause is fixed.

Redrive sends each letter back where it was going: events and async invocations are invoked again on
their function (asynchronously, as EventBridge would), restart messages go back to the restart queue.
A letter is deleted from the dead-letter queue only after it was sent back.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from autopilot_tools.dlq.letters import DeadLetter, read

VISIBILITY_SECONDS = 30  # letters listed are hidden this long, then visible again (listing does not consume)


def _queue(explicit: str | None, env_name: str, output: str, stack: str) -> str:
    if explicit:
        return explicit
    if os.environ.get(env_name):
        return os.environ[env_name]
    from autopilot_tools.cli.discovery import CliError, stack_outputs

    found = stack_outputs(stack)
    if found is None or not found[0].get(output):
        raise CliError(f"no {output}: pass the queue URL, set {env_name}, or name the deployed stack with --stack")
    return found[0][output]


def receive(sqs: Any, url: str, limit: int) -> list[DeadLetter]:
    """Up to ``limit`` letters, each once (SQS may return a message again while we page through)."""
    letters: dict[str, DeadLetter] = {}
    empty_rounds = 0
    while len(letters) < limit and empty_rounds < 2:
        response = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=min(10, limit - len(letters)),
                                       VisibilityTimeout=VISIBILITY_SECONDS, MessageAttributeNames=["All"],
                                       AttributeNames=["SentTimestamp"], WaitTimeSeconds=0)
        messages = response.get("Messages", [])
        new = [m for m in messages if m.get("MessageId") not in letters]
        empty_rounds = empty_rounds + 1 if not new else 0
        for message in new:
            letter = read(message)
            letters[letter.message_id] = letter
    return list(letters.values())


Invoker = Callable[[str, Any], None]


def lambda_invoker(function_arn: str, payload: Any) -> None:
    from autopilot.aws.clients import client

    client("lambda").invoke(FunctionName=function_arn, InvocationType="Event", Payload=json.dumps(payload).encode())


def redrive(sqs: Any, url: str, letters: list[DeadLetter], restart_queue: str | None,
            invoke: Invoker = lambda_invoker) -> tuple[int, list[str]]:
    """Send letters back; returns (how many were sent back, problems)."""
    sent, problems = 0, []
    for letter in letters:
        try:
            if letter.origin in ("eventbridge", "lambda-async") and letter.target:
                invoke(letter.target, letter.payload)
            elif letter.origin == "restart-queue" and restart_queue:
                sqs.send_message(QueueUrl=restart_queue, MessageBody=json.dumps(letter.payload))
            else:
                problems.append(f"{letter.message_id}: {letter.origin} letter has nowhere to go; left in the queue")
                continue
        except Exception as exc:  # one bad letter must not stop the others
            problems.append(f"{letter.message_id}: {type(exc).__name__}: {exc}")
            continue
        sqs.delete_message(QueueUrl=url, ReceiptHandle=letter.receipt_handle)
        sent += 1
    return sent, problems


def run(argv: list[str], invoke: Invoker = lambda_invoker) -> int:
    parser = argparse.ArgumentParser(prog="autopilot dlq", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["list", "redrive"])
    parser.add_argument("--queue", help="dead-letter queue URL (default: AUTOPILOT_DLQ_URL, then the stack)")
    parser.add_argument("--restart-queue", help="restart queue URL (default: AUTOPILOT_RESTART_QUEUE_URL, then stack)")
    parser.add_argument("--stack", default=os.environ.get("AUTOPILOT_STACK", "ecs-autopilot"))
    parser.add_argument("--max", type=int, default=100, help="at most this many letters")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--yes", action="store_true", help="redrive without asking")
    args = parser.parse_args(argv)
    from autopilot.aws.clients import client
    from autopilot_tools.cli.discovery import CliError

    try:
        url = _queue(args.queue, "AUTOPILOT_DLQ_URL", "DeadLetterQueueUrl", args.stack)
        sqs = client("sqs")
        letters = receive(sqs, url, args.max)
        if args.action == "list":
            if args.json:
                print(json.dumps([letter.model_dump(exclude={"receipt_handle"}) for letter in letters], indent=2,
                                 default=str))
            else:
                for letter in letters:
                    print(f"{letter.message_id}  {letter.origin:<13}  {letter.summary}  <- {letter.error}")
                print(f"{len(letters)} dead letter(s) in {url}")
            return 0
        if not letters:
            print("nothing to redrive")
            return 0
        if not args.yes:
            if not sys.stdin.isatty():
                raise CliError("refusing to redrive without --yes when not interactive")
            if input(f"send {len(letters)} letter(s) back? [y/N] ").strip().lower() != "y":
                return 1
        restart_queue = None
        if any(letter.origin == "restart-queue" for letter in letters):
            restart_queue = _queue(args.restart_queue, "AUTOPILOT_RESTART_QUEUE_URL", "RestartQueueUrl", args.stack)
        sent, problems = redrive(sqs, url, letters, restart_queue, invoke)
        for problem in problems:
            print(problem, file=sys.stderr)
        print(f"sent back {sent} of {len(letters)} letter(s)")
        return 0 if not problems else 1
    except CliError as exc:
        print(f"autopilot dlq: {exc}", file=sys.stderr)
        return exc.code
