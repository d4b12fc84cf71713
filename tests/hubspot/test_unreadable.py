"""A record HubSpot sends that cannot be read skips that record, not its page (issue 10, item 3).

The client is driven through its transport seam with canned bodies: a lone
UTF-16 surrogate (``\\ud800``, valid JSON text that no UTF-8 string can hold)
or a value of the wrong type in one record of a page.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator

import pytest
from pydantic import SecretStr

from connector.config import HubSpotConnection
from connector.crm import SkipReason
from connector.http.usage import UsageCounter
from connector.hubspot.client import HubSpotClient
from connector.hubspot.engagement import EmailEvent, parse_items
from connector.hubspot.payloads import ObjectPage, SubmissionPage, parse_page
from connector.hubspot.transport import Operation, Response
from connector.mapping import CrmMapping

SURROGATE = '"Bad \\ud800 name"'
"""As it appears in the JSON body: an escaped lone surrogate."""


def _contact(n: int, firstname: str = '"Ann"') -> str:
    return (
        f'{{"id": "{n}", "properties": {{"email": "ann.{n}@example.fr", "firstname": {firstname}, '
        f'"lastmodifieddate": "2026-11-20T10:00:00Z"}}}}'
    )


def _page(*records: str, after: str | None = None) -> bytes:
    paging = f', "paging": {{"next": {{"after": "{after}"}}}}' if after else ""
    return f'{{"results": [{", ".join(records)}]{paging}}}'.encode()


class FakeTransport:
    """The transport seam, answering each operation with the next canned body (of its endpoint's, for an endpoint
    in ``routes``: sources read side by side call in no fixed order)."""

    def __init__(self, *bodies: bytes, routes: dict[str, list[bytes]] | None = None) -> None:
        self.bodies = list(bodies)
        self.routes = routes or {}
        self.sent: list[Operation] = []
        self.usage = UsageCounter()
        self._lock = threading.Lock()

    def send(self, operation: Operation) -> Response:
        with self._lock:
            self.sent.append(operation)
            self.usage.call(operation.endpoint)
            bodies = self.routes.get(operation.endpoint, self.bodies)
            return Response(200, bodies.pop(0) if bodies else b'{"results": []}', {})


Make = Callable[..., tuple[HubSpotClient, FakeTransport]]


@pytest.fixture
def make(hubspot_mapping: CrmMapping) -> Iterator[Make]:
    def build(*bodies: bytes, routes: dict[str, list[bytes]] | None = None) -> tuple[HubSpotClient, FakeTransport]:
        transport = FakeTransport(*bodies, routes=routes)
        settings = HubSpotConnection(type="hubspot", base_url="https://api.hubapi.com")
        client = HubSpotClient(
            "hubspot",
            settings,
            hubspot_mapping,
            SecretStr("t"),
            transport=transport,  # type: ignore[arg-type]
        )
        return client, transport

    yield build


def test_parse_page_keeps_the_good_records_and_names_the_bad_one() -> None:
    page = parse_page(ObjectPage, _page(_contact(1), _contact(2, SURROGATE), _contact(3), after="4"))
    assert [r.id for r in page.results] == ["1", "3"]
    [bad] = page.unreadable
    assert bad.crm_id == "2" and "properties.firstname" in bad.reason and "Unicode" in bad.reason
    assert page.last_id == "3" and page.next_after == "4"


def test_a_value_of_the_wrong_type_is_unreadable_too() -> None:
    page = parse_page(ObjectPage, _page(_contact(1), _contact(2, '{"nested": 1}')))
    assert [r.id for r in page.results] == ["1"]
    assert [u.crm_id for u in page.unreadable] == ["2"]


def test_the_last_id_counts_an_unreadable_last_record() -> None:
    page = parse_page(ObjectPage, _page(_contact(1), _contact(2, SURROGATE)))
    assert page.last_id == "2"


def test_a_clean_page_takes_the_fast_path() -> None:
    page = parse_page(ObjectPage, _page(_contact(1), _contact(2)))
    assert page.unreadable == () and page.last_id == "2"


def test_a_body_that_is_not_json_still_fails() -> None:
    with pytest.raises(ValueError):
        parse_page(ObjectPage, b"<html>")


def test_contacts_the_rest_of_the_page_syncs_and_the_bad_record_is_reported(make: Make) -> None:
    client, _ = make(_page(_contact(1), _contact(2, SURROGATE), _contact(3)))
    [page] = list(client.pull_contacts(None))
    assert [r.crm_id for r in page.records] == ["1", "3"]
    [skipped] = page.skipped
    assert skipped.crm_id == "2" and skipped.code is SkipReason.UNREADABLE
    assert json.loads(page.cursor or "")["contacts"]["phase"] == "search"  # the cursor moved on


def test_a_search_page_re_anchors_past_an_unreadable_last_record(make: Make) -> None:
    client, transport = make(_page(_contact(11), _contact(12, SURROGATE), after="2"), _page())
    cursor = json.dumps({"v": 1, "contacts": {"phase": "search", "since": 5, "anchor": 10}})
    pages = list(client.pull_contacts(cursor))
    assert json.loads(pages[0].cursor or "")["contacts"]["anchor"] == 12
    assert [s.crm_id for s in pages[0].skipped] == ["12"]
    # the search page's primary companies are read with the v4 associations API, then the next search page,
    # then the contacts archived since the last pull
    assert [op.endpoint for op in transport.sent] == [
        "contacts.search",
        "associations.contacts_to_companies",
        "contacts.search",
        "contacts.list_archived",
    ]


def test_engagements_skip_only_the_bad_record(make: Make) -> None:
    meeting = (
        '{{"id": "{n}", "properties": {{"hs_meeting_outcome": "COMPLETED", "hs_meeting_start_time": '
        '"2026-11-02T09:30:00Z", "hs_meeting_title": {title}, "hs_lastmodifieddate": "2026-11-02T09:30:00Z"}}, '
        '"associations": {{"contacts": {{"results": [{{"id": "1"}}]}}}}}}'
    )
    meetings = _page(meeting.format(n=1, title='"Demo"'), meeting.format(n=2, title=SURROGATE))
    client, transport = make(routes={"meetings.list": [meetings]})
    # the activity sources are read side by side: the meetings' page is the one with meetings in it
    pages = client.pull_activities(None)
    first = next(page for page in pages if any(r.crm_id.startswith("meetings/") for r in page.records))
    pages.close()  # type: ignore[attr-defined]
    assert "meetings.list" in [op.endpoint for op in transport.sent]
    assert [r.crm_id for r in first.records] == ["meetings/1"]
    assert [(s.crm_id, s.code) for s in first.skipped] == [("meetings/2", SkipReason.UNREADABLE)]


def test_submission_pages_skip_only_the_bad_submission() -> None:
    body = (
        b'{"results": ['
        b'{"submittedAt": 1700000000000, "conversionId": "c1", "values": [{"name": "email", "value": "a@x.example"}]},'
        b'{"submittedAt": 1700000000001, "conversionId": "c2", "values": [{"name": "email", "value": "b\\ud800@x.example"}]}'
        b"]}"
    )
    page = parse_page(SubmissionPage, body, record_id=lambda item: str(item.get("conversionId")))
    assert [s.conversion_id for s in page.results] == ["c1"]
    assert [u.crm_id for u in page.unreadable] == ["c2"]


def _event(n: int, recipient: str = '"ann@example.fr"', created: str = "1763632800000") -> str:
    return f'{{"id": "e{n}", "created": {created}, "type": "OPEN", "recipient": {recipient}}}'


def test_an_events_page_keeps_its_other_keys_on_the_fast_path() -> None:
    body = f'{{"events": [{_event(1)}, {_event(2)}], "hasMore": true, "offset": "abc"}}'.encode()
    rest, events, skips = parse_items(body, "events", EmailEvent)
    assert rest == {"hasMore": True, "offset": "abc"}
    assert [event.id for event in events] == ["e1", "e2"] and skips == []


def test_an_events_page_skips_only_the_event_of_the_wrong_type() -> None:
    wrong = _event(2, created='"yesterday"')
    body = f'{{"events": [{_event(1)}, {wrong}, {_event(3)}], "hasMore": false}}'.encode()
    rest, events, skips = parse_items(body, "events", EmailEvent)
    assert rest == {"hasMore": False}
    assert [event.id for event in events] == ["e1", "e3"]
    assert [(skip.crm_id, skip.code) for skip in skips] == [("events/e2", SkipReason.UNREADABLE)]


def test_an_events_page_with_a_lone_surrogate_is_read_by_json() -> None:
    # pydantic's parser refuses the page; Python's keeps the text (the recipient then matches no contact)
    body = f'{{"events": [{_event(1)}, {_event(2, recipient=SURROGATE)}], "hasMore": false}}'.encode()
    _, events, skips = parse_items(body, "events", EmailEvent)
    assert [event.id for event in events] == ["e1", "e2"] and skips == []
    assert events[1].recipient == "Bad \ud800 name"


def test_an_events_body_that_is_not_json_still_fails() -> None:
    with pytest.raises(ValueError):
        parse_items(b"<html>", "events", EmailEvent)
