"""Salesforce's error table: every row, and the SDK's exceptions through ``classify``."""

from __future__ import annotations

import pytest
import requests
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
)

from connector.errors import AuthError, ConfigError, CrmsyncError, QuotaExhausted, RateLimited, TransientError
from connector.salesforce.errors import ERROR_CODES, STATUSES, QueryLocatorExpired, classify, error_class


@pytest.mark.parametrize(("code", "expected"), sorted(ERROR_CODES.items()), ids=sorted(ERROR_CODES))
def test_every_error_code_row(code: str, expected: type[CrmsyncError]) -> None:
    wanted = QueryLocatorExpired if code == "INVALID_QUERY_LOCATOR" else expected
    assert error_class(400, code) is wanted


@pytest.mark.parametrize(("status", "expected"), sorted(STATUSES.items()), ids=[str(s) for s in sorted(STATUSES)])
def test_every_status_row(status: int, expected: type[CrmsyncError]) -> None:
    assert error_class(status, None) is expected


@pytest.mark.parametrize(
    ("status", "code", "message", "expected"),
    [
        (403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.", QuotaExhausted),
        (403, "REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded.", RateLimited),
        (403, "INSUFFICIENT_ACCESS", "no access", ConfigError),
        (500, None, "", TransientError),
        (502, None, "", TransientError),
        (503, "SERVER_UNAVAILABLE", "", TransientError),
        (400, "SOMETHING_NEW", "", ConfigError),
    ],
    ids=["quota", "concurrency", "permission", "500", "502", "503", "unknown-400"],
)
def test_status_and_code_together(status: int, code: str | None, message: str, expected: type[CrmsyncError]) -> None:
    assert error_class(status, code, message) is expected


def body(code: str, message: str = "m") -> list[dict[str, str]]:
    return [{"errorCode": code, "message": message}]


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (SalesforceRefusedRequest("u", 403, "query", body("REQUEST_LIMIT_EXCEEDED")), QuotaExhausted),  # type: ignore[arg-type]
        (SalesforceRefusedRequest("u", 403, "query", body("INSUFFICIENT_ACCESS")), ConfigError),  # type: ignore[arg-type]
        (SalesforceExpiredSession("u", 401, "query", body("INVALID_SESSION_ID")), AuthError),  # type: ignore[arg-type]
        (SalesforceMalformedRequest("u", 400, "query", body("INVALID_FIELD")), ConfigError),  # type: ignore[arg-type]
        (SalesforceMalformedRequest("u", 400, "q", body("INVALID_QUERY_LOCATOR")), QueryLocatorExpired),  # type: ignore[arg-type]
        (SalesforceGeneralError("u", 503, "query", b"<html>down</html>"), TransientError),
        (SalesforceGeneralError("u", 429, "query", body("TOO_MANY_REQUESTS")), RateLimited),  # type: ignore[arg-type]
        (SalesforceAuthenticationFailed("invalid_grant", "authentication failure"), AuthError),
        (SalesforceAuthenticationFailed(503, "<html>"), TransientError),
        (SalesforceAuthenticationFailed("unknown_error", "retry your request"), TransientError),
        (requests.exceptions.ConnectionError("reset"), TransientError),
        (requests.exceptions.ReadTimeout("slow"), TransientError),
        (requests.exceptions.SSLError("bad cert"), ConfigError),
    ],
    ids=[
        "quota",
        "permission",
        "401",
        "bad-field",
        "locator",
        "503-html",
        "429",
        "login",
        "login-5xx",
        "login-unknown",
        "reset",
        "timeout",
        "tls",
    ],
)
def test_classify_sdk_errors(error: Exception, expected: type[CrmsyncError]) -> None:
    assert type(classify("query", error)) is expected


def test_retry_after_is_kept() -> None:
    problem = classify("query", SalesforceGeneralError("u", 429, "query", b"[]"), retry_after=3.0)
    assert isinstance(problem, RateLimited)
    assert problem.retry_after == 3.0


def test_messages_name_endpoint_status_and_code_not_the_url() -> None:
    error = SalesforceRefusedRequest("https://x/services/data/v62.0/query/?q=SELECT+secret", 403, "query",
                                     body("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."))  # type: ignore[arg-type]  # fmt: skip
    problem = classify("query", error)
    assert str(problem) == "query: HTTP 403 REQUEST_LIMIT_EXCEEDED"
    # what the org said is kept apart: shown at the terminal, never stored with the run
    assert problem.vendor_message == "TotalRequests Limit exceeded."
