"""What reaches the terminal: two consoles, and ``safe`` for every text that came from a CRM or the store.

CRM text (e-mails, names, subjects, vendor reasons, rule text kept in the
store, record ids) is data, never markup: ``safe`` returns a rich ``Text``,
which rich prints without reading ``[bold]`` or ``[link=...]`` tags, emoji
codes or highlighting, and with every control character made visible
(``\\x1b`` is shown as the four characters ``\\x1b``), so no escape sequence
(colours, clear-screen, OSC 8 links, OSC 52 clipboard writes) nor a bidi
override gets to the terminal. Commands build their lines with ``line``
from literal styled parts and ``safe`` parts; a plain ``str`` is never
printed as markup.
"""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from connector.text import visible

out = Console(highlight=False, soft_wrap=True, emoji=False)
"""Standard output: results."""
err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)
"""Standard error: progress, notes, warnings and errors."""


def safe(value: object, style: str = "") -> Text:
    """CRM or store text, ready to print: never markup, controls visible."""
    return Text(visible(value if value is not None else ""), style=style)


def line(*parts: str | Text | tuple[str, str]) -> Text:
    """A line from parts: ``str`` and ``(str, style)`` are our own literal words (no markup read), ``Text`` as is.

    Anything from a CRM or the store goes in as ``safe(value)``.
    """
    text = Text()
    for part in parts:
        if isinstance(part, tuple):
            text.append(part[0], style=part[1])
        else:
            text.append(part)
    return text


def safe_lines(message: str) -> Text:
    """Several lines (a config file's problems, a traceback), each made safe, kept on their own lines."""
    return Text("\n").join(safe(part) for part in message.splitlines() or [""])


def write_json(value: object) -> None:
    """One JSON line on stdout; text stays readable (UTF-8) and a lone surrogate goes out as its JSON escape."""
    import json

    import typer

    stream = typer.get_binary_stream("stdout")
    stream.write(json.dumps(value, ensure_ascii=False).encode("utf-8", "backslashreplace") + b"\n")
    stream.flush()


def write_line(text: str) -> None:
    """One line on stdout as is (tabs kept: rich would expand them), controls made visible by the caller."""
    import typer

    stream = typer.get_binary_stream("stdout")
    stream.write(text.encode("utf-8", "backslashreplace") + b"\n")
    stream.flush()
