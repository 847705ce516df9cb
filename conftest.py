"""Repository-wide pytest set-up: puts the repository root on sys.path (so ``tests.*`` imports work
with any pytest entry point) and loads the AWS call recorder (tests/aws_calls.py) for every run."""

pytest_plugins = ["tests.aws_calls"]
