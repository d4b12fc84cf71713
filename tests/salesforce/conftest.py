"""Fixtures for the Salesforce tier: the sandbox org over loopback TLS and clients of it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from connector.config import SalesforceConnection
from connector.mapping import CrmMapping, load_mapping
from connector.salesforce.client import SalesforceClient
from connector.sandbox.salesforce import SalesforceSandbox, SandboxLimits
from connector.sandbox.salesforce.org import format_datetime

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)

ClientFactory = Callable[..., SalesforceClient]


@pytest.fixture(scope="session")
def mapping() -> CrmMapping:
    return load_mapping(ROOT / "mappings" / "salesforce.toml")


@pytest.fixture
def org_clock() -> list[datetime]:
    """The sandbox org's clock: tests move ``org_clock[0]``."""
    return [datetime(2026, 11, 20, 12, 0, tzinfo=UTC)]


@pytest.fixture
def sandbox(org_clock: list[datetime]) -> Iterator[SalesforceSandbox]:
    """An empty org (tests add the records they need), small pages."""
    with SalesforceSandbox(limits=SandboxLimits(page_size=5), clock=lambda: org_clock[0]) as org:
        yield org


@pytest.fixture(scope="module")
def seeded() -> Iterator[SalesforceSandbox]:
    """An org seeded from the shared generator (read-only tests)."""
    with SalesforceSandbox(people=120, activities=900, seed=11, now=datetime(2026, 11, 20, tzinfo=UTC),
                           limits=SandboxLimits(page_size=50)) as org:  # fmt: skip
        yield org


@pytest.fixture
def make_client(monkeypatch: pytest.MonkeyPatch, mapping: CrmMapping) -> Iterator[ClientFactory]:
    clients: list[SalesforceClient] = []

    def build(org: SalesforceSandbox, *, auth: str = "client_credentials", **overrides: Any) -> SalesforceClient:
        for name, value in org.secrets_env(auth).items():
            monkeypatch.setenv(name, value)
        overrides.setdefault("lookback_seconds", 0)
        settings = SalesforceConnection(**org.connection_settings(auth=auth, **overrides))
        client = SalesforceClient.from_settings("salesforce", settings, mapping)
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.close()


def stamp(offset_seconds: int = 0) -> str:
    return format_datetime(T0 + timedelta(seconds=offset_seconds))


def add_contact(org: SalesforceSandbox, n: int, *, modstamp: str | None = None, stage: str | None = None,
                industry: str = "Shipping", employees: int = 120) -> str:  # fmt: skip
    at = modstamp or stamp(n)
    # the Account is created with its Contact (an Account stamped later is an Account edit: its Contacts are read again)
    account = org.org.insert(
        "Account", {"Name": f"Account {n}", "Website": f"acct{n}.example.com", "NumberOfEmployees": employees,
                    "Industry": industry, "CreatedDate": at, "LastModifiedDate": at, "SystemModstamp": at},
    )  # fmt: skip
    return org.org.insert(
        "Contact",
        {"AccountId": account, "FirstName": "Ann", "LastName": f"Person{n}", "Email": f"ann.{n}@acct{n}.example.com",
         "Title": "Logistics Manager", "MailingCountry": "FR", "Lifecycle_Stage__c": stage,
         "CreatedDate": at, "LastModifiedDate": at, "SystemModstamp": at},
    )  # fmt: skip


def add_lead(org: SalesforceSandbox, n: int, *, modstamp: str | None = None, email: str | None = None,
             converted_to: str | None = None, stage: str | None = None) -> str:  # fmt: skip
    at = modstamp or stamp(n)
    return org.org.insert(
        "Lead",
        {"FirstName": "Leo", "LastName": f"Lead{n}", "Email": email or f"leo.{n}@lead{n}.example.com",
         "Title": "Fleet Manager", "Company": f"Lead Co {n}", "Website": f"lead{n}.example.com",
         "NumberOfEmployees": 40, "Industry": "Transportation", "Country": "DE",
         "IsConverted": converted_to is not None, "ConvertedContactId": converted_to,
         "Status": "Closed - Converted" if converted_to else "Open - Not Contacted",
         "Lifecycle_Stage__c": stage, "CreatedDate": at, "LastModifiedDate": at, "SystemModstamp": at},
    )  # fmt: skip


def add_task(
    org: SalesforceSandbox, who: str | None, n: int, *, kind: str = "call", modstamp: str | None = None
) -> str:
    subtype, task_type, disposition = {
        "call": ("Call", "Call", "Connected"),
        "reply": ("Email", "Email Reply", None),
        "other": ("Task", "Other", None),
    }[kind]
    at = modstamp or stamp(n)
    return org.org.insert(
        "Task",
        {"WhoId": who, "Subject": f"Task {n}", "TaskSubtype": subtype, "Type": task_type,
         "CallDisposition": disposition, "Status": "Completed", "CompletedDateTime": stamp(n),
         "ActivityDate": stamp(n)[:10], "CreatedDate": at, "LastModifiedDate": at, "SystemModstamp": at},
    )  # fmt: skip
