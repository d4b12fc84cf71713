"""The command line's frame: lazy imports, one error table for every command, Services instead of globals."""

from __future__ import annotations

import errno
import importlib
import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.exc import DatabaseError, OperationalError
from typer.main import get_command
from typer.testing import CliRunner

from connector.cli import app
from connector.cli.app import Command
from connector.cli.exits import FAILURES, CommandFailed, ExitCode, StoreFailure, failure_for
from connector.cli.services import Services
from connector.errors import AuthError, ConfigError, CrmsyncError, QuotaExhausted, TransientError
from connector.store import LeaseHeld, LeaseLost

ROOT = Path(__file__).resolve().parents[2]

NOT_AT_START_UP = ("hubspot", "simple_salesforce", "urllib3", "requests", "uvicorn", "starlette", "faker", "lark",
                   "trustme")  # fmt: skip


def imported_modules(*args: str, env: dict[str, str] | None = None) -> set[str]:
    """Every module a ``python -X importtime -m connector ARGS`` process imports."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "connector", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        check=True,
    )
    return {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}


def test_help_imports_no_vendor_sdk_no_http_stack_and_no_sandbox() -> None:
    modules = imported_modules("--help")

    top_level = {name.split(".")[0] for name in modules}
    assert not top_level & set(NOT_AT_START_UP), sorted(top_level & set(NOT_AT_START_UP))
    assert not {name for name in modules if name.startswith(("connector.sandbox", "connector.hubspot",
                                                              "connector.salesforce"))}  # fmt: skip
    assert "connector.cli.app" in modules, "the measurement saw the command line load"


def test_every_command_runs_through_the_error_table() -> None:
    group = get_command(app)
    commands = group.commands  # type: ignore[attr-defined]

    assert set(commands) >= {"validate", "classify", "run", "scheduler", "status", "runs", "history", "explain",
                             "dead-letters", "report", "setup", "sandbox", "demo", "alerts"}  # fmt: skip
    leaves = [command for command in commands.values() if not hasattr(command, "commands")]
    leaves += [sub for command in commands.values() for sub in getattr(command, "commands", {}).values()]
    assert all(isinstance(command, Command) for command in leaves)


def test_python_dash_m_connector_is_the_crmsync_command() -> None:
    done = subprocess.run([sys.executable, "-m", "connector", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0
    assert "classify" in done.stdout and "--debug" in done.stdout


def test_the_table_names_only_classes_that_exist() -> None:
    for row in FAILURES:
        if isinstance(row.error, str):
            module, _, name = row.error.rpartition(".")
            assert isinstance(getattr(importlib.import_module(module), name), type), row.error


def _sqlite_error(message: str, kind: type = OperationalError) -> Exception:
    return kind("INSERT INTO x VALUES (?)", ("secret record",), sqlite3.OperationalError(message))


@pytest.mark.parametrize(
    ("error", "code", "words"),
    [
        (CommandFailed("--as-of 'x' is not an ISO-8601 date or instant"), ExitCode.CONFIG, "--as-of"),
        (CommandFailed("no stored contact 'x'", ExitCode.FAILED), ExitCode.FAILED, "no stored contact"),
        (LeaseHeld("j", "other-host:1", datetime(2026, 12, 1, tzinfo=UTC)), ExitCode.LEASE_HELD, "other-host:1"),
        (AuthError("hubspot: 401"), ExitCode.AUTH, "refused the credentials"),
        (ConfigError("config.toml: connections.x: unknown key"), ExitCode.CONFIG, "connections.x"),
        (QuotaExhausted("daily limit"), ExitCode.QUOTA, "quota"),
        (StoreFailure("/data/crmsync.db", "file is not a database"), ExitCode.STORE, "/data/crmsync.db"),
        (LeaseLost("lease taken over"), ExitCode.FAILED, "resumes next run"),
        (TransientError("hubspot: 503 on /crm/v3/objects/contacts"), ExitCode.FAILED, "503"),
        (CrmsyncError("something of ours"), ExitCode.FAILED, "something of ours"),
        (_sqlite_error("database is locked"), ExitCode.STORE, "database is locked"),
        (_sqlite_error("file is not a database", DatabaseError), ExitCode.STORE, "file is not a database"),
        (OSError(errno.ENOSPC, "No space left on device", "/data/out.html"), ExitCode.STORE, "disk full"),
        (PermissionError(errno.EACCES, "Permission denied", "/data/x"), ExitCode.FAILED, "/data/x: Permission denied"),
        (KeyError("boom"), ExitCode.FAILED, "unexpected error: KeyError"),
        (KeyboardInterrupt(), ExitCode.INTERRUPTED, "interrupted"),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else None,
)
def test_each_error_type_has_one_exit_code_and_one_line(error: BaseException, code: ExitCode, words: str) -> None:
    failure = failure_for(error)

    assert failure.code == code
    assert words in failure.message
    assert "secret record" not in failure.message, "SQL parameters never reach the message"


def _explode(_path: Path) -> object:
    raise KeyError("a bug")


def test_an_unexpected_error_is_one_line_and_debug_shows_the_traceback(tmp_path: Path) -> None:
    services = Services(config_loader=_explode)  # type: ignore[arg-type]

    plain = CliRunner().invoke(app, ["--config", str(tmp_path / "c.toml"), "status"], obj=services)
    debug = CliRunner().invoke(app, ["--config", str(tmp_path / "c.toml"), "--debug", "status"], obj=services)

    assert plain.exit_code == debug.exit_code == ExitCode.FAILED
    assert plain.stderr.strip().splitlines() == [
        "error: unexpected error: KeyError: 'a bug' (--debug shows the traceback)"
    ]
    assert "Traceback" not in plain.output
    assert "Traceback (most recent call last)" in debug.stderr and "_explode" in debug.stderr


def test_json_commands_print_a_json_error_object(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["--config", str(tmp_path / "missing.toml"), "status", "--json"])

    assert result.exit_code == ExitCode.CONFIG
    error = json.loads(result.stdout)
    assert error["status"] == "failed" and error["exit_code"] == 2 and error["reason"] == "config"
    assert "missing.toml" in error["error"]
    assert result.stderr.startswith("error: ")
