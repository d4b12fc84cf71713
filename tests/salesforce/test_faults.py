"""The choke point against each fault kind, the quota stop and session refresh."""

from __future__ import annotations

import pytest
import responses

from connector.config import RetrySettings
from connector.errors import AuthError, QuotaExhausted, TransientError
from connector.sandbox.salesforce import SalesforceSandbox
from tests.salesforce.conftest import ClientFactory, add_contact


def pull_ids(client: object) -> list[str]:
    return [r.crm_id for page in client.pull_contacts(None) for r in page.records]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("kind", "extra"),
    [("500", {}), ("503", {}), ("reset", {}), ("429", {}), ("429", {"retry_after": 0.01}), ("slow", {"delay": 1.0})],
    ids=["500", "503", "reset", "429", "429-retry-after", "slow-timeout"],
)
@pytest.mark.parametrize("endpoint", ["queryAll", "queryAll_more"])  # people are read with queryAll
def test_transient_faults_are_retried(
    sandbox: SalesforceSandbox, make_client: ClientFactory, kind: str, extra: dict, endpoint: str
) -> None:
    created = [add_contact(sandbox, n) for n in range(8)]
    client = make_client(sandbox, timeout_seconds=0.3)
    client.api.sf  # log in first, so the fault hits the REST call  # noqa: B018
    sandbox.faults.add(kind, endpoint=endpoint, **extra)
    assert pull_ids(client) == created
    usage = client.usage()
    assert usage.retries == 1
    assert usage.rate_limited == (1 if kind == "429" else 0)
    assert sandbox.faults.pending == 0


@pytest.mark.parametrize("kind", ["503", "reset", "429"])
def test_faults_on_login_are_retried(sandbox: SalesforceSandbox, make_client: ClientFactory, kind: str) -> None:
    created = add_contact(sandbox, 1)
    client = make_client(sandbox)
    sandbox.faults.add(kind, endpoint="oauth/token")
    assert pull_ids(client) == [created]
    assert client.usage().calls["oauth/token"] == 2


def test_faults_on_writes_are_retried(sandbox: SalesforceSandbox, make_client: ClientFactory) -> None:
    from tests.salesforce.test_write import update

    record = add_contact(sandbox, 1)
    client = make_client(sandbox)
    client.api.sf  # noqa: B018
    sandbox.faults.add("503", endpoint="composite/sobjects")
    sandbox.faults.add("reset", endpoint="composite/sobjects")
    results = client.write_stages([update(record, "Contact")])
    assert results[0].outcome.value == "written"
    assert client.usage().calls["composite/sobjects"] == 3


def test_retries_give_up_after_max_attempts_and_writes_become_retry(
    sandbox: SalesforceSandbox, make_client: ClientFactory
) -> None:
    from tests.salesforce.test_write import update

    record = add_contact(sandbox, 1)
    retry = RetrySettings(max_attempts=3, initial_wait_seconds=0.001, max_wait_seconds=0.002)
    client = make_client(sandbox, retry=retry)
    client.api.sf  # noqa: B018
    sandbox.faults.add("500", times=3)
    results = client.write_stages([update(record, "Contact")])
    assert results[0].outcome.value == "retry"
    assert client.usage().calls["composite/sobjects"] == 3
    sandbox.faults.add("500", times=3)
    with pytest.raises(TransientError, match="query"):
        pull_ids(client)


def test_quota_exhausted_stops_and_is_not_an_auth_error(sandbox: SalesforceSandbox, make_client: ClientFactory) -> None:
    add_contact(sandbox, 1)
    client = make_client(sandbox)
    sandbox.use_allocation(sandbox.limits.daily_api_requests)
    with pytest.raises(QuotaExhausted, match="REQUEST_LIMIT_EXCEEDED") as caught:
        pull_ids(client)
    assert not isinstance(caught.value, AuthError)
    assert client.usage().calls["query"] == 1  # no hammering
    assert client.usage().quota_used == sandbox.limits.daily_api_requests


