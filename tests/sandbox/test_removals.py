"""The generator's deletes and merges, and how each sandbox applies them the way its vendor does."""

from __future__ import annotations

from datetime import UTC, datetime

from connector.sandbox.generator import generate, removals
from connector.sandbox.hubspot.store import Store
from connector.sandbox.salesforce.org import Org
from connector.sandbox.salesforce.seed import SeedShape, apply_removals, seed_org
from connector.sandbox.salesforce.soql import parse

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def test_a_few_deletes_and_merges_per_thousand_deterministic_and_disjoint() -> None:
    found = removals(1000, seed=3)
    assert found == removals(1000, seed=3)
    assert sum(r.into is None for r in found) == 2 and sum(r.into is not None for r in found) == 2
    removed = [r.index for r in found]
    survivors = [r.into for r in found if r.into is not None]
    assert len(set(removed)) == len(removed) and not set(removed) & set(survivors)
    assert removals(100) == [] and len(removals(100_000)) == 400


def test_hubspot_archives_and_merges_keep_the_primary_id_and_list_the_merged_ones() -> None:
    store = Store()
    store.seed(generate(1000, 3000, seed=3, now=NOW))
    found = removals(1000, seed=3)
    assert store.apply_removals(found) == (2, 2)
    for removal in found:
        assert store.contact_index(store.contact_id(removal.index)) is None  # archived: no longer read
        if removal.into is not None:
            merged = store.get(removal.into, "hs_merged_object_ids") or ""
            assert str(store.contact_id(removal.index)) in merged.split(";")
            assert all(owner != removal.index for e in store.engagements.values() for owner in e.contact)
    assert len(store.archived) == 4


def test_salesforce_deletes_and_merges_show_only_in_query_all() -> None:
    org = Org(now=lambda: NOW)
    shape = SeedShape(lead_share=0.0, converted_share=0.0)  # every person a Contact: merges always possible
    seed_org(org, generate(1000, 3000, seed=3, now=NOW), seed=3, now=NOW, shape=shape)
    found = removals(1000, seed=3)
    assert apply_removals(org, found) == (2, 2)
    query = parse("SELECT Id, IsDeleted, MasterRecordId FROM Contact ORDER BY SystemModstamp, Id")
    live = org.run(query, "62.0").rows
    every = org.run(query, "62.0", include_deleted=True).rows
    assert len(every) - len(live) == 4
    table = org.tables["Contact"]
    gone = {row[0]: row[table.column["MasterRecordId"]] for row in every if row[table.column["IsDeleted"]]}
    expected = {org.person_ids[r.index]: (org.person_ids[r.into] if r.into is not None else None) for r in found}
    assert gone == expected
    who = org.tables["Task"].column["WhoId"]
    merged = {victim for victim, survivor in gone.items() if survivor}
    assert not {row[who] for row in org.tables["Task"].rows} & merged  # their activities follow the survivor
