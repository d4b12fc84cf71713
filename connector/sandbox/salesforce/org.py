"""The sandbox org's data: tables of records, SOQL evaluation and updates.

Records are kept compact (one list of values per record, in the object's
field order; datetimes as Salesforce's own text, which sorts correctly), so
a million activities fit in a few hundred megabytes. Every method is
called with the org's lock held by the server.
"""

from __future__ import annotations

import operator
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from connector.sandbox.salesforce.schema import ID_PREFIX, OBJECTS, PREFIX_OBJECT, FieldDef
from connector.sandbox.salesforce.soql import (
    And,
    Compare,
    Condition,
    In,
    Like,
    Not,
    Or,
    OrderItem,
    Path,
    Query,
    SoqlError,
)
from connector.sandbox.salesforce.soql import format_datetime as format_datetime

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CHECKSUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_POD = "5g0000"

Row = list[Any]
Getter = Callable[[Row], Any]


def make_id(sobject: str, number: int) -> str:
    """An 18-character Salesforce id; ids of one object sort in creation order."""
    digits = []
    for _ in range(6):
        number, rest = divmod(number, 62)
        digits.append(_BASE62[rest])
    short = ID_PREFIX[sobject] + _POD + "".join(reversed(digits))
    suffix = ""
    for chunk in range(3):
        bits = 0
        for position, char in enumerate(short[chunk * 5 : chunk * 5 + 5]):
            if "A" <= char <= "Z":
                bits |= 1 << position
        suffix += _CHECKSUM[bits]
    return short + suffix


def object_of(record_id: str) -> str | None:
    return PREFIX_OBJECT.get(record_id[:3])


@dataclass(frozen=True, slots=True)
class RecordError:
    status_code: str
    message: str
    fields: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {"statusCode": self.status_code, "message": self.message, "fields": list(self.fields)}


class Table:
    """The records of one object."""

    def __init__(self, name: str, fields: tuple[FieldDef, ...]) -> None:
        self.name = name
        self.fields = fields
        self.column = {f.name: index for index, f in enumerate(fields)}
        self.by_lower = {f.name.lower(): f for f in fields}
        self.relationships = {f.relationship.lower(): f for f in fields if f.relationship}
        self.rows: list[Row] = []
        self._by_id: dict[str, Row] | None = None
        self._stamp_order: list[Row] | None = None
        self.next_number = 1
        self.stamp = self.column["SystemModstamp"]
        self.deleted = 0
        """How many rows are deleted (``query`` skips them; none: the fast path stays a plain scan)."""

    def insert(self, values: dict[str, Any]) -> str:
        record_id = make_id(self.name, self.next_number)
        self.next_number += 1
        row: Row = [None] * len(self.fields)
        row[0] = record_id
        for name, value in values.items():
            row[self.column[name]] = value
        self.rows.append(row)
        if self._by_id is not None:
            self._by_id[record_id] = row
        self._stamp_order = None
        return record_id

    def get(self, record_id: str | None) -> Row | None:
        if record_id is None:
            return None
        if self._by_id is None:
            self._by_id = {row[0]: row for row in self.rows}
        return self._by_id.get(record_id)

    def value(self, row: Row, name: str) -> Any:
        return row[self.column[name]]

    def touched(self) -> None:
        self._stamp_order = None

    def stamp_order(self) -> list[Row]:
        """Rows sorted by (SystemModstamp, Id): the order incremental readers ask for; cached."""
        if self._stamp_order is None:
            stamp = self.stamp
            self._stamp_order = sorted(self.rows, key=lambda row: (row[stamp], row[0]))
        return self._stamp_order


@dataclass(slots=True)
class QueryResult:
    sobject: str
    rows: list[Row]
    render: Callable[[Row, str], dict[str, Any]]
    position: int = 0
    used_at: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


