"""Building a CRM client for a named connection of the config."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path

from connector.config import Config
from connector.crm import CrmClient
from connector.errors import ConfigError
from connector.mapping import CrmMapping


def connection_mapping(config: Config, name: str) -> CrmMapping:
    """The mapping of connection ``name`` (see :meth:`Config.connection_mapping`)."""
    return config.connection_mapping(name)


def open_client(config: Config, name: str, *, environ: Mapping[str, str] | None = None) -> CrmClient:
    """A ready client for connection ``name``; secrets are read here from ``environ`` (default: the
    process environment), by the variable names the config gives.

    The vendor's client module (and its SDK) is imported only now, from the
    ``client`` path its settings name.
    """
    mapping = connection_mapping(config, name)
    settings = config.connections[name]
    ca_bundle = getattr(settings, "ca_bundle", None)
    if isinstance(ca_bundle, str) and ca_bundle:
        # paths in the config are relative to the config file's folder
        bundle = config.resolve(Path(ca_bundle))
        if not bundle.is_file():
            raise ConfigError(f"connections.{name}.ca_bundle: no such file: {ca_bundle}")
        settings = settings.model_copy(update={"ca_bundle": str(bundle)})
    key_file = getattr(settings, "private_key_file", None)
    if isinstance(key_file, str) and key_file:
        settings = settings.model_copy(update={"private_key_file": str(config.resolve(Path(key_file)))})
    module, _, attribute = settings.client.partition(":")
    client_class = getattr(importlib.import_module(module), attribute)
    client: CrmClient = client_class.from_settings(name, settings, mapping, environ=environ)
    return client
