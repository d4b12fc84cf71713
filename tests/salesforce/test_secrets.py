"""No secret (client secret, password, security token, access token) in any log line, error or output."""

from __future__ import annotations

import logging

import pytest

from connector.errors import CrmsyncError
from connector.sandbox.salesforce import SalesforceSandbox
from tests.salesforce.conftest import ClientFactory, add_contact


def test_no_secret_in_logs_errors_or_usage(
    sandbox: SalesforceSandbox, make_client: ClientFactory, caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG)
    record = add_contact(sandbox, 1)
    texts: list[str] = []
    client = make_client(sandbox, auth="password")
    # normal work, a retried fault, a refreshed session
    sandbox.faults.add("503")
    pages = list(client.pull_contacts(None))
    sandbox.expire_sessions()
    from tests.salesforce.test_write import update

    results = client.write_stages([update(record, "Contact"), update(record, "Contact", "bad")])
    texts += [page.model_dump_json() for page in pages] + [r.model_dump_json() for r in results]
    texts += [client.usage().model_dump_json(), repr(client), repr(client.api._secrets)]
    access_tokens = set(sandbox.service.sessions)
    # failures: the quota, a refused login
    sandbox.use_allocation(sandbox.limits.daily_api_requests)
    with pytest.raises(CrmsyncError) as quota:
        list(client.pull_contacts(None))
    texts += [str(quota.value), repr(quota.value)]
    monkeypatch.setenv("SALESFORCE_PASSWORD", "wrong-password-xyz")
    from connector.salesforce.client import SalesforceClient

    refused = SalesforceClient.from_settings("salesforce", client.settings, client.mapping)
    with pytest.raises(CrmsyncError) as login:
        list(refused.pull_contacts(None))
    texts += [str(login.value), repr(login.value), str(login.value.__cause__), str(login.value.__context__)]
    refused.close()
    texts += [entry.getMessage() + " " + str(entry.__dict__) for entry in caplog.records]
    blob = "\n".join(texts)
    creds = sandbox.credentials
    secrets = [creds.client_secret, creds.password, creds.security_token, "wrong-password-xyz", *access_tokens]
    assert access_tokens
    for secret in secrets:
        assert secret not in blob
    assert any("retry" in entry.getMessage() for entry in caplog.records)  # the logs were really captured
