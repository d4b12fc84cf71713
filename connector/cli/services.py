"""What the commands need from the outside world, made once per invocation and handed over in the Typer context.

The app's callback builds a :class:`Services` from ``--config`` and
``--debug``; a test (or the demo) passes its own as ``obj`` to
``CliRunner.invoke`` / the callback keeps its fakes (client factory, clock,
store opener) and only sets the path and the flag. Nothing here imports a
CRM client, the store or the sandbox until a command asks for it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from connector.cli.exits import StoreFailure
from connector.errors import ConfigError

if TYPE_CHECKING:
    from connector.config import Config
    from connector.crm import CrmClient
    from connector.store import Store

Clock = Callable[[], datetime]
ClientFactory = Callable[["Config", str], "CrmClient"]
ConfigLoader = Callable[[Path], "Config"]
StoreOpener = Callable[[str], "Store"]


def utc_now() -> datetime:
    return datetime.now(UTC)


def open_client(config: Config, name: str) -> CrmClient:
    """The real clients; the vendor modules (and their SDKs) are imported here, on first use."""
    from connector.connections import open_client as open_vendor_client

    return open_vendor_client(config, name)


def load_config(path: Path) -> Config:
    from connector.config import load_config as load

    return load(path)


def open_store(url: str) -> Store:
    from connector.store import open_store as open_

    return open_(url)


def store_location(url: str) -> str:
    """Where the store is, for messages: a SQLite file's path, or the URL without its password."""
    prefix = "sqlite:///"
    if url.startswith(prefix):
        return url[len(prefix) :] or ":memory:"
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL at all: open_store says so, there is no location to add
        return ""


@dataclass(frozen=True)
class Services:
    """The config file and its loader, the store opener, the CRM client factory and the clock."""

    config_path: Path = Path("config.toml")
    debug: bool = False
    verbose: int = 0
    """``-v`` given this many times: each lowers the log threshold one level."""
    log_level: str | None = None
    """``--log-level``: DEBUG, INFO, WARNING, ERROR (wins over ``-v``)."""
    log_format: str = "text"
    """``--log-format``: ``text`` or ``json`` (one object per line, for log shippers)."""
    config_loader: ConfigLoader = load_config
    store_opener: StoreOpener = open_store
    clients: ClientFactory = open_client
    clock: Clock = utc_now

    def logging(self, default: int | None = None) -> None:
        """Send the ``connector`` loggers to standard error at the level and in the format asked for."""
        import logging

        from connector.cli.logs import LogFormat, configure_logging, level_of

        base = logging.INFO if default is None else default
        configure_logging(level_of(self.verbose, self.log_level, base), LogFormat(self.log_format))

    def config(self) -> Config:
        return self.config_loader(self.config_path)

    @contextmanager
    def store(self, config: Config) -> Iterator[Store]:
        """The state store of ``config``, closed on exit.

        A database error while opening or using it becomes a ``StoreFailure``
        naming the store (the file path, or the URL without its password);
        a ``ConfigError`` from opening it gets the location added.
        """
        from sqlalchemy.exc import SQLAlchemyError

        url = config.store_url
        location = store_location(url)
        try:
            store = self.store_opener(url)
        except ConfigError as error:
            message = str(error)
            if location and location not in message:
                message = f"{message} (store: {location})"
            raise ConfigError(message, error.problems) from None
        except SQLAlchemyError as error:
            raise StoreFailure(location, _database_detail(error, store_url=url)) from error
        try:
            yield store
        except SQLAlchemyError as error:
            raise StoreFailure(location, _database_detail(error, store_url=url)) from error
        finally:
            store.close()


def _database_detail(error: BaseException, *, store_url: str) -> str:
    """The database's own first line (never the SQL or its parameters), with a hint for SQLite files."""
    original = getattr(error, "orig", None) or error
    text = str(original).strip()
    detail = text.splitlines()[0] if text else type(original).__name__
    try:
        from sqlalchemy.engine import make_url

        password = make_url(store_url).password
    except Exception:
        password = None
    if password:
        detail = detail.replace(str(password), "***")
    lowered = detail.lower()
    if "not a database" in lowered or "malformed" in lowered:
        detail += " (the file is damaged or not a crmsync store: restore a backup, or move it away to start afresh)"
    elif "disk is full" in lowered or "disk full" in lowered:
        detail += " (free some space and run again: nothing committed is lost)"
    return detail


def services(ctx: typer.Context) -> Services:
    """The ``Services`` of this invocation (set by the app callback)."""
    root = ctx.find_root()
    obj = root.obj
    if not isinstance(obj, Services):  # pragma: no cover - the callback always sets it
        obj = Services()
        root.obj = obj
    return obj
