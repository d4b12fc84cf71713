"""The sandbox org as a client we did not write sees it: simple-salesforce's own calls, beyond the ones crmsync makes.

tap-salesforce and Airbyte's Salesforce source stopped at login or on these
endpoints; each answer here is the one a real org gives (or, for features the
sandbox does not model, what an org without them gives).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from connector.sandbox.salesforce import SalesforceSandbox
from tests.salesforce.conftest import ClientFactory, add_contact


@pytest.fixture
def sf(sandbox: SalesforceSandbox, make_client: ClientFactory) -> Salesforce:
    """simple-salesforce's handle, logged in through the JWT grant (what most orgs allow integrations)."""
    for n in range(7):
        add_contact(sandbox, n)
    return make_client(sandbox, auth="jwt").api.sf


@pytest.fixture
def http(sandbox: SalesforceSandbox) -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.trust_env = False
        session.verify = sandbox.ca_file
        yield session


def test_query_all_follows_every_locator_and_query_all_with_deleted_uses_queryall(
    sf: Salesforce, sandbox: SalesforceSandbox
) -> None:
    assert sf.query_all("SELECT Id FROM Contact")["totalSize"] == 7
    assert len(sf.query_all("SELECT Id FROM Contact", include_deleted=True)["records"]) == 7
    assert sandbox.log.counts["queryAll"] == 1 and sandbox.log.counts["queryAll_more"] == 1


def test_describe_get_and_limits(sf: Salesforce, sandbox: SalesforceSandbox) -> None:
    record_id = add_contact(sandbox, 99)
    assert {o["name"] for o in sf.describe()["sobjects"]} >= {"Contact", "Lead", "CampaignMember"}
    assert any(f["name"] == "Email" for f in sf.Contact.describe()["fields"])
    assert sf.Contact.get(record_id)["Id"] == record_id
    limits = sf.limits()
    assert {"DailyApiRequests", "DailyBulkApiBatches", "DailyBulkV2QueryJobs", "DataStorageMB"} <= set(limits)
    assert limits["DailyApiRequests"]["Remaining"] < limits["DailyApiRequests"]["Max"]


def test_the_version_list_needs_no_session(sandbox: SalesforceSandbox, http: requests.Session) -> None:
    answer = http.get(f"{sandbox.url}/services/data/")
    assert answer.status_code == 200
    assert {"label", "url", "version"} <= set(answer.json()[-1]) and "62.0" in [v["version"] for v in answer.json()]


def test_unsupported_soql_is_malformed_query_in_salesforce_s_words(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query("SELECT COUNT(Id) FROM Contact GROUP BY Title")
    error = caught.value.content[0]
    assert error["errorCode"] == "MALFORMED_QUERY"
    assert "ERROR at Row:1:Column:13" in error["message"] and "unexpected token: '('" in error["message"]


def test_bulk_apis_answer_as_an_org_without_them(sf: Salesforce, sandbox: SalesforceSandbox,
                                                  http: requests.Session) -> None:  # fmt: skip
    session = {"Authorization": f"Bearer {sf.session_id}"}
    v2 = http.post(f"{sandbox.url}/services/data/v62.0/jobs/query", json={"operation": "query"}, headers=session)
    assert v2.status_code == 400 and v2.json()[0]["errorCode"] == "FeatureNotEnabled"
    v1 = http.post(f"{sandbox.url}/services/async/62.0/job", json={}, headers={"X-SFDC-Session": sf.session_id})
    assert v1.status_code == 400 and v1.json()["exceptionCode"] == "FeatureNotEnabled"
    unauthenticated = http.post(f"{sandbox.url}/services/async/62.0/job", json={})
    assert unauthenticated.status_code == 401 and unauthenticated.json()["exceptionCode"] == "InvalidSessionId"
