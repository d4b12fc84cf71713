"""The settings of one Salesforce connection (``[connections.<name>]`` with ``type = "salesforce"``)."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, Field, model_validator

from connector.http.settings import ConnectionSettings, https_url


class SalesforceConnection(ConnectionSettings):
    client: ClassVar[str] = "connector.salesforce.client:SalesforceClient"

    type: Literal["salesforce"]
    instance_url: Annotated[str, AfterValidator(https_url)]
    """e.g. https://yourcompany.my.salesforce.com (http is accepted for loopback hosts only)."""
    login_url: Annotated[str | None, AfterValidator(https_url)] = None
    """OAuth host every login grant posts to (default: the instance)."""
    auth: Literal["password", "client_credentials", "access_token", "jwt", "refresh_token"] = "client_credentials"
    """The login grant: ``jwt`` (OAuth 2.0 JWT bearer: connected app + certificate), ``refresh_token``,
    ``client_credentials``, ``password`` (orgs are switching it off), or a ready ``access_token``."""
    api_version: str = "62.0"
    username_env: str | None = None
    password_env: str | None = None
    security_token_env: str | None = None
    client_id_env: str | None = "SALESFORCE_CLIENT_ID"
    client_secret_env: str | None = "SALESFORCE_CLIENT_SECRET"
    access_token_env: str | None = None
    refresh_token_env: str | None = None
    """``auth = "refresh_token"``: the variable holding the refresh token."""
    private_key_file: str | None = None
    """``auth = "jwt"``: PEM file of the connected app's private key, relative to the config file's folder.
    The key itself never goes in the config: a file, or ``private_key_env``."""
    private_key_env: str | None = None
    """``auth = "jwt"``: the variable holding the PEM private key (instead of ``private_key_file``)."""
    jwt_audience: str | None = None
    """``auth = "jwt"``: the assertion's ``aud`` (default ``login_url``, else https://login.salesforce.com;
    https://test.salesforce.com for a Salesforce sandbox org)."""
    mapping: str = "salesforce.toml"
    requests_per_second: float = Field(default=20.0, gt=0)
    """Pacing; Salesforce counts a rolling 24 h allocation rather than bursts."""
    lookback_seconds: float = Field(default=300.0, ge=0)
    """Re-read this much before the checkpoint: SystemModstamp can commit late."""
    ca_bundle: str | None = None
    """CA file to trust (the sandbox's throwaway CA), relative to the config file's folder; default: the system store."""

    @model_validator(mode="after")
    def _grant_inputs(self) -> SalesforceConnection:
        """Each grant names where its secrets are; checked at load, so ``validate`` reports it."""
        if self.auth == "jwt":
            if not self.username_env:
                raise ValueError('auth = "jwt" needs username_env (the user the assertion logs in as)')
            if bool(self.private_key_file) == bool(self.private_key_env):
                raise ValueError('auth = "jwt" needs exactly one of private_key_file or private_key_env')
        if self.auth == "refresh_token" and not self.refresh_token_env:
            raise ValueError('auth = "refresh_token" needs refresh_token_env')
        if self.auth in ("jwt", "refresh_token", "client_credentials", "password") and not self.client_id_env:
            raise ValueError(f'auth = "{self.auth}" needs client_id_env (the connected app\'s consumer key)')
        return self


SETTINGS = SalesforceConnection
"""The vendor's settings model: the config finds it here (``connector/<vendor>/settings.py``)."""
