"""Fixtures of the people tier: a job unifying a HubSpot-like and a Salesforce-like fake CRM, on every store
backend (SQLite always, PostgreSQL when ``CRMSYNC_TEST_POSTGRES_URL`` is set)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from connector.config import Config
from connector.jobs import Job
from connector.mapping import load_mapping
from connector.store import Store
from tests.fakes import FakeCrm
from tests.sync.conftest import REPO, Runner, make_config

UNIFIED = Job(name="unified", connections=["hubspot", "salesforce"], unify=True)
SEPARATE = Job(name="separate", connections=["hubspot", "salesforce"])


def new_crms(**options: Any) -> dict[str, FakeCrm]:
    return {
        name: FakeCrm(mapping=load_mapping(REPO / "mappings" / f"{name}.toml"), connection=name, **options)
        for name in ("hubspot", "salesforce")
    }


@pytest.fixture
def config(tmp_path: Path, store_url: str) -> Config:
    return make_config(tmp_path, store_url)


@pytest.fixture
def crms() -> dict[str, FakeCrm]:
    return new_crms()


@pytest.fixture
def runner(config: Config, store: Store, crms: dict[str, FakeCrm]) -> Runner:
    return Runner(config, store, crms)
