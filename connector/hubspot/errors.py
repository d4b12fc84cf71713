"""HubSpot's statuses and error bodies mapped to errors named by what to do (STYLE.md item 7).

This table is the only place that looks at a HubSpot status code. Messages
name the endpoint, status, HubSpot's category and correlation id; never a
body or a token.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError

from connector.errors import AuthError, ConfigError, CrmsyncError, QuotaExhausted, RateLimited, TransientError
from connector.hubspot.payloads import ErrorBody

TRANSIENT_STATUSES = frozenset({0, 408, 423, 500, 502, 503, 504, 520, 521, 522, 523, 524})
"""0 is a dropped connection or a timeout (no HTTP status at all)."""


def parse_error_body(body: bytes | str | None) -> ErrorBody:
    if not body:
        return ErrorBody()
    try:
        return ErrorBody.model_validate_json(body)
    except ValidationError:
        return ErrorBody()


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    if not headers:
        return None
    raw = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if raw is None:
        return None
    try:
        return max(float(raw), 0.0)
    except ValueError:
        return None


def classify(endpoint: str, status: int, body: bytes | str | None, headers: Mapping[str, str] | None) -> CrmsyncError:
    """The error to raise for a failed call to ``endpoint``."""
    error = parse_error_body(body)
    where = f"HubSpot {endpoint}: HTTP {status}"
    if error.correlation_id:
        where += f" (correlation id {error.correlation_id})"
    if status == 401:
        return AuthError(f"{where}: the access token was refused; check the private app's token")
    if status == 429:
        if error.policy_name == "DAILY":
            return QuotaExhausted(
                f"{where}: the portal's daily API limit is used up; it resets at midnight in the portal's time zone"
            )
        policy = error.policy_name or "rate limit"
        return RateLimited(f"{where}: {policy}", retry_after_seconds(headers))
    if status in TRANSIENT_STATUSES or status >= 500:
        return TransientError(f"{where}: {error.category or 'server error'}")
    if status == 403:
        return ConfigError(f"{where}: {error.category or 'forbidden'}: the app lacks a scope this call needs")
    category = error.category or "error"
    message = f": {error.message[:200]}" if error.message else ""
    return ConfigError(f"{where}: {category}{message}")


def connection_failure(endpoint: str, error: BaseException) -> TransientError:
    """A call that got no HTTP response (reset, timeout, refused)."""
    return TransientError(f"HubSpot {endpoint}: no response ({type(error).__name__})")
