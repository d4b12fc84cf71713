"""What every CRM connection's settings share: its mapping file, timeout, retry policy and secrets."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from connector.errors import ConfigError


class RetrySettings(BaseModel):
    """How one client retries transient failures (the policy is in :mod:`connector.http.retry`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_attempts: int = Field(default=8, ge=1)
    initial_wait_seconds: float = Field(default=0.5, gt=0)
    max_wait_seconds: float = Field(default=30.0, gt=0)
    """Cap of one wait (Retry-After included)."""
    total_wait_seconds: float = Field(default=300.0, gt=0)
    """Cap of all waits for one call; past it the call fails as transient."""


class ConnectionSettings(BaseModel):
    """The base of each vendor's ``settings.py`` model (a member of the config's discriminated union)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    client: ClassVar[str]
    """``module:Class`` of the vendor's ``CrmClient``, imported only when a client is opened (the SDKs are heavy).
    The class has ``from_settings(name, settings, mapping)``."""

    type: str
    """The vendor: each subclass narrows it to a ``Literal`` (the config's discriminator)."""
    mapping: str
    """Mapping file, relative to ``paths.mappings``."""
    timeout_seconds: float = Field(default=30.0, gt=0)
    retry: RetrySettings = RetrySettings()
    daily_call_budget: int | None = Field(default=None, ge=1)
    """Team mode: API calls all workers together may make on this connection in any 24 hours (the share of
    the portal's daily limit / the org's 24-hour allocation left to crmsync); past it a run stops with
    ``QuotaExhausted``. ``None``: not budgeted (the vendor's own refusal still stops a run)."""

    def secret(self, env_var: str | None, environ: Mapping[str, str] | None = None) -> SecretStr:
        """The secret held by ``env_var`` in ``environ`` (default: the process environment); a missing
        variable is a ``ConfigError`` naming it."""
        if not env_var:
            raise ConfigError("no environment variable is named for this secret")
        value = (os.environ if environ is None else environ).get(env_var)
        if not value:
            raise ConfigError(f"environment variable {env_var} is not set (it must hold a secret for this connection)")
        return SecretStr(value)


def https_url(value: str | None) -> str | None:
    """A pydantic ``AfterValidator`` for URLs a token is sent to."""
    from connector.http.urls import require_https

    return None if value is None else require_https(value)
