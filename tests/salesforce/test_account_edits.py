"""An Account edit re-reads its Contacts, incrementally, at one query per pull (the sandbox org over loopback)."""

from __future__ import annotations

import json
from datetime import timedelta

from connector.crm import ContactPage
from connector.salesforce.client import ACCOUNT
from connector.salesforce.cursor import Cursor
from connector.sandbox.salesforce import SalesforceSandbox
from tests.salesforce.conftest import ClientFactory, add_contact, stamp


def records(pages: list[ContactPage]) -> dict[str, tuple[str | None, int | None]]:
    """Contact id -> (industry, employees) as read."""
    found = {}
    for page in pages:
        for record in page.records:
            company = record.contact.company
            found[record.crm_id] = (company.industry, company.employees) if company else (None, None)
    return found


def add_colleague(org: SalesforceSandbox, account: str, n: int) -> str:
    at = stamp(n)
    return org.org.insert(
        "Contact",
        {"AccountId": account, "FirstName": "Zoë", "LastName": f"O'Brien-{n}", "Email": f"zoe.{n}@acct.example.com",
         "Title": "Directrice logistique <b>", "MailingCountry": "FR", "CreatedDate": at, "LastModifiedDate": at,
         "SystemModstamp": at},
    )  # fmt: skip


def queries(sandbox: SalesforceSandbox) -> int:
    return sandbox.log.counts["query"] + sandbox.log.counts["queryAll"]


def test_an_account_edit_re_reads_its_contacts_with_the_new_values_and_nothing_else(
    sandbox: SalesforceSandbox, make_client: ClientFactory, org_clock: list
) -> None:
    first = add_contact(sandbox, 1, industry="Technology", employees=4)
    account = str(sandbox.org.get("Contact", first)["AccountId"])  # type: ignore[index]
    colleague = add_colleague(sandbox, account, 2)
    other = add_contact(sandbox, 3, industry="Technology", employees=4)
    org_clock[0] += timedelta(minutes=1)
    client = make_client(sandbox)

    full = list(client.pull_contacts(None))
    assert set(records(full)) == {first, colleague, other}
    cursor = full[-1].cursor
    assert ACCOUNT in Cursor.decode(cursor).positions  # the first pull starts the Account scan

    # nothing changed: one query for the Accounts, on top of the Lead and Contact scans; nothing read again
    org_clock[0] += timedelta(minutes=1)
    before = queries(sandbox)
    quiet = list(client.pull_contacts(cursor))
    assert queries(sandbox) - before == 3
    assert records(quiet) == {}
    cursor = quiet[-1].cursor

    # a person edits the Account: its two Contacts come again with the new values, the other does not
    org_clock[0] += timedelta(minutes=1)
    with sandbox.org.lock:
        sandbox.org.touch("Account", account, {"Industry": "Shipping", "NumberOfEmployees": 500})
    org_clock[0] += timedelta(minutes=1)
    before = queries(sandbox)
    edited = list(client.pull_contacts(cursor))
    assert queries(sandbox) - before == 3
    assert records(edited) == {first: ("shipping", 500), colleague: ("shipping", 500)}
    cursor = edited[-1].cursor

    # the Account position moved past the edit: the next pull reads it no more
    org_clock[0] += timedelta(minutes=1)
    assert records(list(client.pull_contacts(cursor))) == {}


def test_the_account_scan_pages_and_its_cursor_moves_only_with_the_last_page(
    sandbox: SalesforceSandbox, make_client: ClientFactory, org_clock: list
) -> None:
    first = add_contact(sandbox, 1, industry="Technology", employees=4)
    account = str(sandbox.org.get("Contact", first)["AccountId"])  # type: ignore[index]
    colleagues = [add_colleague(sandbox, account, 10 + n) for n in range(11)]
    org_clock[0] += timedelta(minutes=1)
    client = make_client(sandbox)
    cursor = list(client.pull_contacts(None))[-1].cursor
    start = Cursor.decode(cursor).get(ACCOUNT)
    org_clock[0] += timedelta(minutes=1)
    with sandbox.org.lock:
        sandbox.org.touch("Account", account, {"NumberOfEmployees": 250})
    org_clock[0] += timedelta(minutes=1)

    pages = [page for page in client.pull_contacts(cursor) if page.records]

    assert [len(page.records) for page in pages] == [5, 5, 2]  # pages of 5: the Contacts of the Account
    assert set(records(pages)) == {first, *colleagues}
    assert all(Cursor.decode(page.cursor).get(ACCOUNT) == start for page in pages[:-1])
    assert Cursor.decode(pages[-1].cursor).get(ACCOUNT) != start


def test_a_cursor_stored_before_accounts_were_read_still_loads_and_catches_the_account_edits_since(
    sandbox: SalesforceSandbox, make_client: ClientFactory, org_clock: list
) -> None:
    first = add_contact(sandbox, 1, industry="Technology", employees=4)
    account = str(sandbox.org.get("Contact", first)["AccountId"])  # type: ignore[index]
    org_clock[0] += timedelta(minutes=1)
    client = make_client(sandbox)
    stored = json.loads(list(client.pull_contacts(None))[-1].cursor or "")
    stored.pop(ACCOUNT)  # as the previous version wrote it: Lead and Contact only
    org_clock[0] += timedelta(minutes=1)
    with sandbox.org.lock:
        sandbox.org.touch("Account", account, {"Industry": "Manufacturing"})
    org_clock[0] += timedelta(minutes=1)

    pages = list(make_client(sandbox).pull_contacts(json.dumps(stored)))

    # the Contact scan's start is where the Account edits are read from; the Account position is set
    assert records(pages) == {first: ("manufacturing", 4)}
    assert ACCOUNT in Cursor.decode(pages[-1].cursor).positions
