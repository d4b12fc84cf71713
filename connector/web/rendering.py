"""The dashboard's Jinja environment: autoescape on, control characters made visible, dates and numbers in words.

Every string from a CRM is hostile input (``<script>``, rich markup such as
``[/bold]``, ANSI escapes, NUL bytes, bidi overrides). Autoescaping covers
HTML; :func:`visible` runs on every ``{{ }}`` output before it is escaped and
turns control characters into ``\\x1b``-style text, so nothing invisible
reaches the page and a reader sees what the CRM sent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from connector.text import visible as visible_text


def visible(value: str) -> str:
    """``value`` with control, zero-width and bidi characters written out (``\\x1b``, ``\\u202e``); line breaks
    and tabs are harmless in a page and kept."""
    return visible_text(value, keep="\t\n")


def code_spans(text: str) -> Markup:
    """``text`` escaped, with its `backquoted` parts (commands, file names) as ``<code>``."""
    parts = visible(text).split("`")
    return Markup("").join(
        Markup("<code>{}</code>").format(part) if index % 2 else Markup.escape(part) for index, part in enumerate(parts)
    )


def _finalize(value: Any) -> Any:
    if value is None:
        return "–"
    if isinstance(value, Markup):
        return value
    if isinstance(value, str):
        return visible(value)
    return value


def when(value: datetime | None) -> str:
    """``2026-11-20 09:00:00 UTC``."""
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "–"


def iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""


def ago(value: datetime | None, now: datetime) -> str:
    """``3 min ago``, ``in 2 h`` (coarse: the exact time sits next to it)."""
    if value is None:
        return "never"
    seconds = (now - value).total_seconds()
    span = abs(seconds)
    if span < 60:
        text = f"{int(span)} s"
    elif span < 3600:
        text = f"{int(span // 60)} min"
    elif span < 2 * 86_400:
        text = f"{span / 3600:.1f} h".replace(".0 h", " h")
    else:
        text = f"{int(span // 86_400)} d"
    return f"{text} ago" if seconds >= 0 else f"in {text}"


def duration(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return "–"
    seconds = (end - start).total_seconds()
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def days(value: float | None) -> str:
    """Days with one decimal; under a day, hours (``0.0 d`` would hide a real, short time)."""
    if value is None:
        return "–"
    return f"{value:.1f} d" if value >= 1 else f"{value * 24:.1f} h"


def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("connector.web", "templates"),
        autoescape=True,
        finalize=_finalize,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        when=when,
        iso=iso,
        ago=ago,
        duration=duration,
        percent=percent,
        days=days,
        visible=visible,
        code_spans=code_spans,
    )
    return env
