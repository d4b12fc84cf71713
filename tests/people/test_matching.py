"""The pure parts of unifying: who is one person (connector.sync.people), what she did (connector.sync.unify)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from connector.model import Activity, Company, Contact, Stage
from connector.store.values import EmailOwner, PersonLink, QueuedContact, RecordKey
from connector.sync.people import DUPLICATE_EMAIL, TWO_PEOPLE, email_key, plan_links, record_emails
from connector.sync.unify import merge_activities, normalised_detail, person_evidence

HS = RecordKey("hubspot", "70114827301")
HS2 = RecordKey("hubspot", "70114827302")
LEAD = RecordKey("salesforce", "00Q5g00000XyZaBEAV")
CONTACT = RecordKey("salesforce", "0035g00000AbCdEAAZ")
AT = datetime(2026, 11, 10, 9, 30, tzinfo=UTC)


def ids() -> Iterator[str]:
    n = 0
    while True:
        n += 1
        yield f"person-{n}"


def new_ids() -> Callable[[], str]:
    made = ids()
    return lambda: next(made)


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        (" Anne.Martin@Example.FR ", "anne.martin@example.fr"),
        ("STRASSE@example.de", "strasse@example.de"),
        ("straße@example.de", "strasse@example.de"),  # case-folded, not just lower-cased
        ("   ", None),
        (None, None),
    ],
)
def test_email_key_strips_and_casefolds(raw: str | None, key: str | None) -> None:
    assert email_key(raw) == key


def test_records_sharing_an_address_become_one_person_and_a_new_address_a_new_person() -> None:
    plan = plan_links(
        [
            record_emails(HS, "Anne@Example.fr"),
            record_emails(CONTACT, " anne@example.fr"),
            record_emails(LEAD, "bruno@example.fr"),
        ],
        known={},
        owners={},
        unlinked=set(),
        new_id=new_ids(),
    )
    assert [(link.record, link.person_id) for link in plan.links] == [
        (HS, "person-1"),
        (CONTACT, "person-1"),
        (LEAD, "person-2"),
    ]
    assert plan.people == [("person-1", "anne@example.fr"), ("person-2", "bruno@example.fr")]
    assert plan.conflicts == []


def test_an_alias_finds_the_person_and_her_own_address_wins_over_an_alias() -> None:
    owners = {
        "anne@example.fr": [EmailOwner(CONTACT, "p-contact", primary=True)],
        "a.martin@example.fr": [EmailOwner(LEAD, "p-lead", primary=True)],
    }
    plan = plan_links(
        [record_emails(HS, "anne@example.fr", ["a.martin@example.fr"])],
        known={},
        owners=owners,
        unlinked=set(),
    )
    assert [(link.record, link.person_id) for link in plan.links] == [(HS, "p-contact")]
    assert [(c.kind, c.person_id, c.records) for c in plan.conflicts] == [(TWO_PEOPLE, "p-contact", (str(HS),))]
    assert "not to p-lead" in plan.conflicts[0].action

    by_alias = plan_links(
        [record_emails(HS2, "other@example.fr", ["a.martin@example.fr"])], known={}, owners=owners, unlinked=set()
    )
    assert [link.person_id for link in by_alias.links] == ["p-lead"]


def test_a_linked_record_stays_with_its_person_when_its_address_changes_and_the_clash_is_reported() -> None:
    plan = plan_links(
        [record_emails(HS, "new@example.fr")],
        known={HS: PersonLink(HS, "p-anne", "email")},
        owners={"new@example.fr": [EmailOwner(CONTACT, "p-bruno", primary=True)]},
        unlinked=set(),
    )
    assert plan.links == []  # unchanged
    assert [(c.kind, c.person_id) for c in plan.conflicts] == [(TWO_PEOPLE, "p-anne")]
    assert "kept with person p-anne" in plan.conflicts[0].action


def test_a_record_unlinked_by_hand_is_never_matched_back_into_that_person() -> None:
    plan = plan_links(
        [record_emails(HS, "anne@example.fr")],
        known={},
        owners={"anne@example.fr": [EmailOwner(CONTACT, "p-anne", primary=True)]},
        unlinked={(HS, "p-anne")},
        new_id=lambda: "p-new",
    )
    assert [(link.record, link.person_id) for link in plan.links] == [(HS, "p-new")]


def test_two_records_of_one_connection_with_one_address_both_join_her_reported_once_per_pair() -> None:
    plan = plan_links(
        [record_emails(LEAD, "anne@example.fr")],
        known={},
        owners={"anne@example.fr": [EmailOwner(CONTACT, "p-anne", primary=True)]},
        unlinked=set(),
    )
    assert [link.person_id for link in plan.links] == ["p-anne"]
    assert [(c.kind, c.records) for c in plan.conflicts] == [(DUPLICATE_EMAIL, (str(CONTACT), str(LEAD)))]
    again = plan_links(
        [record_emails(CONTACT, "anne@example.fr")],
        known={CONTACT: PersonLink(CONTACT, "p-anne", "email")},
        owners={"anne@example.fr": [EmailOwner(LEAD, "p-anne", primary=True)]},
        unlinked=set(),
    )
    assert [c.key for c in again.conflicts] == [plan.conflicts[0].key]  # the same key: stored once


def queued(key: RecordKey, activities: list[Activity], **contact: object) -> QueuedContact:
    return QueuedContact(
        connection=key.connection,
        crm_id=key.crm_id,
        object_type="contact",
        email=None,
        contact=Contact(**contact),  # type: ignore[arg-type]
        contact_json="{}",
        stage_values={},
        modified_at=None,
        activities=tuple(activities),
        attempts=0,
        written_stage=None,
        pending=None,
    )


def reply(ident: str, at: datetime, subject: str | None) -> Activity:
    return Activity(kind="email_reply", occurred_at=at, detail=subject, id=ident)


@pytest.mark.parametrize(
    ("salesforce_copy", "copied"),
    [
        pytest.param(reply("00T1", AT, "Re: Pricing"), True, id="same kind, instant and subject"),
        pytest.param(reply("00T1", AT + timedelta(seconds=59), "  email:  re:   PRICING "), True, id="prefix, case"),
        pytest.param(reply("00T1", AT + timedelta(seconds=61), "Re: Pricing"), False, id="over a minute apart"),
        pytest.param(reply("00T1", AT, "Re: Rollout"), False, id="another subject"),
        pytest.param(
            Activity(kind="call_connected", occurred_at=AT, detail="Re: Pricing", id="00T1"), False, id="another kind"
        ),
    ],
)
def test_an_activity_copied_between_crms_counts_once(salesforce_copy: Activity, copied: bool) -> None:
    original = reply("9001", AT, "Re: Pricing")
    kept, copies = merge_activities(
        [queued(HS, [original]), queued(CONTACT, [salesforce_copy])], ["hubspot", "salesforce"]
    )
    assert [item.activity for item in kept] == ([original] if copied else [original, salesforce_copy])
    assert [(c.copy.record, c.kept.record) for c in copies] == ([(CONTACT, HS)] if copied else [])


def test_two_alike_activities_in_one_crm_are_two_and_one_activity_on_two_of_her_records_is_one() -> None:
    first, second = reply("9001", AT, "Re: Pricing"), reply("9002", AT, "Re: Pricing")
    kept, copies = merge_activities([queued(HS, [first, second]), queued(HS2, [first])], ["hubspot", "salesforce"])
    assert [item.activity.id for item in kept] == ["9001", "9002"] and copies == []


def test_the_most_complete_company_is_hers_and_each_fact_names_its_record() -> None:
    thin = Company(name="Transports Martin")
    full = Company(name="Transports Martin SA", domain="transports-martin.fr", employees=120, industry="logistics")
    evidence = person_evidence(
        "p-anne",
        [
            queued(HS, [], email="anne@example.fr", company=thin, job_title="Directrice logistique", stage=Stage.MQL),
            queued(CONTACT, [], email="anne@example.fr", company=full),
        ],
        ["hubspot", "salesforce"],
    )
    assert evidence.contact.company == full
    assert evidence.company_from == CONTACT
    assert dict(evidence.fields_from)["job_title"] == HS
    assert evidence.contact.stage is None  # each record's own rung is applied per record
    assert normalised_detail(None) == normalised_detail("") == ""


def test_the_mapping_reads_secondary_addresses_separated_by_semicolons_and_skips_what_is_not_one() -> None:
    from connector.mapping import load_mapping
    from tests.sync.conftest import REPO

    mapping = load_mapping(REPO / "mappings" / "hubspot.toml")
    assert "hs_additional_emails" in mapping.person_fields("contacts")
    person = mapping.normalise_person(
        "contacts", {"email": "Anne@Example.fr", "hs_additional_emails": " a.martin@Example.fr;;nope; anne@example.fr"}
    )
    assert person["other_emails"] == ["a.martin@example.fr"]  # her own address is not an alias of herself
    assert "other_emails" not in mapping.normalise_person("contacts", {"email": "anne@example.fr"})
