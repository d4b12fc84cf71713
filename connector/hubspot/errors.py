"""HubSpot's statuses and error bodies mapped to errors named by what to do.

The table is data, like Salesforce's: ``POLICIES`` (a 429's ``policyName``)
first, then ``STATUSES``; a status in neither is transient from 500 up and
a configuration problem below. This is the only place that looks at a
HubSpot status code; a parametrized test covers every row. Messages name
the endpoint, status, HubSpot's category and correlation id; never a body
or a token.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError

from connector.errors import (
    AuthError,
    ConfigError,
    CrmsyncError,
    NotFound,
    QuotaExhausted,
    RateLimited,
    TransientError,
    with_vendor_message,
)
from connector.http.retry import parse_retry_after
from connector.hubspot.payloads import ErrorBody

POLICIES: dict[str, type[CrmsyncError]] = {
    # the portal's daily limit: resets at midnight in the portal's time zone; retrying only burns time
    "DAILY": QuotaExhausted,
}
"""429s by ``policyName``; any other policy (ten-secondly rolling, secondly search) is a short-window limit."""

STATUSES: dict[int, type[CrmsyncError]] = {
    0: TransientError,  # a dropped connection or a timeout (no HTTP status at all)
    401: AuthError,
    403: ConfigError,  # the private app lacks a scope this call needs
    404: NotFound,
    408: TransientError,
    423: TransientError,
    429: RateLimited,
}
"""Statuses; unlisted ones are transient from 500 up, a configuration problem below."""

HINTS: dict[type[CrmsyncError], str] = {
    AuthError: "the access token was refused; check the private app's token",
    QuotaExhausted: "the portal's daily API limit is used up; it resets at midnight in the portal's time zone",
}


def parse_error_body(body: bytes | str | None) -> ErrorBody:
    if not body:
        return ErrorBody()
    try:
        return ErrorBody.model_validate_json(body)
    except ValidationError:
        return ErrorBody()


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """``Retry-After`` in seconds: a number of seconds or an HTTP date."""
    if not headers:
        return None
    return parse_retry_after(next((v for k, v in headers.items() if k.lower() == "retry-after"), None))


def error_class(status: int, policy: str | None = None) -> type[CrmsyncError]:
    """What to do about a failed call: the row of the table that applies."""
    if status == 429 and policy in POLICIES:
        return POLICIES[policy]
    if status in STATUSES:
        return STATUSES[status]
    return TransientError if status >= 500 else ConfigError


def classify(endpoint: str, status: int, body: bytes | str | None, headers: Mapping[str, str] | None) -> CrmsyncError:
    """The error to raise for a failed call to ``endpoint``."""
    error = parse_error_body(body)
    kind = error_class(status, error.policy_name)
    where = f"HubSpot {endpoint}: HTTP {status}"
    if error.correlation_id:
        where += f" (correlation id {error.correlation_id})"
    if kind in HINTS:
        return kind(f"{where}: {HINTS[kind]}")
    if kind is RateLimited:
        return RateLimited(f"{where}: {error.policy_name or 'rate limit'}", retry_after_seconds(headers))
    if issubclass(kind, TransientError):
        return kind(f"{where}: {error.category or 'server error'}")
    if status == 403:
        return kind(f"{where}: {error.category or 'forbidden'}: the app lacks a scope this call needs")
    return with_vendor_message(kind(f"{where}: {error.category or 'error'}"), error.message)
