"""The one validated settings object: ``config.toml`` plus the environment.

Secrets are never in the file: a connection names the environment variable
that holds each one, and :meth:`Connection.secret` reads it as a
``SecretStr`` when a client is built. Every path in the file is relative to
the file's own folder.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, SettingsError

from connector.alerts.settings import AlertSettings
from connector.errors import ConfigError, Problem
from connector.http.settings import ConnectionSettings, RetrySettings
from connector.hubspot.settings import HubSpotConnection
from connector.loading import problems_from, raise_problems, read_toml
from connector.mapping import CrmMapping, load_mapping, vendor_names
from connector.salesforce.settings import SalesforceConnection

_STRICT = ConfigDict(frozen=True, extra="forbid")

DEFAULT_CONFIG = Path("config.toml")


def vendor_settings() -> tuple[type[ConnectionSettings], ...]:
    """Every vendor's settings model: ``SETTINGS`` of each ``connector/<vendor>/settings.py``.

    A new CRM is a new folder of the same shape (settings, transport, errors,
    payloads, normalise, cursor, schema, client) plus a mapping file; nothing
    here names a vendor.
    """
    found: list[type[ConnectionSettings]] = []
    for name in vendor_names():
        module = importlib.import_module(f"connector.{name}.settings")
        settings = getattr(module, "SETTINGS", None)
        if isinstance(settings, type) and issubclass(settings, ConnectionSettings):
            found.append(settings)
    return tuple(found)


VENDOR_SETTINGS = vendor_settings()
VENDOR_TYPES: frozenset[str] = frozenset(vendor_names())

if TYPE_CHECKING:
    Connection = ConnectionSettings
else:
    Connection = Annotated[Union[VENDOR_SETTINGS], Field(discriminator="type")]  # noqa: UP007
"""Every vendor's settings model, told apart by ``type``; each lives in its vendor's ``settings.py``."""

__all__ = [
    "Config",
    "Connection",
    "ConnectionSettings",
    "HubSpotConnection",
    "PathSettings",
    "RetrySettings",
    "SalesforceConnection",
    "StoreSettings",
    "TeamSettings",
    "config_problems",
    "load_config",
]


class StoreSettings(BaseModel):
    model_config = _STRICT

    url: str = "sqlite:///crmsync.db"
    """SQLAlchemy URL: SQLite (one file, one scheduler) or postgresql+psycopg://... (teams, several workers)."""


class PathSettings(BaseModel):
    model_config = _STRICT

    mappings: Path = Path("mappings")
    jobs: Path = Path("jobs")
    rules: Path = Path("mappings/lifecycle.toml")


class TeamSettings(BaseModel):
    model_config = _STRICT

    enabled: bool = False
    """Team mode (PostgreSQL store): jobs run on ``crmsync worker`` processes; ``crmsync run`` queues the run."""
    tenants: Path | None = None
    """Tenants file (a connection template, a job template, one entry per tenant); default ``tenants.toml`` if present."""


class Config(BaseSettings):
    """Everything crmsync needs to run, from ``config.toml`` and ``CRMSYNC_*`` variables.

    An environment variable overrides the file: ``CRMSYNC_STORE__URL``
    sets ``[store] url``.
    """

    model_config = SettingsConfigDict(env_prefix="CRMSYNC_", env_nested_delimiter="__", extra="forbid", frozen=True)

    store: StoreSettings = StoreSettings()
    paths: PathSettings = PathSettings()
    team: TeamSettings = TeamSettings()
    connections: dict[str, Connection] = Field(default_factory=dict)
    alerts: AlertSettings = AlertSettings()
    """Where alerts go (webhooks, e-mail) and when they are sent; no target, no alert."""
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

    def connection_mapping(self, name: str) -> CrmMapping:
        """The mapping of connection ``name``, checked against the connection's CRM type."""
        if name not in self.connections:
            known = ", ".join(sorted(self.connections)) or "none"
            raise ConfigError(f"no connection {name!r} in the config (known: {known})")
        mapping = load_mapping(self.mapping_path(name))
        settings = self.connections[name]
        if mapping.crm != settings.type:
            raise ConfigError(f"connection {name!r} is {settings.type} but {mapping.source} maps {mapping.crm}")
        return mapping

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
        config = Config(**data)
    except SettingsError as error:
        raise_problems(str(path), [_environment_problem(error)])
        raise  # pragma: no cover
    except ValidationError as error:
        problems = problems_from(error, str(path), union_tags=VENDOR_TYPES)
        raise_problems(str(path), problems)
        raise  # pragma: no cover
    return config


def _environment_problem(error: SettingsError) -> Problem:
    """A ``CRMSYNC_*`` variable pydantic-settings could not read (e.g. ``CRMSYNC_STORE=notjson``)."""
    text = str(error)
    field = text.split('field "', 1)[1].split('"', 1)[0] if 'field "' in text else ""
    variable = f"CRMSYNC_{field.upper()}" if field else "CRMSYNC_*"
    reason = type(error.__cause__).__name__ if error.__cause__ else "unreadable value"
    hint = "it must hold JSON (or set the nested keys, e.g. CRMSYNC_STORE__URL)"
    if reason == "JSONDecodeError":
        reason = "not valid JSON"
    return Problem("environment", variable, f"{reason}: {hint}")


def file_problems(config: Config, file: str) -> list[Problem]:
    """Files the config names that do not exist (a missing ``ca_bundle`` would fail the first call).

    Checked by ``validate`` (:func:`config_problems`) and when a client is
    opened, not on every load: commands that read only the store work without them.
    """
    problems: list[Problem] = []
    for name, settings in config.connections.items():
        bundle = getattr(settings, "ca_bundle", None)
        if bundle is not None and not isinstance(bundle, str):
            continue
        if bundle and not config.resolve(Path(bundle)).is_file():
            problems.append(Problem(file, f"connections.{name}.ca_bundle", f"no such file: {bundle}"))
        key_file = getattr(settings, "private_key_file", None)
        if isinstance(key_file, str) and key_file and not config.resolve(Path(key_file)).is_file():
            problems.append(Problem(file, f"connections.{name}.private_key_file", f"no such file: {key_file}"))
    return problems


def config_problems(path: Path) -> tuple[Config | None, list[Problem]]:
    """The config and every problem ``validate`` reports about it (files it names included)."""
    try:
        config = load_config(path)
    except ConfigError as error:
        return None, error.problems or [Problem(str(path), "", str(error))]
    return config, file_problems(config, str(path))
