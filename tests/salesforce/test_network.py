"""No answer from Salesforce, and the CA file with proxies (issue 10, item 7)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from connector.errors import ConfigError, TransientError, Unreachable
from connector.mapping import CrmMapping
from connector.salesforce.client import SalesforceClient
from connector.salesforce.settings import SalesforceConnection
from connector.salesforce.transport import SalesforceApi, Secrets
from connector.sandbox.salesforce import SalesforceSandbox
from tests.salesforce.conftest import ClientFactory, add_contact


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(autouse=True)
def _no_proxy_from_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
    ):
        monkeypatch.delenv(name, raising=False)


def _client(org: SalesforceSandbox, mapping: CrmMapping, slept: list[float], **overrides: object) -> SalesforceClient:
    import os

    for name, value in org.secrets_env("client_credentials").items():
        os.environ[name] = value  # the sandbox's throwaway credentials; the fixture's org is per test
    settings = SalesforceConnection(**org.connection_settings(**overrides))
    api = SalesforceApi(settings, Secrets.from_settings(settings), sleep=slept.append)
    return SalesforceClient("salesforce", settings, mapping, api)


def test_connection_refused_on_the_first_call_fails_at_once_naming_the_url(
    sandbox: SalesforceSandbox, mapping: CrmMapping
) -> None:
    url = f"https://127.0.0.1:{_closed_port()}"
    slept: list[float] = []
    client = _client(sandbox, mapping, slept, instance_url=url, login_url=url)
    with pytest.raises(Unreachable) as caught:
        list(client.pull_contacts(None))
    assert url in str(caught.value) and "connection refused" in str(caught.value)
    assert client.usage().retries == 0 and client.usage().calls == {"query": 1, "oauth/token": 1}


def test_the_login_names_the_login_url(sandbox: SalesforceSandbox, make_client: ClientFactory) -> None:
    url = f"https://127.0.0.1:{_closed_port()}"
    client = make_client(sandbox, login_url=url)
    with pytest.raises(Unreachable, match=url.replace(".", r"\.")):
        list(client.pull_contacts(None))


def test_an_untrusted_certificate_is_a_config_error(sandbox: SalesforceSandbox, mapping: CrmMapping) -> None:
    slept: list[float] = []
    client = _client(sandbox, mapping, slept, ca_bundle=None)
    with pytest.raises(ConfigError, match="TLS verification failed") as caught:
        list(client.pull_contacts(None))
    assert not isinstance(caught.value, TransientError) and client.usage().retries == 0


def test_a_refused_connection_mid_run_is_retried(mapping: CrmMapping, tmp_path: Path) -> None:
    slept: list[float] = []
    with SalesforceSandbox() as org:
        add_contact(org, 1)
        ca_file = tmp_path / "ca.pem"  # the sandbox removes its CA file when it stops
        ca_file.write_bytes(Path(org.ca_file).read_bytes())
        client = _client(org, mapping, slept, ca_bundle=str(ca_file))
        assert len([r for page in client.pull_contacts(None) for r in page.records]) == 1
    client.api.session.close()  # no kept-alive connection to the stopped server's handler threads
    with pytest.raises(TransientError) as caught:
        list(client.pull_contacts(None))
    assert not isinstance(caught.value, ConfigError)
    assert client.usage().retries == client.settings.retry.max_attempts - 1


def test_ca_bundle_wins_over_requests_ca_bundle_and_keeps_the_proxy_settings(
    sandbox: SalesforceSandbox, mapping: CrmMapping, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_contact(sandbox, 1)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/ca.pem")  # would win over session.verify
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    slept: list[float] = []
    client = _client(sandbox, mapping, slept)
    assert client.api.session.trust_env  # proxies from the environment still apply
    assert len([r for page in client.pull_contacts(None) for r in page.records]) == 1
    # without NO_PROXY the call goes to the (closed) proxy: the proxy setting was honoured
    monkeypatch.delenv("NO_PROXY")
    proxied = _client(sandbox, mapping, slept)
    with pytest.raises((Unreachable, TransientError)):
        list(proxied.pull_contacts(None))


def test_settings_refuse_plain_http_to_a_remote_host() -> None:
    with pytest.raises(ValueError, match="clear text"):
        SalesforceConnection(type="salesforce", instance_url="http://acme.my.salesforce.com")


def test_a_ca_file_gone_missing_is_a_config_error(
    sandbox: SalesforceSandbox, mapping: CrmMapping, tmp_path: Path
) -> None:
    slept: list[float] = []
    client = _client(sandbox, mapping, slept, ca_bundle=str(tmp_path / "gone.pem"))
    with pytest.raises(ConfigError, match="ca_bundle"):
        list(client.pull_contacts(None))
