"""Logging for the commands: text or JSON lines on standard error, through rich's console.

Records go through ``terminal.err`` (a rich ``Console``): while a progress
display is live, rich prints them above it instead of tearing its bars.
``text`` is ``time level logger message key=value ...``; ``json`` is one
object per line for log shippers (``time``, ``level``, ``logger``,
``message`` and the event's fields). CRM text in a message or a field never
brings a control character to the terminal.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from enum import StrEnum

from rich.text import Text

from connector.cli.terminal import err, visible


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


def event_fields(record: logging.LogRecord) -> dict[str, object]:
    """The structured fields of a log event (what ``extra=`` gave)."""
    return {k: v for k, v in vars(record).items() if k not in _STANDARD}


class EventFormatter(logging.Formatter):
    """``time level logger message key=value ...``: the structured fields of a log event on one line."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        # a message built from CRM text (an e-mail, a vendor reason) brings no control character to the terminal
        record.message = visible(record.message)
        return super().formatMessage(record)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extra = event_fields(record)
        if extra:
            # JSON values: a CRM text in a field cannot bring a control character to the terminal
            text += " " + " ".join(f"{k}={json.dumps(v, default=str)}" for k, v in extra.items())
        return text


class JsonFormatter(logging.Formatter):
    """One JSON object per event: time (UTC, ISO-8601), level, logger, message, then the event's fields."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in event_fields(record).items():
            data.setdefault(key, value)
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        # ensure_ascii: every control or bidi character goes out as a \u escape
        return json.dumps(data, default=str)


class ConsoleHandler(logging.Handler):
    """Writes each formatted record through rich's console (above a live progress display)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
            err.print(Text(text), soft_wrap=True, markup=False, highlight=False)
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)


def level_of(verbose: int, log_level: str | None, default: int = logging.INFO) -> int:
    """``--log-level`` wins; else each ``-v`` lowers the threshold one step from ``default``."""
    if log_level:
        return logging.getLevelNamesMapping()[log_level.upper()]
    return max(logging.DEBUG, default - 10 * verbose)


def configure_logging(level: int = logging.INFO, fmt: LogFormat = LogFormat.TEXT) -> None:
    handler = ConsoleHandler()
    handler.setFormatter(
        JsonFormatter() if fmt is LogFormat.JSON else EventFormatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    root = logging.getLogger("connector")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
