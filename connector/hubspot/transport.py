"""The one choke point every HubSpot call goes through: pacing, retries, error classification, counting.

The official SDK builds and sends the requests (its API objects are built
once and kept: each access to ``client.crm.contacts.batch_api`` makes a new
connection pool). Its own urllib3 retries are turned off (they never retry
POST anyway) and each call asks for the raw response
(``_preload_content=False``) so that the body is parsed once into our own
models. Retries follow the connection's ``RetrySettings`` with tenacity:
``Retry-After`` first, else exponential backoff with jitter, a cap on each
wait and on all waits. A DAILY 429, a 401 and client errors are never retried.
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import urllib3
from hubspot import HubSpot
from tenacity import RetryCallState, Retrying, retry_if_exception_type
from urllib3.util.retry import Retry

from connector.config import HubSpotConnection, RetrySettings
from connector.errors import RateLimited, TransientError
from connector.hubspot.errors import classify, connection_failure
from connector.hubspot.pacing import Pacer

log = logging.getLogger(__name__)

FORM_SUBMISSIONS_PATH = "/form-integrations/v1/submissions/forms/{formId}"


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    data: bytes
    headers: dict[str, str]


class Transport:
    """Sends SDK calls; one instance per client. Not thread-safe (one client, one thread)."""

    def __init__(
        self,
        settings: HubSpotConnection,
        token: str,
        *,
        sleep: Callable[[float], None] = time.sleep,
        pacing: bool = True,
    ) -> None:
        self.settings = settings
        self.retry: RetrySettings = settings.retry
        self.timeout = settings.timeout_seconds
        self._sleep = sleep
        api = HubSpot(access_token=token, host=settings.base_url.rstrip("/"), retry=Retry(total=0, redirect=0))
        crm = api.crm
        self.contacts_basic = crm.contacts.basic_api
        self.contacts_search = crm.contacts.search_api
        self.contacts_batch = crm.contacts.batch_api
        objects = crm.objects
        self.object_basic = {
            "meetings": objects.meetings.basic_api,
            "emails": objects.emails.basic_api,
            "calls": objects.calls.basic_api,
        }
        self.object_search = {
            "meetings": objects.meetings.search_api,
            "emails": objects.emails.search_api,
            "calls": objects.calls.search_api,
        }
        self.associations = crm.associations.v4.batch_api
        self.properties = crm.properties.core_api
        self.forms = api.marketing.forms.forms_api
        self.pacer = (
            Pacer(
                burst_limit=settings.burst_limit,
                burst_window_seconds=settings.burst_window_seconds,
                search_per_second=settings.search_per_second,
                share=settings.pace_share,
                sleep=sleep,
            )
            if pacing
            else None
        )
        self.calls: Counter[str] = Counter()
        self.retries = 0
        self.rate_limited = 0
        self.quota_total: int | None = None
        self.quota_remaining: int | None = None

    def call(self, endpoint: str, send: Callable[..., Any], *, search: bool = False, **kwargs: Any) -> Response:
        """Call ``send(**kwargs)`` (an SDK method) until it succeeds or must not be retried."""
        retrying = Retrying(
            retry=retry_if_exception_type(TransientError),
            stop=self._stop,
            wait=self._wait,
            sleep=self._sleep,
            before_sleep=lambda state: self._before_sleep(endpoint, state),
            reraise=True,
        )
        return retrying(self._attempt, endpoint, send, search, kwargs)

    def _attempt(self, endpoint: str, send: Callable[..., Any], search: bool, kwargs: dict[str, Any]) -> Response:
        if self.pacer is not None:
            self.pacer.acquire(search=search)
        self.calls[endpoint] += 1
        try:
            raw = send(**kwargs, _preload_content=False, _request_timeout=self.timeout)
            data = raw.data
            headers = dict(raw.headers)
            status = raw.status
            raw.release_conn()
        except urllib3.exceptions.HTTPError as error:
            raise connection_failure(endpoint, error) from None
        except Exception as error:  # the SDK's ApiException family has no common base across API groups
            status = getattr(error, "status", None)
            if status is None:
                raise
            body = getattr(error, "body", None)
            headers = dict(getattr(error, "headers", None) or {})
            self._note_quota(headers)
            failure = classify(endpoint, int(status), body, headers)
            if isinstance(failure, RateLimited):
                self.rate_limited += 1
            log.info("hubspot call failed", extra={"endpoint": endpoint, "status": status})
            raise failure from None
        self._note_quota(headers)
        return Response(status, data, headers)

    def _note_quota(self, headers: dict[str, str]) -> None:
        lowered = {k.lower(): v for k, v in headers.items()}
        daily = lowered.get("x-hubspot-ratelimit-daily")
        remaining = lowered.get("x-hubspot-ratelimit-daily-remaining")
        if daily and daily.isdigit():
            self.quota_total = int(daily)
        if remaining and remaining.isdigit():
            self.quota_remaining = int(remaining)

    # -- the retry policy ---------------------------------------------------------
    def _stop(self, state: RetryCallState) -> bool:
        if state.attempt_number >= self.retry.max_attempts:
            return True
        return state.idle_for + self._next_wait(state) > self.retry.total_wait_seconds

    def _wait(self, state: RetryCallState) -> float:
        return self._next_wait(state)

    def _next_wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, RateLimited) and error.retry_after is not None:
            return min(error.retry_after, self.retry.max_wait_seconds)
        base = min(self.retry.max_wait_seconds, self.retry.initial_wait_seconds * 2 ** (state.attempt_number - 1))
        # "equal jitter": never less than half the backoff, so a burst of clients spreads out but still waits
        return base / 2 + random.uniform(0, base / 2)

    def _before_sleep(self, endpoint: str, state: RetryCallState) -> None:
        self.retries += 1
        error = state.outcome.exception() if state.outcome else None
        log.warning(
            "hubspot call retried",
            extra={
                "endpoint": endpoint,
                "attempt": state.attempt_number,
                "wait_seconds": round(state.upcoming_sleep, 3),
                "error": type(error).__name__,
            },
        )
