"""Which network failures stop a run at once, and which URLs may carry a token."""

from __future__ import annotations

import ssl

import pytest
import requests
import urllib3.exceptions

from connector.http.network import NetworkFailure, network_failure
from connector.http.urls import require_https


def _wrapped(reason: Exception) -> Exception:
    """As urllib3 (retries off) and requests raise it: MaxRetryError(reason) inside a requests ConnectionError."""
    inner = urllib3.exceptions.MaxRetryError(None, "/crm/v3/objects/contacts", reason)  # type: ignore[arg-type]
    return requests.exceptions.ConnectionError(inner)


FAILURES = {
    "refused": (urllib3.exceptions.NewConnectionError(None, "[Errno 111] Connection refused"), NetworkFailure.REFUSED),
    "dns": (
        urllib3.exceptions.NameResolutionError("api.example.invalid", None, OSError("no such host")),
        NetworkFailure.DNS,
    ),  # type: ignore[arg-type]
    "tls": (urllib3.exceptions.SSLError(ssl.SSLCertVerificationError("certificate verify failed")), NetworkFailure.TLS),
    "reset": (
        urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError(104, "reset")),
        NetworkFailure.RESET,
    ),
    "read timeout": (urllib3.exceptions.ReadTimeoutError(None, "/x", "timed out"), NetworkFailure.TIMEOUT),  # type: ignore[arg-type]
}


@pytest.mark.parametrize(("reason", "kind"), FAILURES.values(), ids=FAILURES.keys())
def test_failures_are_named_under_urllib3_and_requests(reason: Exception, kind: NetworkFailure) -> None:
    assert network_failure(urllib3.exceptions.MaxRetryError(None, "/x", reason)) is kind  # type: ignore[arg-type]
    assert network_failure(_wrapped(reason)) is kind


def test_only_refused_dns_and_tls_fail_fast() -> None:
    assert {kind for kind in NetworkFailure if kind.fails_fast} == {
        NetworkFailure.TLS,
        NetworkFailure.DNS,
        NetworkFailure.REFUSED,
    }


@pytest.mark.parametrize(
    "url",
    [
        "https://api.hubapi.com",
        "https://acme.my.salesforce.com/",
        "http://127.0.0.1:8080",
        "http://127.3.4.5",
        "http://localhost:9000",
        "http://[::1]:8443",
    ],
)
def test_https_or_loopback_urls_are_accepted(url: str) -> None:
    assert require_https(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "http://api.hubapi.com",
        "http://10.0.0.5:8080",
        "http://localhost.evil.example",
        "ftp://x.example",
        "api.hubapi.com",
    ],
)
def test_plain_http_to_other_hosts_is_refused(url: str) -> None:
    with pytest.raises(ValueError):
        require_https(url)
