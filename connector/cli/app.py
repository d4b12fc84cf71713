"""The ``crmsync`` Typer app: global options, the error handling every command runs through, the command table.

This module imports the command modules and registers their functions;
they never import it back (no cycle). The command modules import only
Typer, rich and ``connector.cli`` helpers at the top: what a command
needs (the store, the clients, the sandbox) is imported inside it, so
``crmsync --help`` loads no CRM SDK, no database layer and no emulator.
"""

from __future__ import annotations

import dataclasses
import errno
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand

from connector.cli import check, inspect, jobs, sandbox, setup, web, worker
from connector.cli.exits import report_failure
from connector.cli.services import Services

app = typer.Typer(
    name="crmsync",
    help="Keep every contact's lifecycle stage right inside HubSpot and Salesforce.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)


@app.callback()
def main(
    ctx: typer.Context,
    config: Annotated[
        Path,
        typer.Option("--config", envvar="CRMSYNC_CONFIG", help="Configuration file.", show_default=True),
    ] = Path("config.toml"),
    debug: Annotated[bool, typer.Option("--debug", help="Show the traceback of an error.")] = False,
) -> None:
    """crmsync: one shared rules file, every CRM's lifecycle stage."""
    given = ctx.obj if isinstance(ctx.obj, Services) else Services()
    ctx.obj = dataclasses.replace(given, config_path=config, debug=debug)


class Command(TyperCommand):
    """A command whose escaping errors go through the table in ``connector.cli.exits``."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException, SystemExit):
            raise
        except BrokenPipeError:
            raise
        except OSError as error:
            if error.errno == errno.EPIPE:
                raise
            self._fail(ctx, error)
        except (Exception, KeyboardInterrupt) as error:
            self._fail(ctx, error)

    @staticmethod
    def _fail(ctx: Any, error: BaseException) -> None:
        obj = ctx.find_root().obj
        debug = obj.debug if isinstance(obj, Services) else False
        failure = report_failure(error, debug=debug, as_json=bool(ctx.params.get("as_json")))
        raise typer.Exit(int(failure.code)) from None


def _register() -> None:
    commands: list[tuple[str, Any]] = [
        ("validate", check.validate),
        ("classify", check.classify),
        ("run", jobs.run),
        ("scheduler", jobs.scheduler),
        ("status", inspect.status),
        ("history", inspect.history),
        ("explain", inspect.explain),
        ("dead-letters", inspect.dead_letters),
        ("report", inspect.report),
        ("setup", setup.setup),
        ("sandbox", sandbox.sandbox),
        ("demo", sandbox.demo),
        ("web", web.web),
        ("worker", worker.worker),
    ]
    for name, function in commands:
        app.command(name, cls=Command)(function)


_register()


def run() -> None:
    """The ``crmsync`` console script."""
    app()