class Org:
    """All tables, with SOQL evaluation and sObject updates."""

    def __init__(self, now: Callable[[], datetime] | None = None) -> None:
        self.tables = {name: Table(name, fields) for name, fields in OBJECTS.items()}
        self.lock = threading.RLock()
        self._now = now or (lambda: datetime.now(UTC))
        self._last_stamp = ""
        self.person_ids: dict[int, str] = {}
        """Generated person index -> the id of the Lead or Contact that holds the person (``seed_org``)."""

    def now(self) -> datetime:
        """The org clock."""
        return self._now()

    def now_stamp(self) -> str:
        """The org clock in Salesforce's format: whole seconds, never going back."""
        stamp = format_datetime(self._now())
        if stamp < self._last_stamp:
            stamp = self._last_stamp
        self._last_stamp = stamp
        return stamp

    def table(self, name: str) -> Table:
        for table_name, table in self.tables.items():
            if table_name.lower() == name.lower():
                return table
        raise SoqlError("INVALID_TYPE", f"sObject type '{name}' is not supported.")

    def count(self, name: str) -> int:
        return len(self.tables[name].rows)

    def get(self, sobject: str, record_id: str) -> dict[str, Any] | None:
        """One record as a plain dict of field values (tests and assertions)."""
        table = self.tables[sobject]
        row = table.get(record_id)
        return None if row is None else {f.name: row[index] for index, f in enumerate(table.fields)}

    def records(self, sobject: str) -> Iterator[dict[str, Any]]:
        table = self.tables[sobject]
        for row in table.rows:
            yield {f.name: row[index] for index, f in enumerate(table.fields)}

    # -- seeding -------------------------------------------------------------
    def insert(self, sobject: str, values: dict[str, Any]) -> str:
        table = self.tables[sobject]
        unknown = set(values) - set(table.column)
        if unknown:
            raise KeyError(f"{sobject} has no field(s) {sorted(unknown)}")
        for name in ("CreatedDate", "LastModifiedDate", "SystemModstamp"):
            if values.get(name) is None:
                values[name] = self.now_stamp()
        values.setdefault("IsDeleted", False)
        return table.insert(values)

    def delete(self, sobject: str, record_id: str, master: str | None = None) -> None:
        """Delete a record as the vendor does: it stays for ``queryAll`` with ``IsDeleted = true`` (and, merged
        away, ``MasterRecordId`` = the survivor); ``query`` no longer returns it; its stamp moves."""
        values: dict[str, Any] = {"IsDeleted": True}
        if master is not None:
            values["MasterRecordId"] = master
        self.touch(sobject, record_id, values)
        self.tables[sobject].deleted += 1

    def merge(self, sobject: str, master: str, victims: Sequence[str]) -> None:
        """Merge ``victims`` into ``master`` (Leads or Contacts, up to two at a time as the vendor allows): the
        victims' activities are re-parented to the master (their stamps move), the victims are deleted with
        ``MasterRecordId``, and the master is touched."""
        if not 1 <= len(victims) <= 2 or master in victims:
            raise ValueError("a merge takes a master and one or two other records")
        for name, table in self.tables.items():
            for column in ("WhoId", "LeadId", "ContactId"):
                if column in table.column:
                    for row in table.rows:
                        if row[table.column[column]] in victims:
                            self.touch(name, row[0], {column: master})
        for victim in victims:
            self.delete(sobject, victim, master)
        self.touch(sobject, master, {})

    def touch(self, sobject: str, record_id: str, values: dict[str, Any], stamp: str | None = None) -> None:
        """Change a record as a person or a flow would (no validation); stamps move."""
        table = self.tables[sobject]
        row = table.get(record_id)
        if row is None:
            raise KeyError(record_id)
        for name, value in values.items():
            row[table.column[name]] = value
        now = stamp or self.now_stamp()
        row[table.column["LastModifiedDate"]] = now
        row[table.stamp] = now
        table.touched()

    # -- SOQL ----------------------------------------------------------------
    def is_deleted(self, sobject: str, record_id: str) -> bool:
        table = self.tables[sobject]
        row = table.get(record_id)
        return row is not None and bool(row[table.column["IsDeleted"]])

    def run(self, query: Query, version: str, *, include_deleted: bool = False) -> QueryResult:
        """Evaluate ``query``; deleted rows only with ``include_deleted`` (``queryAll``)."""
        table = self.table(query.sobject)
        getters = {path: self._getter(table, path) for path in query.fields}
        render = self._renderer(table, query.fields, getters, version)
        predicate = self._predicate(table, query.where) if query.where is not None else None
        fast = [(str(item.path).lower(), item.descending) for item in query.order] == [
            ("systemmodstamp", False),
            ("id", False),
        ]
        source: Iterable[Row] = table.stamp_order() if fast else table.rows
        if table.deleted and not include_deleted:
            gone = table.column["IsDeleted"]
            source = [row for row in source if not row[gone]]
        rows = [row for row in source if predicate(row)] if predicate is not None else list(source)
        if query.order and not fast:
            for item in reversed(query.order):
                rows.sort(key=self._sort_key(table, item), reverse=item.descending)
        if query.offset:
            rows = rows[query.offset :]
        if query.limit is not None:
            rows = rows[: query.limit]
        return QueryResult(table.name, rows, render)

    def _field(self, table: Table, name: str) -> FieldDef:
        found = table.by_lower.get(name.lower())
        if found is None:
            raise SoqlError("INVALID_FIELD", f"No such column '{name}' on entity '{table.name}'.")
        return found

    def _parent(self, table: Table, relationship: str) -> tuple[FieldDef, Table]:
        ref = table.relationships.get(relationship.lower())
        if ref is None:
            raise SoqlError(
                "INVALID_FIELD",
                f"Didn't understand relationship '{relationship}' in field path. "
                f"Make sure the relationship name is spelled correctly (entity '{table.name}').",
            )
        if len(ref.reference_to) != 1:
            raise SoqlError("INVALID_FIELD", f"polymorphic relationship '{relationship}' is not supported here")
        return ref, self.tables[ref.reference_to[0]]

    def _getter(self, table: Table, path: Path) -> Getter:
        if len(path.parts) == 1:
            return operator.itemgetter(table.column[self._field(table, path.parts[0]).name])
        if len(path.parts) != 2:
            raise SoqlError("INVALID_FIELD", f"field path too deep: {path}")
        ref, parent = self._parent(table, path.parts[0])
        ref_index = table.column[ref.name]
        index = parent.column[self._field(parent, path.parts[1]).name]

        def get(row: Row) -> Any:
            found = parent.get(row[ref_index])
            return None if found is None else found[index]

        return get

    def _field_def(self, table: Table, path: Path) -> FieldDef:
        if len(path.parts) == 1:
            return self._field(table, path.parts[0])
        _, parent = self._parent(table, path.parts[0])
        return self._field(parent, path.parts[1])

    def _renderer(
        self, table: Table, paths: tuple[Path, ...], getters: dict[Path, Getter], version: str
    ) -> Callable[[Row, str], dict[str, Any]]:
        direct: list[tuple[str, int]] = []
        parents: dict[str, tuple[str, Table, int, list[tuple[str, int]]]] = {}
        for path in paths:
            if len(path.parts) == 1:
                direct.append(
                    (self._field(table, path.parts[0]).name, table.column[self._field(table, path.parts[0]).name])
                )
                continue
            ref, parent = self._parent(table, path.parts[0])
            name = self._field(parent, path.parts[1]).name
            entry = parents.setdefault(ref.relationship or "", (ref.name, parent, table.column[ref.name], []))
            entry[3].append((name, parent.column[name]))
        base = f"/services/data/v{version}/sobjects/"
        type_name = table.name

        def render(row: Row, _: str) -> dict[str, Any]:
            record: dict[str, Any] = {"attributes": {"type": type_name, "url": base + type_name + "/" + row[0]}}
            for name, index in direct:
                record[name] = row[index]
            for relationship, (_ref, parent, ref_index, wanted) in parents.items():
                found = parent.get(row[ref_index])
                if found is None:
                    record[relationship] = None
                else:
                    nested: dict[str, Any] = {
                        "attributes": {"type": parent.name, "url": base + parent.name + "/" + found[0]}
                    }
                    for name, index in wanted:
                        nested[name] = found[index]
                    record[relationship] = nested
            return record

        return render

    def _sort_key(self, table: Table, item: OrderItem) -> Callable[[Row], Any]:
        get = self._getter(table, item.path)
        text = self._field_def(table, item.path).type not in ("id", "reference")
        nulls_last = item.nulls_last if item.nulls_last is not None else item.descending
        # with reverse=True for DESC, "nulls last" must sort them as the smallest
        null_rank = (0 if item.descending else 1) if nulls_last else (1 if item.descending else 0)

        def key(row: Row) -> Any:
            value = get(row)
            if value is None:
                return (null_rank, "")
            if text and isinstance(value, str):
                value = value.lower()
            return (1 - null_rank, value)

        return key

    def _predicate(self, table: Table, condition: Condition) -> Callable[[Row], bool]:
        match condition:
            case And(items):
                parts = [self._predicate(table, item) for item in items]
                return lambda row: all(part(row) for part in parts)
            case Or(items):
                parts = [self._predicate(table, item) for item in items]
                return lambda row: any(part(row) for part in parts)
            case Not(item):
                inner = self._predicate(table, item)
                return lambda row: not inner(row)
            case Compare(path, op, value):
                return self._compare(table, path, op, value)
            case In(path, values, negated):
                fdef = self._field_def(table, path)
                get = self._getter(table, path)
                wanted = {_fold(fdef, self._coerce(fdef, v)) for v in values}
                if negated:
                    return lambda row: _fold(fdef, get(row)) not in wanted
                return lambda row: _fold(fdef, get(row)) in wanted
            case Like(path, pattern):
                get = self._getter(table, path)
                regex = re.compile(_like_regex(pattern), re.IGNORECASE | re.DOTALL)
                return lambda row: (value := get(row)) is not None and regex.fullmatch(str(value)) is not None
        raise SoqlError("MALFORMED_QUERY", "unsupported condition")  # pragma: no cover

    def _coerce(self, fdef: FieldDef, value: Any) -> Any:
        if value is None:
            return None
        if fdef.type == "datetime":
            if not isinstance(value, str) or "T" not in value:
                raise SoqlError(
                    "INVALID_FIELD",
                    f"value of filter criterion for field '{fdef.name}' must be of type dateTime and should not be enclosed in quotes",
                )
            return value
        if fdef.type == "date":
            if not isinstance(value, str) or len(value) != 10:
                raise SoqlError(
                    "INVALID_FIELD",
                    f"value of filter criterion for field '{fdef.name}' must be of type date and should not be enclosed in quotes",
                )
            return value
        if fdef.type == "boolean" and not isinstance(value, bool):
            raise SoqlError(
                "INVALID_FIELD",
                f"value of filter criterion for field '{fdef.name}' must be of type boolean and should not be enclosed in quotes",
            )
        if fdef.type == "int" and not isinstance(value, int | float):
            raise SoqlError(
                "INVALID_FIELD",
                f"value of filter criterion for field '{fdef.name}' must be of type double and should not be enclosed in quotes",
            )
        if (fdef.text or fdef.type in ("id", "reference")) and not isinstance(value, str):
            raise SoqlError(
                "INVALID_FIELD",
                f"value of filter criterion for field '{fdef.name}' must be of type string and should be enclosed in quotes",
            )
        return value

    def _compare(self, table: Table, path: Path, op: str, literal: Any) -> Callable[[Row], bool]:
        fdef = self._field_def(table, path)
        get = self._getter(table, path)
        value = _fold(fdef, self._coerce(fdef, literal))
        if value is None:
            if op == "=":
                return lambda row: get(row) is None
            if op == "!=":
                return lambda row: get(row) is not None
            raise SoqlError("MALFORMED_QUERY", "null can only be compared with = or !=")
        compare = {
            "=": operator.eq, "!=": operator.ne, "<": operator.lt,
            "<=": operator.le, ">": operator.gt, ">=": operator.ge,
        }[op]  # fmt: skip
        if op == "!=":
            return lambda row: (current := _fold(fdef, get(row))) is None or compare(current, value)
        if not fdef.text:
            # the hot path of incremental reads (SystemModstamp, Id): no folding
            index = table.column.get(fdef.name) if len(path.parts) == 1 else None
            if index is not None:
                return lambda row: (current := row[index]) is not None and compare(current, value)
        return lambda row: (current := _fold(fdef, get(row))) is not None and compare(current, value)

    # -- writes --------------------------------------------------------------
    def check_update(self, sobject: str, record_id: str, values: dict[str, Any]) -> RecordError | None:
        """Why this update would fail, or ``None``; nothing is changed."""
        if sobject not in self.tables:
            return RecordError("INVALID_TYPE", f"sObject type '{sobject}' is not supported.")
        table = self.tables[sobject]
        if object_of(record_id) != sobject:
            return RecordError(
                "MALFORMED_ID", f"{table.fields[0].label}: id value of incorrect type: {record_id}", ("Id",)
            )
        row = table.get(record_id)
        if row is None or row[table.column["IsDeleted"]]:
            return RecordError("ENTITY_IS_DELETED", "entity is deleted")
        if sobject == "Lead" and row[table.column["IsConverted"]]:
            return RecordError("CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead")
        for name, value in values.items():
            fdef = table.by_lower.get(name.lower())
            if fdef is None:
                return RecordError("INVALID_FIELD", f"No such column '{name}' on sobject of type {sobject}")
            if not fdef.updateable:
                return RecordError(
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {fdef.name}. Please check the security settings of this field "
                    "and verify that it is read/write for your profile or permission set.",
                    (fdef.name,),
                )
            problem = _value_problem(fdef, value)
            if problem is not None:
                return problem
        return None

    def apply_update(self, sobject: str, record_id: str, values: dict[str, Any], stamp: str) -> None:
        table = self.tables[sobject]
        row = table.get(record_id)
        assert row is not None
        for name, value in values.items():
            fdef = table.by_lower[name.lower()]
            row[table.column[fdef.name]] = value
        row[table.column["LastModifiedDate"]] = stamp
        row[table.stamp] = stamp
        table.touched()


