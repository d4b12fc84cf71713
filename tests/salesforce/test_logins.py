"""The logins orgs allow for integrations: the JWT bearer and refresh-token grants against the sandbox's token endpoint.

Each way a login can be refused gives its own error, naming the grant and
what to check, and never the key, the assertion or a token.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from connector.config import SalesforceConnection
from connector.errors import AuthError, ConfigError
from connector.mapping import CrmMapping
from connector.salesforce.client import SalesforceClient
from connector.salesforce.transport import SalesforceApi, Secrets
from connector.sandbox.salesforce import SECRET_ENV, SalesforceSandbox
from tests.salesforce.conftest import ClientFactory, add_contact


def pull_ids(client: SalesforceClient) -> list[str]:
    return [r.crm_id for page in client.pull_contacts(None) for r in page.records]


def other_key() -> str:
    """A well-formed private key the connected app does not know."""
    return SalesforceSandbox().private_key_pem


def client_with(
    sandbox: SalesforceSandbox, mapping: CrmMapping, environ: dict[str, str], *, clock: float = 0.0, **overrides: object
) -> SalesforceClient:
    settings = SalesforceConnection(**sandbox.connection_settings(**overrides))
    api = SalesforceApi(settings, Secrets.from_settings(settings, environ), clock=lambda: time.time() + clock)
    return SalesforceClient("salesforce", settings, mapping, api)


# -- the grants work --------------------------------------------------------------
def test_the_jwt_grant_logs_in_with_a_key_from_an_environment_variable(
    sandbox: SalesforceSandbox, make_client: ClientFactory
) -> None:
    created = add_contact(sandbox, 1)
    client = make_client(sandbox, auth="jwt")
    assert pull_ids(client) == [created]
    assert client.usage().calls["oauth/token"] == 1


def test_the_jwt_grant_reads_the_key_from_a_file(
    sandbox: SalesforceSandbox, mapping: CrmMapping, tmp_path: Path
) -> None:
    created = add_contact(sandbox, 1)
    key_file = tmp_path / "connected-app.key"
    key_file.write_text(sandbox.private_key_pem, encoding="ascii")
    environ = {k: v for k, v in sandbox.secrets_env("jwt").items() if k != SECRET_ENV["private_key"]}
    client = client_with(sandbox, mapping, environ, auth="jwt", private_key_env=None, private_key_file=str(key_file))
    try:
        assert pull_ids(client) == [created]
    finally:
        client.close()


def test_the_refresh_token_grant_logs_in(sandbox: SalesforceSandbox, make_client: ClientFactory) -> None:
    created = add_contact(sandbox, 1)
    client = make_client(sandbox, auth="refresh_token")
    assert pull_ids(client) == [created]


@pytest.mark.parametrize("auth", ["jwt", "refresh_token"])
def test_an_expired_session_logs_in_again_with_the_same_grant(
    sandbox: SalesforceSandbox, make_client: ClientFactory, auth: str
) -> None:
    add_contact(sandbox, 1)
    client = make_client(sandbox, auth=auth)
    pull_ids(client)
    sandbox.expire_sessions()
    assert len(pull_ids(client)) == 1
    assert client.usage().calls["oauth/token"] == 2


# -- each refusal says which grant failed and why ------------------------------------
def test_a_wrong_private_key_is_an_invalid_assertion(sandbox: SalesforceSandbox, mapping: CrmMapping) -> None:
    environ = sandbox.secrets_env("jwt") | {SECRET_ENV["private_key"]: other_key()}
    client = client_with(sandbox, mapping, environ, auth="jwt")
    with pytest.raises(AuthError) as caught:
        pull_ids(client)
    text = str(caught.value)
    assert "oauth/token (jwt grant)" in text and "invalid assertion" in text and "wrong private key" in text
    assert "PRIVATE KEY" not in text and "eyJ" not in text  # neither the key nor the assertion
    assert client.usage().calls["oauth/token"] == 1  # a refusal is not retried
    client.close()


def test_an_expired_assertion_names_the_clock(sandbox: SalesforceSandbox, mapping: CrmMapping) -> None:
    client = client_with(sandbox, mapping, sandbox.secrets_env("jwt"), clock=-3600, auth="jwt")
    with pytest.raises(AuthError) as caught:
        pull_ids(client)
    text = str(caught.value)
    assert "oauth/token (jwt grant)" in text and "expired authorization code" in text and "clock" in text
    client.close()


def test_a_revoked_refresh_token_asks_for_a_new_authorisation(
    sandbox: SalesforceSandbox, make_client: ClientFactory
) -> None:
    client = make_client(sandbox, auth="refresh_token")
    sandbox.revoke_refresh_tokens()
    with pytest.raises(AuthError) as caught:
        pull_ids(client)
    text = str(caught.value)
    assert "oauth/token (refresh_token grant)" in text and "expired access/refresh token" in text
    assert "authorise the app again" in text
    assert sandbox.refresh_token not in text


def test_a_wrong_audience_and_an_unknown_user_are_told_apart(sandbox: SalesforceSandbox, mapping: CrmMapping) -> None:
    audience = client_with(
        sandbox, mapping, sandbox.secrets_env("jwt"), auth="jwt", jwt_audience="https://elsewhere.example"
    )
    user = client_with(sandbox, mapping, sandbox.secrets_env("jwt") | {SECRET_ENV["username"]: "nobody@example.com"},
                       auth="jwt")  # fmt: skip
    for client, expected in ((audience, "audience is invalid"), (user, "not pre-authorised")):
        with pytest.raises(AuthError, match=expected):
            pull_ids(client)
        client.close()


# -- the key never goes in the config -------------------------------------------------
def test_a_jwt_connection_names_exactly_one_key_source(sandbox: SalesforceSandbox) -> None:
    with pytest.raises(ValidationError, match="exactly one of private_key_file or private_key_env"):
        SalesforceConnection(**sandbox.connection_settings(auth="jwt", private_key_file="app.key"))
    with pytest.raises(ValidationError, match="needs refresh_token_env"):
        SalesforceConnection(**sandbox.connection_settings(auth="refresh_token", refresh_token_env=None))


def test_an_unreadable_key_file_or_variable_is_a_config_error(sandbox: SalesforceSandbox, tmp_path: Path) -> None:
    missing = SalesforceConnection(
        **sandbox.connection_settings(auth="jwt", private_key_env=None, private_key_file=str(tmp_path / "none.key"))
    )
    with pytest.raises(ConfigError, match=r"none\.key: no such file"):
        Secrets.from_settings(missing, sandbox.secrets_env("jwt"))
    not_a_key = SalesforceConnection(**sandbox.connection_settings(auth="jwt"))
    with pytest.raises(ConfigError, match="SALESFORCE_PRIVATE_KEY: not a PEM private key"):
        Secrets.from_settings(not_a_key, sandbox.secrets_env("jwt") | {SECRET_ENV["private_key"]: "hunter2"})


def test_validate_remote_checks_the_login_and_names_the_refused_grant(
    sandbox: SalesforceSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from connector.cli.check import collect_problems
    from tests.salesforce.conftest import ROOT

    for name, value in (sandbox.secrets_env("jwt") | {SECRET_ENV["private_key"]: other_key()}).items():
        monkeypatch.setenv(name, value)
    settings = sandbox.connection_settings(auth="jwt")
    del settings["retry"]
    lines = [f"{key} = {value!r}".replace("'", '"') for key, value in settings.items() if value is not None]
    (tmp_path / "jobs").mkdir()
    (tmp_path / "config.toml").write_text(
        f'[paths]\nmappings = "{ROOT / "mappings"}"\nrules = "{ROOT / "mappings" / "lifecycle.toml"}"\n'
        f'jobs = "{tmp_path / "jobs"}"\n\n[connections.salesforce]\n' + "\n".join(lines) + "\n",
        encoding="utf-8",
    )
    problems, _ = collect_problems(tmp_path / "config.toml", remote=True)
    assert len(problems) == 1
    assert "oauth/token (jwt grant)" in problems[0].message and "invalid assertion" in problems[0].message
