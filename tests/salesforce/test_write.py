"""Write-back through sObject collections: batches of 200, allOrNone false, per-record results in order."""

from __future__ import annotations

import pytest

from connector.crm import StageUpdate, WriteOutcome
from connector.model import Stage
from connector.sandbox.salesforce import SalesforceSandbox
from tests.salesforce.conftest import ClientFactory, add_contact, add_lead


def update(record_id: str, object_type: str, value: str = "MQL", **extra: str) -> StageUpdate:
    return StageUpdate(
        crm_id=record_id,
        object_type=object_type,
        stage=Stage.MQL,
        fields={"Lifecycle_Stage__c": value, "Lifecycle_Stage_Date__c": "2026-11-02", **extra},
    )


def test_partial_failures_keep_order_and_codes(sandbox: SalesforceSandbox, make_client: ClientFactory) -> None:
    contact = add_contact(sandbox, 1)
    lead = add_lead(sandbox, 2)
    converted = add_lead(sandbox, 3, converted_to=contact)
    other = add_contact(sandbox, 4)
    client = make_client(sandbox)
    results = client.write_stages(
        [
            update(contact, "Contact"),
            update(converted, "Lead"),
            update(lead, "Lead", "Not a stage"),
            update(other, "Contact", Lifecycle_Stage_Reason__c="x" * 300),
            update(lead, "Lead", "SQL"),
        ]
    )
    assert [r.crm_id for r in results] == [contact, converted, lead, other, lead]
    assert [r.outcome for r in results] == [
        WriteOutcome.WRITTEN,
        WriteOutcome.REJECTED,
        WriteOutcome.REJECTED,
        WriteOutcome.REJECTED,
        WriteOutcome.WRITTEN,
    ]
    assert [r.code for r in results[1:4]] == [
        "CANNOT_UPDATE_CONVERTED_LEAD",
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        "STRING_TOO_LONG",
    ]
    assert client.usage().calls["composite/sobjects"] == 1
    assert sandbox.org.get("Contact", contact)["Lifecycle_Stage__c"] == "MQL"  # type: ignore[index]
    assert sandbox.org.get("Lead", lead)["Lifecycle_Stage__c"] == "SQL"  # type: ignore[index]
    assert sandbox.org.get("Lead", converted)["Lifecycle_Stage__c"] is None  # type: ignore[index]


def test_writes_go_in_calls_of_200(sandbox: SalesforceSandbox, make_client: ClientFactory) -> None:
    ids = [add_contact(sandbox, n) for n in range(450)]
    client = make_client(sandbox)
    results = client.write_stages([update(i, "Contact") for i in ids])
    assert len(results) == 450
    assert all(r.outcome is WriteOutcome.WRITTEN for r in results)
    assert client.usage().calls["composite/sobjects"] == 3
    assert sandbox.log.counts["composite/sobjects"] == 3


def test_a_written_record_is_pulled_again_with_its_new_value(
    sandbox: SalesforceSandbox, make_client: ClientFactory, org_clock: list
) -> None:
    ids = [add_contact(sandbox, n) for n in range(3)]
    client = make_client(sandbox)
    cursor = [page.cursor for page in client.pull_contacts(None)][-1]
    client.write_stages([update(ids[1], "Contact", "SQL")])
    again = [r for page in client.pull_contacts(cursor) for r in page.records]
    assert [(r.crm_id, r.stage_values["Lifecycle_Stage__c"]) for r in again] == [(ids[1], "SQL")]


def test_locked_row_is_retried_in_the_call(sandbox: SalesforceSandbox, make_client: ClientFactory) -> None:
    first, second = add_contact(sandbox, 1), add_contact(sandbox, 2)
    sandbox.faults.lock_rows([second], times=1)
    client = make_client(sandbox)
    results = client.write_stages([update(first, "Contact"), update(second, "Contact")])
    assert [r.outcome for r in results] == [WriteOutcome.WRITTEN, WriteOutcome.WRITTEN]
    assert client.usage().calls["composite/sobjects"] == 2  # the second call re-sends only the locked record
    assert client.usage().retries == 1


def test_a_row_that_stays_locked_is_left_for_a_later_run(
    sandbox: SalesforceSandbox, make_client: ClientFactory
) -> None:
    record = add_contact(sandbox, 1)
    sandbox.faults.lock_rows([record], times=10)
    results = make_client(sandbox).write_stages([update(record, "Contact")])
    assert results[0].outcome is WriteOutcome.RETRY
    assert results[0].code == "UNABLE_TO_LOCK_ROW"


@pytest.mark.parametrize("all_or_none", [False, True], ids=["partial", "all-or-none"])
def test_sandbox_collections_all_or_none(
    sandbox: SalesforceSandbox, make_client: ClientFactory, all_or_none: bool
) -> None:
    good, bad = add_contact(sandbox, 1), add_contact(sandbox, 2)
    client = make_client(sandbox)
    body = {
        "allOrNone": all_or_none,
        "records": [
            {"attributes": {"type": "Contact"}, "id": good, "Lifecycle_Stage__c": "Lead"},
            {"attributes": {"type": "Contact"}, "id": bad, "Lifecycle_Stage__c": "Nope"},
        ],
    }
    answer = client.api.call(
        "composite/sobjects", lambda sf: sf.restful("composite/sobjects", method="PATCH", json=body)
    )
    assert answer[0]["success"] is not all_or_none
    if all_or_none:
        assert answer[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert sandbox.org.get("Contact", good)["Lifecycle_Stage__c"] == (None if all_or_none else "Lead")  # type: ignore[index]


def test_sandbox_refuses_more_than_200_records(sandbox: SalesforceSandbox, make_client: ClientFactory) -> None:
    from connector.errors import ConfigError

    record = add_contact(sandbox, 1)
    client = make_client(sandbox)
    body = {"allOrNone": False, "records": [{"attributes": {"type": "Contact"}, "id": record}] * 201}
    with pytest.raises(ConfigError, match="EXCEEDED_ID_LIMIT"):
        client.api.call("composite/sobjects", lambda sf: sf.restful("composite/sobjects", method="PATCH", json=body))
