"""What CRMs really send, stored on every backend: ids of any length, NUL bytes, unstorable text.

Runs on SQLite, and on PostgreSQL when ``CRMSYNC_TEST_POSTGRES_URL`` is set
(PostgreSQL is the one that refuses long ids and NUL bytes).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from sqlalchemy import select, text

from connector.store import Store, open_store
from connector.store.database import MIGRATIONS, create_store_engine
from connector.store.tables import activities, contacts, dead_letters, job_contacts, storable, storable_json
from tests.sync.conftest import ICP, NOW, Runner, history, new_crm

HUBSPOT_CONTACT_ID = "51234567890"  # 11 digits
SALESFORCE_ID = "003Dn00000ABCdeIAH"  # 18 characters
FORM_SUBMISSION_ID = "form:8f14e45f-ceea-467f-a1b6-0c5ea0b4e6b1:" + "1" * 48  # 90 characters, as HubSpot builds them


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("plain", "plain"),
        ("a\x00b", "a\ufffdb"),
        ("é\x00", "é\ufffd"),
        ("lone \ud800 surrogate", "lone \ufffd surrogate"),
        ("", ""),
    ],
    ids=["ascii-untouched", "nul-replaced", "nul-in-non-ascii", "lone-surrogate-replaced", "empty"],
)
def test_storable_text(given: str, stored: str) -> None:
    assert storable(given) == stored


def test_storable_json_cleans_every_string_keys_included() -> None:
    assert storable_json({"a\x00": ["x\x00", 1, None, {"k": "\ud800"}]}) == {
        "a\ufffd": ["x\ufffd", 1, None, {"k": "\ufffd"}]
    }


def test_given_vendor_ids_of_every_length_when_the_job_runs_then_each_is_stored_whole(
    runner: Runner, store: Store
) -> None:
    crm = runner.crms["hubspot"]
    crm.add_contact(HUBSPOT_CONTACT_ID, "long.ids@example.fr", company=ICP)
    crm.add_contact(SALESFORCE_ID, "sf.ids@example.fr", company=ICP)
    kinds = ("content_download", "content_download", "webinar_attended")
    for n, kind in enumerate(kinds, start=2):
        crm.add_activity(FORM_SUBMISSION_ID[:-1] + str(n), kind, NOW - timedelta(days=n), [HUBSPOT_CONTACT_ID])
    crm.add_activity(FORM_SUBMISSION_ID, "content_download", NOW - timedelta(days=1), [SALESFORCE_ID])
    assert len(FORM_SUBMISSION_ID) == 90

    result = runner()

    assert result.status == "completed"
    assert crm.stage_of(HUBSPOT_CONTACT_ID) == "mql"
    assert crm.stage_of(SALESFORCE_ID) == "lead"
    with store.begin() as db:
        ids = set(db.execute(select(activities.c.crm_id).where(activities.c.crm_id.like("form:%"))).scalars())
    assert FORM_SUBMISSION_ID in ids and len(ids) == 4
    assert {row[1] for row in history(store)} >= {HUBSPOT_CONTACT_ID, SALESFORCE_ID}


def test_given_nul_bytes_in_crm_text_when_the_job_runs_then_they_are_stored_replaced_and_the_run_completes(
    runner: Runner, store: Store
) -> None:
    crm = runner.crms["hubspot"]
    crm.add_contact("nul1", "nul@example.fr", company=ICP, job_title="Head\x00of logistics")
    crm.add_activity("nul-a1", "content_download", NOW - timedelta(days=1), ["nul1"], "Subject: \x00hello\x00")
    crm.reject["c0003"] = ("INVALID\x00CODE", "refused: value \x00 not allowed")

    result = runner()

    assert result.status == "completed"
    assert crm.stage_of("nul1") == "lead"
    with store.begin() as db:
        detail = db.execute(select(activities.c.detail).where(activities.c.crm_id == "nul-a1")).scalar_one()
        facts = db.execute(select(contacts.c.contact).where(contacts.c.crm_id == "nul1")).scalar_one()
        letter = db.execute(select(dead_letters.c.code, dead_letters.c.reason)).one()
        reasons = db.execute(select(job_contacts.c.reasons).where(job_contacts.c.crm_id == "nul1")).scalar_one()
    assert detail == "Subject: \ufffdhello\ufffd"
    assert "\x00" not in facts and "Head" in facts
    assert tuple(letter) == ("INVALID\ufffdCODE", "refused: value \ufffd not allowed")
    assert reasons and all("\x00" not in reason for reason in reasons)
    # the next run reads the same text again: recognised, nothing queued twice
    again = runner()
    assert again.counts["hubspot"].decided == 0


def test_given_300_kb_of_crm_text_when_stored_then_it_is_kept_whole_and_an_email_that_long_is_none(
    runner: Runner, store: Store
) -> None:
    huge = "Ab\u00e9 " * 75_000  # 300 KB (the common model strips the trailing space)
    crm = runner.crms["hubspot"]
    crm.add_contact("long-mail", "x" * 300_000 + "@example.fr", company=ICP, job_title=huge)
    crm.add_activity("huge-1", "content_download", NOW - timedelta(days=1), ["long-mail"], huge)

    assert runner().status == "completed"

    assert crm.stage_of("long-mail") == "lead"
    with store.begin() as db:
        assert db.execute(select(contacts.c.email).where(contacts.c.crm_id == "long-mail")).scalar_one() is None
        assert (
            db.execute(select(activities.c.detail).where(activities.c.crm_id == "huge-1")).scalar_one() == huge.strip()
        )


def test_a_store_made_by_the_first_schema_takes_long_ids_once_migrated(store_url: str) -> None:
    engine = create_store_engine(store_url)
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
    engine.dispose()

    store = open_store(store_url)
    try:
        with store.begin() as db:
            db.execute(
                text(
                    "INSERT INTO job_contacts (job, connection, crm_id, dirty, attempts) VALUES ('j', 'c', :id, true, 0)"
                ),
                {"id": FORM_SUBMISSION_ID},
            )
            assert db.execute(text("SELECT crm_id FROM job_contacts")).scalar_one() == FORM_SUBMISSION_ID
            head = ScriptDirectory.from_config(config).get_current_head()  # the newest revision, whichever it is
            assert db.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == head
    finally:
        store.close()


_ = new_crm
