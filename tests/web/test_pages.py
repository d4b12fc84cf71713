"""Each dashboard page over a store filled by real runs (SQLite, and PostgreSQL when configured)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from connector.report import build_funnel
from connector.store import queries
from connector.web import app as app_module
from connector.web import reads
from connector.web.app import create_app
from connector.web.security import CONTENT_SECURITY_POLICY
from tests.web.conftest import HOSTILE, HOSTILE_EMAIL, HOSTILE_ID, NOW, PICKLIST, SHARED_EMAIL, Filled

PAGES = ["/", "/runs", "/funnel", "/dead-letters", "/contacts", f"/contacts?key={SHARED_EMAIL}"]


@pytest.fixture(scope="module")
def client(filled: Filled) -> Iterator[TestClient]:
    app = create_app(filled.store, config=filled.config, token=None, clock=lambda: NOW)
    with TestClient(app, base_url="http://127.0.0.1:8765") as test_client:
        yield test_client


def text_of(page: str) -> str:
    """The page as a person reads it: tags dropped, entities decoded, spaces collapsed."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


def row_of(page: str, header: str) -> str:
    """The text of the first table row whose row header reads ``header`` (or starts with it, then a space)."""
    for row in re.findall(r"<tr>(.*?)</tr>", page, re.S):
        found = re.search(r'<th scope="row"[^>]*>(.*?)</th>', row, re.S)
        if found and (text_of(found.group(1)).strip() + " ").startswith(header + " "):
            return text_of(row).strip()
    raise AssertionError(f"no row {header!r}")


# -- jobs -------------------------------------------------------------------------------


def test_given_a_failed_last_run_when_the_jobs_page_is_read_then_the_job_is_failing_with_the_error(
    client: TestClient,
) -> None:
    page = client.get("/")
    assert page.status_code == 200
    hubspot = row_of(page.text, "hubspot-lifecycle")
    assert "failing" in hubspot
    assert "QuotaExhausted: contacts.batch_update: daily API allocation used up" in hubspot
    assert "2026-11-20 09:15:00 UTC (in 15 min)" in hubspot  # next tick of */15 after 09:00
    assert "3" in hubspot  # open dead letters


def test_given_a_recent_clean_run_when_the_jobs_page_is_read_then_the_job_is_ok_with_its_next_run(
    client: TestClient,
) -> None:
    salesforce = row_of(client.get("/").text, "salesforce-lifecycle")
    assert "ok last run completed" in salesforce
    assert re.search(r"completed , 2026-11-20 08:50:\d\d UTC \(9 min ago\)", salesforce)  # newest run
    assert re.search(r"2026-11-20 08:5\d:\d\d UTC \(\d min ago\) 10 written", salesforce)  # last completed
    assert "2026-11-20 09:07:00 UTC (in 7 min)" in salesforce  # 7-59/15


def test_given_no_config_when_the_jobs_page_is_read_then_jobs_come_from_the_store(filled: Filled) -> None:
    app = create_app(filled.store, config=None, token=None, clock=lambda: NOW)
    with TestClient(app, base_url="http://127.0.0.1") as bare:
        page = text_of(bare.get("/").text)
    assert "hubspot-lifecycle" in page and "salesforce-lifecycle" in page
    assert "No config was given" in page


# -- runs -------------------------------------------------------------------------------


def test_runs_page_lists_every_run_newest_first_with_counts(client: TestClient, filled: Filled) -> None:
    page = client.get("/runs").text
    ids = re.findall(r'href="/runs/([0-9a-f-]{36})"', page)
    stored = [run.id for run in queries.recent_runs(filled.store, "hubspot-lifecycle", 10)]
    assert len(ids) == 4
    assert [i for i in ids if i in stored] == stored  # newest first
    first = filled.results[0].totals()
    assert f"{first['read']} {first['decided']} {first['changed']} {first['written']} {first['failed']}" in text_of(
        page
    )


