"""What went wrong on the wire, and which URLs may carry a token.

Both SDKs sit on urllib3 (HubSpot directly, simple-salesforce through
requests), so one function walks an exception's chain and names the
failure. What a client does about it: a TLS failure is never transient (an
untrusted certificate stays untrusted); a refused connection or an unknown
host on the *first* call of a run means a wrong URL or no network, so the
run stops at once naming the URL; mid-run both are retried like a reset
or a timeout.
"""

from __future__ import annotations

import ssl
from enum import StrEnum

import urllib3.exceptions


class NetworkFailure(StrEnum):
    TLS = "TLS verification failed"
    DNS = "host name not found"
    REFUSED = "connection refused"
    TIMEOUT = "timed out"
    RESET = "connection lost"

    @property
    def fails_fast(self) -> bool:
        """Whether a first call failing this way stops the run instead of being retried."""
        return self in (NetworkFailure.TLS, NetworkFailure.DNS, NetworkFailure.REFUSED)


def _chain(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    pending: list[BaseException | None] = [error]
    while pending:
        item = pending.pop()
        if item is None or any(item is s for s in seen) or len(seen) > 20:
            continue
        seen.append(item)
        linked = [item.__cause__, item.__context__, getattr(item, "reason", None), *item.args]
        pending.extend(link for link in linked if isinstance(link, BaseException))
    return seen


def network_failure(error: BaseException) -> NetworkFailure:
    """The kind of failure behind a urllib3 / requests exception (anything else: a lost connection)."""
    chain = _chain(error)
    if any(isinstance(e, ssl.SSLError | urllib3.exceptions.SSLError) for e in chain) or any(
        type(e).__name__ == "SSLError" for e in chain
    ):
        return NetworkFailure.TLS
    if any(isinstance(e, urllib3.exceptions.NameResolutionError) for e in chain):
        return NetworkFailure.DNS
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return NetworkFailure.REFUSED
    if any(isinstance(e, urllib3.exceptions.NewConnectionError) for e in chain):
        text = " ".join(str(e) for e in chain).lower()
        if "name or service not known" in text or "nodename nor servname" in text or "getaddrinfo" in text:
            return NetworkFailure.DNS
        if "timed out" in text:
            return NetworkFailure.TIMEOUT
        return NetworkFailure.REFUSED
    if any(isinstance(e, TimeoutError | urllib3.exceptions.TimeoutError) for e in chain) or any(
        "Timeout" in type(e).__name__ for e in chain
    ):
        return NetworkFailure.TIMEOUT
    return NetworkFailure.RESET
