"""Salesforce's error table: status and ``errorCode`` to what crmsync does about it.

The only place that looks at Salesforce statuses and error codes; a parametrized test covers every row. Messages name the endpoint,
status and code, never a body, a token or a password.
"""

from __future__ import annotations

from typing import Any

import requests
from pydantic import TypeAdapter, ValidationError
from simple_salesforce.exceptions import SalesforceAuthenticationFailed, SalesforceError

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
from connector.salesforce.payloads import ApiError

ERROR_CODES: dict[str, type[CrmsyncError]] = {
    # the rolling 24 h allocation is used up: stop the run; never a credentials problem
    "REQUEST_LIMIT_EXCEEDED": QuotaExhausted,
    "INVALID_SESSION_ID": AuthError,
    "UNABLE_TO_LOCK_ROW": TransientError,
    "SERVER_UNAVAILABLE": TransientError,
    "UNKNOWN_EXCEPTION": TransientError,
    "QUERY_TIMEOUT": TransientError,
    "INVALID_QUERY_LOCATOR": TransientError,
    "MALFORMED_QUERY": ConfigError,
    "INVALID_FIELD": ConfigError,
    "INVALID_TYPE": NotFound,
    "NOT_FOUND": NotFound,
    "INSUFFICIENT_ACCESS": ConfigError,
    "INSUFFICIENT_ACCESS_OR_READONLY": ConfigError,
    "API_DISABLED_FOR_ORG": ConfigError,
    "API_CURRENTLY_DISABLED": ConfigError,
    "FUNCTIONALITY_NOT_ENABLED": ConfigError,
    "FeatureNotEnabled": ConfigError,  # Bulk API (1.0 and 2.0) not enabled for the org
}
"""Whole-request error codes; a code not listed falls back on the HTTP status."""

STATUSES: dict[int, type[CrmsyncError]] = {
    400: ConfigError,
    401: AuthError,
    403: ConfigError,  # "no permission"; the quota's 403 is told apart by its errorCode
    404: NotFound,
    405: ConfigError,
    429: RateLimited,
}
"""HTTP statuses; 5xx and anything else unexpected are transient."""

RECORD_RETRY_CODES: frozenset[str] = frozenset({"UNABLE_TO_LOCK_ROW", "ALL_OR_NONE_OPERATION_ROLLED_BACK"})
"""Per-record errors of collections that pass: retried in the call, then left for a later run."""

TRANSIENT_LOGIN_ERRORS: frozenset[object] = frozenset(
    {"unknown_error", "server_unavailable", "temporarily_unavailable"}
)
"""OAuth ``error`` values that pass (Salesforce answers ``unknown_error: retry your request``)."""

LOGIN_REASONS: dict[str, str] = {
    # OAuth 2.0 JWT bearer (RFC 7523 errors in Salesforce's words)
    "invalid assertion": "the assertion's signature does not match the connected app's certificate (wrong private key?)",
    "expired authorization code": "the assertion had expired when Salesforce read it (check this machine's clock)",
    "audience is invalid": "the assertion's audience is not this login host (set jwt_audience)",
    "user hasn't approved this consumer": "the user is not pre-authorised for the connected app (admin approval)",
    # refresh token
    "expired access/refresh token": "the refresh token expired or was revoked: authorise the app again and store the new one",
    # every grant
    "authentication failure": "the username, password or security token is wrong, or the user is locked",
    "invalid client credentials": "the consumer key or consumer secret is wrong",
    "client identifier invalid": "no connected app has this consumer key",
    "grant type not supported": "the connected app does not allow this grant",
    "no client credentials user enabled": "the connected app has no run-as user for the client-credentials grant",
}
"""OAuth ``error_description`` values -> what a person should check; the text Salesforce sends is kept too."""

_ERRORS = TypeAdapter(list[ApiError])


class QueryLocatorExpired(TransientError):
    """A ``nextRecordsUrl`` is no longer valid (too many open cursors, or idle too long): re-query."""


def error_body(content: Any) -> ApiError | None:
    """The first ``{"errorCode", "message"}`` of an error body, if it has one."""
    try:
        errors = _ERRORS.validate_python(content)
    except ValidationError:
        return None
    return errors[0] if errors else None


def error_class(status: int, code: str | None, message: str = "") -> type[CrmsyncError]:
    """What to do about a failed call: the row of the table that applies."""
    if code == "REQUEST_LIMIT_EXCEEDED" and "concurrent" in message.lower():
        # too many long-running requests at once: the same code, but it passes
        return RateLimited
    if code == "INVALID_QUERY_LOCATOR":
        return QueryLocatorExpired
    if code in ERROR_CODES:
        return ERROR_CODES[code]
    return STATUSES.get(status, TransientError)


def classify_login(flow: str, error: SalesforceAuthenticationFailed) -> CrmsyncError:
    """A refused token request, naming the grant that failed and why (never the assertion or a secret)."""
    where = f"oauth/token ({flow} grant)"
    status = error.code if isinstance(error.code, int) else 400
    if status >= 500 or status == 429 or error.code in TRANSIENT_LOGIN_ERRORS:
        return TransientError(f"{where}: HTTP {status} from the OAuth endpoint")
    if isinstance(error.code, int):  # not an OAuth JSON answer (a proxy's page): its text is not shown
        return AuthError(f"{where}: HTTP {status} from the OAuth endpoint (not an OAuth answer)")
    description = str(error.auth_message or "")[:120]
    reason = LOGIN_REASONS.get(description.lower())
    text = f"{where}: Salesforce refused the login ({error.code}: {description})"
    return AuthError(text + (f": {reason}" if reason else ""))


def classify(endpoint: str, error: Exception, retry_after: float | None = None) -> CrmsyncError:
    """The crmsync error for an exception raised by simple-salesforce or requests."""
    if isinstance(error, SalesforceAuthenticationFailed):
        status = error.code if isinstance(error.code, int) else 400
        if status >= 500 or status == 429 or error.code in TRANSIENT_LOGIN_ERRORS:
            return TransientError(f"{endpoint}: HTTP {status} from the OAuth endpoint")
        return AuthError(f"{endpoint}: Salesforce refused the login ({error.code}: {error.auth_message[:120]})")
    if isinstance(error, SalesforceError):
        body = error_body(error.content)
        code = body.error_code if body else None
        kind = error_class(error.status, code, body.message if body else "")
        text = f"{endpoint}: HTTP {error.status}" + (f" {code}" if code else "")
        if kind is RateLimited:
            return RateLimited(text, retry_after)
        if kind in (ConfigError, NotFound, QuotaExhausted) and body:
            return with_vendor_message(kind(text), body.message)
        return kind(text)
    if isinstance(error, requests.exceptions.SSLError):
        return ConfigError(f"{endpoint}: TLS verification failed (check ca_bundle and the instance URL)")
    if isinstance(error, requests.exceptions.RequestException):
        return TransientError(f"{endpoint}: {type(error).__name__} talking to Salesforce")
    return TransientError(f"{endpoint}: {type(error).__name__}")
