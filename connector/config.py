"""The one validated settings object: ``config.toml`` plus the environment.

Secrets are never in the file: a connection names the environment variable
that holds each one, and :meth:`Connection.secret` reads it as a
``SecretStr`` when a client is built. Every path in the file is relative to
the file's own folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from connector.errors import ConfigError, Problem
from connector.loading import problems_from, raise_problems, read_toml

_STRICT = ConfigDict(frozen=True, extra="forbid")

DEFAULT_CONFIG = Path("config.toml")


class RetrySettings(BaseModel):
    """How one client retries transient failures (one choke point per vendor)."""

    model_config = _STRICT

    max_attempts: int = Field(default=8, ge=1)
    initial_wait_seconds: float = Field(default=0.5, gt=0)
    max_wait_seconds: float = Field(default=30.0, gt=0)
    """Cap of one wait (Retry-After included)."""
    total_wait_seconds: float = Field(default=300.0, gt=0)
    """Cap of all waits for one call; past it the call fails as transient."""


class _ConnectionBase(BaseModel):
    model_config = _STRICT

    mapping: str
    """Mapping file, relative to ``paths.mappings``."""
    timeout_seconds: float = Field(default=30.0, gt=0)
    retry: RetrySettings = RetrySettings()

    def secret(self, env_var: str | None) -> SecretStr:
        """The secret held by ``env_var``; a missing variable is a ``ConfigError`` naming it."""
        if not env_var:
            raise ConfigError("no environment variable is named for this secret")
        value = os.environ.get(env_var)
        if not value:
            raise ConfigError(f"environment variable {env_var} is not set (it must hold a secret for this connection)")
        return SecretStr(value)


class HubSpotConnection(_ConnectionBase):
    type: Literal["hubspot"]
    base_url: str = "https://api.hubapi.com"
    token_env: str = "HUBSPOT_TOKEN"
    """Environment variable holding the private-app access token."""
    mapping: str = "hubspot.toml"
    burst_limit: int = Field(default=190, ge=1)
    """Requests allowed per burst window (100 free/starter, 190 private apps Pro/Enterprise, 250 with the pack)."""
    burst_window_seconds: float = Field(default=10.0, gt=0)
    search_per_second: float = Field(default=4.0, gt=0)
    """Search endpoints have their own, lower, per-second limit."""
    search_result_cap: int = Field(default=10_000, ge=100)
    """HubSpot returns at most this many results per search query; the client re-anchors before it."""
    pace_share: float = Field(default=0.95, gt=0, le=1)
    """Share of the limits the pacer aims at, leaving room for other apps on the portal."""


class SalesforceConnection(_ConnectionBase):
    type: Literal["salesforce"]
    instance_url: str
    """e.g. https://yourcompany.my.salesforce.com"""
    login_url: str | None = None
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
    bulk_threshold: int = Field(default=2000, ge=1)
    """Above this many updates in a run, Bulk API 2.0 may be used instead of collections."""
    lookback_seconds: float = Field(default=300.0, ge=0)
    """Re-read this much before the checkpoint: SystemModstamp can commit late."""
    ca_bundle: str | None = None
    """CA file to trust (the sandbox's throwaway CA); default: the system store."""


Connection = Annotated[HubSpotConnection | SalesforceConnection, Field(discriminator="type")]


class StoreSettings(BaseModel):
    model_config = _STRICT

    url: str = "sqlite:///crmsync.db"
    """SQLAlchemy URL: SQLite (one file, one scheduler) or postgresql+psycopg://... (teams, several workers)."""


class PathSettings(BaseModel):
    model_config = _STRICT

    mappings: Path = Path("mappings")
    jobs: Path = Path("jobs")
    rules: Path = Path("mappings/lifecycle.toml")


class Config(BaseSettings):
    """Everything crmsync needs to run, from ``config.toml`` and ``CRMSYNC_*`` variables.

    An environment variable overrides the file: ``CRMSYNC_STORE__URL``
    sets ``[store] url``.
    """

    model_config = SettingsConfigDict(env_prefix="CRMSYNC_", env_nested_delimiter="__", extra="forbid", frozen=True)

    store: StoreSettings = StoreSettings()
    paths: PathSettings = PathSettings()
    connections: dict[str, Connection] = Field(default_factory=dict)
    base_dir: Path = Path(".")
    """Folder the file's relative paths start from (set by the loader)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (env_settings, init_settings)

    def resolve(self, path: Path) -> Path:
        return path if path.is_absolute() else self.base_dir / path

    @property
    def rules_path(self) -> Path:
        return self.resolve(self.paths.rules)

    @property
    def jobs_dir(self) -> Path:
        return self.resolve(self.paths.jobs)

    def mapping_path(self, connection: str) -> Path:
        return self.resolve(self.paths.mappings) / self.connections[connection].mapping

    @property
    def store_url(self) -> str:
        """The store URL, a relative SQLite file taken from the config's folder."""
        url = self.store.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith("sqlite:////") and url != "sqlite:///:memory:":
            return prefix + str(self.resolve(Path(url[len(prefix) :])))
        return url


def load_config(path: Path | None = None) -> Config:
    """Load ``config.toml`` (or ``$CRMSYNC_CONFIG``); every problem is reported at once."""
    if path is None:
        path = Path(os.environ.get("CRMSYNC_CONFIG", DEFAULT_CONFIG))
    data: dict[str, Any] = read_toml(path)
    data.setdefault("base_dir", path.parent.resolve())
    try:
        return Config(**data)
    except ValidationError as error:
        problems = problems_from(error, str(path), union_tags=frozenset({"hubspot", "salesforce"}))
        raise_problems(str(path), problems)
        raise  # pragma: no cover


def config_problems(path: Path) -> tuple[Config | None, list[Problem]]:
    try:
        return load_config(path), []
    except ConfigError as error:
        return None, error.problems or [Problem(str(path), "", str(error))]
