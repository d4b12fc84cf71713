"""Which URLs may carry a token: https, or http to a loopback host (local emulators, test servers)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

LOOPBACK_NAMES = frozenset({"localhost"})


def is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_https(url: str) -> str:
    """``url`` if it is ``https://`` (or ``http://`` to a loopback host); ``ValueError`` otherwise.

    A token sent over plain http can be read by anyone on the path; loopback
    is allowed for local emulators and test servers.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url[:100]!r}")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ValueError(
            f"{url[:100]!r} is plain http: the token would travel in clear text; use https:// "
            "(http is only accepted for loopback hosts: 127.0.0.0/8, ::1, localhost)"
        )
    return url
