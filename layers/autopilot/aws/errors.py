"""Which AWS errors are the service's trouble rather than the request's: botocore's own lists, not a copy.

botocore's ``standard`` retry mode (the one ``autopilot.aws.clients`` configures) retries exactly these;
an error that still reaches us is one that outlasted those retries.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.retries.standard import RetryContext, ThrottledRetryableChecker, TransientRetryableChecker

_THROTTLED = ThrottledRetryableChecker()
_TRANSIENT = TransientRetryableChecker()


def _context(response: Mapping[str, Any]) -> RetryContext:
    return RetryContext(attempt_number=1, parsed_response=response)


def error_code(response: Mapping[str, Any]) -> str:
    return str((response.get("Error") or {}).get("Code") or "")


def is_throttling(response: Mapping[str, Any]) -> bool:
    """A ClientError's ``response`` says AWS throttled the call (botocore's throttling error codes)."""
    return bool(_THROTTLED.is_retryable(_context(response)))


def is_transient(response: Mapping[str, Any]) -> bool:
    """Throttling, a server-side error (HTTP 5xx) or a request timeout: AWS's trouble, worth a later retry."""
    status = int((response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0)
    return status >= 500 or is_throttling(response) or bool(_TRANSIENT.is_retryable(_context(response)))
