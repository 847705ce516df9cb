"""The ``autopilot`` command line: validate, store and inspect policies; pause and resume; history.

Entry point ``autopilot_tools.cli.main:main``. Commands that need no AWS (``validate``, ``schema``) import
neither boto3 nor the store, so they stay fast enough for editors and pre-commit hooks.
"""
