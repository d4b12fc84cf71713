"""The Salesforce client behind the common :class:`~connector.crm.CrmClient` protocol.

Reads: one SOQL query per object, ``ORDER BY SystemModstamp, Id``, resumed
from the cursor with the ``Id`` tie-breaker (``SystemModstamp`` is not
unique) and a lookback (it can commit late), following ``nextRecordsUrl``
page by page (up to 2,000 records each). Leads and Contacts are people;
converted Leads are followed to their Contact and never written.
Tasks, Events and CampaignMembers are activities. A Contact's company is
its Account (``Account.*`` parent fields): an Account edited since the last
pull re-reads its Contacts with one query (a parent-field filter), so they
are decided again with the new values.

Writes: sObject collections ``PATCH composite/sobjects``, 200 records a
call, ``allOrNone`` false, one result per record in request order.
Bulk API 2.0 is not used (the sandbox does not emulate it); large change
sets go out as collections of 200.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from pydantic import ValidationError
from simple_salesforce import format_soql

from connector.crm import (
    ActivityPage,
    ActivityRecord,
    ApiUsage,
    ContactPage,
    ContactRecord,
    RemovedRecord,
    SkippedRecord,
    SkipReason,
    StageUpdate,
    WriteCode,
    WriteOutcome,
    WriteResult,
)
from connector.errors import ConfigError, NotFound, Problem, TransientError
from connector.http.read_ahead import read_ahead
from connector.mapping import CrmMapping
from connector.salesforce.cursor import Cursor, Position, resume_from
from connector.salesforce.errors import RECORD_RETRY_CODES, QueryLocatorExpired
from connector.salesforce.normalise import (
    ACTIVITY_OBJECTS,
    PERSON_OBJECTS,
    Instants,
    activity_fields,
    activity_record,
    converted_to,
    person_fields,
    person_record,
    removed_record,
)
from connector.salesforce.payloads import QueryPage, SaveResult, SObjectDescribe, flatten
from connector.salesforce.schema import schema_problems
from connector.salesforce.settings import SalesforceConnection
from connector.salesforce.transport import Operation, SalesforceApi, Secrets

log = logging.getLogger(__name__)

_FIELD_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
ACCOUNT = "Account"
"""The cursor key of the Account scan: Contacts whose Account changed since it are read again."""
READ_AHEAD_PAGES = 4
"""Pages of a scan fetched ahead of the caller (up to 2,000 records each, a few MB held)."""
_LOCK_RETRIES = 3
"""Extra collections calls for records that failed with UNABLE_TO_LOCK_ROW before they are left to a later run."""


def incremental_soql(sobject: str, fields: Sequence[str], since: Position | None) -> str:
    """The query for records of ``sobject`` after ``since`` in ``(SystemModstamp, Id)`` order.

    Field and object names come from the mapping: they are checked to be
    plain (dotted) identifiers and inserted as literals; values go through
    ``format_soql``'s quoting.
    """
    for name in (sobject, *fields):
        if not _FIELD_PATH.match(name):
            raise ConfigError(f"{name!r} is not a Salesforce field or object name")
    select = format_soql("SELECT {:literal} FROM {:literal}", ", ".join(fields), sobject)
    order = " ORDER BY SystemModstamp, Id"
    if since is None:
        return select + order
    if not since.id:
        return select + format_soql(" WHERE SystemModstamp >= {}", since.stamp) + order
    where = format_soql(
        " WHERE (SystemModstamp > {stamp} OR (SystemModstamp = {stamp} AND Id > {id}))",
        stamp=since.stamp,
        id=since.id,
    )
    return select + where + order


def account_contacts_soql(fields: Sequence[str], since: Position, after_id: str | None = None) -> str:
    """The Contacts whose Account changed at or after ``since`` (``Account.SystemModstamp``), in ``Id`` order,
    after ``after_id`` when a query locator expired: one query whatever the number of Accounts (a parent-field
    filter, so no Account ids travel in the URL)."""
    for name in fields:
        if not _FIELD_PATH.match(name):
            raise ConfigError(f"{name!r} is not a Salesforce field or object name")
    soql = format_soql(
        "SELECT {:literal} FROM Contact WHERE Account.SystemModstamp >= {}", ", ".join(fields), since.stamp
    )
    if after_id:
        soql += format_soql(" AND Id > {}", after_id)
    return soql + " ORDER BY Id"


class SalesforceClient:
    """Pulls Leads, Contacts and their activities; writes stage fields with sObject collections."""

    write_batch_size = 200

    def __init__(self, name: str, settings: SalesforceConnection, mapping: CrmMapping, api: SalesforceApi) -> None:
        if mapping.crm != "salesforce":
            raise ConfigError(f"connection {name!r}: {mapping.source} is not a Salesforce mapping")
        with_company = [obj for obj in mapping.people if mapping.company_object(obj)]
        if with_company:
            # a Contact's company is its Account, read with the query's parent fields (Account.Industry...)
            raise ConfigError(
                f"{mapping.source}: people.{with_company[0]}.company is not read from Salesforce; "
                "map Account.* parent fields instead"
            )
        self.connection = name
        self.settings = settings
        self.mapping = mapping
        self.api = api
        self.lookback = timedelta(seconds=settings.lookback_seconds)
        self._instant = Instants()
        self._converted: dict[str, str] = {}
        """Converted Lead id -> Contact id, learnt while pulling people."""
        self._scan_started: dict[str, datetime | None] = {}
        """Per object: the org's clock when this client's last scan of it began (``None``: no ``Date`` came)."""
        self._dates = threading.local()
        """Per thread: the ``Date`` header of the last answer (the org's clock; reads run ahead in a thread)."""
        session = getattr(api, "session", None)
        if session is not None:
            session.hooks["response"].append(self._note_date)

    @classmethod
    def from_settings(
        cls, name: str, settings: SalesforceConnection, mapping: CrmMapping, *, environ: Mapping[str, str] | None = None
    ) -> SalesforceClient:
        """A client for ``settings``; secrets are read from the variables it names (in ``environ``,
        default the process environment)."""
        return cls(name, settings, mapping, SalesforceApi(settings, Secrets.from_settings(settings, environ)))

    def __repr__(self) -> str:
        return f"SalesforceClient({self.connection!r}, {self.settings.instance_url!r})"

    # -- reading -----------------------------------------------------------------
    def _note_date(self, response: Any, *args: Any, **kwargs: Any) -> None:
        self._dates.last = response.headers.get("Date")

    def _org_clock(self) -> datetime | None:
        """The org's clock at the last answer on this thread (its ``Date`` header), if it sent one."""
        text = getattr(self._dates, "last", None)
        if not text:
            return None
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)

    def _pages(
        self, sobject: str, fields: list[str], since: Position | None, *, deleted: bool = False
    ) -> Iterator[tuple[datetime | None, list[dict[str, Any]]]]:
        """Pages of flattened records after ``since``, in ``(SystemModstamp, Id)`` order, each with the
        org's clock when the scan began (the first ``query`` answer's ``Date``; ``None`` if none came).

        The next pages are fetched while the caller works on the current one
        (up to :data:`READ_AHEAD_PAGES` ahead, same calls). If a query locator expires mid-way, the
        query is re-issued from the last record handed out with the exact
        tie-breaker: nothing is missed or repeated. ``deleted``: read with
        ``queryAll`` (same calls), so deleted and merged-away rows come too.
        """
        parents = tuple(dict.fromkeys(name.split(".")[0] for name in fields if "." in name))
        fetched = read_ahead(
            self._fetched(sobject, fields, since, deleted), depth=READ_AHEAD_PAGES, name="salesforce-read-ahead"
        )
        for page in fetched:
            if page.records:
                yield self._scan_started.get(sobject), [flatten(record, parents) for record in page.records]

    def _fetched(self, sobject: str, fields: list[str], since: Position | None, deleted: bool) -> Iterator[QueryPage]:
        """The answers of one scan, in order, made by the read-ahead thread: the ``query``, then each
        ``query_more`` its predecessor names; a re-query from the last record fetched when a locator expired."""
        last: Position | None = None
        self._dates.last = None
        page = self._query(incremental_soql(sobject, fields, since), deleted)
        # a re-query after an expired locator keeps this (earlier) start: resuming from it is safe
        self._scan_started[sobject] = self._org_clock()
        while True:
            if page.records:
                tail = page.records[-1]
                last = Position(self._instant(tail["SystemModstamp"]), str(tail["Id"]))
            yield page
            if page.done or not page.next_records_url:
                return
            try:
                page = self._query_more(page.next_records_url)
            except QueryLocatorExpired:
                log.warning("query locator expired; re-querying", extra={"event": "requery", "sobject": sobject})
                page = self._query(incremental_soql(sobject, fields, last or since), deleted)

    def _query(self, soql: str, deleted: bool = False) -> QueryPage:
        # counted as "query" either way: one SOQL query call, whichever resource answers it
        path = "queryAll/" if deleted else "query/"
        return self.api.send_parsed(Operation("query", path, params={"q": soql}), _query_page)

    def _query_more(self, url: str) -> QueryPage:
        return self.api.send_parsed(Operation("query_more", url, next_url=True), _query_page)

    def _patch(self, body: dict[str, Any]) -> list[SaveResult]:
        answer = self.api.send(Operation("composite/sobjects", "composite/sobjects", "PATCH", body=body)) or []
        return [SaveResult.model_validate(item) for item in answer]

    def _start(self, cursor: Cursor, sobject: str) -> Position | None:
        return resume_from(cursor, sobject, self.lookback)

    def pull_contacts(self, cursor: str | None) -> Iterator[ContactPage]:
        """Leads and Contacts changed since ``cursor``, then the Contacts whose Account changed since it."""
        start = Cursor.decode(cursor)
        since = self._accounts_since(start)
        first = since is None and bool(self._account_fields())
        self._scan_started.pop("Contact", None)
        after = start
        for page, moved in self._people_pages(start):
            started = self._scan_started.get("Contact")
            if first and started is not None:
                # a first or full pull reads every Contact with its Account as it is: the Account scan starts
                # at the Contact scan's start (without an org clock, the next pull resumes from the Contact
                # position), carried from the Contact scan's first page on, so a resumed pull keeps it too
                moved = moved.advanced(ACCOUNT, Position(started, ""), started)
                page = page.model_copy(update={"cursor": moved.encode()})
            yield page
            after = moved
        started = self._scan_started.get("Contact")
        if first and started is not None and after.get(ACCOUNT) is None:
            # the Contact scan found nothing: the Account scan still starts there
            yield ContactPage(records=(), cursor=after.advanced(ACCOUNT, Position(started, ""), started).encode())
        if since is not None:
            yield from self._account_contacts(after, since)

    def _account_fields(self) -> list[str]:
        """The ``Account.*`` fields the Contact mapping reads (none: Account edits change nothing we read)."""
        if "Contact" not in self.mapping.people:
            return []
        return [name for name in person_fields(self.mapping, "Contact") if name.startswith(f"{ACCOUNT}.")]

    def _accounts_since(self, state: Cursor) -> Position | None:
        """Where the Account scan resumes: its own position (the scan-start rule); for a cursor written before
        the client read Accounts, the Contact scan's resume point (the Contacts read then had their Account as
        it was then); ``None`` on a first or full pull (every Contact is read with its Account as it is)."""
        if not self._account_fields():
            return None
        if state.get(ACCOUNT) is not None:
            return self._start(state, ACCOUNT)
        return self._start(state, "Contact")

    def _account_contacts(self, state: Cursor, since: Position) -> Iterator[ContactPage]:
        """The Contacts whose Account changed since ``since``, read again with the Account's new values (a
        Contact whose normalised record is unchanged is not decided again: the store compares). One query
        (plus its pages) per pull, empty when no Account changed. The Account position moves to the scan's
        start only with the last page, so a cursor never claims Contacts not yet handed out."""
        person = person_fields(self.mapping, "Contact")
        parents = tuple(dict.fromkeys(name.split(".")[0] for name in person if "." in name))
        self._dates.last = None
        page = self._query(account_contacts_soql(person, since))
        started = self._org_clock()
        # without the org's clock, the next scan resumes from the last Contact read less the lookback
        moved = Position(started, "") if started is not None else state.get("Contact")
        last_id: str | None = None
        while True:
            people: list[ContactRecord] = []
            skipped: list[SkippedRecord] = []
            for raw in page.records:
                values = flatten(raw, parents)
                last_id = str(values["Id"])
                try:
                    people.append(person_record("Contact", values, self.mapping, self._instant))
                except ValueError as error:
                    skipped.append(SkippedRecord.from_error(last_id, error))
            done = page.done or not page.next_records_url
            if done and moved is not None:
                state = state.advanced(ACCOUNT, moved, started)
            if people or skipped or done:
                yield ContactPage(records=tuple(people), cursor=state.encode(), skipped=tuple(skipped))
            if done:
                return
            try:
                assert page.next_records_url is not None
                page = self._query_more(page.next_records_url)
            except QueryLocatorExpired:
                log.warning("query locator expired; re-querying", extra={"event": "requery", "sobject": ACCOUNT})
                page = self._query(account_contacts_soql(person, since, last_id))

    def _people_pages(self, state: Cursor) -> Iterator[tuple[ContactPage, Cursor]]:
        """Leads then Contacts changed since ``state`` (``queryAll``), each page with the cursor after it."""
        for sobject in PERSON_OBJECTS:
            if sobject not in self.mapping.people:
                continue
            fields = person_fields(self.mapping, sobject)
            for started, records in self._pages(sobject, fields, self._start(state, sobject), deleted=True):
                people: list[ContactRecord] = []
                skipped: list[SkippedRecord] = []
                removed: list[RemovedRecord] = []
                for values in records:
                    record_id = str(values["Id"])
                    gone = removed_record(values)
                    if gone is not None:
                        removed.append(gone)
                        continue
                    contact_id = converted_to(values) if sobject == "Lead" else None
                    if contact_id is not None:
                        self._converted[record_id] = contact_id
                        skipped.append(
                            SkippedRecord(
                                crm_id=record_id,
                                reason=f"converted lead: followed to Contact {contact_id}",
                                code=SkipReason.CONVERTED_LEAD,
                            )
                        )
                        continue
                    try:
                        people.append(person_record(sobject, values, self.mapping, self._instant))
                    except ValueError as error:
                        skipped.append(SkippedRecord.from_error(record_id, error))
                tail = records[-1]
                position = Position(self._instant(tail["SystemModstamp"]), str(tail["Id"]))
                state = state.advanced(sobject, position, started)
                page = ContactPage(
                    records=tuple(people), cursor=state.encode(), skipped=tuple(skipped), removed=tuple(removed)
                )
                yield page, state

    def pull_activities(self, cursor: str | None) -> Iterator[ActivityPage]:
        state = Cursor.decode(cursor)
        objects = [name for name in ACTIVITY_OBJECTS if self.mapping.activity_rules(name)]
        objects += [name for name in self.mapping.activity_objects() if name not in objects]
        for sobject in objects:
            fields = activity_fields(self.mapping, sobject)
            for started, records in self._pages(sobject, fields, self._start(state, sobject)):
                activities: list[ActivityRecord] = []
                skipped: list[SkippedRecord] = []
                unmapped = 0
                for values in records:
                    try:
                        record = activity_record(sobject, values, self.mapping, self._follow, self._instant)
                    except ValueError as error:
                        skipped.append(SkippedRecord.from_error(str(values["Id"]), error))
                        continue
                    if record is None:
                        unmapped += 1
                    else:
                        activities.append(record)
                tail = records[-1]
                position = Position(self._instant(tail["SystemModstamp"]), str(tail["Id"]))
                state = state.advanced(sobject, position, started)
                yield ActivityPage(
                    records=tuple(activities), cursor=state.encode(), skipped=tuple(skipped), unmapped=unmapped
                )

    def _follow(self, person_id: str) -> str:
        return self._converted.get(person_id, person_id)

    # -- writing -------------------------------------------------------------------
    def write_stages(self, updates: Sequence[StageUpdate]) -> list[WriteResult]:
        """One collections call per 200 updates (plus calls for rows that were locked)."""
        results: list[WriteResult | None] = [None] * len(updates)
        for start in range(0, len(updates), self.write_batch_size):
            self._write_batch(updates, list(range(start, min(start + self.write_batch_size, len(updates)))), results)
        return [result for result in results if result is not None]

    def _write_batch(
        self, updates: Sequence[StageUpdate], indexes: list[int], results: list[WriteResult | None]
    ) -> None:
        pending = indexes
        for attempt in range(_LOCK_RETRIES + 1):
            body = {
                "allOrNone": False,
                "records": [
                    {"attributes": {"type": updates[i].object_type}, "id": updates[i].crm_id, **updates[i].fields}
                    for i in pending
                ],
            }
            try:
                saved = self._patch(body)
            except TransientError as error:
                for i in pending:
                    results[i] = WriteResult(
                        crm_id=updates[i].crm_id,
                        outcome=WriteOutcome.RETRY,
                        code=WriteCode.TRANSIENT,
                        reason=str(error)[:300],
                    )
                return
            if len(saved) != len(pending):
                raise TransientError(f"composite/sobjects: {len(saved)} results for {len(pending)} records")
            locked: list[int] = []
            for i, result in zip(pending, saved, strict=True):
                update = updates[i]
                if result.success:
                    results[i] = WriteResult(crm_id=update.crm_id, outcome=WriteOutcome.WRITTEN)
                    continue
                first = result.errors[0] if result.errors else None
                code = first.status_code if first else WriteCode.UNKNOWN
                message = (first.message if first else "no error detail")[:300]
                if code in RECORD_RETRY_CODES:
                    locked.append(i)
                    results[i] = WriteResult(
                        crm_id=update.crm_id, outcome=WriteOutcome.RETRY, code=code, reason=message
                    )
                else:
                    results[i] = WriteResult(
                        crm_id=update.crm_id, outcome=WriteOutcome.REJECTED, code=code, reason=message
                    )
            if not locked or attempt == _LOCK_RETRIES:
                return
            retry = self.settings.retry
            self.api.pause(min(retry.max_wait_seconds, retry.initial_wait_seconds * 2**attempt))
            pending = locked

    # -- schema, usage -------------------------------------------------------------
    def check_schema(self) -> list[Problem]:
        def describe(sobject: str) -> SObjectDescribe | None:
            try:
                answer = self.api.send(Operation("describe", f"sobjects/{sobject}/describe"))
            except NotFound:
                return None
            return SObjectDescribe.model_validate(answer)

        return schema_problems(self.mapping, describe)

    def usage(self) -> ApiUsage:
        return self.api.usage

    def close(self) -> None:
        self.api.close()


__all__ = ["SalesforceClient", "incremental_soql"]


def _query_page(body: bytes) -> QueryPage:
    """A query page parsed from its body in one pass. pydantic's JSON parser refuses the escape of a lone UTF-16
    surrogate (``"\\ud800"``), which Salesforce can send in any text field: such a page is parsed by ``json``
    instead, and the record holding it is skipped where it is normalised, as every other unreadable record is."""
    try:
        return QueryPage.model_validate_json(body)
    except ValidationError as error:
        if not any(problem["type"] == "json_invalid" for problem in error.errors()):
            raise
    return QueryPage.model_validate(json.loads(body))
