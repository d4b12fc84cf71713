"""Firmographics from the contact's primary company (real portals keep them on the Company object)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from connector.errors import ConfigError
from connector.hubspot.client import CompanyCache, HubSpotClient
from connector.mapping import load_mapping
from connector.sandbox.hubspot import HubSpotSandbox, Limits
from connector.sandbox.hubspot.store import CONTACT_ONLY_FIRMOGRAPHICS, to_ms

from .conftest import NOW, TOKEN

MakeClient = Callable[..., HubSpotClient]
ROOT = Path(__file__).resolve().parents[2]


def _records(client: HubSpotClient, cursor: str | None = None) -> tuple[list[str | None], dict[str, object]]:
    pages = list(client.pull_contacts(cursor))
    return [p.cursor for p in pages], {r.crm_id: r for p in pages for r in p.records}


def test_a_full_pull_reads_the_primary_company_inline_and_each_company_once(make_client: MakeClient) -> None:
    with HubSpotSandbox(contacts=250, activities=0, token=TOKEN, now=NOW, limits=Limits.unlimited()) as portal:
        client = make_client(portal)
        _, records = _records(client)

        store = portal.store
        companies = {store.contact_company[i] for i in range(store.contact_count)}
        bare = [i for i in range(store.contact_count) if i % CONTACT_ONLY_FIRMOGRAPHICS]
        assert bare and all(store.get(i, "industry") is None for i in bare)  # only on the company
        for index in range(store.contact_count):
            record = records[str(store.contact_id(index))]
            company = store.contact_company[index]
            assert record.contact.company is not None
            assert record.contact.company.industry == store.companies.get(company, "industry").lower()
            assert record.contact.company.employees == int(store.companies.get(company, "numberofemployees"))
        # the vendor minimum: 3 list pages with the associations inline (no v4 reads), and the companies in
        # batches of 100 (pages wait for a full batch of unseen companies), each read once
        assert portal.log.calls("contacts.list") == 3
        assert portal.log.calls("companies.batch_read") == -(-len(companies) // 100)
        assert portal.log.calls("associations.batch_read") == 0
        _, again = _records(client)  # the same client: every company is known, none is read again
        assert len(again) == 250 and portal.log.calls("companies.batch_read") == -(-len(companies) // 100)


def test_pages_wait_for_a_full_batch_of_companies_and_keep_their_order(make_client: MakeClient) -> None:
    with HubSpotSandbox(contacts=2_000, activities=0, token=TOKEN, now=NOW, limits=Limits.unlimited()) as portal:
        client = make_client(portal)
        cursors, records = _records(client)

        store = portal.store
        companies = {store.contact_company[i] for i in range(store.contact_count)}
        assert len(records) == 2_000 and len(cursors) == 20
        assert [json.loads(c or "")["contacts"].get("after") for c in cursors[:-1]] == [
            str(store.contact_id(100 * n)) for n in range(1, 20)
        ]
        assert all(r.contact.company is not None and r.contact.company.industry for r in records.values())
        assert portal.log.calls("companies.batch_read") <= -(-len(companies) // 100) + 1


def test_an_incremental_pull_reads_the_primary_company_through_the_v4_associations(
    sandbox: HubSpotSandbox, make_client: MakeClient
) -> None:
    client = make_client(sandbox)
    cursors, _ = _records(client)
    state = json.loads(cursors[-1] or "")
    state["contacts"]["since"] = to_ms(NOW) - 10**12  # everything counts as changed: one search page
    fresh = make_client(sandbox)
    before = sandbox.log.calls("associations.batch_read")

    _, records = _records(fresh, json.dumps(state))

    store = sandbox.store
    for index in range(store.contact_count):
        record = records[str(store.contact_id(index))]
        industry = store.companies.get(store.contact_company[index], "industry")
        assert record.contact.company is not None and record.contact.company.industry == industry.lower()
    assert sandbox.log.calls("associations.batch_read") - before == -(-store.contact_count // 100)


def test_the_contact_fields_fill_what_the_company_lacks(sandbox: HubSpotSandbox, make_client: MakeClient) -> None:
    store = sandbox.store
    with store.lock:
        store.companies.text["country"][store.contact_company[0]] = None
        store.set(0, "country", "BE")
        store.contact_company[1] = -1  # no company at all
        store.set(1, "industry", "WAREHOUSING")
    _, records = _records(make_client(sandbox))

    first, second = records["1"], records["2"]
    assert first.contact.company is not None and first.contact.company.country == "BE"
    assert first.contact.company.industry == store.companies.get(store.contact_company[0], "industry").lower()
    assert second.contact.company is not None and second.contact.company.industry == "warehousing"


def test_validate_remote_names_a_company_property_the_portal_lacks(
    sandbox: HubSpotSandbox, make_client: MakeClient
) -> None:
    del sandbox.store.company_properties["numberofemployees"]
    problems = make_client(sandbox).check_schema()
    assert [(p.key, p.message) for p in problems] == [
        ("people.contacts.company.fields.company.employees", "HubSpot has no company property 'numberofemployees'")
    ]


def test_a_company_section_outside_the_company_fields_is_refused(tmp_path: Path) -> None:
    text = (ROOT / "mappings" / "hubspot.toml").read_text().replace('"company.name" = "name"', 'job_title = "name"')
    path = tmp_path / "hubspot.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_mapping(path)
    assert "people.contacts.company.fields" in str(error.value)
    assert "company.* common fields" in str(error.value)


def test_the_company_cache_keeps_only_the_mapped_values_and_shares_repeated_ones() -> None:
    cache = CompanyCache(["industry", "numberofemployees", "domain"])
    first = {"industry": "Logistics", "numberofemployees": "250", "hs_object_id": "9001", "createdate": "x"}
    cache.put("9001", first)
    cache.put("9002", {"industry": "".join(["Logis", "tics"]), "domain": None})
    cache.put("9003", {})  # gone since it was associated: a company without values

    assert cache.get("9001") == {"industry": "Logistics", "numberofemployees": "250"}
    assert cache.get("9002") == {"industry": "Logistics"}
    assert cache.get("9003") == {} and "9003" in cache
    assert cache.get("404") is None and "404" not in cache
    # one string for a value many companies share (an industry), not one per company
    industry_one, industry_two = cache.get("9001")["industry"], cache.get("9002")["industry"]  # type: ignore[index]
    assert industry_one is industry_two

    cache.keep_only({"9002"})
    assert len(cache) == 1 and "9001" not in cache and cache.get("9002") == {"industry": "Logistics"}