def test_runs_page_filters_by_job_and_status(client: TestClient) -> None:
    page = client.get("/runs", params={"job": "hubspot-lifecycle", "status": "failed"}).text
    assert len(re.findall(r'href="/runs/[0-9a-f-]{36}"', page)) == 1


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"job": "no-such-job"}, "No job named 'no-such-job' (known: hubspot-lifecycle, salesforce-lifecycle)."),
        ({"status": "great"}, "No run status 'great'"),
        ({"limit": "0"}, "limit must be a whole number from 1 to 1000."),
        ({"limit": "x"}, "limit must be a whole number from 1 to 1000."),
    ],
    ids=["unknown-job", "unknown-status", "zero-limit", "bad-limit"],
)
def test_a_bad_filter_is_an_error_not_an_empty_page(client: TestClient, params: dict[str, str], message: str) -> None:
    answer = client.get("/runs", params=params)
    assert answer.status_code == 400
    assert message in text_of(answer.text)


def test_run_page_shows_counts_usage_and_the_error(client: TestClient, filled: Filled) -> None:
    page = client.get(f"/runs/{filled.failed_run_id}").text
    assert "QuotaExhausted: contacts.batch_update: daily API allocation used up" in text_of(page)
    first = filled.results[0]
    page = client.get(f"/runs/{first.run_id}").text
    counts = first.counts["hubspot"]
    assert row_of(page, "written") == f"written {counts.written}"
    assert row_of(page, "rejected (dead letters)") == f"rejected (dead letters) {counts.failed}"
    assert row_of(page, "contacts read") == f"contacts read {counts.contacts_read}"
    calls = first.usage["hubspot"].calls
    assert f"contacts.read {calls['contacts.read']}" in text_of(page)


def test_an_unknown_run_is_not_found(client: TestClient) -> None:
    answer = client.get("/runs/00000000-0000-0000-0000-000000000000")
    assert answer.status_code == 404
    assert "No run '00000000-0000-0000-0000-000000000000' in the store." in text_of(answer.text)


# -- funnel -----------------------------------------------------------------------------


@pytest.mark.parametrize("job", [None, "hubspot-lifecycle"], ids=["all-jobs", "one-job"])
def test_funnel_page_shows_the_report_figures_in_the_chart_and_the_table(
    client: TestClient, filled: Filled, job: str | None
) -> None:
    page = client.get("/funnel", params={"job": job} if job else {}).text
    funnel = build_funnel(filled.store, job=job, config=filled.config, now=NOW)
    assert f"{funnel.total} contacts" in text_of(page)
    chart = re.search(r"<svg.*?</svg>", page, re.S)
    assert chart is not None
    for rung in funnel.rungs:
        name = rung.stage.value
        assert f"{name}: {rung.reached} reached, {rung.on} on it now." in chart.group()
        assert row_of(page, name).startswith(f"{name} {rung.on} {rung.reached} ")


# -- dead letters -----------------------------------------------------------------------


def test_dead_letters_are_grouped_by_cause_with_a_hint(client: TestClient) -> None:
    page = client.get("/dead-letters").text
    sections = re.findall(r'<section class="cause".*?</section>', page, re.S)
    assert len(sections) == 2
    picklist, validation = (text_of(section) for section in sections)
    assert picklist.startswith(f" {PICKLIST} 2 record(s)")  # the larger group first
    assert "What to do: The stage value is not an active value of the restricted picklist" in picklist
    assert "<code>crmsync dead-letters --retry</code>" in sections[0]
    assert "hubspot:c0005" in picklist and f"hubspot:{HOSTILE_ID}" in picklist
    assert "VALIDATION_ERROR 1 record(s)" in validation and "hubspot:c0004" in validation
    assert "Property values were not valid" in validation


def test_dead_letters_of_a_job_without_any(client: TestClient) -> None:
    page = text_of(client.get("/dead-letters", params={"job": "salesforce-lifecycle"}).text)
    assert "No open dead letter for salesforce-lifecycle." in page


# -- contacts ---------------------------------------------------------------------------


def test_contact_page_explains_the_stage_and_shows_the_history(client: TestClient) -> None:
    page = client.get("/contacts", params={"key": "hubspot:c0003"}).text
    readable = text_of(page)
    assert "Last decision: sql by rule sql" in readable
    assert "The rules now: sql (rule sql" in readable
    assert "sql: demo_request within 180 days (1 found)" in readable
    history = re.search(r'<table class="history">.*?</table>', page, re.S)
    assert history is not None
    rows = [text_of(row).strip() for row in re.findall(r"<tr>(.*?)</tr>", history.group(), re.S)[1:]]
    assert [row.split()[2:6] for row in rows] == [
        ["UTC", "hubspot:c0003", "–", "mql"],
        ["UTC", "hubspot:c0003", "mql", "sql"],
    ]


