"""A SOQL subset, parsed with lark: what crmsync sends, plus the common shapes.

Supported: ``SELECT field, Parent.Field, ... FROM Object [WHERE ...]
[ORDER BY field [ASC|DESC] [NULLS FIRST|LAST], ...] [LIMIT n] [OFFSET n]``;
WHERE with ``AND``/``OR``/``NOT`` and parentheses, ``= != <> < <= > >=``,
``IN``/``NOT IN`` lists, ``LIKE``; values are strings, numbers, ``true``,
``false``, ``null``, dates and datetimes (``Z`` or an offset, optional
fraction of a second). Anything else is ``MALFORMED_QUERY``, as on a real
org. The parse tree becomes a small immutable query plan; evaluating it
against records is the org's job.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import LarkError, UnexpectedCharacters

_GRAMMAR = r"""
?start: query

query: _SELECT field_list _FROM NAME where? order? limit? offset?

field_list: path ("," path)*
path: NAME ("." NAME)*

where: _WHERE or_expr
?or_expr: and_expr (_OR and_expr)*        -> or_
?and_expr: not_expr (_AND not_expr)*      -> and_
?not_expr: _NOT not_expr                  -> not_
         | atom
?atom: "(" or_expr ")"
     | comparison

comparison: path OP value                       -> compare
          | path _IN "(" value ("," value)* ")"  -> in_
          | path _NOT _IN "(" value ("," value)* ")" -> not_in
          | path _LIKE value                    -> like

?value: STRING     -> string
      | DATETIME   -> datetime
      | DATE       -> date
      | NUMBER     -> number
      | _NULL      -> null
      | _TRUE      -> true
      | _FALSE     -> false

order: _ORDER _BY order_item ("," order_item)*
order_item: path DIRECTION? nulls?
nulls: _NULLS NULLS_WHERE
limit: _LIMIT INT
offset: _OFFSET INT

_SELECT.2: /select\b/i
_FROM.2: /from\b/i
_WHERE.2: /where\b/i
_AND.2: /and\b/i
_OR.2: /or\b/i
_NOT.2: /not\b/i
_IN.2: /in\b/i
_LIKE.2: /like\b/i
_ORDER.2: /order\b/i
_BY.2: /by\b/i
_LIMIT.2: /limit\b/i
_OFFSET.2: /offset\b/i
_NULLS.2: /nulls\b/i
_NULL.2: /null\b/i
_TRUE.2: /true\b/i
_FALSE.2: /false\b/i
DIRECTION.2: /(asc|desc)\b/i
NULLS_WHERE.2: /(first|last)\b/i

OP: "=" | "!=" | "<>" | "<=" | ">=" | "<" | ">"
DATETIME.3: /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:?\d{2})/
DATE.2: /\d{4}-\d{2}-\d{2}/
NUMBER: /-?\d+(\.\d+)?/
INT: /\d+/
STRING: /'(\\.|[^'\\])*'/
NAME: /[A-Za-z_][A-Za-z0-9_]*/

