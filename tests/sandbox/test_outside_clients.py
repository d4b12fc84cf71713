"""The HubSpot sandbox answers the legacy reads that Singer's tap-hubspot and Airbyte's HubSpot source make.

Run by hand against the sandbox (docs/benchmarks.md, "Outside clients against the
sandboxes"), Airbyte's source failed its connection check on
``GET /properties/v2/contact/properties`` and its engagement streams on
``/properties/v2/calls/properties``; tap-hubspot found no forms (``GET /forms/v2/forms``)
and so read no form submissions. A real portal answers all three (bare JSON arrays,
dates in epoch milliseconds); what the sandbox still does not model keeps answering
as a portal whose token lacks the scope.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import urllib3

from connector.sandbox.hubspot import HubSpotSandbox, Limits

TOKEN = "pat-eu1-5e0d7c31-outside-clients-9a4f"


@pytest.fixture(scope="module")
def portal() -> Iterator[HubSpotSandbox]:
    with HubSpotSandbox(contacts=40, activities=400, token=TOKEN, now=datetime(2026, 11, 20, tzinfo=UTC),
                        limits=Limits.unlimited()) as running:  # fmt: skip
        yield running


def _get(portal: HubSpotSandbox, path: str) -> tuple[int, Any]:
    response = urllib3.PoolManager().request("GET", portal.url + path, headers={"Authorization": f"Bearer {TOKEN}"})
    return response.status, response.json()


@pytest.mark.parametrize(
    ("legacy", "current"),
    [
        ("/properties/v2/contact/properties", "/crm/v3/properties/contacts"),
        ("/properties/v2/contacts/properties", "/crm/v3/properties/contacts"),
        ("/properties/v1/contacts/properties", "/crm/v3/properties/contacts"),
        ("/properties/v2/company/properties", "/crm/v3/properties/companies"),
        ("/properties/v2/calls/properties", "/crm/v3/properties/calls"),
        ("/properties/v2/meetings/properties", "/crm/v3/properties/meetings"),
        ("/properties/v2/emails/properties", "/crm/v3/properties/emails"),
    ],
)
def test_legacy_property_lists_match_the_v3_ones(portal: HubSpotSandbox, legacy: str, current: str) -> None:
    status, properties = _get(portal, legacy)
    assert status == 200 and isinstance(properties, list)
    _, v3 = _get(portal, current)
    assert [p["name"] for p in properties] == [p["name"] for p in v3["results"]]
    first = properties[0]
    assert {"name", "label", "type", "fieldType", "groupName", "options"} <= first.keys()
    assert isinstance(first["createdAt"], int)  # the legacy APIs give epoch milliseconds, v3 ISO text


@pytest.mark.parametrize("name", ["calls", "meetings", "emails"])
def test_engagement_properties_describe_what_their_records_carry(portal: HubSpotSandbox, name: str) -> None:
    """Every property an engagement record is served with is defined, and enumerations list the values served."""
    status, listed = _get(portal, f"/crm/v3/properties/{name}")
    assert status == 200
    definitions = {p["name"]: p for p in listed["results"]}
    _, page = _get(portal, f"/crm/v3/objects/{name}?limit=100&properties=" + ",".join(definitions))
    assert page["results"], f"the seed has no {name}"
    for record in page["results"]:
        for prop, value in record["properties"].items():
            assert prop in definitions, prop
            options = [o["value"] for o in definitions[prop]["options"]]
            if definitions[prop]["type"] == "enumeration" and value is not None:
                assert value in options, (prop, value)


def test_legacy_form_list_leads_to_the_submissions(portal: HubSpotSandbox) -> None:
    status, forms = _get(portal, "/forms/v2/forms")
    assert status == 200 and isinstance(forms, list)
    _, current = _get(portal, "/marketing/v3/forms")
    assert [f["guid"] for f in forms] == [f["id"] for f in current["results"]]
    assert all(isinstance(f["updatedAt"], int) and f["portalId"] for f in forms)
    submitted = 0
    for form in forms:  # what tap-hubspot does with each guid
        status, page = _get(portal, f"/form-integrations/v1/submissions/forms/{form['guid']}?limit=50")
        assert status == 200
        submitted += len(page["results"])
    assert submitted > 0


@pytest.mark.parametrize(
    "path", ["/companies/v2/properties", "/engagements/v1/engagements/paged", "/properties/v2/deal_split/properties"]
)
def test_what_is_still_not_modelled_is_a_missing_scope(portal: HubSpotSandbox, path: str) -> None:
    status, body = _get(portal, path)
    assert status == 403 and body["category"] == "MISSING_SCOPES"


def test_contacts_to_contacts_associations_are_read_not_refused(portal: HubSpotSandbox) -> None:
    """Airbyte's contacts stream reads contact-to-contact associations after each incremental search page."""
    http = urllib3.PoolManager()
    url = f"{portal.url}/crm/v4/associations/contact/contacts/batch/read"  # the singular alias, as some clients send
    headers = {"Authorization": f"Bearer {TOKEN}"}
    known = portal.store.contact_id(0)
    answer = http.request("POST", url, json={"inputs": [{"id": str(known)}]}, headers=headers)
    assert answer.status == 200 and answer.json()["results"] == []  # no contact-to-contact links in the seed
    unknown = http.request("POST", url, json={"inputs": [{"id": str(known)}, {"id": "98765432101"}]}, headers=headers)
    assert unknown.status == 207
    assert unknown.json()["errors"][0]["context"]["ids"] == ["98765432101"]
