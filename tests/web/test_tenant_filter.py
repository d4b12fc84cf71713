"""The dashboard filtered by tenant / connection (many client portals in one deployment).

Over the store the dashboard tier fills with real runs (SQLite, and PostgreSQL
when configured): two jobs, each on its own connection. Each page takes
``?connection=NAME`` beside ``?job=NAME``; the tenants of ``tenants.toml``
(one connection and one job each) are listed like the job files'. A name
that is not known is a 400 whose page shows it as text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from connector.config import TeamSettings
from connector.report import build_funnel
from connector.web.app import create_app
from tests.web.conftest import NOW, PICKLIST, Filled
from tests.web.test_pages import text_of

HOSTILE_NAME = "<script>alert('tenant')</script>\u202e"


@pytest.fixture(scope="module")
def client(filled: Filled) -> Iterator[TestClient]:
    app = create_app(filled.store, config=filled.config, token=None, clock=lambda: NOW)
    with TestClient(app, base_url="http://127.0.0.1:8765") as test_client:
        yield test_client


def options(page: str, select: str) -> list[str]:
    block = re.search(rf'<select id="{select}" name="{select}">(.*?)</select>', page, re.S)
    assert block, f"no {select} select"
    return re.findall(r'<option value="([^"]*)"', block.group(1))


def test_every_page_offers_the_connections_to_filter_on(client: TestClient) -> None:
    for path in ("/", "/runs", "/funnel", "/dead-letters"):
        page = client.get(path).text
        assert options(page, "connection") == ["", "hubspot", "salesforce"], path
        assert options(page, "job") == ["", "hubspot-lifecycle", "salesforce-lifecycle"], path


def test_jobs_page_shows_the_jobs_of_one_connection(client: TestClient) -> None:
    page = client.get("/", params={"connection": "salesforce"}).text
    assert "salesforce-lifecycle" in text_of(page) and "hubspot-lifecycle" not in re.sub(r"<select.*?</select>", "", page, flags=re.S)  # fmt: skip
    assert re.search(r'<option value="salesforce" selected>', page)


def test_runs_page_shows_the_runs_of_one_connections_jobs(client: TestClient, filled: Filled) -> None:
    page = client.get("/runs", params={"connection": "hubspot"}).text
    hubspot_runs = [r.run_id for r in filled.results if r.job == "hubspot-lifecycle"] + [filled.failed_run_id]
    listed = re.findall(r'href="/runs/([0-9a-f-]{36})"', page)
    assert sorted(listed) == sorted(hubspot_runs) and len(listed) == 3
    # a job and a connection together: both must hold
    page = client.get("/runs", params={"connection": "hubspot", "job": "salesforce-lifecycle"}).text
    assert "No run of salesforce-lifecycle on hubspot" in text_of(page)


def test_funnel_page_counts_one_connections_contacts(client: TestClient, filled: Filled) -> None:
    page = text_of(client.get("/funnel", params={"connection": "salesforce"}).text)
    only = build_funnel(filled.store, connections=["salesforce"], config=filled.config, now=NOW)
    both = build_funnel(filled.store, config=filled.config, now=NOW)
    assert only.total == 12 < both.total
    assert f"{only.total} contacts in salesforce," in page


def test_dead_letters_page_shows_one_connections_letters(client: TestClient) -> None:
    hubspot = text_of(client.get("/dead-letters", params={"connection": "hubspot"}).text)
    assert "3 open dead letter(s)" in hubspot and PICKLIST in hubspot
    salesforce = text_of(client.get("/dead-letters", params={"connection": "salesforce"}).text)
    assert "No open dead letter in salesforce." in salesforce


def test_an_unknown_connection_is_a_400_that_shows_the_name_as_text(client: TestClient) -> None:
    answer = client.get("/runs", params={"connection": HOSTILE_NAME})
    assert answer.status_code == 400
    assert "<script>alert" not in answer.text and "\u202e" not in answer.text
    assert "No connection named \"&lt;script&gt;alert('tenant')&lt;/script&gt;\\u202e\"" in answer.text.replace(
        "&#34;", '"'
    ).replace("&#39;", "'")


def test_tenants_are_listed_and_filterable_like_job_files(filled: Filled, tmp_path: Path) -> None:
    # given a tenants file beside the config: two client portals from one template
    tenants = tmp_path / "tenants.toml"
    template = (
        '[connection]\ntype = "hubspot"\ntoken_env = "HUBSPOT_TOKEN_{TENANT}"\n[job]\nschedule = "*/10 * * * *"\n'
    )
    tenants.write_text(template + "[tenants.acme-logistics]\n[tenants.globex-freight]\n", encoding="utf-8")
    config = filled.config.model_copy(update={"team": TeamSettings(enabled=True, tenants=tenants)})
    app = create_app(filled.store, config=config, token=None, clock=lambda: NOW)
    with TestClient(app, base_url="http://127.0.0.1:8765") as tenant_client:
        page = tenant_client.get("/").text
        assert options(page, "connection") == ["", "acme-logistics", "globex-freight", "hubspot", "salesforce"]
        assert "acme-logistics" in options(page, "job")
        # then one tenant's page shows its job alone, never run yet, on the template's schedule
        one = text_of(tenant_client.get("/", params={"connection": "acme-logistics"}).text)
        assert "1 job(s)" in one and "schedule */10 * * * *" in one
        assert "No run on acme-logistics." in text_of(tenant_client.get("/runs?connection=acme-logistics").text)
        # a broken tenants file is shown as a problem, the other jobs still listed
        tenants.write_text(template + "[tenants.Bad_Name]\n", encoding="utf-8")
        broken = text_of(tenant_client.get("/").text)
        assert "did not load" in broken and "tenants.Bad_Name" in broken and "hubspot-lifecycle" in broken
