"""The one retry policy both vendors use: what is retried, how long it waits, when it stops (no real sleeping)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connector.errors import AuthError, ConfigError, QuotaExhausted, RateLimited, TransientError
from connector.http.retry import parse_retry_after, retrying
from connector.http.settings import RetrySettings

NOW = datetime(2026, 12, 2, 10, 0, 0, tzinfo=UTC)

RETRY_AFTER = {
    "seconds": ("7", 7.0),
    "fraction": ("0.25", 0.25),
    "negative is now": ("-3", 0.0),
    "HTTP date 30 s ahead": ("Wed, 02 Dec 2026 10:00:30 GMT", 30.0),
    "HTTP date in the past": ("Wed, 02 Dec 2026 09:59:00 GMT", 0.0),
    "missing": (None, None),
    "blank": ("  ", None),
    "garbage": ("soon", None),
}


@pytest.mark.parametrize(("value", "seconds"), RETRY_AFTER.values(), ids=RETRY_AFTER.keys())
def test_retry_after_is_read_as_seconds_or_as_an_http_date(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, now=lambda: NOW) == seconds


class Flaky:
    """Fails with ``errors`` in turn, then returns ``"ok"``."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def _run(settings: RetrySettings, action: Flaky) -> tuple[object, list[float]]:
    slept: list[float] = []
    policy = retrying(settings, sleep=slept.append, rng=lambda low, high: high)  # jitter at its top: deterministic
    return policy(action), slept


def test_transient_errors_are_retried_with_exponential_backoff() -> None:
    settings = RetrySettings(max_attempts=5, initial_wait_seconds=1, max_wait_seconds=3, total_wait_seconds=100)
    action = Flaky(TransientError("a"), TransientError("b"), TransientError("c"))
    result, slept = _run(settings, action)
    assert result == "ok" and action.calls == 4
    assert slept == [1.0, 2.0, 3.0]  # 1, 2, then capped at max_wait


def test_retry_after_comes_first_and_is_capped_by_max_wait() -> None:
    settings = RetrySettings(max_attempts=5, initial_wait_seconds=1, max_wait_seconds=10, total_wait_seconds=100)
    action = Flaky(RateLimited("429", retry_after=4), RateLimited("429", retry_after=60), RateLimited("429"))
    _, slept = _run(settings, action)
    assert slept == [4.0, 10.0, 4.0]  # the last one had no Retry-After: backoff of attempt 3


def test_it_stops_after_max_attempts_and_raises_the_last_error() -> None:
    settings = RetrySettings(max_attempts=3, initial_wait_seconds=1, max_wait_seconds=1, total_wait_seconds=100)
    action = Flaky(*[TransientError(str(n)) for n in range(10)])
    with pytest.raises(TransientError, match="2"):
        _run(settings, action)
    assert action.calls == 3


def test_the_total_wait_is_never_exceeded() -> None:
    settings = RetrySettings(max_attempts=100, initial_wait_seconds=4, max_wait_seconds=4, total_wait_seconds=10)
    action = Flaky(*[TransientError(str(n)) for n in range(100)])
    slept: list[float] = []
    with pytest.raises(TransientError):
        retrying(settings, sleep=slept.append, rng=lambda low, high: high)(action)
    assert slept == [4.0, 4.0, 2.0]
    assert sum(slept) == settings.total_wait_seconds


@pytest.mark.parametrize(
    "error",
    [ConfigError("bad"), AuthError("401"), QuotaExhausted("daily"), ValueError("bug")],
    ids=["config", "auth", "quota", "other"],
)
def test_errors_that_are_not_transient_are_raised_at_once(error: Exception) -> None:
    action = Flaky(error)
    with pytest.raises(type(error)):
        _run(RetrySettings(), action)
    assert action.calls == 1


def test_jitter_never_waits_less_than_half_the_step() -> None:
    settings = RetrySettings(max_attempts=3, initial_wait_seconds=2, max_wait_seconds=10, total_wait_seconds=100)
    slept: list[float] = []
    policy = retrying(settings, sleep=slept.append, rng=lambda low, high: low)
    policy(Flaky(TransientError("a"), TransientError("b")))
    assert slept == [1.0, 2.0]
