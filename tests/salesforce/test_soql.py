"""The sandbox's SOQL subset: parsing (lark) and evaluation against the org's records."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from simple_salesforce import format_soql

from connector.sandbox.salesforce.org import Org
from connector.sandbox.salesforce.soql import And, Compare, In, Not, Or, SoqlError, parse


def test_parses_what_the_client_sends() -> None:
    at = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
    text = format_soql(
        "SELECT Id, Campaign.Type FROM CampaignMember WHERE (SystemModstamp > {t} OR (SystemModstamp = {t} "
        "AND Id > {id})) ORDER BY SystemModstamp, Id",
        t=at,
        id="00v5g0000000001AAA",
    )
    query = parse(text)
    assert query.sobject == "CampaignMember"
    assert [str(path) for path in query.fields] == ["Id", "Campaign.Type"]
    assert isinstance(query.where, Or)
    first, second = query.where.items
    assert first == Compare(first.path, ">", "2026-11-02T09:30:00.000+0000")
    assert isinstance(second, And)
    assert [str(item.path) for item in query.order] == ["SystemModstamp", "Id"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("select Id from Lead where Status in ('A', 'B')", In),
        ("SELECT Id FROM Lead WHERE NOT Email = null", Not),
        ("SELECT Id FROM Lead WHERE Status NOT IN ('A')", In),
        ("SELECT Id FROM Lead WHERE CreatedDate >= 2026-01-01T00:00:00Z", Compare),
        ("SELECT Id FROM Lead WHERE CreatedDate < 2026-01-01T02:00:00.000+0200", Compare),
    ],
    ids=["in", "not", "not-in", "datetime-z", "datetime-offset"],
)
def test_condition_shapes(text: str, expected: type) -> None:
    assert isinstance(parse(text).where, expected)


def test_datetime_literals_are_normalised_to_utc() -> None:
    where = parse("SELECT Id FROM Lead WHERE CreatedDate < 2026-01-01T02:00:00+02:00").where
    assert isinstance(where, Compare)
    assert where.value == "2026-01-01T00:00:00.000+0000"


@pytest.mark.parametrize(
    "text",
    ["SELECT FROM Lead", "SELECT Id FROM Lead WHERE", "SELECT Id FROM Lead WHERE Email = 'open", "DELETE FROM Lead"],
    ids=["no-fields", "empty-where", "open-quote", "not-select"],
)
def test_malformed(text: str) -> None:
    with pytest.raises(SoqlError) as caught:
        parse(text)
    assert caught.value.code == "MALFORMED_QUERY"


@pytest.fixture
def org() -> Org:
    org = Org(now=lambda: datetime(2026, 11, 20, tzinfo=UTC))
    campaign = org.insert("Campaign", {"Name": "Webinar: TMS", "Type": "Webinar"})
    for n, (status, stamp) in enumerate(
        [("Registered", "2026-11-01T00:00:00.000+0000"), ("Attended", "2026-11-01T00:00:00.000+0000"),
         ("Sent", "2026-11-02T00:00:00.000+0000"), ("Attended", "2026-11-03T00:00:00.000+0000")]
    ):  # fmt: skip
        org.insert(
            "CampaignMember",
            {"CampaignId": campaign, "Status": status, "HasResponded": status == "Attended",
             "SystemModstamp": stamp, "CreatedDate": stamp, "LastModifiedDate": stamp},
        )  # fmt: skip
        del n
    return org


def ids(org: Org, text: str) -> list[str]:
    result = org.run(parse(text), "62.0")
    return [row[0] for row in result.rows]


def test_where_and_or_parentheses(org: Org) -> None:
    rows = ids(
        org,
        "SELECT Id FROM CampaignMember WHERE (Status = 'attended' OR Status = 'Sent') "
        "AND SystemModstamp > 2026-11-01T00:00:00Z",
    )
    assert len(rows) == 2  # text compares case-insensitively, like SOQL


def test_parent_fields_and_render(org: Org) -> None:
    result = org.run(
        parse("SELECT Id, Campaign.Type, Campaign.Name FROM CampaignMember WHERE Campaign.Type = 'Webinar'"), "62.0"
    )
    assert len(result.rows) == 4
    record = result.render(result.rows[0], "62.0")
    assert record["Campaign"]["Type"] == "Webinar"
    assert record["attributes"]["type"] == "CampaignMember"
    assert record["attributes"]["url"].startswith("/services/data/v62.0/sobjects/CampaignMember/")


def test_order_limit_offset(org: Org) -> None:
    everything = ids(org, "SELECT Id FROM CampaignMember ORDER BY SystemModstamp DESC, Id")
    assert everything[0] == ids(org, "SELECT Id FROM CampaignMember WHERE SystemModstamp = 2026-11-03T00:00:00Z")[0]
    assert (
        ids(org, "SELECT Id FROM CampaignMember ORDER BY SystemModstamp DESC, Id LIMIT 2 OFFSET 1") == everything[1:3]
    )


def test_in_and_booleans(org: Org) -> None:
    assert len(ids(org, "SELECT Id FROM CampaignMember WHERE Status IN ('Registered', 'Sent')")) == 2
    assert len(ids(org, "SELECT Id FROM CampaignMember WHERE HasResponded = true")) == 2
    assert len(ids(org, "SELECT Id FROM CampaignMember WHERE Status LIKE 'att%'")) == 2


@pytest.mark.parametrize(
    "text",
    [
        "SELECT Nope FROM CampaignMember",
        "SELECT Id, Nope.Type FROM CampaignMember",
        "SELECT Id FROM CampaignMember WHERE SystemModstamp > '2026-01-01'",
    ],
    ids=["unknown-field", "unknown-relationship", "quoted-datetime"],
)
def test_invalid_field(org: Org, text: str) -> None:
    with pytest.raises(SoqlError) as caught:
        org.run(parse(text), "62.0")
    assert caught.value.code == "INVALID_FIELD"


def test_unknown_object(org: Org) -> None:
    with pytest.raises(SoqlError) as caught:
        org.run(parse("SELECT Id FROM Opportunity"), "62.0")
    assert caught.value.code == "INVALID_TYPE"
