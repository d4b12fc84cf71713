"""CRM text made visible: every character that could hide, reorder or control what a person sees, written out.

A CRM's strings are untrusted input. Before they reach a terminal or a page,
control characters (ANSI and OSC escapes start with one), lone surrogates,
line and paragraph separators, bidi overrides (trojan-source spoofing) and
zero-width characters are replaced by their escapes (``\\x1b``, ``\\u202e``).
The terminal (``connector.cli.terminal``) and the dashboard
(``connector.web.rendering``) both use this one function.
"""

from __future__ import annotations

import unicodedata

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
"""Characters that reorder text."""
_ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\ufeff")
"""Characters that take no room: they hide text or split look-alike strings."""
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})


def _escape(char: str) -> str:
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def visible(value: object, *, keep: str = "") -> str:
    """``value`` as a string with every hiding or controlling character escaped; characters in ``keep``
    (e.g. ``"\\n\\t"`` for a page, where line breaks are harmless) are left as they are."""
    text = value if isinstance(value, str) else str(value)
    if text.isprintable():  # the common case: isprintable is False for every character escaped here
        return text
    return "".join(
        _escape(char)
        if char not in keep
        and (char in _BIDI or char in _ZERO_WIDTH or unicodedata.category(char) in _HIDDEN_CATEGORIES)
        else char
        for char in text
    )