def test_contact_by_email_shows_each_crm_record(client: TestClient) -> None:
    readable = text_of(client.get("/contacts", params={"key": SHARED_EMAIL}).text)
    assert "hubspot:c0003" in readable and "salesforce:00Q000000000000003" in readable
    assert "Job salesforce-lifecycle" in readable and "Job hubspot-lifecycle" in readable
    assert "History (3 change(s))" in readable


def test_contacts_page_lists_recent_changes_linked_to_their_contact(client: TestClient) -> None:
    page = client.get("/contacts").text
    assert 'href="/contacts?key=hubspot%3Ac0003"' in page


@pytest.mark.parametrize(
    ("key", "status", "message"),
    [
        ("nobody@example.fr", 404, "No stored contact nobody@example.fr"),
        ("not-a-key", 400, "'not-a-key' is neither an e-mail address nor connection:id"),
    ],
    ids=["unknown", "malformed"],
)
def test_contact_not_found_or_malformed(client: TestClient, key: str, status: int, message: str) -> None:
    answer = client.get("/contacts", params={"key": key})
    assert answer.status_code == status
    assert message in text_of(answer.text)


# -- hostile input, headers, read-only --------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/dead-letters", f"/contacts?key={HOSTILE_EMAIL}", f"/contacts?key=hubspot:{HOSTILE_ID}"],
    ids=["dead-letters", "contact-by-email", "contact-by-id"],
)
def test_crm_strings_are_escaped_and_control_characters_shown(client: TestClient, path: str) -> None:
    page = client.get(path).text
    assert "<script" not in page
    assert "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;" in page
    assert "[/bold]" in page  # rich markup is only text here
    assert "\x1b" not in page and "\\x1b[31mred\\x1b[0m" in page
    assert "\u202e" not in page and "\\u202eevil" in page
    assert "\x00" not in page
    assert "\\x00" in page or path == "/dead-letters"  # the NUL is in the name fields only


def test_hostile_record_id_is_encoded_in_links(client: TestClient) -> None:
    page = client.get("/dead-letters").text
    assert 'href="/contacts?key=hubspot%3Aevil%3Cscript%3Ex%3C/script%3E"' in page
    assert HOSTILE not in page


@pytest.mark.parametrize(
    "path", [*PAGES, "/runs/unknown", "/static/dashboard.css", "/runs?job=x", "/favicon.ico"], ids=str
)
def test_every_answer_carries_a_strict_content_security_policy(client: TestClient, path: str) -> None:
    headers = client.get(path).headers
    assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "script-src" not in CONTENT_SECURITY_POLICY and "default-src 'none'" in CONTENT_SECURITY_POLICY
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"


@pytest.mark.parametrize("path", PAGES, ids=str)
def test_pages_have_no_script_and_a_skip_link(client: TestClient, path: str) -> None:
    page = client.get(path).text
    assert "<script" not in page and " on" not in re.sub(r">[^<]*<", "><", page).lower().replace("one", "")
    assert '<a class="skip-link" href="#main">Skip to content</a>' in page
    assert '<main id="main" tabindex="-1">' in page
    assert page.count("<h1>") == 1


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_the_dashboard_is_read_only(client: TestClient, method: str) -> None:
    answer = client.request(method, "/runs")
    assert answer.status_code == 405
    assert set(answer.headers["allow"].split(", ")) == {"GET", "HEAD"}  # Starlette keeps them in a set
    assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY


def test_a_page_that_fails_answers_a_fixed_text_with_the_headers(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError(f"store unreachable {HOSTILE}")

    monkeypatch.setattr(reads, "run_list", broken)
    answer = client.get("/runs")
    assert answer.status_code == 500
    assert answer.text == "The dashboard could not build this page; the server log says why.\n"
    assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "dashboard page failed" in caplog.text


def test_a_large_cause_lists_its_first_rows_and_counts_the_rest(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app_module, "DEAD_LETTERS_SHOWN", 1)
    page = client.get("/dead-letters").text
    assert f"{PICKLIST} 2 record(s)" in text_of(page)
    assert "… and 1 more with this cause" in text_of(page)
