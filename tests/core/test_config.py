"""The settings object: TOML + environment, strict, secrets only from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.config import HubSpotConnection, load_config
from connector.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_example_config_loads_with_paths_relative_to_it() -> None:
    config = load_config(ROOT / "config.example.toml")
    assert config.rules_path == ROOT / "mappings" / "lifecycle.toml"
    assert config.mapping_path("salesforce") == ROOT / "mappings" / "salesforce.toml"
    assert config.store_url == f"sqlite:///{ROOT / 'crmsync.db'}"


def test_environment_overrides_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMSYNC_STORE__URL", "postgresql+psycopg://postgres@127.0.0.1/test")
    assert load_config(ROOT / "config.example.toml").store_url == "postgresql+psycopg://postgres@127.0.0.1/test"


def test_secret_comes_from_the_environment_and_never_shows(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = HubSpotConnection(type="hubspot", token_env="TEST_HS_TOKEN")
    monkeypatch.setenv("TEST_HS_TOKEN", "pat-na1-very-secret")
    secret = settings.secret(settings.token_env)
    assert secret.get_secret_value() == "pat-na1-very-secret"
    assert "very-secret" not in repr(secret) and "very-secret" not in str(secret)
    monkeypatch.delenv("TEST_HS_TOKEN")
    with pytest.raises(ConfigError, match="TEST_HS_TOKEN is not set"):
        settings.secret(settings.token_env)


def test_a_secret_in_the_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[connections.hubspot]\ntype = "hubspot"\ntoken = "pat-na1-abc"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert [p.key for p in caught.value.problems] == ["connections.hubspot.token"]
    assert "pat-na1-abc" not in str(caught.value)
