"""The settings object: TOML + environment, strict, secrets only from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.config import HubSpotConnection, SalesforceConnection, config_problems, load_config
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


# -- issue 10: bad environment values, http URLs, missing CA files are config problems ------------------


@pytest.mark.parametrize("value", ["notjson", "{", "[1, 2]", '"a string"'])
def test_an_unreadable_store_variable_is_a_config_problem_naming_it(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("CRMSYNC_STORE", value)
    with pytest.raises(ConfigError) as caught:
        load_config(ROOT / "config.example.toml")
    keys = [p.key for p in caught.value.problems]
    assert keys in (["CRMSYNC_STORE"], ["store"]), caught.value.problems


def test_a_bad_nested_variable_is_a_config_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMSYNC_PATHS", '{"jobs": 3}')
    with pytest.raises(ConfigError) as caught:
        load_config(ROOT / "config.example.toml")
    assert [p.key for p in caught.value.problems] == ["paths.jobs"]


URLS = {
    "hubspot base_url": ('type = "hubspot"\nbase_url = "http://api.hubapi.com"', "base_url"),
    "salesforce instance_url": ('type = "salesforce"\ninstance_url = "http://acme.my.salesforce.com"', "instance_url"),
    "salesforce login_url": (
        'type = "salesforce"\ninstance_url = "https://acme.my.salesforce.com"\nlogin_url = "http://login.salesforce.com"',
        "login_url",
    ),
}


@pytest.mark.parametrize(("section", "key"), URLS.values(), ids=URLS.keys())
def test_plain_http_urls_are_refused_with_file_and_key(tmp_path: Path, section: str, key: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f"[connections.crm]\n{section}\n")
    config, problems = config_problems(path)
    assert config is None
    assert [(p.file, p.key) for p in problems] == [(str(path), f"connections.crm.{key}")]
    assert "clear text" in problems[0].message


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "http://localhost:9000", "http://[::1]:8443"])
def test_plain_http_is_accepted_for_loopback_hosts(url: str) -> None:
    assert HubSpotConnection(type="hubspot", base_url=url).base_url == url
    assert SalesforceConnection(type="salesforce", instance_url=url, login_url=url).login_url == url


def test_a_missing_ca_bundle_is_reported_by_validate_and_when_a_client_opens(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[connections.sf]\ntype = "salesforce"\ninstance_url = "https://acme.my.salesforce.com"\n'
        'ca_bundle = "certs/ca.pem"\n'
    )
    config, problems = config_problems(path)
    assert config is not None
    assert [(p.key, p.message) for p in problems] == [("connections.sf.ca_bundle", "no such file: certs/ca.pem")]
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    assert config_problems(path)[1] == []  # relative to the config file's folder, not the working directory


def test_open_client_names_a_missing_ca_bundle(tmp_path: Path) -> None:
    from connector.connections import open_client

    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings" / "salesforce.toml").write_text((ROOT / "mappings" / "salesforce.toml").read_text())
    path = tmp_path / "config.toml"
    path.write_text(
        '[connections.sf]\ntype = "salesforce"\ninstance_url = "https://acme.my.salesforce.com"\n'
        'ca_bundle = "gone.pem"\n'
    )
    with pytest.raises(ConfigError, match=r"connections\.sf\.ca_bundle: no such file: gone\.pem"):
        open_client(load_config(path), "sf")
