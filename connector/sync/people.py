"""Matching records into people across CRMs. Pure: the store's links and addresses in, links and conflicts out.

A record is one person with the others that share her normalised e-mail
(stripped and case-folded), her own address or an alias her mapping allows
(HubSpot ``hs_additional_emails``). The rules, in order (docs/people.md):

1. a record already linked stays with its person, whatever its e-mail says now: a
   match survives e-mail changes, and a manual link always wins. When its new
   address belongs to another person, that is a ``two_people`` conflict (kept);
2. otherwise it joins the person whose record holds its own address (as that
   record's own address first, as an alias second), else a person one of its
   aliases points at; never a person it was unlinked from by hand. Several
   candidates: the first by that order, then by record (connection, id), and a
   ``two_people`` conflict says which was chosen;
3. otherwise (no address, or nobody holds it) it is a new person.

Joining a person who already has a record in the same connection is a
``duplicate_email`` conflict: both records are that person and get her stage
(a Salesforce Lead and a Contact of one person, or two HubSpot contacts).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from connector.store.people import EMAIL
from connector.store.values import EmailOwner, PersonConflict, PersonLink, RecordEmails, RecordKey

DUPLICATE_EMAIL = "duplicate_email"
TWO_PEOPLE = "two_people"
HAND_SET_HIGHER = "hand_set_higher"
CONFLICT_KINDS = (DUPLICATE_EMAIL, TWO_PEOPLE, HAND_SET_HIGHER)


def email_key(email: str | None) -> str | None:
    """The matching form of an address: stripped and case-folded; ``None`` for none or blank."""
    if email is None:
        return None
    key = email.strip().casefold()
    return key or None


def record_emails(record: RecordKey, email: str | None, others: Sequence[str] = ()) -> RecordEmails:
    primary = email_key(email)
    aliases = tuple(dict.fromkeys(k for k in (email_key(o) for o in others) if k and k != primary))
    return RecordEmails(record, primary, aliases)


def new_person_id() -> str:
    return str(uuid.uuid4())


@dataclass
class LinkPlan:
    """What matching one chunk of records came to."""

    links: list[PersonLink] = field(default_factory=list)
    """New or changed links (the matcher's are ``email`` links)."""
    people: list[tuple[str, str | None]] = field(default_factory=list)
    """New people: id and the address they were found by."""
    emails: list[RecordEmails] = field(default_factory=list)
    """Every matched record's addresses now."""
    conflicts: list[PersonConflict] = field(default_factory=list)
    joined: list[RecordKey] = field(default_factory=list)
    """Records that joined a person (or became one) in this chunk: decided again with her."""


def _rank(owner: EmailOwner, by_own_address: bool) -> int:
    """Lower is better: own address on both sides, own vs alias, alias vs own, alias on both sides."""
    return (0 if by_own_address else 2) + (0 if owner.primary else 1)


def plan_links(
    records: Sequence[RecordEmails],
    *,
    known: Mapping[RecordKey, PersonLink],
    owners: Mapping[str, Sequence[EmailOwner]],
    unlinked: set[tuple[RecordKey, str]],
    new_id: Callable[[], str] = new_person_id,
) -> LinkPlan:
    """Link ``records`` to people (see the module's rules). ``known``: their current links; ``owners``: the
    linked records holding each of their addresses; ``unlinked``: (record, person) pairs taken apart by hand,
    for ``records`` and for the owners.
    Records of the chunk match each other too (in order)."""
    plan = LinkPlan()
    index: dict[str, list[EmailOwner]] = {email: list(found) for email, found in owners.items()}
    for item in records:
        record = item.record
        keys = ([item.primary] if item.primary else []) + list(item.others)
        current = known.get(record)
        candidates: dict[str, tuple[int, RecordKey]] = {}
        for email in keys:
            for owner in index.get(email, ()):
                if owner.record == record or (record, owner.person_id) in unlinked:
                    continue
                if current is not None and (owner.record, current.person_id) in unlinked:
                    continue  # that record was taken out of her person by hand: no clash
                rank = (_rank(owner, email == item.primary), owner.record)
                best = candidates.get(owner.person_id)
                if best is None or rank < best:
                    candidates[owner.person_id] = rank
        chosen: str
        if current is not None:
            chosen = current.person_id
            others = sorted(p for p in candidates if p != chosen)
            if others:
                plan.conflicts.append(
                    PersonConflict(
                        key=f"{TWO_PEOPLE}|{record}|{chosen}|{','.join(others)}",
                        kind=TWO_PEOPLE,
                        person_id=chosen,
                        records=(str(record),),
                        action=(
                            f"its address now matches {len(others)} other person(s) ({', '.join(others)}); "
                            f"kept with person {chosen} ({current.how} link: links survive e-mail changes; "
                            "`crmsync people link` moves it)"
                        ),
                    )
                )
        elif candidates:
            ordered = sorted(candidates.items(), key=lambda pair: pair[1])
            chosen = ordered[0][0]
            plan.links.append(PersonLink(record, chosen, EMAIL))
            plan.joined.append(record)
            if len(ordered) > 1:
                others = [person for person, _ in ordered[1:]]
                plan.conflicts.append(
                    PersonConflict(
                        key=f"{TWO_PEOPLE}|{record}|{chosen}|{','.join(sorted(others))}",
                        kind=TWO_PEOPLE,
                        person_id=chosen,
                        records=(str(record),),
                        action=(
                            f"matches {len(ordered)} people; linked to {chosen} (best match: its own address first, "
                            f"then aliases), not to {', '.join(others)}"
                        ),
                    )
                )
        else:
            chosen = new_id()
            plan.people.append((chosen, item.primary or (item.others[0] if item.others else None)))
            plan.links.append(PersonLink(record, chosen, EMAIL))
            plan.joined.append(record)
        # the same connection twice in one person: both are her (reported once per pair)
        twins = sorted(
            {
                owner.record
                for email in keys
                for owner in index.get(email, ())
                if owner.person_id == chosen and owner.record.connection == record.connection and owner.record != record
            },
            key=lambda key: key.crm_id,
        )
        for twin in twins:
            pair = sorted([str(twin), str(record)])
            plan.conflicts.append(
                PersonConflict(
                    key=f"{DUPLICATE_EMAIL}|{chosen}|{'|'.join(pair)}",
                    kind=DUPLICATE_EMAIL,
                    person_id=chosen,
                    records=tuple(pair),
                    action=f"two records of {record.connection} share an address: both are person {chosen} "
                    "and both get her stage",
                )
            )
        plan.emails.append(item)
        # later records of this chunk find this one
        for email in keys:
            index.setdefault(email, []).append(EmailOwner(record, chosen, email == item.primary))
    return plan
