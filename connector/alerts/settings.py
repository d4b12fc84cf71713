"""The ``[alerts]`` section of ``config.toml``: where alerts go and when they are sent.

Secrets are never in the file: a webhook URL (Slack's and Teams' URLs are
credentials: whoever has one can post) and the SMTP password are read from
the environment variables the file names.
"""

from __future__ import annotations

import os
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from connector.errors import ConfigError

_STRICT = ConfigDict(frozen=True, extra="forbid")


class WebhookFormat(StrEnum):
    SLACK = "slack"
    """``{"text": ...}``: Slack incoming webhooks (and Mattermost, Rocket.Chat, Google Chat)."""
    TEAMS = "teams"
    """A message with one Adaptive Card: Teams Workflows ("Post to a channel when a webhook request is received")."""
    GENERIC = "generic"
    """The alert as a JSON object: trigger, job, title, text, details, at."""


class WebhookTarget(BaseModel):
    model_config = _STRICT

    name: str = Field(default="webhook", min_length=1, max_length=40)
    format: WebhookFormat = WebhookFormat.GENERIC
    url: str | None = None
    """The URL itself, for an endpoint whose URL is no secret (an internal receiver)."""
    url_env: str | None = None
    """The environment variable holding the URL (Slack and Teams URLs are secrets)."""

    @model_validator(mode="after")
    def _one_url(self) -> WebhookTarget:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("give exactly one of url and url_env")
        if self.url is not None and not self.url.startswith(("https://", "http://")):
            raise ValueError("url must start with https:// (or http:// for a local receiver)")
        return self

    def resolved_url(self) -> SecretStr:
        if self.url is not None:
            return SecretStr(self.url)
        value = os.environ.get(self.url_env or "", "")
        if not value:
            raise ConfigError(f"alerts webhook {self.name!r}: environment variable {self.url_env} is not set")
        return SecretStr(value)


class EmailTarget(BaseModel):
    model_config = _STRICT

    name: str = Field(default="email", min_length=1, max_length=40)
    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    security: str = Field(default="starttls", pattern="^(starttls|tls|none)$")
    """``starttls`` (port 587), ``tls`` (port 465) or ``none`` (a local relay only)."""
    username: str | None = None
    password_env: str | None = None
    """The environment variable holding the SMTP password (never the password itself)."""
    sender: str = Field(min_length=3)
    to: list[str] = Field(min_length=1)

    def password(self) -> SecretStr | None:
        if not self.password_env:
            return None
        value = os.environ.get(self.password_env)
        if value is None:
            raise ConfigError(f"alerts e-mail {self.name!r}: environment variable {self.password_env} is not set")
        return SecretStr(value)


class AlertSettings(BaseModel):
    """When alerts are sent (thresholds) and where (webhooks, e-mail); no target means no alert."""

    model_config = _STRICT

    webhooks: list[WebhookTarget] = Field(default_factory=list)
    email: EmailTarget | None = None
    cooldown_minutes: float = Field(default=60, ge=0)
    """An alert (same job, same trigger) is sent again at most once per cool-down."""
    rejected_share: float | None = Field(default=0.05, ge=0, le=1)
    """Alert when the CRM rejected more than this share of the records a run tried to write."""
    rejected_count: int | None = Field(default=None, ge=1)
    """... or more than this many records (either threshold is enough)."""
    dead_letters: bool = True
    """Alert when a run adds new dead letters."""
    api_usage_share: float | None = Field(default=0.8, gt=0, le=1)
    """Alert when a CRM's API usage passes this share of its daily allocation."""
    stale_intervals: int | None = Field(default=3, ge=1)
    """Alert when a job has not completed a run for this many of its schedule's intervals (the scheduler checks)."""
    timeout_seconds: float = Field(default=10, gt=0, le=120)
    retries: int = Field(default=3, ge=0, le=10)

    @property
    def enabled(self) -> bool:
        return bool(self.webhooks or self.email)
