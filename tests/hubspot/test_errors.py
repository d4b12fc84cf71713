"""HubSpot's error table: every row, and what the resulting error says (endpoint, status; never the body)."""

from __future__ import annotations

import json

import pytest

from connector.errors import AuthError, ConfigError, CrmsyncError, NotFound, QuotaExhausted, RateLimited, TransientError
from connector.hubspot.errors import POLICIES, STATUSES, classify, error_class

ROWS = {
    "dropped connection": (0, None, TransientError),
    "401 token refused": (401, None, AuthError),
    "403 missing scope": (403, None, ConfigError),
    "404 not found": (404, None, NotFound),
    "408 timeout": (408, None, TransientError),
    "423 locked": (423, None, TransientError),
    "429 ten-secondly": (429, "TEN_SECONDLY_ROLLING", RateLimited),
    "429 secondly search": (429, "SECONDLY", RateLimited),
    "429 no policy": (429, None, RateLimited),
    "429 daily": (429, "DAILY", QuotaExhausted),
    "400 validation": (400, None, ConfigError),
    "409 conflict": (409, None, ConfigError),
    "500": (500, None, TransientError),
    "502": (502, None, TransientError),
    "503": (503, None, TransientError),
    "504": (504, None, TransientError),
    "524 cloudflare": (524, None, TransientError),
}


@pytest.mark.parametrize(("status", "policy", "expected"), ROWS.values(), ids=ROWS.keys())
def test_each_row_of_the_table(status: int, policy: str | None, expected: type[CrmsyncError]) -> None:
    assert error_class(status, policy) is expected
    body = json.dumps({"status": "error", "message": "secret body text", "policyName": policy})
    error = classify("contacts.search", status, body, {"Retry-After": "3"})
    assert type(error) is expected
    assert "contacts.search" in str(error) and f"HTTP {status}" in str(error)
    if isinstance(error, RateLimited):
        assert error.retry_after == 3.0
    if not isinstance(error, ConfigError) or isinstance(error, AuthError):
        assert "secret body text" not in str(error)


def test_every_listed_status_and_policy_has_a_row_above() -> None:
    covered = {status for status, _, _ in ROWS.values()}
    assert set(STATUSES) <= covered
    assert set(POLICIES) <= {policy for _, policy, _ in ROWS.values()}


def test_retry_after_as_an_http_date_is_understood() -> None:
    error = classify("contacts.list", 429, b"{}", {"retry-after": "Thu, 01 Jan 1970 00:00:00 GMT"})
    assert isinstance(error, RateLimited) and error.retry_after == 0.0


def test_an_unreadable_body_still_gives_a_named_error() -> None:
    error = classify("contacts.list", 502, b"<html>bad gateway</html>", None)
    assert type(error) is TransientError and "HTTP 502" in str(error)
