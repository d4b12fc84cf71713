"""The HubSpot sandbox as clients we did not write see it: the SDK's own calls, beyond the ones crmsync makes.

Singer's tap-hubspot and Airbyte's HubSpot source stopped on these: search's
top-level ``filters`` (silently ignored before, so Airbyte emitted 2 of 43
changed contacts and reported success), object type aliases, single-record
reads, the schema list, a scope error for what the sandbox does not model,
rate-limit headers when unpaced.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import urllib3
from hubspot import HubSpot
from hubspot.crm.contacts import ApiException, PublicObjectSearchRequest

from connector.sandbox.hubspot import HubSpotSandbox, Limits
from tests.hubspot.conftest import TOKEN


@pytest.fixture(scope="module")
def portal() -> Iterator[HubSpotSandbox]:
    with HubSpotSandbox(contacts=43, activities=100, token=TOKEN, now=datetime(2026, 11, 20, tzinfo=UTC),
                        limits=Limits.unlimited()) as running:  # fmt: skip
        yield running


@pytest.fixture(scope="module")
def sdk(portal: HubSpotSandbox) -> HubSpot:
    return HubSpot(access_token=TOKEN, host=portal.url)


def test_get_page_and_get_by_id(sdk: HubSpot) -> None:
    page = sdk.crm.contacts.basic_api.get_page(limit=10, properties=["email", "hs_analytics_num_page_views"])
    assert len(page.results) == 10 and page.paging.next.after
    first = page.results[0]
    again = sdk.crm.contacts.basic_api.get_by_id(first.id, properties=["email"])
    assert again.properties["email"] == first.properties["email"]
    by_email = sdk.crm.contacts.basic_api.get_by_id(first.properties["email"], id_property="email")
    assert by_email.id == first.id
    with pytest.raises(ApiException) as caught:
        sdk.crm.contacts.basic_api.get_by_id("999999")
    assert caught.value.status == 404


def test_search_with_top_level_filters_ands_them(sdk: HubSpot, portal: HubSpotSandbox) -> None:
    """The SDK's model has only ``filterGroups``; Airbyte's source posts top-level ``filters`` over plain HTTP."""
    one = sdk.crm.contacts.basic_api.get_page(limit=1, properties=["email"]).results[0]
    email = {"propertyName": "email", "operator": "EQ", "value": one.properties["email"]}
    grouped = PublicObjectSearchRequest(filter_groups=[{"filters": [email]}], properties=["email"], limit=100)
    assert [r.id for r in sdk.crm.contacts.search_api.do_search(public_object_search_request=grouped).results] == [
        one.id
    ]
    http = urllib3.PoolManager()
    url, headers = f"{portal.url}/crm/v3/objects/contacts/search", {"Authorization": f"Bearer {TOKEN}"}
    top = http.request("POST", url, json={"filters": [email], "limit": 100}, headers=headers).json()
    assert [r["id"] for r in top["results"]] == [one.id]
    other = {"propertyName": "hs_object_id", "operator": "NEQ", "value": one.id}
    both = http.request("POST", url, json={"filters": [email, other], "limit": 100}, headers=headers).json()
    assert both["total"] == 0  # ANDed, not ignored (all 43) nor ORed


@pytest.mark.parametrize("alias", ["contact", "0-1"])
def test_object_type_aliases(portal: HubSpotSandbox, alias: str) -> None:
    http = urllib3.PoolManager()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    answer = http.request("GET", f"{portal.url}/crm/v3/objects/{alias}?limit=5", headers=headers)
    assert answer.status == 200 and len(answer.json()["results"]) == 5
    search = http.request("POST", f"{portal.url}/crm/v3/objects/{alias}/search", json={"limit": 3}, headers=headers)
    assert search.status == 200 and search.json()["total"] == 43


def test_schemas_scopes_and_headers(portal: HubSpotSandbox) -> None:
    http = urllib3.PoolManager()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    schemas = http.request("GET", f"{portal.url}/crm/v3/schemas", headers=headers)
    assert schemas.status == 200 and schemas.json() == {"results": []}
    # unlimited (unpaced), the rate-limit headers still come
    assert int(schemas.headers["X-HubSpot-RateLimit-Max"]) > 0
    assert int(schemas.headers["X-HubSpot-RateLimit-Daily-Remaining"]) > 0
    unmodelled = http.request("GET", f"{portal.url}/crm/v3/objects/deals?limit=5", headers=headers)
    assert unmodelled.status == 403
    body = unmodelled.json()
    assert body["category"] == "MISSING_SCOPES"
    assert body["errors"][0]["context"]["requiredGranularScopes"] == ["crm.objects.deals.read"]


def test_contacts_carry_a_real_portal_s_property_set(portal: HubSpotSandbox) -> None:
    http = urllib3.PoolManager()
    answer = http.request(
        "GET", f"{portal.url}/crm/v3/properties/contacts", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    names = {p["name"] for p in answer.json()["results"]}
    assert len(names) >= 300
    assert {"hs_analytics_num_page_views", "hs_email_open", "hs_email_last_click_date"} <= names
