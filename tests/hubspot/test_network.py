"""No answer from HubSpot: fail fast on the first call, naming the URL; retry mid-run (issue 10, item 7)."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest
from pydantic import SecretStr

from connector.config import HubSpotConnection
from connector.errors import ConfigError, TransientError, Unreachable
from connector.hubspot.client import HubSpotClient
from connector.mapping import CrmMapping
from connector.sandbox.hubspot import HubSpotSandbox

from .conftest import FAST_RETRY, NOW, TOKEN

MakeClient = Callable[..., HubSpotClient]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _client(url: str, mapping: CrmMapping, slept: list[float]) -> HubSpotClient:
    settings = HubSpotConnection(type="hubspot", base_url=url, retry=FAST_RETRY, timeout_seconds=5)
    return HubSpotClient("hubspot", settings, mapping, SecretStr(TOKEN), pacing=False, sleep=slept.append)


def test_connection_refused_on_the_first_call_fails_at_once_naming_the_url(hubspot_mapping: CrmMapping) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    slept: list[float] = []
    client = _client(url, hubspot_mapping, slept)
    with pytest.raises(Unreachable) as caught:
        list(client.pull_contacts(None))
    assert url in str(caught.value) and "connection refused" in str(caught.value)
    assert isinstance(caught.value, ConfigError)
    assert slept == [] and client.usage().calls == {"contacts.list": 1}


def test_an_untrusted_certificate_is_not_transient(hubspot_mapping: CrmMapping) -> None:
    from connector.sandbox.salesforce import SalesforceSandbox

    with SalesforceSandbox() as tls:  # a TLS server whose throwaway CA the client does not trust
        slept: list[float] = []
        client = _client(tls.url, hubspot_mapping, slept)
        with pytest.raises(ConfigError, match="TLS verification failed") as caught:
            list(client.pull_contacts(None))
    assert not isinstance(caught.value, TransientError)
    assert tls.url in str(caught.value)
    assert slept == [] and client.usage().calls == {"contacts.list": 1}


def test_a_refused_connection_mid_run_is_retried_as_transient(hubspot_mapping: CrmMapping) -> None:
    slept: list[float] = []
    with HubSpotSandbox(contacts=5, token=TOKEN, now=NOW) as running:
        client = _client(running.url, hubspot_mapping, slept)
        assert len([r for page in client.pull_contacts(None) for r in page.records]) == 5
    # the portal went away after answering: a network blip, not a wrong URL
    with pytest.raises(TransientError) as caught:
        list(client.pull_contacts(None))
    assert not isinstance(caught.value, ConfigError)
    assert "no response" in str(caught.value)
    assert len(slept) == FAST_RETRY.max_attempts - 1 and client.usage().retries == len(slept)
