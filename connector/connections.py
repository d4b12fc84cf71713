"""Building a CRM client for a named connection of the config."""

from __future__ import annotations

from pathlib import Path

from connector.config import Config
from connector.crm import CrmClient
from connector.errors import ConfigError
from connector.hubspot.settings import HubSpotConnection
from connector.mapping import CrmMapping, load_mapping
from connector.salesforce.settings import SalesforceConnection


def connection_mapping(config: Config, name: str) -> CrmMapping:
    if name not in config.connections:
        known = ", ".join(sorted(config.connections)) or "none"
        raise ConfigError(f"no connection {name!r} in the config (known: {known})")
    mapping = load_mapping(config.mapping_path(name))
    settings = config.connections[name]
    if mapping.crm != settings.type:
        raise ConfigError(f"connection {name!r} is {settings.type} but {mapping.source} maps {mapping.crm}")
    return mapping


def open_client(config: Config, name: str) -> CrmClient:
    """A ready client for connection ``name``; secrets are read from the environment here."""
    mapping = connection_mapping(config, name)
    settings = config.connections[name]
    if isinstance(settings, HubSpotConnection):
        from connector.hubspot.client import HubSpotClient

        return HubSpotClient.from_settings(name, settings, mapping)
    if isinstance(settings, SalesforceConnection):
        from connector.salesforce.client import SalesforceClient

        if settings.ca_bundle:
            # paths in the config are relative to the config file's folder
            bundle = config.resolve(Path(settings.ca_bundle))
            if not bundle.is_file():
                raise ConfigError(f"connections.{name}.ca_bundle: no such file: {settings.ca_bundle}")
            settings = settings.model_copy(update={"ca_bundle": str(bundle)})
        return SalesforceClient.from_settings(name, settings, mapping)
    raise ConfigError(f"connection {name!r}: unknown type")  # pragma: no cover - pydantic rejects it
