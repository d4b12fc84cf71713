"""Engagement signals outside HubSpot's CRM objects: e-mail events, webinar participations, page-view counters.

The cursor transitions are pure and tested by tables; the reading goes
through the client against the sandbox; the last test is the issue's "Show":
a contact whose only signals are e-mail clicks, page views and an attended
webinar reaches ``mql`` through ``run_job`` on every store backend.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connector.config import Config, HubSpotConnection, PathSettings, StoreSettings
from connector.connections import open_client
from connector.hubspot.client import HubSpotClient
from connector.hubspot.engagement import (
    EventTypeCursor,
    ParticipationCursor,
    event_range,
    next_event_cursor,
    next_participation_cursor,
)
from connector.jobs import Job
from connector.model import Stage
from connector.sandbox.generator import FakeActivity, FakeCompany, FakePerson
from connector.sandbox.hubspot import HubSpotSandbox, Limits
from connector.store import open_store
from connector.sync import run_job
from tests.hubspot.conftest import FAST_RETRY, TOKEN
from tests.stores import StoreUrls
from tests.sync.conftest import REPO

MakeClient = Callable[..., HubSpotClient]


# -- the cursor transitions ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("state", "expected"),
    [
        pytest.param(EventTypeCursor(), (None, 10_000), id="first-run-from-the-beginning"),
        pytest.param(EventTypeCursor(since=5_000), (4_700, 10_000), id="from-the-watermark-less-the-lookback"),
        pytest.param(EventTypeCursor(since=4_700, until=9_000, offset="7"), (4_700, 9_000), id="resume-a-range"),
    ],
)
def test_event_range(state: EventTypeCursor, expected: tuple[int | None, int]) -> None:
    assert event_range(state, now_ms=10_000, lookback_ms=300) == expected


@pytest.mark.parametrize(
    ("state", "has_more", "offset", "expected"),
    [
        pytest.param(
            EventTypeCursor(), True, "1000", EventTypeCursor(since=None, until=9_000, offset="1000"), id="more-pages"
        ),
        pytest.param(
            EventTypeCursor(), False, None, EventTypeCursor(since=9_000), id="range-done-watermark-at-its-end"
        ),
        pytest.param(
            EventTypeCursor(since=5_000),
            True,
            "1000",
            EventTypeCursor(since=4_700, until=9_000, offset="1000"),
            id="a-range-keeps-its-own-start",
        ),
        pytest.param(
            EventTypeCursor(since=4_700, until=9_000, offset="1000"),
            True,
            "2000",
            EventTypeCursor(since=4_700, until=9_000, offset="2000"),
            id="next-page-same-range",
        ),
        pytest.param(EventTypeCursor(), True, None, EventTypeCursor(since=9_000), id="more-without-a-token-ends"),
    ],
)
def test_next_event_cursor(
    state: EventTypeCursor, has_more: bool, offset: str | None, expected: EventTypeCursor
) -> None:
    since, until = event_range(state, now_ms=9_000, lookback_ms=300)
    assert next_event_cursor(state, since, until, has_more, offset) == expected


@pytest.mark.parametrize(
    ("state", "seen", "expected"),
    [
        pytest.param(ParticipationCursor(), [], ParticipationCursor(), id="nothing-seen"),
        pytest.param(ParticipationCursor(), [3, 9, 5], ParticipationCursor(watermark=9), id="to-the-latest"),
        pytest.param(ParticipationCursor(watermark=12), [3, 9], ParticipationCursor(watermark=12), id="never-back"),
    ],
)
def test_next_participation_cursor(state: ParticipationCursor, seen: list[int], expected: ParticipationCursor) -> None:
    assert next_participation_cursor(state, seen) == expected


# -- reading through the client -------------------------------------------------------------------
def test_the_activity_pull_reads_email_events_and_webinars_and_contacts_carry_counters(
    sandbox: HubSpotSandbox, make_client: MakeClient
) -> None:
    client = make_client(sandbox)
    contacts = [r for page in client.pull_contacts(None) for r in page.records]
    pages = list(client.pull_activities(None))
    kinds = [r.activity.kind for p in pages for r in p.records]
    signals = sandbox.store.signals
    opens = sum(1 for t in signals.event_type if t == 0)
    clicks = signals.event_count - opens
    assert kinds.count("email_open") == opens and kinds.count("email_click") == clicks
    attended = sum(1 for s in signals.part_state if s == 1)
    assert kinds.count("webinar_attended") == attended > 0
    with_views = [c for c in contacts if any(k.kind == "page_views" for k in c.contact.counters)]
    assert len(with_views) == len(signals.views) > 0
    calls = client.usage().calls
    # one page per event type (pages of 1,000), the webinar list, one breakdown page per webinar
    assert calls["email.events"] == 2 and calls["marketing_events.list"] == 1
    assert calls["marketing_events.participations"] == 3

    cursor = pages[-1].cursor
    again = [r.crm_id for p in client.pull_activities(cursor) for r in p.records]
    # nothing new: what comes again is the lookback's re-read at the watermark (the store keeps one of each)
    assert len(again) <= 2 and set(again) <= {r.crm_id for p in pages for r in p.records}


def test_filtered_opens_and_unknown_recipients_are_not_activities(
    sandbox: HubSpotSandbox, make_client: MakeClient
) -> None:
    client = make_client(sandbox)
    from connector.hubspot.engagement import EmailEvent, EngagementReader

    reader = EngagementReader(lambda op: b"", client.mapping, lambda emails: {"a@b.example": "7"}, 0)
    events = [
        EmailEvent.model_validate(
            {"id": "1", "created": 1_700_000_000_000, "type": "CLICK", "recipient": "a@b.example"}
        ),
        EmailEvent.model_validate(
            {"id": "2", "created": 1_700_000_000_000, "type": "OPEN", "recipient": "a@b.example", "filteredEvent": True}
        ),
        EmailEvent.model_validate(
            {"id": "3", "created": 1_700_000_000_000, "type": "OPEN", "recipient": "x@y.example"}
        ),
    ]
    page = reader._event_page(events, [])
    assert [(r.activity.kind, r.contact_ids) for r in page.records] == [("email_click", ("7",))]
    assert page.unmapped == 1 and [s.code.value for s in page.skipped] == ["no_contact"]


# -- the Show -------------------------------------------------------------------------------
SHOW_NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def engaged_person(sandbox: HubSpotSandbox) -> int:
    """One ICP contact whose only signals are 12 e-mail clicks, 20 page views on 10 days and an attended webinar."""
    company = FakeCompany("Transports Martin", "transports-martin.example", 120, "logistics", "FR")
    person = FakePerson(0, "anne.martin@transports-martin.example", "Anne", "Martin", "Directrice logistique",
                        company, SHOW_NOW - timedelta(days=40), SHOW_NOW - timedelta(days=40))  # fmt: skip
    store = sandbox.store
    index = store.add_person(person)
    n = 0

    def add(kind: str, days: float) -> None:
        nonlocal n
        n += 1
        store.add_activity(FakeActivity(n, 0, kind, SHOW_NOW - timedelta(days=days), "Guide"), index)

    for day in range(12):
        add("email_click", 1 + day / 4)
    for day in range(20):
        add("page_view", 1 + day // 2)
    add("webinar_attended", 2)
    return index


def test_show_a_contact_with_only_clicks_page_views_and_a_webinar_reaches_mql(
    tmp_path: Path,
    store_urls: StoreUrls,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with HubSpotSandbox(token=TOKEN, now=SHOW_NOW, limits=Limits.unlimited()) as sandbox:
        engaged_person(sandbox)
        monkeypatch.setenv("CRMSYNC_SHOW_TOKEN", TOKEN)
        url = store_urls.new()
        config = Config(
            store=StoreSettings(url=url),
            paths=PathSettings(mappings=REPO / "mappings", jobs=tmp_path, rules=REPO / "mappings" / "lifecycle.toml"),
            connections={"hubspot": HubSpotConnection(type="hubspot", base_url=sandbox.url, token_env="CRMSYNC_SHOW_TOKEN",
                                                      retry=FAST_RETRY, timeout_seconds=5.0)},
            base_dir=tmp_path,
        )  # fmt: skip
        store = open_store(url)
        try:
            result = run_job(Job(name="show", connections=["hubspot"]), config, store=store, clients=open_client,
                             clock=lambda: SHOW_NOW, heartbeat=False)  # fmt: skip
        finally:
            store.close()
        assert result.status == "completed"
        assert sandbox.store.get(0, "crmsync_lifecycle_stage") == Stage.MQL.value
        assert sandbox.store.get(0, "lifecyclestage") == "marketingqualifiedlead"
