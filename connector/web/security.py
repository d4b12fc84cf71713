"""Who may read the dashboard, and the headers every answer carries.

- Served on loopback without a token, the app answers only requests whose
  ``Host`` is a loopback name: a web page the user visits cannot reach it
  through DNS rebinding.
- With a token (required off loopback), a request passes with
  ``Authorization: Bearer <token>``, or with the session cookie that
  ``?token=<token>`` sets (HttpOnly, SameSite=Strict; Secure over HTTPS) before
  redirecting to the same page without the token in its address. The cookie
  holds an HMAC of the token, not the token. Comparisons use
  ``secrets.compare_digest``; the token is never logged, echoed or rendered.
- Every answer: a strict Content-Security-Policy (no script at all, styles
  from the app only), no framing, no sniffing, no referrer, no caching.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import secrets
from urllib.parse import parse_qsl, quote, urlencode

from pydantic import SecretStr
from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

COOKIE = "crmsync_dashboard"

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}
PUBLIC_PREFIXES = ("/static/",)
"""Served without a token: the style sheet (so the sign-in answer is readable); nothing from the store."""


def is_loopback(host: str) -> bool:
    """``127.0.0.1``, ``::1``, ``localhost``: addresses only this machine can reach."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_name(header: str) -> str:
    """The name of a ``Host`` header without its port (``[::1]:8000`` -> ``::1``)."""
    header = header.strip()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def session_value(token: SecretStr) -> str:
    """The cookie's value: an HMAC of the token, so the cookie jar never holds the token itself."""
    return hmac.new(token.get_secret_value().encode(), b"crmsync dashboard session", hashlib.sha256).hexdigest()


def _same(given: str, expected: str) -> bool:
    return secrets.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode())


class Guard:
    """ASGI middleware: the loopback ``Host`` rule or the token rule, then the security headers."""

    def __init__(self, app: ASGIApp, *, token: SecretStr | None) -> None:
        self.app = app
        self.token = token
        self.session = session_value(token) if token is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [(k, v) for k, v in message.get("headers", []) if k.decode().lower() not in HEADERS]
                headers += [(k.encode(), v.encode()) for k, v in HEADERS.items()]
                message = {**message, "headers": headers}
            await send(message)

        refusal = self._refusal(scope)
        if refusal is not None:
            await refusal(scope, receive, send_with_headers)
            return
        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            # the page's own text never goes out (it may hold a CRM string); the log has the traceback
            log.exception("dashboard page failed", extra={"path": scope["path"]})
            if not started:
                failed = PlainTextResponse("The dashboard could not build this page; the server log says why.\n", 500)
                await failed(scope, receive, send_with_headers)

    def _refusal(self, scope: Scope) -> Response | None:
        headers = Headers(scope=scope)
        if self.token is None:
            if not is_loopback(host_name(headers.get("host", ""))):
                return PlainTextResponse("This dashboard answers on loopback names only.\n", status_code=421)
            return None
        path: str = scope["path"]
        if path.startswith(PUBLIC_PREFIXES):
            return None
        expected = self.token.get_secret_value()
        scheme, _, given = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and _same(given.strip(), expected):
            return None
        assert self.session is not None
        cookie = _cookie(headers.get("cookie", ""))
        if cookie is not None and _same(cookie, self.session):
            return None
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        offered = [value for name, value in query if name == "token"]
        if offered and _same(offered[-1], expected):
            rest = urlencode([(name, value) for name, value in query if name != "token"])
            # one leading slash: "//host/..." would send the browser to another site
            here = "/" + quote(path).lstrip("/")
            response = RedirectResponse(here + (f"?{rest}" if rest else ""), status_code=303)
            response.set_cookie(
                COOKIE,
                self.session,
                httponly=True,
                samesite="strict",
                secure=scope.get("scheme") == "https",
                path="/",
            )
            return response
        return PlainTextResponse(
            "A token is needed: open the address the admin gave you (it ends in ?token=...), "
            "or send an Authorization: Bearer header.\n",
            status_code=401,
            headers={"www-authenticate": "Bearer"},
        )


def _cookie(header: str) -> str | None:
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE:
            return value
    return None
