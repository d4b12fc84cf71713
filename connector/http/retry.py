"""The one retry policy, built from tenacity parts.

- retry: only :class:`~connector.errors.TransientError` (``RateLimited``
  included); every other error is raised at once;
- wait: the server's ``Retry-After`` first (seconds or an HTTP date), else
  exponential backoff with "equal jitter" (never less than half the step,
  so a burst of clients spreads out but still waits); each wait is capped
  by ``max_wait_seconds`` and by what is left of ``total_wait_seconds``;
- stop: after ``max_attempts`` attempts, or once ``total_wait_seconds`` of
  waiting are used up. The same rules for every vendor.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from tenacity import RetryCallState, Retrying, retry_if_exception_type
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from connector.errors import RateLimited, TransientError
from connector.http.settings import RetrySettings

__all__ = ["RetrySettings", "parse_retry_after", "retrying"]


def parse_retry_after(value: str | None, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delay-seconds or an HTTP date (RFC 9110 10.2.3).

    ``None`` when absent or unreadable; a date in the past is 0.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        return max(float(text), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - now()).total_seconds(), 0.0)


class wait_retry_after_or_backoff(wait_base):
    """``Retry-After`` when the error carries one, else exponential backoff with equal jitter."""

    def __init__(self, settings: RetrySettings, rng: Callable[[float, float], float] = random.uniform) -> None:
        self.settings = settings
        self.rng = rng

    def __call__(self, state: RetryCallState) -> float:
        settings = self.settings
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, RateLimited) and error.retry_after is not None:
            wait = min(error.retry_after, settings.max_wait_seconds)
        else:
            step = min(settings.max_wait_seconds, settings.initial_wait_seconds * 2 ** (state.attempt_number - 1))
            wait = step / 2 + self.rng(0, step / 2)
        return max(0.0, min(wait, settings.total_wait_seconds - state.idle_for))


class stop_after_attempts_or_total_wait(stop_base):
    def __init__(self, settings: RetrySettings) -> None:
        self.settings = settings

    def __call__(self, state: RetryCallState) -> bool:
        return state.attempt_number >= self.settings.max_attempts or state.idle_for >= self.settings.total_wait_seconds


def retrying(
    settings: RetrySettings,
    *,
    sleep: Callable[[float], None] = time.sleep,
    before_sleep: Callable[[RetryCallState], None] | None = None,
    rng: Callable[[float, float], float] = random.uniform,
) -> Retrying:
    """A tenacity ``Retrying`` applying the policy; call it with the action: ``retrying(...)(fn, *args)``."""
    return Retrying(
        retry=retry_if_exception_type(TransientError),
        wait=wait_retry_after_or_backoff(settings, rng),
        stop=stop_after_attempts_or_total_wait(settings),
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
