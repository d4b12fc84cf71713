"""Serving the dashboard with uvicorn: loopback unless a token guards it."""

from __future__ import annotations

import logging

from starlette.types import ASGIApp

from connector.errors import ConfigError
from connector.web.security import is_loopback

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def check_loopback(host: str) -> None:
    """Raise ``ConfigError`` (one line) when ``host`` is not a loopback address."""
    if not is_loopback(host):
        raise ConfigError(
            f"refusing to serve the dashboard on {host}: off loopback a token is required (--token-env VAR)"
        )


def check_binding(app: ASGIApp, host: str) -> None:
    """Raise ``ConfigError`` (one line) when ``host`` is not loopback and ``app`` does not require a token."""
    if not getattr(getattr(app, "state", None), "requires_token", False):
        check_loopback(host)


def serve(app: ASGIApp, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
    """Serve ``app`` until interrupted. Loopback by default; elsewhere only an app built with a token.

    uvicorn's access log is off: a ``?token=`` in a request line must never
    reach a log. The address served is logged once, without any token.
    """
    import uvicorn  # the [web] extra; imported here so the app itself is usable without it

    check_binding(app, host)
    log.info("dashboard serving", extra={"event": "dashboard_started", "host": host, "port": port})
    uvicorn.run(app, host=host, port=port, access_log=False, log_level="warning", server_header=False)
