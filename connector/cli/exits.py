"""Exit codes, and the one table from an error to its exit code and one-line message.

Every command runs through :class:`connector.cli.app.Command`, which looks
an escaping error up here (first matching row wins, so subclasses come
before their bases), prints ``error: <message>`` on stderr (under
``--json`` also a JSON error object on stdout) and exits with the code. No
traceback reaches a user; ``--debug`` prints it before the line.

Rows name third-party and store errors by their dotted class name so that
this module imports neither SQLAlchemy nor a vendor SDK (``crmsync --help``
stays fast); a test checks that every name still resolves.
"""

from __future__ import annotations

import errno
import json
import re
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from connector.cli.terminal import err, line, safe_lines
from connector.errors import AuthError, ConfigError, CrmsyncError, QuotaExhausted, StoreError, TransientError


class ExitCode(IntEnum):
    """What the exit status of ``crmsync`` tells a script or an admin."""

    OK = 0
    """Done (a run completed, even with rejected records, which are reported)."""
    FAILED = 1
    """Could not complete but may next time (retries spent; some input lines bad; an unexpected error)."""
    CONFIG = 2
    """A person must fix a file, a setting or an option."""
    AUTH = 3
    """The CRM refused the credentials."""
    QUOTA = 4
    """The vendor's API quota is used up: wait for it to reset."""
    LEASE_HELD = 5
    """Another process is running this job."""
    STORE = 6
    """The state store cannot be read or written (not a database, damaged, unreachable, disk full)."""
    REJECTED = 7
    """The run completed, but the CRM rejected more than ``run --fail-on-rejected`` allows."""
    INTERRUPTED = 130
    """Ctrl-C."""


class CommandFailed(CrmsyncError):
    """A command's own refusal, with the exit code it calls for."""

    def __init__(self, message: str, code: ExitCode = ExitCode.CONFIG) -> None:
        super().__init__(message)
        self.code = code


class StoreFailure(StoreError):
    """The state store at ``location`` failed; ``detail`` is the database's first line, never a password."""

    def __init__(self, location: str, detail: str) -> None:
        super().__init__(f"state store {location}: {detail}")
        self.location = location
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Failure:
    code: ExitCode
    message: str


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _os_error(error: BaseException) -> str:
    assert isinstance(error, OSError)
    where = f"{error.filename}: " if error.filename else ""
    return f"{where}{error.strerror or _first_line(error)}"


def _database(error: BaseException) -> str:
    original = getattr(error, "orig", None)
    return f"state store: {_first_line(original if original is not None else error)}"


def _settings(error: BaseException) -> str:
    """pydantic-settings names the field, not the variable: say which CRMSYNC_ variable to fix and how."""
    found = re.search(r'field "(\w+)"', str(error))
    if not found:
        return f"settings: {_first_line(error)}"
    variable = f"CRMSYNC_{found.group(1).upper()}"
    return (
        f"environment variable {variable} is not a valid value for [{found.group(1)}]: a table is given as JSON "
        f'(e.g. {variable}=\'{{"url": "sqlite:///crmsync.db"}}\'), or set one key with {variable}__KEY'
    )


@dataclass(frozen=True, slots=True)
class Row:
    error: type[BaseException] | str
    """The error class, or its dotted name for classes this module must not import."""
    code: ExitCode | None
    """None: the error carries its own code (``CommandFailed``)."""
    message: Callable[[BaseException], str]
    when: Callable[[BaseException], bool] = lambda _error: True


FAILURES: tuple[Row, ...] = (
    Row(CommandFailed, None, str),
    Row(KeyboardInterrupt, ExitCode.INTERRUPTED, lambda _e: "interrupted"),
    Row("connector.store.leases.LeaseHeld", ExitCode.LEASE_HELD, str),
    Row(AuthError, ExitCode.AUTH, lambda e: f"the CRM refused the credentials: {e}"),
    Row(ConfigError, ExitCode.CONFIG, str),
    Row(QuotaExhausted, ExitCode.QUOTA, lambda e: f"API quota used up, run stopped (it resumes next run): {e}"),
    Row(StoreError, ExitCode.STORE, str),
    Row("connector.store.leases.LeaseLost", ExitCode.FAILED, lambda e: f"run stopped (it resumes next run): {e}"),
    Row(
        TransientError,
        ExitCode.FAILED,
        lambda e: f"run failed (it resumes next run): {type(e).__name__}: {e}",
    ),
    Row(CrmsyncError, ExitCode.FAILED, lambda e: f"{type(e).__name__}: {e}"),
    Row("sqlalchemy.exc.SQLAlchemyError", ExitCode.STORE, _database),
    Row("pydantic_settings.exceptions.SettingsError", ExitCode.CONFIG, lambda e: _settings(e)),
    Row(
        OSError,
        ExitCode.STORE,
        lambda e: f"disk full: {_os_error(e)}",
        lambda e: getattr(e, "errno", None) == errno.ENOSPC,
    ),
    Row(OSError, ExitCode.FAILED, _os_error),
    Row(
        Exception,
        ExitCode.FAILED,
        lambda e: f"unexpected error: {type(e).__name__}: {_first_line(e)} (--debug shows the traceback)",
    ),
)


def _names(error: BaseException) -> set[str]:
    return {f"{cls.__module__}.{cls.__qualname__}" for cls in type(error).__mro__}


def _matches(row: Row, error: BaseException, names: set[str]) -> bool:
    if isinstance(row.error, str):
        return row.error in names
    return isinstance(error, row.error)


def failure_for(error: BaseException) -> Failure:
    """The exit code and one-line message for ``error`` (the first row of ``FAILURES`` that matches)."""
    names = _names(error)
    for row in FAILURES:
        if _matches(row, error, names) and row.when(error):
            code = row.code if row.code is not None else getattr(error, "code", ExitCode.FAILED)
            return Failure(ExitCode(code), row.message(error))
    return Failure(ExitCode.FAILED, f"unexpected error: {type(error).__name__}")  # pragma: no cover - Exception row


def report_failure(error: BaseException, *, debug: bool, as_json: bool, extra: dict[str, Any] | None = None) -> Failure:
    """Print ``error`` as one line on stderr (and a JSON object on stdout under ``--json``); return its failure."""
    failure = failure_for(error)
    if debug:
        err.print(safe_lines("".join(traceback.format_exception(error)).rstrip()))
    if as_json:
        payload = {**(extra or {}), "status": "failed", "exit_code": int(failure.code),
                   "reason": failure.code.name.lower(), "error": failure.message}  # fmt: skip
        sys.stdout.write(json.dumps(payload) + "\n")  # ASCII: any text, even a lone surrogate, is written
        sys.stdout.flush()
    said = getattr(error, "vendor_message", None)
    message = f"{failure.message} (the CRM said: {said})" if said else failure.message
    err.print(line(("error:", "red"), " ", safe_lines(message)))
    return failure
