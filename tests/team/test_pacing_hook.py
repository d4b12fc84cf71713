"""The shared-budget hook: clients opened inside ``sharing`` draw on the budget, for both vendors."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from connector.config import Config, HubSpotConnection, PathSettings, SalesforceConnection
from connector.connections import open_client
from connector.http.pacing import Pacer, Window, sharing

REPO = Path(__file__).resolve().parents[2]


class Budget:
    def __init__(self) -> None:
        self.calls: list[tuple[tuple[Window, ...], str | None]] = []

    def acquire(self, windows: Sequence[Window], kind: str | None) -> float:
        self.calls.append((tuple(windows), kind))
        return 0.25


def test_a_pacer_made_inside_sharing_draws_on_the_budget_after_its_own_windows() -> None:
    budget = Budget()
    with sharing(budget):
        shared = Pacer([Window(10, 1.0)], sleep=pytest.fail)
    alone = Pacer([Window(10, 1.0)], sleep=pytest.fail)
    assert shared.acquire("search") == 0.25 and shared.waited == 0.25
    assert budget.calls == [((Window(10, 1.0),), "search")]
    assert alone.shared is None and alone.acquire() == 0.0


@pytest.mark.parametrize("vendor", ["hubspot", "salesforce"])
def test_both_vendors_clients_take_the_budget_from_the_factory(vendor: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMSYNC_TEST_TOKEN", "token-value")
    connection = (
        HubSpotConnection(type="hubspot", token_env="CRMSYNC_TEST_TOKEN")
        if vendor == "hubspot"
        else SalesforceConnection(
            type="salesforce",
            instance_url="https://example.my.salesforce.com",
            auth="access_token",
            access_token_env="CRMSYNC_TEST_TOKEN",
        )
    )
    config = Config(
        paths=PathSettings(mappings=REPO / "mappings", rules=REPO / "mappings" / "lifecycle.toml"),
        connections={"acme": connection},
    )
    budget = Budget()
    with sharing(budget):
        client = open_client(config, "acme")
    pacers = [value for value in _reachable(client) if isinstance(value, Pacer)]
    assert pacers and all(pacer.shared is budget for pacer in pacers)


def _reachable(root: object, depth: int = 3) -> list[object]:
    """Objects reachable from ``root`` through attributes (the client's transport and its pacer)."""
    found: list[object] = []
    frontier = [root]
    for _ in range(depth):
        following = []
        for item in frontier:
            for value in vars(item).values() if hasattr(item, "__dict__") else ():
                found.append(value)
                following.append(value)
        frontier = following
    return found