def test_usage_reports_sforce_limit_info(sandbox: SalesforceSandbox, make_client: ClientFactory) -> None:
    add_contact(sandbox, 1)
    sandbox.use_allocation(1234)
    client = make_client(sandbox)
    pull_ids(client)
    usage = client.usage()
    assert usage.quota_total == sandbox.limits.daily_api_requests
    assert usage.quota_used == 1234 + 2  # two queries (Lead, Contact); the token call does not count
    assert usage.calls == {"oauth/token": 1, "query": 2}


@pytest.mark.parametrize("auth", ["client_credentials", "password"])
def test_expired_session_is_refreshed_once(sandbox: SalesforceSandbox, make_client: ClientFactory, auth: str) -> None:
    created = [add_contact(sandbox, n) for n in range(3)]
    client = make_client(sandbox, auth=auth)
    assert pull_ids(client) == created
    sandbox.expire_sessions()
    assert pull_ids(client) == created
    assert client.usage().calls["oauth/token"] == 2
    assert sandbox.log.counts["oauth/token"] == 2


def test_expired_session_with_a_given_token_is_an_auth_error(
    sandbox: SalesforceSandbox, make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_contact(sandbox, 1)
    token = sandbox.service.token({"grant_type": "client_credentials", "client_id": "sandbox-client",
                                   "client_secret": "sandbox-secret"}, None)["access_token"]  # fmt: skip
    monkeypatch.setenv("SF_TOKEN", token)
    client = make_client(sandbox, auth="access_token", access_token_env="SF_TOKEN")
    assert len(pull_ids(client)) == 1
    sandbox.expire_sessions()
    with pytest.raises(AuthError, match="INVALID_SESSION_ID"):
        pull_ids(client)


def test_bad_credentials_are_an_auth_error(
    sandbox: SalesforceSandbox, make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = make_client(sandbox)
    monkeypatch.setenv("SALESFORCE_CLIENT_SECRET", "wrong")
    from connector.salesforce.client import SalesforceClient

    bad = SalesforceClient.from_settings("salesforce", client.settings, client.mapping)
    with pytest.raises(AuthError, match="invalid_client"):
        pull_ids(bad)
    bad.close()


@responses.activate
def test_401_after_a_refresh_is_an_auth_error(make_client: ClientFactory, sandbox: SalesforceSandbox) -> None:
    """With ``responses``: the org keeps answering 401 even to a fresh session."""
    client = make_client(sandbox)
    base = sandbox.url
    token = responses.post(f"{base}/services/oauth2/token", json={"access_token": "t", "instance_url": base})
    expired = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    query = responses.get(f"{base}/services/data/v62.0/queryAll/", json=expired, status=401)
    with pytest.raises(AuthError):
        pull_ids(client)
    assert token.call_count == 2
    assert query.call_count == 2


@responses.activate
def test_a_query_answer_that_is_not_json_is_retried(make_client: ClientFactory, sandbox: SalesforceSandbox) -> None:
    """With ``responses``: a proxy's page with status 200 instead of the first query page, then the real pages."""
    client = make_client(sandbox)
    base = sandbox.url
    responses.post(f"{base}/services/oauth2/token", json={"access_token": "t", "instance_url": base})
    url = f"{base}/services/data/v62.0/queryAll/"
    broken = responses.get(url, body="<html>upstream timed out</html>", status=200)
    page = {"totalSize": 1, "done": True, "records": [
        {"attributes": {"type": "Contact"}, "Id": "003000000000001AAA", "Email": "a@example.com",
         "SystemModstamp": "2026-11-02T09:00:00.000+0000", "LastModifiedDate": "2026-11-02T09:00:00.000+0000",
         "IsDeleted": False, "MasterRecordId": None}]}  # fmt: skip
    answered = responses.get(url, json=page)
    pages = list(client.pull_contacts(None))
    assert broken.call_count == 1 and answered.call_count >= 1
    assert client.usage().retries == 1
    assert "003000000000001AAA" in [record.crm_id for page in pages for record in page.records]
