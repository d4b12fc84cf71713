"""The HubSpot client against the sandbox over loopback, through the official SDK."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from connector.crm import StageUpdate, WriteOutcome
from connector.errors import AuthError, ConfigError, NotFound, QuotaExhausted, RateLimited, TransientError
from connector.hubspot import client as client_module
from connector.hubspot.client import HubSpotClient
from connector.hubspot.errors import classify
from connector.hubspot.transport import Operation
from connector.mapping import CrmMapping
from connector.model import Stage
from connector.sandbox.generator import FakeActivity
from connector.sandbox.hubspot import Fault, HubSpotSandbox, Limits
from connector.sandbox.hubspot.store import STAGE_PROPERTY, to_ms
from connector.store import open_store

from .conftest import NOW, TOKEN

MakeClient = Callable[..., HubSpotClient]


def _drain(pages):  # type: ignore[no-untyped-def]
    pages = list(pages)
    return pages, [r for p in pages for r in p.records]


# -- reading ---------------------------------------------------------------------------------------


def test_full_pull_lists_every_contact_in_pages_of_100_then_switches_to_search(
    sandbox: HubSpotSandbox, make_client: MakeClient
) -> None:
    with HubSpotSandbox(contacts=250, activities=0, token=TOKEN, now=NOW, limits=Limits.unlimited()) as big:
        client = make_client(big)
        pages, records = _drain(client.pull_contacts(None))
        assert len(records) == 250 == len({r.crm_id for r in records})
        assert big.log.calls("contacts.list") == 3 == client.usage().calls["contacts.list"]
        final = json.loads(pages[-1].cursor)
        assert final["contacts"]["phase"] == "search"
        # resuming from the first page's cursor reads only what follows it
        _, rest = _drain(client.pull_contacts(pages[0].cursor))
        assert [r.crm_id for r in rest] == [r.crm_id for r in records[100:]]


def test_a_list_page_whose_next_page_only_the_full_parse_can_tell_is_followed_all_the_same(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the fetching thread reads each body's next ``after`` alone; when it cannot, it stops and the parsing side
    # goes on from the full parse: every page is read, each once
    def unreadable_paging(data: bytes) -> str | None:
        raise ValueError("paging not readable alone")

    monkeypatch.setattr(client_module, "list_next", unreadable_paging)
    with HubSpotSandbox(contacts=250, activities=0, token=TOKEN, now=NOW, limits=Limits.unlimited()) as big:
        client = make_client(big)
        _, records = _drain(client.pull_contacts(None))
        assert len(records) == 250 == len({r.crm_id for r in records})
        assert big.log.calls("contacts.list") == 3


def test_contact_is_normalised_with_every_stage_field(sandbox: HubSpotSandbox, make_client: MakeClient) -> None:
    store = sandbox.store
    with store.lock:
        store.set(0, STAGE_PROPERTY, "mql")
        store.set(0, "lifecyclestage", "marketingqualifiedlead")
        store.set(1, "email", "not an address")
    client = make_client(sandbox)
    pages, records = _drain(client.pull_contacts(None))
    first = next(r for r in records if r.crm_id == "1")
    assert first.stage_values == {STAGE_PROPERTY: "mql", "lifecyclestage": "marketingqualifiedlead"}
    assert first.contact.stage is Stage.MQL
    assert first.contact.email == store.get(0, "email")
    assert first.contact.company is not None and first.contact.company.industry
    skipped = [s for p in pages for s in p.skipped]
    assert [s.crm_id for s in skipped] == ["2"] and "e-mail" in skipped[0].reason


def test_incremental_pull_returns_only_contacts_changed_since_the_cursor(
    sandbox: HubSpotSandbox, make_client: MakeClient
) -> None:
    client = make_client(sandbox)
    pages, _ = _drain(client.pull_contacts(None))
    cursor = pages[-1].cursor
    state = json.loads(cursor)
    state["contacts"]["since"] = to_ms(NOW) + 10**9  # pretend the last run was in the future: nothing older counts
    cursor = json.dumps(state)
    with sandbox.store.lock:
        for index in (3, 7):
            sandbox.store.set(index, "jobtitle", "Head of Logistics")
            sandbox.store.instants["lastmodifieddate"][index] = to_ms(NOW) + 2 * 10**9
    _, records = _drain(client.pull_contacts(cursor))
    assert sorted(r.crm_id for r in records) == ["4", "8"]
    assert sandbox.log.calls("contacts.search") == 1


def test_search_crosses_the_result_cap_by_re_anchoring_on_the_object_id(make_client: MakeClient) -> None:
    cap = 250
    limits = Limits(burst=10_000, search_per_second=1000, search_result_cap=cap)
    with HubSpotSandbox(contacts=620, activities=0, token=TOKEN, now=NOW, limits=limits) as capped:
        client = make_client(capped, search_result_cap=cap)
        cursor = json.dumps({"v": 1, "contacts": {"phase": "search", "since": 0}})
        _pages, records = _drain(client.pull_contacts(cursor))
        assert len(records) == 620 == len({r.crm_id for r in records})
        assert capped.log.calls("contacts.search", 400) == 0
        assert capped.log.calls("contacts.search") == 4  # 200 + 200 (re-anchor) + 200 + 20
        # the cap is real: paging past it is HTTP 400
        with pytest.raises(ConfigError, match="HTTP 400"):
            client._transport.send(
                Operation(
                    "contacts.search",
                    "POST",
                    "/crm/v3/objects/contacts/search",
                    body={"limit": 200, "after": str(cap)},
                    search=True,
                )
            )


def test_activities_full_then_incremental_with_new_records_of_every_source(
    sandbox: HubSpotSandbox, make_client: MakeClient
) -> None:
    client = make_client(sandbox)
    _drain(client.pull_contacts(None))
    pages, records = _drain(client.pull_activities(None))
    kinds = {r.activity.kind for r in records}
    assert {"meeting_booked", "email_reply", "call_connected", "content_download", "demo_request"} <= kinds
    assert sum(p.unmapped for p in pages) > 0  # sent e-mails, unanswered calls
    assert all(r.contact_ids for r in records)
    assert sandbox.log.calls("associations.batch_read") == 0  # inline on list pages
    cursor = pages[-1].cursor
    state = json.loads(cursor)
    for name in state["objects"]:
        state["objects"][name]["since"] = to_ms(NOW) + 10**9
    new_at = NOW + timedelta(days=1)
    sandbox.store.add_activity(FakeActivity(10**6, 5, "meeting_held", new_at, "Demo"), 5)
    sandbox.store.engagements["meetings"].modified[-1] = to_ms(NOW) + 2 * 10**9
    sandbox.store.add_submission("5b0a4f2e-1d1c-4c8e-9c1a-000000000006", 9, to_ms(new_at), "/demo")
    pages, fresh = _drain(client.pull_activities(json.dumps(state)))
    by_kind = {r.activity.kind: r for r in fresh if r.activity.occurred_at == new_at}
    assert by_kind["meeting_held"].contact_ids == ("6",)
    assert by_kind["demo_request"].contact_ids == ("10",)
    assert sandbox.log.calls("associations.batch_read") == 1
    # the cursors moved past them: a re-run reads no record it has not read already
    _, again = _drain(client.pull_activities(pages[-1].cursor))
    assert {r.crm_id for r in again} <= {r.crm_id for r in fresh}


def test_activity_sources_are_read_side_by_side_and_any_page_cursor_resumes_after_what_was_handed_out(
    make_client: MakeClient,
) -> None:
    # engagement objects, forms, e-mail events and participations each in a thread of their own: their pages come
    # interleaved, and every page's cursor holds each source's position after its last page handed out
    with HubSpotSandbox(contacts=300, activities=3_000, token=TOKEN, now=NOW, limits=Limits.unlimited()) as big:
        client = make_client(big)
        _drain(client.pull_contacts(None))
        pages, records = _drain(client.pull_activities(None))
        everything = {r.crm_id for r in records}
        sources = {r.crm_id.split("/")[0] for r in records}
        assert {"meetings", "form_submissions"} <= sources and len(sources) >= 4
        for cut in (len(pages) // 4, len(pages) // 2, len(pages) - 2):
            before = {r.crm_id for p in pages[: cut + 1] for r in p.records}
            _, rest = _drain(make_client(big).pull_activities(pages[cut].cursor))
            resumed = {r.crm_id for r in rest}
            assert before | resumed == everything
            # read again: only what a source reads again by design (a participation watermark moves at its end)
            again = {crm_id.split("/")[0] for crm_id in before & resumed}
            assert again <= {"marketing_events"}, again


def test_form_watermark_only_moves_when_the_whole_new_range_is_read(
    sandbox: HubSpotSandbox, make_client: MakeClient
) -> None:
    guid = "5b0a4f2e-1d1c-4c8e-9c1a-000000000005"
    client = make_client(sandbox)
    _drain(client.pull_contacts(None))
    base = to_ms(NOW) + 10_000
    state = {
        "v": 1,
        "objects": {n: {"phase": "search", "since": to_ms(NOW) + 10**9} for n in ("meetings", "emails", "calls")},
        "forms": {},
    }
    pages, _ = _drain(client.pull_activities(json.dumps(state)))
    cursor = pages[-1].cursor
    for n in range(120):  # more than two pages of 50
        sandbox.store.add_submission(guid, n % 60, base + n * 1000, "/info")
    pages = list(client.pull_activities(cursor))
    form_pages = [p for p in pages if any(r.crm_id.startswith(f"form_submissions/{guid}") for r in p.records)]
    assert len(form_pages) >= 3
    middle = json.loads(form_pages[0].cursor)["forms"][guid]
    assert middle["after"] and middle["watermark"] == json.loads(cursor)["forms"][guid]["watermark"]
    assert middle["top"] == base + 119_000
    # a crash after the first page: resuming reads the rest of the range, and only then moves the watermark
    _, rest = _drain(client.pull_activities(form_pages[0].cursor))
    resumed = {r.crm_id for r in rest if r.crm_id.startswith(f"form_submissions/{guid}")}
    first = {r.crm_id for r in form_pages[0].records}
    assert len(resumed | first) >= 120 and not (resumed & first)
    final = json.loads(form_pages[-1].cursor)["forms"][guid]
    assert (final["watermark"], final["after"], final["top"], final["top_seen"]) == (base + 119_000, None, None, [])
    assert len(final["seen"]) == 1  # the newest submission, at the watermark instant


def test_re_reading_the_form_boundary_hands_out_only_submissions_not_seen(
    sandbox: HubSpotSandbox, make_client: MakeClient
) -> None:
    guid = "5b0a4f2e-1d1c-4c8e-9c1a-000000000005"
    state = {
        "v": 1,
        "objects": {n: {"phase": "search", "since": to_ms(NOW) + 10**9} for n in ("meetings", "emails", "calls")},
        "forms": {},
    }
    first = make_client(sandbox)
    pages, _ = _drain(first.pull_activities(json.dumps(state)))
    cursor = pages[-1].cursor
    watermark = json.loads(cursor)["forms"][guid]["watermark"]

    # a new client (a new run) with nothing new: one page per form, no e-mail look-up, nothing handed out
    again = make_client(sandbox)
    sandbox.log.clear()
    pages = list(again.pull_activities(cursor))
    assert sandbox.log.calls("contacts.batch_read") == 0
    assert not [r for p in pages for r in p.records if r.crm_id.startswith("form_submissions/")]

    # a submission in the same millisecond as the watermark, read after it: handed out, once
    sandbox.store.add_submission(guid, 3, watermark, "/late")
    pages = list(make_client(sandbox).pull_activities(pages[-1].cursor))
    late = [r for p in pages for r in p.records if r.crm_id.startswith(f"form_submissions/{guid}")]
    assert len(late) == 1 and late[0].activity.occurred_at == datetime.fromtimestamp(watermark / 1000, UTC)
    pages = list(make_client(sandbox).pull_activities(pages[-1].cursor))
    assert not [r for p in pages for r in p.records if r.crm_id.startswith("form_submissions/")]


# -- writing -----------------------------------------------------------------------------------------


def _update(crm_id: str, stage: Stage, lifecycle: str | None = None, *, regression: bool = False) -> StageUpdate:
    fields = {STAGE_PROPERTY: stage.value}
    if lifecycle:
        fields["lifecyclestage"] = lifecycle
    return StageUpdate(crm_id=crm_id, object_type="contact", stage=stage, fields=fields, allow_regression=regression)


def test_batch_of_100_is_one_call_and_207_errors_are_matched_by_id(
    sandbox: HubSpotSandbox, make_client: MakeClient
) -> None:
    client = make_client(sandbox)
    sandbox.faults.add(
        Fault("partial", endpoint="contacts.batch_update", reject_ids=("5",), category="VALIDATION_ERROR")
    )
    updates = [_update(str(i), Stage.LEAD, "lead") for i in range(1, 61)]
    updates.insert(10, _update("999999", Stage.LEAD))
    updates.append(_update("7", Stage.MQL, "not-a-stage"))
    updates = updates[:100]
    # the duplicate id 7 would make HubSpot refuse the whole batch: keep ids unique
    updates = [u for u in updates if not (u.crm_id == "7" and u.stage is Stage.MQL)]
    results = client.write_stages(updates)
    assert [r.crm_id for r in results] == [u.crm_id for u in updates]
    outcome = {r.crm_id: r for r in results}
    assert outcome["999999"].outcome is WriteOutcome.REJECTED and outcome["999999"].code == "OBJECT_NOT_FOUND"
    assert outcome["5"].outcome is WriteOutcome.REJECTED and outcome["5"].code == "VALIDATION_ERROR"
    assert outcome["1"].outcome is WriteOutcome.WRITTEN
    assert sandbox.store.get(0, STAGE_PROPERTY) == "lead"
    assert sandbox.store.get(4, STAGE_PROPERTY) is None
    assert sandbox.log.calls("contacts.batch_update") == 1
    assert sandbox.log.calls("contacts.batch_update", 207) == 1


def test_invalid_option_is_rejected_for_that_record_only(sandbox: HubSpotSandbox, make_client: MakeClient) -> None:
    client = make_client(sandbox)
    results = client.write_stages([_update("1", Stage.LEAD, "not-a-stage"), _update("2", Stage.LEAD, "lead")])
    assert [r.outcome for r in results] == [WriteOutcome.REJECTED, WriteOutcome.WRITTEN]
    assert results[0].code == "VALIDATION_ERROR"


def test_backwards_lifecyclestage_is_reported_not_written_without_regression(
    sandbox: HubSpotSandbox, make_client: MakeClient
) -> None:
    with sandbox.store.lock:
        sandbox.store.set(0, "lifecyclestage", "salesqualifiedlead")
    client = make_client(sandbox)
    [result] = client.write_stages([_update("1", Stage.LEAD, "lead")])
    assert result.outcome is WriteOutcome.UNCHANGED and result.code == "BACKWARDS_REFUSED"
    assert sandbox.store.get(0, "lifecyclestage") == "salesqualifiedlead"
    assert sandbox.log.calls("contacts.batch_update") == 1


def test_backwards_lifecyclestage_is_cleared_then_set_with_regression(
    sandbox: HubSpotSandbox, make_client: MakeClient
) -> None:
    with sandbox.store.lock:
        sandbox.store.set(0, "lifecyclestage", "salesqualifiedlead")
    client = make_client(sandbox)
    results = client.write_stages(
        [
            _update("1", Stage.LEAD, "lead", regression=True),
            _update("2", Stage.MQL, "marketingqualifiedlead", regression=True),
        ]
    )
    assert [r.outcome for r in results] == [WriteOutcome.WRITTEN, WriteOutcome.WRITTEN]
    assert results[0].code == "CLEARED_THEN_SET"
    assert sandbox.store.get(0, "lifecyclestage") == "lead"
    assert sandbox.store.get(1, "lifecyclestage") == "marketingqualifiedlead"
    assert sandbox.log.calls("contacts.batch_update") == 3  # write, clear, set (only the backwards record)


# -- faults, limits, pacing -----------------------------------------------------------------------------

FAULTS = {
    "429 with Retry-After": Fault("rate_limit", retry_after=0.02),
    "429 without Retry-After": Fault("rate_limit"),
    "500": Fault("server_error", status=500),
    "502": Fault("server_error", status=502),
    "503": Fault("server_error", status=503),
    "connection reset": Fault("reset"),
    "slow response": Fault("slow", delay=0.6),
}


@pytest.mark.parametrize("fault", FAULTS.values(), ids=FAULTS.keys())
@pytest.mark.parametrize("endpoint", ["contacts.list", "contacts.batch_update"])
def test_transient_faults_are_retried(
    sandbox: HubSpotSandbox, make_client: MakeClient, fault: Fault, endpoint: str
) -> None:
    client = make_client(sandbox, timeout_seconds=0.3)
    sandbox.faults.add(Fault(**{**_fields(fault), "endpoint": endpoint, "times": 2}))
    if endpoint == "contacts.list":
        _, records = _drain(client.pull_contacts(None))
        assert len(records) == 60
    else:
        [result] = client.write_stages([_update("1", Stage.LEAD, "lead")])
        assert result.outcome is WriteOutcome.WRITTEN
    assert client.usage().retries == 2
    assert sandbox.faults.hits() == 2


def _fields(fault: Fault) -> dict[str, object]:
    return {name: getattr(fault, name) for name in fault.__slots__}  # type: ignore[attr-defined]


def test_retries_stop_at_the_attempt_cap_and_writes_come_back_as_retry(
    sandbox: HubSpotSandbox, make_client: MakeClient
) -> None:
    client = make_client(sandbox)
    sandbox.faults.add(Fault("server_error", endpoint="contacts.*", times=None))
    with pytest.raises(TransientError, match=r"contacts\.list: HTTP 503"):
        _drain(client.pull_contacts(None))
    assert sandbox.log.calls("contacts.list") == 5
    [result] = client.write_stages([_update("1", Stage.LEAD)])
    assert result.outcome is WriteOutcome.RETRY


def test_retry_after_is_honoured(sandbox: HubSpotSandbox, make_client: MakeClient) -> None:
    slept: list[float] = []
    client = make_client(sandbox, sleep=slept.append)
    sandbox.faults.add(Fault("rate_limit", endpoint="contacts.list", retry_after=0.04, times=1))
    _drain(client.pull_contacts(None))
    assert slept == [0.04]
    assert client.usage().rate_limited == 1


def test_daily_limit_stops_without_retrying(sandbox: HubSpotSandbox, make_client: MakeClient) -> None:
    client = make_client(sandbox)
    sandbox.faults.add(Fault("rate_limit", endpoint="contacts.batch_update", policy="DAILY", retry_after=1, times=None))
    with pytest.raises(QuotaExhausted, match="daily"):
        client.write_stages([_update("1", Stage.LEAD)])
    assert sandbox.log.calls("contacts.batch_update") == 1


def test_daily_limit_of_the_portal_stops_the_pull() -> None:
    with HubSpotSandbox(contacts=250, token=TOKEN, now=NOW, limits=Limits(daily=2)) as limited:
        client = _client(limited)
        with pytest.raises(QuotaExhausted):
            _drain(client.pull_contacts(None))
        assert limited.log.calls("contacts.list", 429) == 1


def _client(sandbox: HubSpotSandbox, **settings: object) -> HubSpotClient:
    from pydantic import SecretStr

    from connector.config import HubSpotConnection
    from connector.mapping import load_mapping

    from .conftest import FAST_RETRY, ROOT

    settings.setdefault("retry", FAST_RETRY)
    connection = HubSpotConnection(type="hubspot", base_url=sandbox.url, **settings)  # type: ignore[arg-type]
    return HubSpotClient("hubspot", connection, load_mapping(ROOT / "mappings" / "hubspot.toml"), SecretStr(TOKEN))


def test_bad_token_is_an_auth_error_and_not_retried(sandbox: HubSpotSandbox, make_client: MakeClient) -> None:
    client = make_client(sandbox, token="wrong-token")
    with pytest.raises(AuthError) as caught:
        _drain(client.pull_contacts(None))
    assert sandbox.log.calls("contacts.list", 401) == 1
    with pytest.raises(AuthError):
        client.write_stages([_update("1", Stage.LEAD)])
    assert "wrong-token" not in str(caught.value)


def test_every_call_goes_through_the_pacer(sandbox: HubSpotSandbox) -> None:
    """The pacer itself is tested on a fake clock (tests/http/test_pacing.py); here: the client is wired to it."""
    from pydantic import SecretStr

    from connector.config import HubSpotConnection
    from connector.http.pacing import Pacer, Window
    from connector.hubspot.transport import Transport
    from connector.mapping import load_mapping

    from .conftest import FAST_RETRY, ROOT

    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    pacer = Pacer([Window(10, 1.0), Window(1, 0.5, frozenset({"search"}))], clock=lambda: now[0], sleep=sleep)
    settings = HubSpotConnection(type="hubspot", base_url=sandbox.url, retry=FAST_RETRY)
    transport = Transport(settings, TOKEN, pacer=pacer)
    client = HubSpotClient(
        "hubspot", settings, load_mapping(ROOT / "mappings" / "hubspot.toml"), SecretStr(TOKEN), transport=transport
    )
    for _ in range(7):  # two list calls each (60 contacts, then the archived ones)
        _drain(client.pull_contacts(None))
    assert slept == [1.0]  # the 11th call waited for the window
    searching = json.dumps({"v": 1, "contacts": {"phase": "search", "since": 0}})
    for _ in range(3):
        _drain(client.pull_contacts(searching))
    assert slept[1:] == [0.5, 0.5]  # searches keep their own interval
    assert sandbox.log.calls(status=429) == 0


def test_pacer_keeps_searches_under_the_search_limit(make_client: MakeClient) -> None:
    limits = Limits(burst=1000, search_per_second=5)
    with HubSpotSandbox(contacts=30, token=TOKEN, now=NOW, limits=limits) as tight:
        client = make_client(tight, pacing=True, search_per_second=5, pace_share=0.9)
        cursor = json.dumps({"v": 1, "contacts": {"phase": "search", "since": 0}})
        for _ in range(8):
            _drain(client.pull_contacts(cursor))
        assert tight.log.calls("contacts.search") == 8
        assert tight.log.calls(status=429) == 0


# -- schema and setup --------------------------------------------------------------------------------------


def test_setup_creates_missing_properties_once_and_then_the_schema_checks(make_client: MakeClient) -> None:
    with HubSpotSandbox(contacts=5, token=TOKEN, now=NOW, with_stage_property=False) as bare:
        client = make_client(bare)
        problems = client.check_schema()
        assert {p.key for p in problems} == {"stage.field", "stage.reached_at_field", "stage.reason_field"}
        assert client.ensure_stage_property() == [STAGE_PROPERTY, "crmsync_stage_reached_at", "crmsync_stage_reason"]
        assert client.ensure_stage_property() == []
        assert client.check_schema() == []
        assert bare.store.properties[STAGE_PROPERTY].options == ["suspect", "lead", "prospect", "mql", "sql", "meeting"]
        [result] = client.write_stages([_update("1", Stage.SQL, "salesqualifiedlead")])
        assert result.outcome is WriteOutcome.WRITTEN


def test_schema_check_names_a_missing_option(sandbox: HubSpotSandbox, make_client: MakeClient) -> None:
    sandbox.store.properties[STAGE_PROPERTY].options.remove("meeting")
    problems = make_client(sandbox).check_schema()
    assert [p.key for p in problems] == ["stage.values.meeting"]


# -- errors and secrets ----------------------------------------------------------------------------------------

TABLE = {
    "401": (401, {}, AuthError),
    "403": (403, {"category": "MISSING_SCOPES"}, ConfigError),
    "400": (400, {"category": "VALIDATION_ERROR", "message": "bad"}, ConfigError),
    "404": (404, {"category": "OBJECT_NOT_FOUND"}, NotFound),
    "429 rolling": (429, {"policyName": "TEN_SECONDLY_ROLLING"}, RateLimited),
    "429 secondly": (429, {"policyName": "SECONDLY"}, RateLimited),
    "429 daily": (429, {"policyName": "DAILY"}, QuotaExhausted),
    "500": (500, {}, TransientError),
    "502": (502, {}, TransientError),
    "503": (503, {}, TransientError),
    "504": (504, {}, TransientError),
    "no response": (0, {}, TransientError),
}


@pytest.mark.parametrize(("status", "body", "expected"), TABLE.values(), ids=TABLE.keys())
def test_error_table(status: int, body: dict[str, str], expected: type[Exception]) -> None:
    error = classify("contacts.search", status, json.dumps({"status": "error", **body}), {"Retry-After": "3"})
    assert type(error) is expected
    assert "contacts.search" in str(error)
    if isinstance(error, RateLimited):
        assert error.retry_after == 3.0


def test_no_token_in_logs_or_errors(
    sandbox: HubSpotSandbox, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    from .conftest import FAST_RETRY

    # one fault per request: the seven faults hit seven calls in a row
    client = make_client(sandbox, retry=FAST_RETRY.model_copy(update={"max_attempts": 10}))
    for fault in FAULTS.values():
        sandbox.faults.add(Fault(**{**_fields(fault), "endpoint": "contacts.*", "times": 1}))
    _drain(client.pull_contacts(None))
    client.write_stages([_update("1", Stage.LEAD, "lead"), _update("424242", Stage.LEAD)])
    errors: list[Exception] = []
    sandbox.faults.add(Fault("rate_limit", policy="DAILY", times=1))
    for attempt in (
        lambda: _drain(client.pull_contacts(None)),
        lambda: _drain(make_client(sandbox, token="x" + TOKEN).pull_contacts(None)),
    ):
        try:
            attempt()
        except Exception as error:
            errors.append(error)
    assert len(errors) == 2
    assert client.usage().retries >= 3
    texts = [r.getMessage() for r in caplog.records] + [str(r.__dict__) for r in caplog.records]
    texts += [str(e) for e in errors] + [repr(e) for e in errors] + [repr(client), client.usage().model_dump_json()]
    assert texts
    assert not [t for t in texts if TOKEN in t]


def test_submitters_past_the_e_mail_cache_come_from_the_store_without_a_call(
    sandbox: HubSpotSandbox, make_client: MakeClient, hubspot_mapping: CrmMapping, tmp_path: Path
) -> None:
    def submissions(client: HubSpotClient) -> dict[str, tuple[str, ...]]:
        pages = list(client.pull_activities(None))
        return {r.crm_id: r.contact_ids for p in pages for r in p.records if r.crm_id.startswith("form_submissions/")}

    # as before: every contact pulled is remembered, no look-up
    everything = make_client(sandbox)
    people = [r for page in everything.pull_contacts(None) for r in page.records]
    sandbox.log.clear()
    expected = submissions(everything)
    assert expected and sandbox.log.calls("contacts.batch_read") == 0

    # five e-mails in memory; the rest from the contacts a store holds (stored as the sync stores them)
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    with store.begin() as db:
        store.records.store_contacts(db, "job", "hubspot", people, force_dirty=False, now=NOW)
    asked: list[str] = []

    def directory(emails: Sequence[str]) -> dict[str, str]:
        asked.extend(emails)
        with store.begin() as db:
            return store.records.contact_ids_by_email(db, "hubspot", emails)

    small = HubSpotClient("hubspot", everything.settings, hubspot_mapping, SecretStr(TOKEN), pacing=False,
                          email_cache=5)  # fmt: skip
    small.use_directory(directory)
    list(small.pull_contacts(None))
    sandbox.log.clear()
    assert submissions(small) == expected
    assert sandbox.log.calls("contacts.batch_read") == 0
    assert len(small._email_ids) <= 5 and asked
    small.close()
    store.close()
