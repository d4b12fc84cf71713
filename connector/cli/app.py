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
from collections.abc import Callable
from enum import StrEnum
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from connector.cli import alerts, check, inspect, jobs, people, sandbox, setup, web, worker
from connector.cli.exits import report_failure
from connector.cli.logs import LogFormat
from connector.cli.services import Services

GLOBAL_FLAGS = frozenset({"--debug", "--verbose", "-v", "-vv", "-vvv"})
GLOBAL_VALUED = frozenset({"--config", "--log-level", "--log-format"})


def hoist_global_options(args: list[str], own: Callable[[str], set[str]]) -> list[str]:
    """``args`` with the global options given after the command moved before it.

    ``own(command)`` names the options the command defines itself (``status
    --verbose`` is status's own): those stay where they are. Nothing after
    ``--`` moves.
    """
    head: list[str] = []
    index = 0
    while index < len(args) and args[index].startswith("-") and args[index] != "--":
        name = args[index].split("=", 1)[0]
        head.append(args[index])
        if name in GLOBAL_VALUED and "=" not in args[index] and index + 1 < len(args):
            index += 1
            head.append(args[index])
        index += 1
    if index >= len(args) or args[index] == "--":
        return args
    command, rest = args[index], args[index + 1 :]
    mine = own(command)
    moved: list[str] = []
    kept: list[str] = []
    index = 0
    while index < len(rest):
        item = rest[index]
        if item == "--":
            kept.extend(rest[index:])
            break
        name = item.split("=", 1)[0]
        if name in mine or name not in GLOBAL_FLAGS | GLOBAL_VALUED:
            kept.append(item)
        else:
            moved.append(item)
            if name in GLOBAL_VALUED and "=" not in item and index + 1 < len(rest):
                index += 1
                moved.append(rest[index])
        index += 1
    return [*head, *moved, command, *kept]


class Group(TyperGroup):
    """The app's group: global options are accepted after the command too (``crmsync run daily --config x``)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        def own(name: str) -> set[str]:
            command = self.commands.get(name)
            if command is None:
                return set()
            return {
                opt
                for param in command.params
                for opt in (*getattr(param, "opts", ()), *getattr(param, "secondary_opts", ()))
            }

        return super().parse_args(ctx, hoist_global_options(list(args), own))


app = typer.Typer(
    name="crmsync",
    cls=Group,
    help="Keep every contact's lifecycle stage right inside HubSpot and Salesforce.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
    rich_markup_mode=None,
)


class LogLevel(StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


def _version() -> str:
    try:
        return version("crmsync")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree without install
        return "unknown"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"crmsync {_version()}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    config: Annotated[
        Path,
        typer.Option(
            "--config", envvar="CRMSYNC_CONFIG", metavar="FILE", help="Configuration file.", show_default=True
        ),
    ] = Path("config.toml"),
    debug: Annotated[bool, typer.Option("--debug", help="Show the traceback of an error.")] = False,
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="More log lines (-vv: debug).", show_default=False)
    ] = 0,
    log_level: Annotated[
        LogLevel | None,
        typer.Option(
            "--log-level",
            metavar="LEVEL",
            case_sensitive=False,
            help="Log threshold: DEBUG, INFO, WARNING or ERROR (wins over -v).",
        ),
    ] = None,
    log_format: Annotated[
        LogFormat,
        typer.Option("--log-format", metavar="FORMAT", help="Log lines as text or as JSON objects (for log shippers)."),
    ] = LogFormat.TEXT,
    show_version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """crmsync: one shared rules file, every CRM's lifecycle stage.

    The global options (--config, --debug, -v, --log-level, --log-format) are
    also accepted after the command: `crmsync run daily --config prod.toml`.
    """
    given = ctx.obj if isinstance(ctx.obj, Services) else Services()
    ctx.obj = dataclasses.replace(
        given, config_path=config, debug=debug, verbose=verbose,
        log_level=log_level.value if log_level else None, log_format=log_format.value,
    )  # fmt: skip


class Command(TyperCommand):
    """A command whose escaping errors go through the table in ``connector.cli.exits``.

    Its help names each option's value (``--job JOB``), never a Python type.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            opts = getattr(param, "opts", None)
            valued = opts and not getattr(param, "is_flag", False) and not getattr(param, "count", False)
            if valued and param.metavar is None and param.name:
                param.metavar = param.name.upper()
            if getattr(param, "param_type_name", "") == "argument":
                # "JOB  Job name", not "JOB <str>"; and "crmsync run JOB", not "{JOB}"
                param.display_type_rich = lambda ctx: None  # type: ignore[attr-defined]
                name = param.metavar or (param.name or "").upper()
                shown = name if param.required or name.startswith("[") else f"[{name}]"
                param._usage_display_name = lambda shown=shown: shown  # type: ignore[attr-defined]

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
        ("runs", inspect.runs),
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
    alerts_app = typer.Typer(name="alerts", help="Alerts: check where they go.", no_args_is_help=True,
                             rich_markup_mode=None)  # fmt: skip
    alerts_app.command("test", cls=Command)(alerts.test)
    app.add_typer(alerts_app)
    people_app = typer.Typer(name="people", help="People matched across CRMs by unifying jobs.", no_args_is_help=True,
                             rich_markup_mode=None)  # fmt: skip
    for name, function in (("list", people.list_people), ("show", people.show), ("link", people.link),
                           ("unlink", people.unlink), ("conflicts", people.conflicts)):  # fmt: skip
        people_app.command(name, cls=Command)(function)
    app.add_typer(people_app)


_register()


def run() -> None:
    """The ``crmsync`` console script."""
    app()
