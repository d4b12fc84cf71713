"""Error text fit to store and print: one line, no secret, no record content.

A failed run's error is kept in the ``runs`` table, shown by ``status`` and
logged. It must say what went wrong without carrying what a CRM sent: no SQL
statement or parameters, no response body, no field value. So the text is
built from the error's type and a message known to be safe for that type.
"""

from __future__ import annotations

import os
import re
import traceback

from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, StatementError

from connector.config import Config
from connector.errors import ConfigError, CrmsyncError
from connector.store import LeaseHeld, LeaseLost

MAX_LENGTH = 2000
_QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'")


def secret_values(config: Config) -> list[str]:
    """Values of the environment variables that hold this config's secrets (to scrub from error text)."""
    found = []
    for settings in config.connections.values():
        for name, value in settings:
            if name.endswith("_env") and isinstance(value, str):
                secret = os.environ.get(value)
                if secret:
                    found.append(secret)
    return found


def scrub(text: str, secrets: list[str]) -> str:
    """``text`` with every secret value replaced by ``***``, whatever its length (longest first)."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        if secret:
            text = text.replace(secret, "***")
    return text


def one_line(text: str) -> str:
    return "; ".join(line.strip() for line in text.strip().splitlines() if line.strip())


def safe_message(error: BaseException) -> str:
    """``Type: message`` on one line, the message being what this type can say without record content.

    - our errors (:class:`CrmsyncError`) carry messages written to name the
      file and key, or the endpoint, status and record id, never a body;
    - database errors keep the driver's first line with quoted literals
      blanked (no statement, no parameters, no ``DETAIL`` with key values);
    - validation errors keep where, not what;
    - anything else keeps only where it was raised (module and line).
    """
    name = type(error).__name__
    if isinstance(error, ConfigError) and error.problems:
        return f"{name}: " + "; ".join(one_line(str(problem)) for problem in error.problems)
    if isinstance(error, CrmsyncError | LeaseHeld | LeaseLost):
        return f"{name}: {one_line(str(error))}"
    if isinstance(error, DBAPIError) and error.orig is not None:
        orig = error.orig
        lines = str(orig).strip().splitlines()
        first = _QUOTED.sub('"…"', lines[0]) if lines else ""
        code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
        where = f" (SQLSTATE {code})" if code else ""
        return f"{name}: {type(orig).__name__}{where}: {first}".rstrip(": ")
    if isinstance(error, StatementError) and error.orig is not None:
        return f"{name}: {safe_message(error.orig)}"
    if isinstance(error, OSError):
        what = error.strerror or "operating system error"
        return f"{name}: {what}" + (f": {error.filename}" if error.filename else "")
    if isinstance(error, ValidationError):
        places = sorted({".".join(str(part) for part in item["loc"]) for item in error.errors(include_input=False)})
        return f"{name}: {error.error_count()} validation error(s) at {', '.join(places)}"
    return f"{name} at {_raised_at(error)}"


def _raised_at(error: BaseException) -> str:
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return "an unknown place"
    frame = frames[-1]
    marker = f"{os.sep}connector{os.sep}"
    _head, found, tail = frame.filename.rpartition(marker)
    path = f"connector{os.sep}{tail}" if found else os.path.basename(frame.filename)
    return f"{path}:{frame.lineno} ({frame.name})"


def safe_error(error: BaseException, secrets: list[str]) -> str:
    """What to store and print for ``error``: :func:`safe_message`, scrubbed of ``secrets``, capped."""
    return scrub(safe_message(error), secrets)[:MAX_LENGTH]
