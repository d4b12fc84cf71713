"""The settings of one HubSpot connection (``[connections.<name>]`` with ``type = "hubspot"``)."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, Field

from connector.http.settings import ConnectionSettings, https_url


class HubSpotConnection(ConnectionSettings):
    client: ClassVar[str] = "connector.hubspot.client:HubSpotClient"

    type: Literal["hubspot"]
    base_url: Annotated[str, AfterValidator(https_url)] = "https://api.hubapi.com"
    """https only (http is accepted for loopback hosts: local emulators)."""
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


SETTINGS = HubSpotConnection
"""The vendor's settings model: the config finds it here (``connector/<vendor>/settings.py``)."""
