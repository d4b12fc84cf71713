"""``validate --remote``: the mapping against the sandbox org's describe."""

from __future__ import annotations

import tomllib
from typing import Any

from connector.mapping import CrmMapping, MappingFile
from connector.sandbox.salesforce import SalesforceSandbox
from tests.salesforce.conftest import ROOT, ClientFactory


def mapping_with(change: Any) -> CrmMapping:
    data = tomllib.loads((ROOT / "mappings" / "salesforce.toml").read_text())
    change(data)
    return CrmMapping(MappingFile.model_validate(data), "mappings/salesforce.toml")


def test_shipped_mapping_matches_the_org(sandbox: SalesforceSandbox, make_client: ClientFactory) -> None:
    client = make_client(sandbox)
    assert client.check_schema() == []
    assert client.usage().calls["describe"] >= 2


def test_problems_name_file_key_and_fix(sandbox: SalesforceSandbox, make_client: ClientFactory) -> None:
    def break_it(data: dict[str, Any]) -> None:
        data["stage"]["values"]["mql"] = "Marketing Qualified"
        data["stage"]["reason_field"] = "Stage_Why__c"
        data["people"]["Contact"]["fields"]["job_title"] = "Job__c"
        data["people"]["Contact"]["fields"]["company.name"] = "Acount.Name"
        data["activities"][0]["when"]["Call_Result__c"] = "ok"

    client = make_client(sandbox)
    client.mapping = mapping_with(break_it)
    problems = {(p.key, p.message) for p in client.check_schema()}
    keys = {key for key, _ in problems}
    assert "stage.values.mql" in keys
    assert "stage.reason_field" in keys
    assert "people.Contact.fields.job_title" in keys
    assert "people.Contact.fields.company.name" in keys
    assert "activities[0]" in keys
    mql = sorted(message for key, message in problems if key == "stage.values.mql")
    assert [m.split(" (")[0] for m in mql] == [
        "'Marketing Qualified' is not an active value of Contact.Lifecycle_Stage__c",
        "'Marketing Qualified' is not an active value of Lead.Lifecycle_Stage__c",
    ]
    assert all("docs/salesforce.md" in m for m in mql)


def test_stage_field_missing_or_read_only(sandbox: SalesforceSandbox, make_client: ClientFactory) -> None:
    client = make_client(sandbox)
    client.mapping = mapping_with(lambda data: data["stage"].update(field="IsConverted", reason_field=None))
    messages = [p.message for p in client.check_schema() if p.key == "stage.field"]
    assert any("not a picklist" in m for m in messages)
    assert any("not writable" in m for m in messages)
    assert any("Contact has no field IsConverted" in m for m in messages)