def _fold(fdef: FieldDef, value: Any) -> Any:
    """SOQL compares text case-insensitively (ids excepted)."""
    if fdef.text and isinstance(value, str):
        return value.lower()
    return value


def _like_regex(pattern: str) -> str:
    out: list[str] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            out.append(re.escape(pattern[index + 1]))
            index += 2
            continue
        out.append(".*" if char == "%" else "." if char == "_" else re.escape(char))
        index += 1
    return "".join(out)


def _value_problem(fdef: FieldDef, value: Any) -> RecordError | None:
    if value is None or value == "":
        return None
    label = fdef.label
    if fdef.type == "picklist" and fdef.restricted and value not in fdef.picklist:
        return RecordError(
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            f"{label}: bad value for restricted picklist field: {value}",
            (fdef.name,),
        )
    if fdef.text and not isinstance(value, str):
        return RecordError(
            "INVALID_TYPE_ON_FIELD_IN_RECORD", f"{label}: value not of required type: {value}", (fdef.name,)
        )
    if fdef.text and fdef.length and len(value) > fdef.length:
        return RecordError(
            "STRING_TOO_LONG",
            f"{label}: data value too large: {value[:40]} (max length={fdef.length})",
            (fdef.name,),
        )
    if fdef.type == "date":
        try:
            date.fromisoformat(str(value))
        except ValueError:
            return RecordError(
                "INVALID_TYPE_ON_FIELD_IN_RECORD", f"{label}: value not of required type: {value}", (fdef.name,)
            )
    if fdef.type == "int" and not isinstance(value, int):
        return RecordError(
            "INVALID_TYPE_ON_FIELD_IN_RECORD", f"{label}: value not of required type: {value}", (fdef.name,)
        )
    return None
