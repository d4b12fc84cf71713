"""The settings of one Salesforce connection (``[connections.<name>]`` with ``type = "salesforce"``)."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, Field

from connector.http.settings import ConnectionSettings, https_url


class SalesforceConnection(ConnectionSettings):
    client: ClassVar[str] = "connector.salesforce.client:SalesforceClient"

    type: Literal["salesforce"]
    instance_url: Annotated[str, AfterValidator(https_url)]
    """e.g. https://yourcompany.my.salesforce.com (http is accepted for loopback hosts only)."""
    login_url: Annotated[str | None, AfterValidator(https_url)] = None
    """OAuth host for password / client-credentials logins (default: the instance)."""
    auth: Literal["password", "client_credentials", "access_token"] = "client_credentials"
    api_version: str = "62.0"
    username_env: str | None = None
    password_env: str | None = None
    security_token_env: str | None = None
    client_id_env: str | None = "SALESFORCE_CLIENT_ID"
    client_secret_env: str | None = "SALESFORCE_CLIENT_SECRET"
    access_token_env: str | None = None
    mapping: str = "salesforce.toml"
    requests_per_second: float = Field(default=20.0, gt=0)
    """Pacing; Salesforce counts a rolling 24 h allocation rather than bursts."""
    lookback_seconds: float = Field(default=300.0, ge=0)
    """Re-read this much before the checkpoint: SystemModstamp can commit late."""
    ca_bundle: str | None = None
    """CA file to trust (the sandbox's throwaway CA), relative to the config file's folder; default: the system store."""


SETTINGS = SalesforceConnection
"""The vendor's settings model: the config finds it here (``connector/<vendor>/settings.py``)."""