%import common.WS  // keywords carry priority 2 so they win over NAME where both fit
%ignore WS
"""


class SoqlError(ValueError):
    """The query is not valid SOQL (``MALFORMED_QUERY``) or uses what this org lacks (``INVALID_FIELD``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Path:
    parts: tuple[str, ...]

    def __str__(self) -> str:
        return ".".join(self.parts)


@dataclass(frozen=True, slots=True)
class Compare:
    path: Path
    op: str
    value: Any


@dataclass(frozen=True, slots=True)
class In:
    path: Path
    values: tuple[Any, ...]
    negated: bool


@dataclass(frozen=True, slots=True)
class Like:
    path: Path
    pattern: str


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Condition


Condition = Compare | In | Like | And | Or | Not


@dataclass(frozen=True, slots=True)
class OrderItem:
    path: Path
    descending: bool = False
    nulls_last: bool | None = None


@dataclass(frozen=True, slots=True)
class Query:
    fields: tuple[Path, ...]
    sobject: str
    where: Condition | None = None
    order: tuple[OrderItem, ...] = ()
    limit: int | None = None
    offset: int = 0


def format_datetime(value: datetime) -> str:
    """Salesforce's wire format, which also sorts as text: ``2026-11-02T09:30:00.000+0000``."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


_UNESCAPE = {
    "\\": "\\",
    "'": "'",
    '"': '"',
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "b": "\b",
    "f": "\f",
    "%": "\\%",
    "_": "\\_",
}


def _unquote(token: str) -> str:
    body = token[1:-1]
    out: list[str] = []
    index = 0
    while index < len(body):
        char = body[index]
        if char == "\\" and index + 1 < len(body):
            nxt = body[index + 1]
            if nxt not in _UNESCAPE:
                raise SoqlError("MALFORMED_QUERY", f"invalid escape sequence \\{nxt}")
            out.append(_UNESCAPE[nxt])
            index += 2
            continue
        out.append(char)
        index += 1
    return "".join(out)


@v_args(inline=True)
class _ToPlan(Transformer[Token, Query]):
    def query(self, fields: tuple[Path, ...], sobject: Token, *rest: Any) -> Query:
        parts: dict[str, Any] = {}
        for item in rest:
            parts[item[0]] = item[1]
        return Query(
            fields=fields,
            sobject=str(sobject),
            where=parts.get("where"),
            order=parts.get("order", ()),
            limit=parts.get("limit"),
            offset=parts.get("offset", 0),
        )

    def field_list(self, *paths: Path) -> tuple[Path, ...]:
        return paths

    def path(self, *names: Token) -> Path:
        return Path(tuple(str(name) for name in names))

    def where(self, condition: Condition) -> tuple[str, Condition]:
        return ("where", condition)

    def or_(self, *items: Condition) -> Condition:
        return items[0] if len(items) == 1 else Or(items)

    def and_(self, *items: Condition) -> Condition:
        return items[0] if len(items) == 1 else And(items)

    def not_(self, item: Condition) -> Condition:
        return Not(item)

    def compare(self, path: Path, op: Token, value: Any) -> Condition:
        return Compare(path, "!=" if str(op) == "<>" else str(op), value)

    def in_(self, path: Path, *values: Any) -> Condition:
        return In(path, values, negated=False)

    def not_in(self, path: Path, *values: Any) -> Condition:
        return In(path, values, negated=True)

    def like(self, path: Path, value: Any) -> Condition:
        if not isinstance(value, str):
            raise SoqlError("MALFORMED_QUERY", "LIKE needs a string")
        return Like(path, value)

    def string(self, token: Token) -> str:
        return _unquote(str(token))

    def datetime(self, token: Token) -> str:
        text = str(token).replace("Z", "+00:00")
        if len(text) > 5 and text[-5] in "+-" and text[-3] != ":":
            text = text[:-2] + ":" + text[-2:]
        return format_datetime(datetime.fromisoformat(text))

    def date(self, token: Token) -> str:
        return date.fromisoformat(str(token)).isoformat()

    def number(self, token: Token) -> int | float:
        text = str(token)
        return float(text) if "." in text else int(text)

    def null(self) -> None:
        return None

    def true(self) -> bool:
        return True

    def false(self) -> bool:
        return False

    def order(self, *items: OrderItem) -> tuple[str, tuple[OrderItem, ...]]:
        return ("order", items)

    def order_item(self, path: Path, *rest: Any) -> OrderItem:
        descending = False
        nulls_last: bool | None = None
        for item in rest:
            if isinstance(item, Token) and item.type == "DIRECTION":
                descending = str(item).lower() == "desc"
            elif isinstance(item, bool):
                nulls_last = item
        return OrderItem(path, descending, nulls_last)

    def nulls(self, where: Token) -> bool:
        return str(where).lower() == "last"

    def limit(self, count: Token) -> tuple[str, int]:
        return ("limit", int(count))

    def offset(self, count: Token) -> tuple[str, int]:
        return ("offset", int(count))


_PARSER = Lark(_GRAMMAR, parser="lalr", maybe_placeholders=False)


def _malformed(text: str, error: LarkError) -> str:
    """A parse error in Salesforce's words: the query's line, a caret, ``ERROR at Row:R:Column:C``, the token.

    (What the org answers for SOQL the sandbox does not model too: GROUP BY,
    aggregates, sub-queries, TYPEOF... so a client sees the vendor's shape, not the parser's.)
    """
    row = getattr(error, "line", None)
    column = getattr(error, "column", None)
    lines = text.splitlines() or [""]
    if not isinstance(row, int) or not isinstance(column, int) or row < 1:
        row, column = len(lines), len(lines[-1]) + 1  # at the end: an unfinished query
    token = getattr(error, "token", None)
    found = "<EOF>" if token is None or getattr(token, "type", "") == "$END" else str(token)
    if isinstance(error, UnexpectedCharacters):
        found = error.char
    if found == "<EOF>":
        row, column = len(lines), len(lines[-1]) + 1
    line = lines[min(row, len(lines)) - 1]
    return (
        f"\n{line[:200]}\n{' ' * (column - 1)}^\nERROR at Row:{row}:Column:{column}\nunexpected token: '{found[:40]}'"
    )


@lru_cache(maxsize=256)
def parse(text: str) -> Query:
    """The plan of one SOQL query; ``SoqlError("MALFORMED_QUERY", ...)`` when it is not valid."""
    try:
        tree = _PARSER.parse(text)
        plan = _ToPlan().transform(tree)
    except SoqlError:
        raise
    except LarkError as error:
        cause = getattr(error, "orig_exc", None)
        if isinstance(cause, SoqlError):
            raise cause from None
        raise SoqlError("MALFORMED_QUERY", _malformed(text, error)) from None
    except ValueError as error:
        raise SoqlError("MALFORMED_QUERY", str(error)[:200]) from None
    if not isinstance(plan, Query):  # pragma: no cover - the grammar's start is a query
        raise SoqlError("MALFORMED_QUERY", "not a query")
    return plan
