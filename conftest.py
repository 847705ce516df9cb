"""Repository-wide pytest set-up: puts the repository root on sys.path (so ``tests.*`` imports work
with any pytest entry point), refuses reads beside the repository (tests/repo_boundary.py) and loads the
AWS call recorder (tests/aws_calls.py) for every run."""

pytest_plugins = ["tests.repo_boundary", "tests.aws_calls"]
