"""A Salesforce mapping cannot name a company object: a Contact's company is its Account's parent fields."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.config import SalesforceConnection
from connector.errors import ConfigError
from connector.mapping import load_mapping
from connector.salesforce.client import SalesforceClient

ROOT = Path(__file__).resolve().parents[2]


def test_a_company_section_in_a_salesforce_mapping_is_refused_with_what_to_do(tmp_path: Path) -> None:
    text = (ROOT / "mappings" / "salesforce.toml").read_text()
    text = text.replace(
        '[people.Contact.fields]',
        '[people.Contact.company]\nobject = "Account"\n[people.Contact.company.fields]\n"company.name" = "Name"\n\n'
        "[people.Contact.fields]",
    )
    path = tmp_path / "salesforce.toml"
    path.write_text(text)
    settings = SalesforceConnection(type="salesforce", instance_url="https://example.my.salesforce.com")

    with pytest.raises(ConfigError) as error:
        SalesforceClient("salesforce", settings, load_mapping(path), api=None)  # type: ignore[arg-type]

    assert "people.Contact.company" in str(error.value) and "Account.*" in str(error.value)
