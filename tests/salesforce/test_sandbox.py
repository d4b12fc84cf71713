"""The sandbox org's HTTP behaviour, seen through plain requests (what the SDK relies on)."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
import requests

from connector.sandbox.salesforce import SalesforceSandbox
from connector.sandbox.salesforce.process import SandboxProcess
from connector.sandbox.salesforce.schema import STAGE_VALUES
from tests.salesforce.conftest import add_contact


@pytest.fixture
def http(sandbox: SalesforceSandbox) -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.trust_env = False
        session.verify = sandbox.ca_file
        yield session


def token(sandbox: SalesforceSandbox, http: requests.Session, **form: str) -> requests.Response:
    return http.post(f"{sandbox.url}/services/oauth2/token", data=form)


def test_client_credentials_and_password_flows(sandbox: SalesforceSandbox, http: requests.Session) -> None:
    basic = base64.b64encode(b"sandbox-client:sandbox-secret").decode()
    cc = http.post(f"{sandbox.url}/services/oauth2/token", data={"grant_type": "client_credentials"},
                   headers={"Authorization": f"Basic {basic}"})  # fmt: skip
    assert cc.status_code == 200 and cc.json()["instance_url"] == sandbox.url
    pw = token(sandbox, http, grant_type="password", client_id="sandbox-client", client_secret="sandbox-secret",
               username="crmsync@sandbox.example", password="sandbox-password" + "sandbox-token")  # fmt: skip
    assert pw.status_code == 200 and pw.json()["token_type"] == "Bearer"
    bad = token(sandbox, http, grant_type="password", client_id="sandbox-client", client_secret="sandbox-secret",
                username="crmsync@sandbox.example", password="nope")  # fmt: skip
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_grant"
    wrong_client = token(sandbox, http, grant_type="client_credentials", client_id="x", client_secret="y")
    assert wrong_client.json()["error"] == "invalid_client_id"


def authed(sandbox: SalesforceSandbox, http: requests.Session) -> dict[str, str]:
    answer = token(
        sandbox, http, grant_type="client_credentials", client_id="sandbox-client", client_secret="sandbox-secret"
    )
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def test_limit_info_on_every_rest_response(sandbox: SalesforceSandbox, http: requests.Session) -> None:
    headers = authed(sandbox, http)
    base = f"{sandbox.url}/services/data/v62.0"
    for url in (f"{base}/limits/", f"{base}/sobjects/Lead/describe/", f"{base}/query/?q=SELECT+Nope+FROM+Lead",
                f"{base}/nothing-here"):  # fmt: skip
        answer = http.get(url, headers=headers)
        assert answer.headers["Sforce-Limit-Info"].startswith("api-usage=")
    assert http.get(f"{base}/limits/", headers=headers).json()["DailyApiRequests"]["Max"] == 100_000


def test_invalid_session(sandbox: SalesforceSandbox, http: requests.Session) -> None:
    answer = http.get(f"{sandbox.url}/services/data/v62.0/limits/", headers={"Authorization": "Bearer nope"})
    assert answer.status_code == 401
    assert answer.json() == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]


def test_rolling_allocation(sandbox: SalesforceSandbox, http: requests.Session) -> None:
    headers = authed(sandbox, http)
    sandbox.use_allocation(sandbox.limits.daily_api_requests - 1)
    url = f"{sandbox.url}/services/data/v62.0/limits/"
    assert http.get(url, headers=headers).status_code == 200
    refused = http.get(url, headers=headers)
    assert refused.status_code == 403
    assert refused.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    assert "Retry-After" not in refused.headers


def test_describe_has_the_restricted_stage_picklist(sandbox: SalesforceSandbox, http: requests.Session) -> None:
    for sobject in ("Lead", "Contact"):
        fields = http.get(
            f"{sandbox.url}/services/data/v62.0/sobjects/{sobject}/describe", headers=authed(sandbox, http)
        ).json()["fields"]
        stage = next(f for f in fields if f["name"] == "Lifecycle_Stage__c")
        assert stage["restrictedPicklist"] is True
        assert [v["value"] for v in stage["picklistValues"]] == list(STAGE_VALUES)


def test_query_pages_and_locators(sandbox: SalesforceSandbox, http: requests.Session) -> None:
    for n in range(7):
        add_contact(sandbox, n)
    headers = authed(sandbox, http)
    first = http.get(
        f"{sandbox.url}/services/data/v62.0/query/", params={"q": "SELECT Id FROM Contact"}, headers=headers
    ).json()
    assert (first["totalSize"], first["done"], len(first["records"])) == (7, False, 5)
    second = http.get(sandbox.url + first["nextRecordsUrl"], headers=headers).json()
    assert (second["done"], len(second["records"])) == (True, 2)
    # a client that lost the answer reads the same locator again (what a retry does): the same page
    again = http.get(sandbox.url + first["nextRecordsUrl"], headers=headers)
    assert again.status_code == 200 and again.json()["records"] == second["records"]
    forged = http.get(sandbox.url + first["nextRecordsUrl"].replace("-5", "-99"), headers=headers)
    assert forged.status_code == 400 and forged.json()[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_separate_process() -> None:
    with SandboxProcess(people=20, activities=100) as org:
        assert org.info["seeded"]["tasks"] + org.info["seeded"]["events"] + org.info["seeded"]["members"] == 100
        stats = org.stats()
        assert stats["records"]["Lead"] + stats["records"]["Contact"] >= 20
        assert org.url.startswith("https://127.0.0.1:")


def test_seeded_data_is_consistent(seeded: SalesforceSandbox) -> None:
    org = seeded.org
    leads = list(org.records("Lead"))
    converted = [lead for lead in leads if lead["IsConverted"]]
    assert converted and all(org.get("Contact", lead["ConvertedContactId"]) for lead in converted)
    assert all(lead["Lifecycle_Stage__c"] is None for lead in converted)
    stamps = [task["SystemModstamp"] for task in org.records("Task")]
    assert max(stamps.count(s) for s in set(stamps)) > 50  # a bulk load shares one stamp
    for member in org.records("CampaignMember"):
        assert member["LeadId"] or member["ContactId"]
