"""Fixtures: a small HubSpot sandbox over loopback and clients pointed at it with short retry waits."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr

from connector.config import HubSpotConnection, RetrySettings
from connector.hubspot.client import HubSpotClient
from connector.mapping import CrmMapping, load_mapping
from connector.sandbox.hubspot import HubSpotSandbox, Limits

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]
TOKEN = "pat-na1-0c4f9a2e-sandbox-secret-7d1b"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
FAST_RETRY = RetrySettings(max_attempts=5, initial_wait_seconds=0.01, max_wait_seconds=0.05, total_wait_seconds=2)


@pytest.fixture(scope="session")
def hubspot_mapping(root: Any) -> CrmMapping:
    return load_mapping(root / "mappings" / "hubspot.toml")


@pytest.fixture
def sandbox() -> Iterator[HubSpotSandbox]:
    """60 people, 600 activities; limits on but roomy."""
    with HubSpotSandbox(
        contacts=60, activities=600, token=TOKEN, now=NOW, limits=Limits(burst=10_000, search_per_second=1000)
    ) as running:
        yield running


@pytest.fixture
def make_client(hubspot_mapping: CrmMapping) -> Iterator[Callable[..., HubSpotClient]]:
    clients: list[HubSpotClient] = []

    def make(
        sandbox: HubSpotSandbox,
        *,
        token: str = TOKEN,
        pacing: bool = False,
        sleep: Callable[[float], None] = time.sleep,
        **settings: Any,
    ) -> HubSpotClient:
        settings.setdefault("retry", FAST_RETRY)
        settings.setdefault("timeout_seconds", 5.0)
        connection = HubSpotConnection(type="hubspot", base_url=sandbox.url, **settings)
        client = HubSpotClient("hubspot", connection, hubspot_mapping, SecretStr(token), pacing=pacing, sleep=sleep)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
