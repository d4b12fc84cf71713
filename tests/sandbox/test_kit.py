"""The sandbox kit on its own: the fault model, the request log, rolling limits (no server, no clock)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import pytest

from connector.sandbox.kit import Fault, Faults, LoggedRequest, RequestLog, RollingLimit, retry_after_header

NOW = datetime(2026, 11, 20, 12, 0, 0, tzinfo=UTC)


def draws(faults: Faults, endpoint: str, n: int) -> list[str | None]:
    return [f.kind if (f := faults.take(endpoint)) else None for _ in range(n)]


def test_counted_faults_hit_the_next_matching_requests_in_the_order_they_were_armed() -> None:
    faults = Faults()
    faults.add(Fault("server_error", endpoint="contacts.*", times=2), Fault("reset", endpoint="query"))
    assert faults.pending == 3
    assert faults.take("forms.list") is None
    assert draws(faults, "contacts.list", 3) == ["server_error", "server_error", None]
    assert draws(faults, "query", 2) == ["reset", None]
    assert (faults.pending, faults.hits()) == (0, 3)


@pytest.mark.parametrize(
    ("shorthand", "effect", "status"),
    [
        ("429", "rate_limit", 503),
        ("500", "server_error", 500),
        ("502", "server_error", 502),
        ("503", "server_error", 503),
    ],
)
def test_status_code_shorthands(shorthand: str, effect: str, status: int) -> None:
    faults = Faults()
    faults.add(shorthand, endpoint="query", times=2)
    fault = faults.take("query")
    assert fault is not None and (fault.effect, fault.kind) == (effect, shorthand)
    if effect == "server_error":
        assert fault.status == status
    assert faults.pending == 1


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        Fault("teapot")


def test_probabilistic_draws_are_seeded_per_endpoint_whatever_the_interleaving() -> None:
    def armed(seed: int) -> Faults:
        faults = Faults(seed=seed)
        faults.add(Fault("reset", times=None, probability=0.2), Fault("rate_limit", times=None, probability=0.3))
        return faults

    alone = armed(5)
    list_only = draws(alone, "contacts.list", 200)
    mixed = armed(5)
    interleaved: list[str | None] = []
    for _ in range(200):
        mixed.take("contacts.search")  # another endpoint's traffic in between changes nothing
        interleaved += draws(mixed, "contacts.list", 1)
    assert interleaved == list_only
    assert draws(armed(6), "contacts.list", 200) != list_only
    counts = Counter(list_only)
    assert 20 <= counts["reset"] <= 60 and 40 <= counts["rate_limit"] <= 80  # shares add up: 0.2 and 0.3


def test_retry_after_in_seconds_as_an_http_date_or_absent() -> None:
    assert Fault("rate_limit", retry_after=1.5).retry_after_header(NOW) == {"Retry-After": "1.5"}
    assert Fault("rate_limit").retry_after_header(NOW) == {}
    dated = Fault("rate_limit", retry_after=1.2, retry_after_date=True).retry_after_header(NOW)
    assert dated == {"Retry-After": "Fri, 20 Nov 2026 12:00:02 GMT"}  # whole seconds, rounded up
    assert parsedate_to_datetime(dated["Retry-After"]) == datetime(2026, 11, 20, 12, 0, 2, tzinfo=UTC)
    assert retry_after_header(None, as_date=True) == {}


def test_partial_rejects_chosen_ids_and_a_seeded_share() -> None:
    faults = Faults(seed=3)
    ids = [str(n) for n in range(1000)]
    assert faults.rejected(Fault("partial", reject_ids=("5", "7")), ids) == {"5", "7"}
    share = faults.rejected(Fault("partial", reject_share=0.1), ids)
    assert 60 <= len(share) <= 140
    assert share == Faults(seed=3).rejected(Fault("partial", reject_share=0.1), ids)


def test_record_faults_fail_the_next_writes_to_those_records() -> None:
    faults = Faults()
    faults.lock_rows(["a"], times=2)
    faults.reject(["b"], category="OBJECT_NOT_FOUND")
    assert [faults.record_fault("a") for _ in range(3)] == ["UNABLE_TO_LOCK_ROW", "UNABLE_TO_LOCK_ROW", None]
    assert [faults.record_fault("b") for _ in range(2)] == ["OBJECT_NOT_FOUND", None]
    faults.reject(["c"])
    faults.clear()
    assert faults.record_fault("c") is None


def test_request_log_counts_per_endpoint_and_status() -> None:
    log = RequestLog()
    for endpoint, status in [("query", 200), ("query", 429), ("query_more", 200), ("query", 200)]:
        log.add(LoggedRequest(endpoint, "GET", status))
    assert log.calls() == 4 and log.calls("query") == 3 and log.calls("query", 200) == 2 and log.calls(status=429) == 1
    assert log.counts == Counter({"query": 3, "query_more": 1})
    assert log.statuses == Counter({200: 3, 429: 1})
    assert log.snapshot() == {"counts": {"query": 3, "query_more": 1}, "statuses": {"200": 3, "429": 1}}
    assert [e.status for e in log.entries] == [200, 429, 200, 200]
    log.clear()
    assert log.calls() == 0 and not log.entries


def test_request_log_can_keep_counters_only_or_the_last_entries() -> None:
    counters = RequestLog(keep_entries=False)
    last = RequestLog(max_entries=2)
    for n in range(5):
        counters.add(LoggedRequest("query", "GET", 200 + n))
        last.add(LoggedRequest("query", "GET", 200 + n))
    assert counters.calls() == 5 and not counters.entries
    assert [e.status for e in last.entries] == [203, 204] and last.calls() == 5


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rolling_limit_refuses_past_the_limit_and_says_how_long_to_wait() -> None:
    clock = FakeClock()
    limit = RollingLimit(3, 10.0, clock=clock)
    assert [limit.take() for _ in range(3)] == [None, None, None]
    clock.now += 4
    assert limit.take() == pytest.approx(6.0)
    assert limit.used == 3 and limit.remaining == 0
    clock.now += 6
    assert limit.take() is None and limit.used == 1


def test_rolling_limit_in_slots_for_a_day_of_calls() -> None:
    clock = FakeClock()
    clock.now = 86_400.0 * 100
    day = RollingLimit(1000, 86_400, slot=60, clock=clock)
    day.set_used(999)
    assert day.take() is None and day.take() is not None
    clock.now += 86_400 + 60
    assert day.used == 0 and day.take() is None


def test_unlimited_rolling_limit_never_refuses_nor_remembers() -> None:
    limit = RollingLimit(None, 10.0)
    assert all(limit.take() is None for _ in range(10_000))
    assert limit.remaining is None
