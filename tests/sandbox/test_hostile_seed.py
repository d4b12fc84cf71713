"""The hostile corpus as both sandboxes serve it: raw bytes on the wire, every mapped text field, the deleted record."""

from __future__ import annotations

from datetime import UTC, datetime

import requests

from connector.sandbox.hostile import HUGE, PAYLOADS, hostile_corpus
from connector.sandbox.hubspot import HubSpotSandbox
from connector.sandbox.salesforce import SalesforceSandbox

NOW = datetime(2026, 11, 18, 8, 0, tzinfo=UTC)


def test_corpus_covers_every_case_with_unique_people_and_activities() -> None:
    cases = hostile_corpus(now=NOW, first_person=100, first_activity=1000)
    names = [case.name for case in cases]
    assert set(PAYLOADS) | {f"{p}-email" for p in PAYLOADS} | {"twin-upper", "twin-lower", "deleted"} == set(names)
    assert len({case.person.index for case in cases}) == len(cases)
    assert len({a.index for case in cases for a in case.activities}) == 4 * len(cases)
    huge = next(case for case in cases if case.name == "huge")
    assert len(huge.person.job_title) == HUGE and all(len(a.detail) >= HUGE for a in huge.activities)
    upper, lower = (next(c for c in cases if c.name == n) for n in ("twin-upper", "twin-lower"))
    assert upper.email != lower.email and upper.email.lower() == lower.email.lower()


def test_hubspot_serves_hostile_text_raw_with_json_escapes() -> None:
    with (
        HubSpotSandbox(contacts=5, activities=10, hostile=True, now=NOW, token="t") as sandbox,
        requests.Session() as http,
    ):
        http.trust_env = False
        http.headers["Authorization"] = "Bearer t"
        props = "email,firstname,lastname,jobtitle,company"
        body = http.get(f"{sandbox.url}/crm/v3/objects/contacts?limit=100&properties={props}", timeout=30).content
        assert b"\\ud800" in body and b"\\u0000" in body and b"\\u001b]52;c;" in body and b"[/bold]" in body
        records = {r["id"]: r["properties"] for r in requests.models.complexjson.loads(body)["results"]}
        for seeded in sandbox.hostile:
            values = records[seeded.crm_id]
            if seeded.case.payload:
                assert values["firstname"] == values["jobtitle"] == seeded.case.payload
                assert values["company"].startswith(seeded.case.payload)
        doomed = next(s for s in sandbox.hostile if s.name == "deleted")
        answer = http.post(
            f"{sandbox.url}/crm/v3/objects/contacts/batch/update",
            json={"inputs": [{"id": doomed.crm_id, "properties": {"crmsync_lifecycle_stage": "lead"}}]},
            timeout=30,
        )
        assert answer.status_code == 207 and answer.json()["errors"][0]["category"] == "OBJECT_NOT_FOUND"


def test_salesforce_holds_the_corpus_as_leads_and_contacts() -> None:
    sandbox = SalesforceSandbox(contacts=5, activities=10, hostile=True, now=NOW)
    assert {s.object_type for s in sandbox.hostile} == {"Lead", "Contact"}
    for seeded in sandbox.hostile:
        record = sandbox.org.get(seeded.object_type, seeded.crm_id)
        assert record is not None and record["Email"] == seeded.case.email
        if seeded.case.payload:
            assert record["Title"] == record["FirstName"] == seeded.case.payload
    subjects = {task["Subject"] for task in sandbox.org.records("Task")}
    assert PAYLOADS["osc52"] in subjects and PAYLOADS["nul"] in subjects
    campaigns = {c["Name"] for c in sandbox.org.records("Campaign")}
    assert f"/{PAYLOADS['link']}" in campaigns
    assert sandbox.faults.record_fault(next(s.crm_id for s in sandbox.hostile if s.name == "deleted"))
