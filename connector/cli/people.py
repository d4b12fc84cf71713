"""``crmsync people list|show|link|unlink|conflicts``: the people a unifying job matched across CRMs.

A record is named ``connection:crm_id``; ``show`` also takes an e-mail address
(any of her records' own addresses or aliases). ``link`` and ``unlink`` change
who is one person by hand: the matcher never undoes them, and every record
concerned is decided again on the next run of each job (docs/people.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from connector.cli.exits import CommandFailed, ExitCode
from connector.cli.services import services
from connector.cli.terminal import line, out, safe, write_json

if TYPE_CHECKING:
    from connector.store import Store
    from connector.store.values import RecordKey

JSON = typer.Option("--json", help="JSON lines instead of text.")


def _ref(text: str) -> RecordKey:
    from connector.store.values import RecordKey

    connection, _, crm_id = text.partition(":")
    if not connection or not crm_id or "@" in connection:
        raise CommandFailed(f"{text!r} is not a record: use connection:crm_id (e.g. hubspot:70114827301)")
    return RecordKey(connection, crm_id)


def _stored(store: Store, record: RecordKey) -> None:
    with store.begin() as db:
        if not store.people.exists(db, [record]):
            raise CommandFailed(f"no stored record {str(record)!r} (has a job read it yet?)", ExitCode.FAILED)


def _when(value: object) -> str:
    from datetime import datetime

    return value.isoformat(timespec="seconds").replace("+00:00", "Z") if isinstance(value, datetime) else "–"


def list_people(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", min=1, help="People to list at most.")] = 200,
    as_json: Annotated[bool, JSON] = False,
) -> None:
    """The people found so far: id, the address she was first found by, how many records she has."""
    context = services(ctx)
    config = context.config()
    with context.store(config) as store, store.begin() as db:
        found = store.people.listing(db, limit=limit)
    for person_id, email, records in found:
        if as_json:
            write_json({"person_id": person_id, "email": email, "records": records})
        else:
            out.print(line(safe(person_id), "  ", safe(email or "(no address)"), f"  {records} record(s)"))


def show(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(metavar="PERSON", help="An e-mail address, connection:crm_id or a person id.")],
    as_json: Annotated[bool, JSON] = False,
) -> None:
    """One person: her records in each CRM (how and when each was linked, the stage its CRM shows), her conflicts."""
    from connector.store import queries
    from connector.sync.people import email_key

    context = services(ctx)
    config = context.config()
    views = []
    with context.store(config) as store:
        with store.begin() as db:
            if "@" in key:
                person_ids = store.people.people_by_email(db, email_key(key) or "")
            elif ":" in key:
                found = store.people.person_of(db, _ref(key))
                person_ids = [found] if found else []
            else:
                person_ids = [key] if store.people.all_links(db, key) else []
            if not person_ids:
                raise CommandFailed(f"no person for {key!r} (has a unifying job run yet?)", ExitCode.FAILED)
            for person_id in person_ids:
                links = store.people.all_links(db, person_id)
                records = {str(link.record): link for link in links}
                conflicts = store.people.conflicts(db, person_id=person_id)
                views.append((person_id, store.people.person_email(db, person_id), records, conflicts))
        stored = {
            f"{view.connection}:{view.crm_id}": view
            for _, _, records, _ in views
            for ref in records
            for view in queries.find_contacts(store, ref)
        }
    for person_id, email, records, conflicts in views:
        if as_json:
            write_json(
                {
                    "person_id": person_id,
                    "email": email,
                    "records": [
                        {
                            "record": ref,
                            "how": link.how,
                            "linked_at": _when(link.linked_at),
                            "email": stored[ref].email if ref in stored else None,
                            "object_type": stored[ref].object_type if ref in stored else None,
                            "stage": stored[ref].stage if ref in stored else None,
                        }
                        for ref, link in records.items()
                    ],
                    "conflicts": [
                        {
                            "kind": c.kind,
                            "records": list(c.records),
                            "action": c.action,
                            "first_seen": _when(c.first_seen),
                        }
                        for c in conflicts
                    ],
                }
            )
            continue
        out.print(line(("person ", "bold"), safe(person_id, "bold"), "  ", safe(email or "(no address)")))
        for ref, link in records.items():
            view = stored.get(ref)
            detail = (
                line(
                    " ",
                    safe(view.email or ""),
                    " (",
                    safe(view.object_type),
                    "), in the CRM: ",
                    safe(view.stage or "no rung"),
                )
                if view
                else line(" (no longer stored: deleted or merged in its CRM)")
            )
            out.print(line("  ", safe(ref), detail, f"; {link.how} link since {_when(link.linked_at)}"))
        for conflict in conflicts:
            out.print(
                line("  conflict ", safe(conflict.kind), f" ({_when(conflict.first_seen)}): ", safe(conflict.action))
            )


def link(
    ctx: typer.Context,
    record: Annotated[str, typer.Argument(metavar="RECORD", help="connection:crm_id of the record to move.")],
    to: Annotated[str, typer.Argument(metavar="WITH", help="connection:crm_id of a record of the person it joins.")],
) -> None:
    """RECORD is the same person as WITH, from now on (a manual link: the matcher never undoes it)."""
    first, second = _ref(record), _ref(to)
    if first == second:
        raise CommandFailed("RECORD and WITH are the same record")
    context = services(ctx)
    config = context.config()
    with context.store(config) as store:
        _stored(store, first)
        _stored(store, second)
        with store.begin() as db:
            person_id = store.people.link_by_hand(db, first, second, context.clock())
    out.print(line(safe(str(first)), " is now person ", safe(person_id), " with ", safe(str(second)),
                   "; her records are decided again on the next run"))  # fmt: skip


def unlink(
    ctx: typer.Context,
    record: Annotated[str, typer.Argument(metavar="RECORD", help="connection:crm_id of the record to take out.")],
) -> None:
    """RECORD is not the person it was matched to: it becomes a person of its own, and is never matched back."""
    key = _ref(record)
    context = services(ctx)
    config = context.config()
    with context.store(config) as store:
        _stored(store, key)
        with store.begin() as db:
            moved = store.people.unlink_by_hand(db, key, context.clock())
    if moved is None:
        raise CommandFailed(f"{record!r} belongs to no person (no unifying job has matched it)", ExitCode.FAILED)
    before, alone = moved
    out.print(line(safe(str(key)), " left person ", safe(before), " (never matched back) and is now person ",
                   safe(alone)))  # fmt: skip


def conflicts(ctx: typer.Context, as_json: Annotated[bool, JSON] = False) -> None:
    """Every conflict found while matching or deciding people, once each, oldest first, with what was done."""
    context = services(ctx)
    config = context.config()
    with context.store(config) as store, store.begin() as db:
        found = store.people.conflicts(db)
    for conflict in found:
        if as_json:
            write_json(
                {
                    "kind": conflict.kind,
                    "person_id": conflict.person_id,
                    "records": list(conflict.records),
                    "action": conflict.action,
                    "first_seen": _when(conflict.first_seen),
                }
            )
        else:
            out.print(
                line(
                    _when(conflict.first_seen),
                    "  ",
                    safe(conflict.kind, "bold"),
                    "  person ",
                    safe(conflict.person_id or "–"),
                    "  ",
                    safe(", ".join(conflict.records)),
                    "\n    ",
                    safe(conflict.action),
                )
            )
