"""The one seam every HubSpot call goes through: ``Transport.send(operation) -> Response``.

An :class:`Operation` names the call (the endpoint counted in usage and
named in errors), its method, path, query and JSON body; nothing outside
this module knows the SDK. The official SDK's generic ``ApiClient`` builds
and sends the request (auth, serialisation, its error type); its own
urllib3 retries are off (they never retry POST anyway) and every call asks
for the raw response (``_preload_content=False``) so that the body is
parsed once into our own models. Around the send: the pacer (burst window
and search per-second limit), the retry policy of :mod:`connector.http.retry`,
the error table of :mod:`connector.hubspot.errors` and usage counting.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

import hubspot.crm.contacts as sdk
import urllib3
from tenacity import RetryCallState
from urllib3.util.retry import Retry

from connector.errors import ConfigError, CrmsyncError, RateLimited, TransientError, Unreachable
from connector.http.network import NetworkFailure, network_failure
from connector.http.pacing import Pacer, Window
from connector.http.retry import retrying
from connector.http.usage import UsageCounter
from connector.hubspot.errors import classify
from connector.hubspot.settings import HubSpotConnection

log = logging.getLogger(__name__)

SEARCH = "search"
"""The pacer's kind for ``.../search`` calls (their own per-second limit)."""
_MULTI = {"properties": "multi", "associations": "multi"}
"""Query parameters HubSpot takes repeated (``properties=a&properties=b``)."""


@dataclass(frozen=True, slots=True)
class Operation:
    """One HubSpot REST call, described as data."""

    endpoint: str
    """Short name counted in usage and named in errors, e.g. ``contacts.search``."""
    method: Literal["GET", "POST", "PATCH"]
    path: str
    query: tuple[tuple[str, Any], ...] = ()
    body: Any = None
    search: bool = False
    """Counts against the search per-second limit."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    data: bytes
    headers: dict[str, str]


def path(template: str, **params: str) -> str:
    """A path with its parameters quoted, e.g. ``path("/forms/{guid}", guid=...)``."""
    return template.format(**{name: quote(value, safe="") for name, value in params.items()})


class Transport:
    """Sends operations for one client. Not thread-safe (one client, one thread)."""

    def __init__(
        self,
        settings: HubSpotConnection,
        token: str,
        *,
        sleep: Callable[[float], None] = time.sleep,
        pacing: bool = True,
        pacer: Pacer | None = None,
    ) -> None:
        self.settings = settings
        self.timeout = settings.timeout_seconds
        self._sleep = sleep
        configuration = sdk.Configuration()
        configuration.host = settings.base_url.rstrip("/")
        configuration.access_token = token
        configuration.retries = Retry(total=0, redirect=0)
        self._api = sdk.ApiClient(configuration=configuration)
        if pacer is None and pacing:
            pacer = Pacer(
                [
                    Window(
                        max(1, math.floor(settings.burst_limit * settings.pace_share)), settings.burst_window_seconds
                    ),
                    Window(1, 1.0 / (settings.search_per_second * settings.pace_share), frozenset({SEARCH})),
                ],
                sleep=sleep,
            )
        self.pacer = pacer
        self.usage = UsageCounter()
        self._answered = False
        """Whether HubSpot answered any call yet: before that, a refused connection is not retried."""

    def send(self, operation: Operation) -> Response:
        """Send ``operation`` until it succeeds or must not be retried."""

        def before_sleep(state: RetryCallState) -> None:
            self.usage.retry()
            error = state.outcome.exception() if state.outcome else None
            log.warning(
                "hubspot call retried",
                extra={
                    "endpoint": operation.endpoint,
                    "attempt": state.attempt_number,
                    "wait_seconds": round(state.upcoming_sleep, 3),
                    "error": type(error).__name__,
                },
            )

        policy = retrying(self.settings.retry, sleep=self._sleep, before_sleep=before_sleep)
        return policy(self._attempt, operation)

    def _attempt(self, operation: Operation) -> Response:
        if self.pacer is not None:
            self.pacer.acquire(SEARCH if operation.search else None)
        self.usage.call(operation.endpoint)
        headers = {"Accept": "application/json"}
        if operation.body is not None:
            headers["Content-Type"] = "application/json"
        try:
            raw = self._api.call_api(
                operation.path,
                operation.method,
                path_params={},
                query_params=list(operation.query),
                header_params=headers,
                body=operation.body,
                response_types_map={},
                auth_settings=["oauth2"],
                collection_formats=_MULTI,
                _preload_content=False,
                _request_timeout=self.timeout,
            )
            data = raw.data
            answer = dict(raw.headers)
            status = raw.status
            raw.release_conn()
        except urllib3.exceptions.HTTPError as error:
            raise self._no_response(operation.endpoint, error) from None
        except Exception as error:  # the SDK's ApiException family has no common base across API groups
            status = getattr(error, "status", None)
            if status is None:
                raise
            self._answered = True
            answer = dict(getattr(error, "headers", None) or {})
            self._note_quota(answer)
            failure = classify(operation.endpoint, int(status), getattr(error, "body", None), answer)
            if isinstance(failure, RateLimited):
                self.usage.limited()
            log.info("hubspot call failed", extra={"endpoint": operation.endpoint, "status": status})
            raise failure from None
        self._answered = True
        self._note_quota(answer)
        return Response(status, data, answer)

    def _no_response(self, endpoint: str, error: BaseException) -> CrmsyncError:
        """A call that got no HTTP response: TLS, DNS, refused, reset or timeout."""
        kind = network_failure(error)
        where = f"HubSpot {endpoint}: {self.settings.base_url}"
        if kind is NetworkFailure.TLS:
            return ConfigError(f"{where}: {kind.value} (the server's certificate is not trusted)")
        if kind.fails_fast and not self._answered:
            return Unreachable(f"{where}: {kind.value} (check base_url and the network)")
        return TransientError(f"{where}: no response ({kind.value})")

    def _note_quota(self, headers: Mapping[str, str]) -> None:
        lowered = {k.lower(): v for k, v in headers.items()}
        daily = lowered.get("x-hubspot-ratelimit-daily")
        remaining = lowered.get("x-hubspot-ratelimit-daily-remaining")
        total = int(daily) if daily and daily.isdigit() else None
        left = int(remaining) if remaining and remaining.isdigit() else None
        if total is not None or left is not None:
            total = total if total is not None else self.usage.quota_total
            used = total - left if total is not None and left is not None else None
            self.usage.quota(used, total)

    def close(self) -> None:
        """Close the pooled connections (a later call opens new ones)."""
        self._api.close()
        self._api.rest_client.pool_manager.clear()
