"""``HubSpotClient``: the CrmClient for HubSpot.

Reading: a first (full) pull lists every record (pages of 100, associations
inline, no search limits); later pulls search what changed since the
checkpoint (contacts on ``lastmodifieddate``, other objects on
``hs_lastmodifieddate``), sorted by ``hs_object_id`` and re-anchored on it
before the 10,000-result search cap, with associations read by the v4
batch API. Form submissions are read per mapped form, newest first, down
to the watermark. Bodies are parsed into ``payloads`` (a record that cannot
be read is skipped, the rest of its page goes on), normalised by the pure
``normalise`` module, and the cursors move by the pure transitions of
``cursor``; every call goes through ``transport``.

Writing: batch update of up to 100 contacts, errors matched to inputs by
id, and a backwards ``lifecyclestage`` (which HubSpot keeps without an
error) reported as not applied, or cleared then set when the rules allow
regression.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial
from typing import Any

from pydantic import SecretStr

from connector.crm import (
    ActivityPage,
    ActivityRecord,
    ApiUsage,
    ContactDirectory,
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
from connector.errors import ConfigError, Problem, TransientError
from connector.http.read_ahead import read_ahead, read_lanes
from connector.hubspot.cursor import (
    ActivityCursor,
    ContactCursor,
    FormCursor,
    ObjectCursor,
    SearchQuery,
    Submitted,
    dump_cursor,
    load_cursor,
    next_form_cursor,
    next_list_cursor,
    next_search,
    scan_start,
)
from connector.hubspot.engagement import MARKETING_EVENTS, EngagementCursor, EngagementReader, event_types
from connector.hubspot.engagement import OBJECTS as SIGNALS
from connector.hubspot.normalise import (
    COMPANY_OBJECT,
    COMPANY_PRIMARY_CONTACT_TYPE_ID,
    CONTACT_MODIFIED,
    FORM_OBJECT,
    MERGED_IDS,
    OBJECT_MODIFIED,
    PRIMARY_COMPANY_TYPE,
    PRIMARY_COMPANY_TYPE_ID,
    activity_properties,
    contact_properties,
    contact_record,
    engagement_activity,
    engagement_record,
    form_ids,
    merged_away,
    skipped,
    submission_activity,
    submission_email,
    submission_id,
    submission_key,
    unreadable,
)
from connector.hubspot.payloads import (
    AssociationBatch,
    AssociationResult,
    BatchResponse,
    CrmObject,
    FormList,
    FormSubmission,
    ObjectPage,
    PropertyDefinition,
    PropertyList,
    SubmissionPage,
    list_next,
    parse_page,
)
from connector.hubspot.schema import schema_problems, setup_definitions
from connector.hubspot.settings import HubSpotConnection
from connector.hubspot.transport import Operation, Transport, path
from connector.mapping import CrmMapping, parse_instant
from connector.model import Activity

log = logging.getLogger(__name__)

LIST_PAGE = 100
SEARCH_PAGE = 200
BATCH = 100
FORM_PAGE = 50
COMPANY_CACHE = 50_000
"""Companies kept between contact pages; past this many, those no waiting page needs are forgotten."""
EMAIL_CACHE = 20_000
"""E-mails of the contacts pulled last kept in memory (~4 MB); the store's directory answers for the others."""
READ_AHEAD_PAGES = 8
"""Pages made (fetched and normalised) ahead of the caller by the read-ahead thread."""
LANE_AHEAD_PAGES = 4
"""Pages made ahead of the caller by each activity source's thread (up to 4 of them: 16 pages in all)."""
LIST_AHEAD = 2
"""List pages fetched (not yet parsed) ahead of the thread that parses them."""
HOLD_PAGES = 20
"""Contact pages that may wait for a full batch of unseen companies before a partial batch is read."""
ENGAGEMENT_OBJECTS = ("meetings", "emails", "calls")
LIFECYCLE = "lifecyclestage"
REJECTED_CATEGORIES = frozenset({"OBJECT_NOT_FOUND", "VALIDATION_ERROR"})
"""Per-record batch errors that are final (dead letter); any other category is retried on a later run."""

ScanPage = tuple[ObjectPage, ObjectCursor, bool]
"""One page, the cursor after it, and whether associations came inline."""

__all__ = ["CONTACT_MODIFIED", "ENGAGEMENT_OBJECTS", "OBJECT_MODIFIED", "HubSpotClient"]


class HubSpotClient:
    """The ``CrmClient`` for one HubSpot connection."""

    write_batch_size = BATCH

    def __init__(
        self,
        connection: str,
        settings: HubSpotConnection,
        mapping: CrmMapping,
        token: SecretStr,
        *,
        lookback_seconds: float = 300.0,
        pacing: bool = True,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        transport: Transport | None = None,
        email_cache: int = EMAIL_CACHE,
    ) -> None:
        if mapping.crm != "hubspot":
            raise ConfigError(f"connection {connection!r}: {mapping.source} is not a HubSpot mapping")
        unknown = [o for o in mapping.activity_objects() if o not in (*ENGAGEMENT_OBJECTS, FORM_OBJECT, *SIGNALS)]
        if unknown:
            raise ConfigError(f"{mapping.source}: activity object(s) {unknown} are not read from HubSpot")
        company = mapping.company_object("contacts")
        if company not in (None, COMPANY_OBJECT):
            raise ConfigError(
                f"{mapping.source}: people.contacts.company.object must be {COMPANY_OBJECT!r} (got {company!r})"
            )
        self.connection = connection
        self.mapping = mapping
        self.settings = settings
        self.lookback_ms = int(lookback_seconds * 1000)
        self._clock = clock
        self._transport = transport or Transport(settings, token.get_secret_value(), sleep=sleep, pacing=pacing)
        self._cap = settings.search_result_cap
        self._email_ids = RecentEmails(email_cache)
        """E-mail -> contact id of the contacts pulled last, for form submissions and e-mail events (bounded:
        older ones come from the store's directory, else from ``contacts.batch_read``)."""
        self._directory: ContactDirectory | None = None
        self._contact_properties = contact_properties(mapping)
        self._company_properties = mapping.company_fields("contacts")
        self._companies = CompanyCache(self._company_properties)
        """Company id -> the mapped properties read (see ``_read_companies``)."""
        self._merges_seen: set[str] = set()
        """Merged-away ids the current contact scan's survivors listed (``hs_merged_object_ids``)."""

    @classmethod
    def from_settings(
        cls, name: str, settings: HubSpotConnection, mapping: CrmMapping, *, environ: Mapping[str, str] | None = None
    ) -> HubSpotClient:
        """A client for connection ``name``; the token is read from ``settings.token_env`` here
        (in ``environ``, default the process environment)."""
        return cls(name, settings, mapping, settings.secret(settings.token_env, environ))

    def __repr__(self) -> str:
        return f"HubSpotClient(connection={self.connection!r}, base_url={self.settings.base_url!r})"

    def _send(self, operation: Operation) -> bytes:
        return self._transport.send(operation).data

    # -- reading: contacts ---------------------------------------------------------
    def pull_contacts(self, cursor: str | None) -> Iterator[ContactPage]:
        return read_ahead(self._contact_pages(cursor), depth=READ_AHEAD_PAGES, name="hubspot-read-ahead")

    def _contact_pages(self, cursor: str | None) -> Iterator[ContactPage]:
        """The contact scan's pages; the last one also carries the contacts archived since the last pull (read
        after the scan, so a merged contact's survivor, read in the scan, takes its activities first) and the
        cursor that moves ``archived_since``."""
        state = load_cursor(ContactCursor, cursor) or ContactCursor()
        # a first (or --full) pull keeps every archived contact: the store may still hold some of them
        archived_since = state.archived_since or 0
        # a contact archived from here on may be a merge the scan did not see (see _merged_since_scan)
        scan_started = self._now_ms() - self.lookback_ms
        self._merges_seen = set()
        company_object = self.mapping.company_object("contacts")
        changed_companies = company_object is not None and state.companies is not None
        if company_object and state.companies is None:
            # the first pull reads each contact's company as it is; the companies changed from now on (less the
            # lookback) are searched on the next pull, and their contacts read again
            state = state.model_copy(
                update={"companies": ObjectCursor(phase="search", since=self._now_ms() - self.lookback_ms)}
            )
        last: ContactPage | None = None
        for page, after in self._scanned(state, company_object):
            if last is not None:
                yield last
            last, state = page, after
        archived_at = self._now_ms() - self.lookback_ms
        removed = tuple(self._merged_since_scan(self._archived(archived_since), scan_started))
        state = state.model_copy(update={"archived_since": archived_at})
        if last is None:
            yield ContactPage(records=(), cursor=dump_cursor(state), removed=removed)
        else:
            yield last.model_copy(update={"cursor": dump_cursor(state), "removed": (*last.removed, *removed)})
        if changed_companies:
            yield from self._changed_companies(state)

    def _scanned(self, state: ContactCursor, company_object: str | None) -> Iterator[tuple[ContactPage, ContactCursor]]:
        """The contacts changed since ``state``, page by page, each with the cursor after it."""
        # pages wait (a few at most) until a full batch of unseen companies can be read: one call per 100
        # companies, not one per page
        held: list[tuple[ObjectPage, ObjectCursor, dict[str, str | None]]] = []
        for page, after, inline in self._scan(
            "contacts", state.contacts, self._contact_properties, associate=company_object
        ):
            held.append((page, after, self._primary_ids(page, inline) if company_object else {}))
            unseen = self._unseen(held)
            if unseen and len(unseen) < BATCH and len(held) < HOLD_PAGES:
                continue
            self._read_companies(unseen, held, whole_batches=len(held) < HOLD_PAGES)
            while held and not self._unseen(held[:1]):
                page, after, primary = held.pop(0)
                state = state.model_copy(update={"contacts": after})
                yield self._contact_page(page, primary, state), state
        self._read_companies(self._unseen(held), held, whole_batches=False)
        for page, after, primary in held:
            state = state.model_copy(update={"contacts": after})
            yield self._contact_page(page, primary, state), state

    def _changed_companies(self, state: ContactCursor) -> Iterator[ContactPage]:
        """The contacts whose primary company changed since the last pull, read again with the company's new
        values (a contact whose normalised record does not change is not re-decided: the store compares)."""
        assert state.companies is not None
        properties = [*self._company_properties, OBJECT_MODIFIED]
        for page, after, _ in self._scan(COMPANY_OBJECT, state.companies, properties, associate=None):
            for item in page.results:
                self._companies.put(item.id, item.properties)
            contact_ids = self._primary_contacts([item.id for item in page.results])
            records: list[ContactRecord] = []
            skips = unreadable(page.unreadable, prefix=f"{COMPANY_OBJECT}/")
            for _, contacts in self._batch_read("contacts", list(contact_ids), self._contact_properties):
                for contact in contacts:
                    try:
                        company = self._companies.get(contact_ids.get(contact.id, ""))
                        records.append(contact_record(contact, self.mapping, company))
                    except ValueError as error:
                        skips.append(skipped(contact.id, error))
            state = state.model_copy(update={"companies": after})
            yield ContactPage(records=tuple(records), cursor=dump_cursor(state), skipped=tuple(skips))

    def _merged_since_scan(self, archived: list[tuple[RemovedRecord, int]], scan_started: int) -> list[RemovedRecord]:
        """The archived contacts, the ones merged while the scan ran told apart from the deleted ones.

        A merge archives the merged-away contact and lists its id in the survivor's ``hs_merged_object_ids``;
        a survivor the scan read before the merge does not list it yet, so its archived id would read as a
        delete (its activities dropped, its history left behind). HubSpot reads a merged-away id as the
        record it was merged into; so the archived ids this pull's survivors do not explain and that were
        archived since the scan started (less the lookback) are read back in batches of 100, asking for
        ``hs_merged_object_ids``: an id a returned record lists was merged into it, any other was deleted.
        No call when nothing was archived since the scan started (the usual run)."""
        unexplained = [
            gone.crm_id for gone, at in archived if gone.crm_id not in self._merges_seen and at >= scan_started
        ]
        into: dict[str, str] = {}
        wanted = set(unexplained)
        for _, survivors in self._batch_read("contacts", unexplained, [MERGED_IDS]):
            for survivor in survivors:
                for merged in merged_away(survivor):
                    if merged.crm_id in wanted:
                        into[merged.crm_id] = survivor.id
        return [
            gone if gone.crm_id not in into else RemovedRecord(crm_id=gone.crm_id, merged_into=into[gone.crm_id])
            for gone, _ in archived
        ]

    def _archived(self, since: int) -> list[tuple[RemovedRecord, int]]:
        """The contacts archived at or after ``since`` (epoch ms). HubSpot's archived list has no filter: it is
        read whole, 100 a page, and only the recent ones are kept."""
        found: list[tuple[RemovedRecord, int]] = []
        after: str | None = None
        while True:
            query: list[tuple[str, Any]] = [("limit", LIST_PAGE), ("archived", True), ("properties", ["hs_object_id"])]
            if after:
                query.append(("after", after))
            page = parse_page(
                ObjectPage,
                self._send(Operation("contacts.list_archived", "GET", "/crm/v3/objects/contacts", query=tuple(query))),
            )
            for item in page.results:
                at = item.archived_at
                # when it was archived, epoch ms (without archivedAt: as if now, so it is kept and re-checked)
                moment = self._now_ms() if at is None else int(parse_instant(at).timestamp() * 1000)
                if moment >= since:
                    found.append((RemovedRecord(crm_id=item.id), moment))
            after = page.next_after
            if not after:
                return found

    def _primary_contacts(self, company_ids: list[str]) -> dict[str, str]:
        """Contact id -> company id, for the contacts whose *primary* company is one of ``company_ids``."""
        found: dict[str, str] = {}
        for result in self._association_results(
            "associations.companies_to_contacts", "companies", "contacts", company_ids
        ):
            for target in result.to:
                if target.has_type(COMPANY_PRIMARY_CONTACT_TYPE_ID):
                    found[str(target.to_object_id)] = result.source.id
        return found

    def _contact_page(self, page: ObjectPage, primary: dict[str, str | None], state: ContactCursor) -> ContactPage:
        records: list[ContactRecord] = []
        skips = unreadable(page.unreadable)
        for item in page.results:
            company_id = primary.get(item.id)
            try:
                record = contact_record(item, self.mapping, self._companies.get(company_id) if company_id else None)
            except ValueError as error:
                skips.append(skipped(item.id, error))
                continue
            records.append(record)
            if record.contact.email:
                self._email_ids.put(record.contact.email, item.id)
        removed = [gone for item in page.results for gone in merged_away(item)]
        self._merges_seen.update(gone.crm_id for gone in removed)
        return ContactPage(
            records=tuple(records), cursor=dump_cursor(state), skipped=tuple(skips), removed=tuple(removed)
        )

    def _primary_ids(self, page: ObjectPage, inline: bool) -> dict[str, str | None]:
        """Contact id -> the id of its primary company, for the contacts of ``page``.

        A list page carries the associations inline (the primary company has the type ``contact_to_company``);
        a search page does not, so they are read with the v4 batch API (primary: type id 1).
        """
        if inline:
            return {item.id: item.associated_as(COMPANY_OBJECT, PRIMARY_COMPANY_TYPE) for item in page.results}
        return self._company_associations([item.id for item in page.results])

    def _unseen(self, held: Sequence[tuple[ObjectPage, ObjectCursor, dict[str, str | None]]]) -> list[str]:
        """The companies the held pages need that have not been read yet (first-seen order)."""
        found: dict[str, None] = {}
        for _, _, primary in held:
            for company in primary.values():
                if company and company not in self._companies:
                    found[company] = None
        return list(found)

    def _read_companies(
        self,
        ids: list[str],
        held: Sequence[tuple[ObjectPage, ObjectCursor, dict[str, str | None]]],
        *,
        whole_batches: bool,
    ) -> None:
        """Read ``ids`` in batches of 100 (only whole batches when ``whole_batches``); companies are kept for the
        client's life, so one shared by many contacts is read once (past ``COMPANY_CACHE`` the ones no held
        page needs are forgotten)."""
        if whole_batches:
            ids = ids[: len(ids) - len(ids) % BATCH]
        if not ids:
            return
        if len(self._companies) + len(ids) > COMPANY_CACHE:
            needed = {c for _, _, primary in held for c in primary.values() if c}
            self._companies.keep_only(needed)
        for chunk, companies in self._batch_read(COMPANY_OBJECT, ids, self._company_properties):
            for found in companies:
                self._companies.put(found.id, found.properties)
            for missing in chunk:
                if missing not in self._companies:
                    self._companies.put(missing, {})  # gone since it was associated: a company without values

    def _company_associations(self, ids: list[str]) -> dict[str, str | None]:
        found: dict[str, str | None] = {}
        for result in self._association_results("associations.contacts_to_companies", "contacts", "companies", ids):
            found[result.source.id] = next(
                (str(t.to_object_id) for t in result.to if t.has_type(PRIMARY_COMPANY_TYPE_ID)), None
            )
        return found

    # -- reading: activities ---------------------------------------------------------
    def pull_activities(self, cursor: str | None) -> Iterator[ActivityPage]:
        """The activity sources' pages: the engagement objects, the forms' submissions, the e-mail events and the
        marketing-event participations are independent chains, each with its own part of the cursor, so each
        runs in a read-ahead thread of its own (:func:`read_lanes`) and their pages come interleaved. Every
        page's cursor holds each source's position after its last page handed out."""
        state = load_cursor(ActivityCursor, cursor) or ActivityCursor()
        lanes = self._activity_lanes(state)
        return self._positioned(state, read_lanes(lanes, depth=LANE_AHEAD_PAGES, name="hubspot-read-ahead"))

    @staticmethod
    def _positioned(state: ActivityCursor, pages: Iterator[tuple[ActivityPage, Moved]]) -> Iterator[ActivityPage]:
        try:
            for activities, moved in pages:
                state = moved(state)
                yield activities.model_copy(update={"cursor": dump_cursor(state)})
        finally:
            close = getattr(pages, "close", None)
            if close is not None:
                close()  # stops the read-ahead threads of a pull stopped early

    def _activity_lanes(self, state: ActivityCursor) -> list[Iterator[tuple[ActivityPage, Moved]]]:
        """A chain per source the mapping reads."""
        lanes: list[Iterator[tuple[ActivityPage, Moved]]] = []
        if objects := [o for o in self.mapping.activity_objects() if o != FORM_OBJECT and o not in SIGNALS]:
            lanes.append(self._object_lane(objects, state))
        if forms := form_ids(self.mapping):
            lanes.append(self._form_lane(forms, state))
        # e-mail events and marketing-event participations: engagement.py
        reader = EngagementReader(self._send, self.mapping, self._contact_ids, self.lookback_ms)
        if event_types(self.mapping):
            lanes.append(self._event_lane(reader, state.engagement))
        if self.mapping.activity_rules(MARKETING_EVENTS):
            lanes.append(self._participation_lane(reader, state.engagement))
        return lanes

    def _object_lane(self, names: list[str], state: ActivityCursor) -> Iterator[tuple[ActivityPage, Moved]]:
        for name in names:
            start = state.objects.get(name) or ObjectCursor()
            for page, after, inline in self._scan(
                name, start, activity_properties(self.mapping, name), associate="contacts"
            ):
                yield self._engagements(name, page, inline), partial(_object_moved, name, after)

    def _form_lane(self, guids: list[str], state: ActivityCursor) -> Iterator[tuple[ActivityPage, Moved]]:
        for guid in guids:
            for activities, form_state in self._submissions(guid, state.forms.get(guid) or FormCursor()):
                yield activities, partial(_form_moved, guid, form_state)

    def _event_lane(self, reader: EngagementReader, start: EngagementCursor) -> Iterator[tuple[ActivityPage, Moved]]:
        for activities, engagement in reader.email_events(start, self._now_ms()):
            yield activities, partial(_events_moved, engagement)

    @staticmethod
    def _participation_lane(reader: EngagementReader, start: EngagementCursor) -> Iterator[tuple[ActivityPage, Moved]]:
        for activities, engagement in reader.participations(start):
            yield activities, partial(_participations_moved, engagement)

    def _engagements(self, name: str, page: ObjectPage, inline: bool) -> ActivityPage:
        mapped: list[tuple[CrmObject, Activity]] = []
        skips = unreadable(page.unreadable, prefix=f"{name}/")
        unmapped = 0
        for item in page.results:
            try:
                activity = engagement_activity(name, item, self.mapping)
            except ValueError as error:
                skips.append(skipped(f"{name}/{item.id}", error))
                continue
            if activity is None:
                unmapped += 1
            else:
                mapped.append((item, activity))
        # search results carry no associations: read them for the mapped records only
        contacts = {} if inline else self._associations(name, [item.id for item, _ in mapped])
        records: list[ActivityRecord] = []
        for item, activity in mapped:
            ids = item.associated("contacts") if inline else contacts.get(item.id, ())
            if not ids:
                skips.append(
                    SkippedRecord(
                        crm_id=activity.id or item.id, reason="no associated contact", code=SkipReason.NO_CONTACT
                    )
                )
                continue
            try:
                records.append(engagement_record(activity, item, ids))
            except ValueError as error:
                skips.append(skipped(activity.id or item.id, error))
        return ActivityPage(records=tuple(records), cursor=None, skipped=tuple(skips), unmapped=unmapped)

    def _associations(self, name: str, ids: list[str]) -> dict[str, tuple[str, ...]]:
        return {
            result.source.id: tuple(str(target.to_object_id) for target in result.to)
            for result in self._association_results("associations.batch_read", name, "contacts", ids)
        }

    def _association_results(
        self, operation: str, source: str, target: str, ids: list[str]
    ) -> Iterator[AssociationResult]:
        """The v4 associations of ``ids`` (``source`` objects) to ``target`` objects, one batch read per 100 ids."""
        for start in range(0, len(ids), BATCH):
            data = self._send(
                Operation(
                    operation,
                    "POST",
                    path("/crm/v4/associations/{source}/{target}/batch/read", source=source, target=target),
                    body={"inputs": [{"id": i} for i in ids[start : start + BATCH]]},
                )
            )
            yield from AssociationBatch.model_validate_json(data).results

    def _submissions(self, guid: str, state: FormCursor) -> Iterator[tuple[ActivityPage, FormCursor]]:
        """New submissions of one form, newest first, down to the watermark."""
        while True:
            query: tuple[tuple[str, Any], ...] = (("limit", FORM_PAGE),)
            if state.after:
                query += (("after", state.after),)
            data = self._send(
                Operation(
                    "forms.submissions",
                    "GET",
                    path("/form-integrations/v1/submissions/forms/{guid}", guid=guid),
                    query=query,
                )
            )
            page = parse_page(SubmissionPage, data, record_id=_submission_ref)
            step = next_form_cursor(
                state, [Submitted(s.submitted_at, submission_key(s)) for s in page.results], page.next_after
            )
            fresh = [page.results[i] for i in step.fresh]
            activities = self._submission_page(guid, fresh)
            if page.unreadable:
                bad = unreadable(page.unreadable, prefix=f"{FORM_OBJECT}/{guid}/")
                activities = activities.model_copy(update={"skipped": (*activities.skipped, *bad)})
            yield activities, step.cursor
            if step.done:
                return
            state = step.cursor

    def _submission_page(self, guid: str, submissions: list[FormSubmission]) -> ActivityPage:
        ids = self._contact_ids(sorted({submission_email(s) for s in submissions} - {""}))
        records: list[ActivityRecord] = []
        skips: list[SkippedRecord] = []
        unmapped = 0
        for submission in submissions:
            crm_id = submission_id(guid, submission)
            contact_id = ids.get(submission_email(submission))
            try:
                activity = submission_activity(guid, submission, self.mapping)
            except ValueError as error:
                skips.append(self._no_submitter(crm_id) if contact_id is None else skipped(crm_id, error))
                continue
            if activity is None:
                unmapped += 1
                continue
            if contact_id is None:
                skips.append(self._no_submitter(crm_id))
                continue
            records.append(
                ActivityRecord(
                    crm_id=crm_id, activity=activity, contact_ids=(contact_id,), modified_at=activity.occurred_at
                )
            )
        return ActivityPage(records=tuple(records), cursor=None, skipped=tuple(skips), unmapped=unmapped)

    @staticmethod
    def _no_submitter(crm_id: str) -> SkippedRecord:
        return SkippedRecord(crm_id=crm_id, reason="no contact with the submitted e-mail", code=SkipReason.NO_CONTACT)

    def use_directory(self, directory: ContactDirectory) -> None:
        """Resolve e-mails the recent-contact cache misses from the store's contacts before asking HubSpot."""
        self._directory = directory

    def _contact_ids(self, emails: list[str]) -> dict[str, str]:
        """Contact ids of these (lower-cased) e-mails: the contacts pulled last, then the store's directory,
        then a ``contacts.batch_read`` by e-mail for the rest (submitters this client and the store never saw)."""
        found: dict[str, str] = {}
        missing: list[str] = []
        for email in emails:
            contact_id = self._email_ids.get(email)
            if contact_id is None:
                missing.append(email)
            else:
                found[email] = contact_id
        if missing and self._directory is not None:
            known = self._directory(missing)
            found.update(known)
            missing = [email for email in missing if email not in known]
        for _, results in self._batch_read("contacts", missing, ["email"], id_property="email"):
            for result in results:
                email = (result.properties.get("email") or "").lower()
                if email:
                    found[email] = result.id
                    self._email_ids.put(email, result.id)
        return found

    def _batch_read(
        self, crm_object: str, ids: Sequence[str], properties: list[str], *, id_property: str | None = None
    ) -> Iterator[tuple[Sequence[str], tuple[CrmObject, ...]]]:
        """``POST /crm/v3/objects/{crm_object}/batch/read``, 100 ids a call (by ``id_property`` when given): each
        batch of ids with the records HubSpot returned for it (an id it does not know is left out)."""
        for start in range(0, len(ids), BATCH):
            chunk = ids[start : start + BATCH]
            body: dict[str, Any] = {"inputs": [{"id": i} for i in chunk], "properties": properties}
            if id_property is not None:
                body["idProperty"] = id_property
            path_ = f"/crm/v3/objects/{crm_object}/batch/read"
            data = self._send(Operation(f"{crm_object}.batch_read", "POST", path_, body=body))
            yield chunk, BatchResponse.model_validate_json(data).results

    # -- the scan shared by every CRM object -------------------------------------------
    def _scan(
        self, name: str, state: ObjectCursor, properties: list[str], *, associate: str | None
    ) -> Iterator[ScanPage]:
        started = scan_start(state, self._now_ms(), self.lookback_ms)
        if state.phase == "list":
            yield from self._list(name, state.after, started, properties, associate)
        else:
            yield from self._search(name, SearchQuery(state.since, state.anchor), started, properties)

    def _list(
        self, name: str, after: str | None, started: int, properties: list[str], associate: str | None
    ) -> Iterator[ScanPage]:
        """A list scan's pages. A thread of their own fetches the bodies (reading only each one's next ``after``),
        so HubSpot makes the next page while this one is parsed and normalised; same calls, same order."""
        while True:
            bodies = read_ahead(
                self._list_bodies(name, after, properties, associate), depth=LIST_AHEAD, name="hubspot-fetch"
            )
            try:
                for data, fetched in bodies:
                    page = parse_page(ObjectPage, data)
                    cursor = next_list_cursor(page.next_after, started)
                    yield page, cursor, True
                    if cursor.phase == "search":
                        return
                    after = cursor.after
                    if fetched != after:
                        break  # the fetching thread could not tell the next page: it stopped; go on from here
                else:
                    return
            finally:
                bodies.close()  # type: ignore[attr-defined]

    def _list_bodies(
        self, name: str, after: str | None, properties: list[str], associate: str | None
    ) -> Iterator[tuple[bytes, object]]:
        """Each list page's body with its next ``after`` (``_UNREAD`` when only the full parse can tell: the
        fetching stops there)."""
        base = "/crm/v3/objects/contacts" if name == "contacts" else path("/crm/v3/objects/{name}", name=name)
        while True:
            query: list[tuple[str, Any]] = [("limit", LIST_PAGE)]
            if after:
                query.append(("after", after))
            query.append(("properties", properties))
            if associate:
                query.append(("associations", [associate]))
            query.append(("archived", False))
            data = self._send(Operation(f"{name}.list", "GET", base, query=tuple(query)))
            try:
                after = list_next(data)
            except ValueError:
                yield data, _UNREAD
                return
            yield data, after
            if after is None:
                return

    def _search(self, name: str, query: SearchQuery, started: int, properties: list[str]) -> Iterator[ScanPage]:
        base = "/crm/v3/objects/contacts" if name == "contacts" else path("/crm/v3/objects/{name}", name=name)
        modified = CONTACT_MODIFIED if name == "contacts" else OBJECT_MODIFIED
        next_query: SearchQuery | None = query
        while next_query is not None:
            query = next_query
            body: dict[str, Any] = {
                "filterGroups": [
                    {
                        "filters": [
                            {"propertyName": modified, "operator": "GTE", "value": str(query.since)},
                            {"propertyName": "hs_object_id", "operator": "GT", "value": str(query.anchor)},
                        ]
                    }
                ],
                "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
                "properties": properties,
                "limit": SEARCH_PAGE,
            }
            if query.offset:
                body["after"] = str(query.offset)
            data = self._send(Operation(f"{name}.search", "POST", f"{base}/search", body=body, search=True))
            page = parse_page(ObjectPage, data)
            cursor, next_query = next_search(
                query, started, page.last_id, page.next_after, page_size=SEARCH_PAGE, cap=self._cap
            )
            yield page, cursor, False

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    # -- writing -------------------------------------------------------------------------
    def write_stages(self, updates: Sequence[StageUpdate]) -> list[WriteResult]:
        results: list[WriteResult] = []
        for start in range(0, len(updates), BATCH):
            results.extend(self._write_batch(list(updates[start : start + BATCH])))
        return results

    def _write_batch(self, updates: list[StageUpdate]) -> list[WriteResult]:
        try:
            response = self._update([(u.crm_id, u.fields) for u in updates])
        except TransientError as error:
            return [
                WriteResult(crm_id=u.crm_id, outcome=WriteOutcome.RETRY, code=WriteCode.TRANSIENT, reason=str(error))
                for u in updates
            ]
        written = {item.id: item for item in response.results}
        failed = {i: error for error in response.errors for i in error.ids}
        results: dict[str, WriteResult] = {}
        regress: list[StageUpdate] = []
        for update in updates:
            failure = failed.get(update.crm_id)
            if failure is not None:
                category = failure.category or "ERROR"
                outcome = WriteOutcome.REJECTED if category in REJECTED_CATEGORIES else WriteOutcome.RETRY
                results[update.crm_id] = WriteResult(
                    crm_id=update.crm_id, outcome=outcome, code=category, reason=(failure.message or "")[:200] or None
                )
                continue
            item = written.get(update.crm_id)
            if item is None:
                results[update.crm_id] = WriteResult(
                    crm_id=update.crm_id,
                    outcome=WriteOutcome.RETRY,
                    code=WriteCode.MISSING,
                    reason="not in HubSpot's response",
                )
                continue
            wanted = update.fields.get(LIFECYCLE)
            kept = item.properties.get(LIFECYCLE)
            if wanted and kept != wanted:
                # HubSpot keeps the old lifecyclestage on a backwards move, without an error
                if update.allow_regression:
                    regress.append(update)
                    continue
                results[update.crm_id] = WriteResult(
                    crm_id=update.crm_id,
                    outcome=WriteOutcome.UNCHANGED,
                    code=WriteCode.BACKWARDS_REFUSED,
                    reason=f"HubSpot kept lifecyclestage {kept!r} instead of {wanted!r} (regression is off)",
                )
                continue
            results[update.crm_id] = WriteResult(crm_id=update.crm_id, outcome=WriteOutcome.WRITTEN)
        if regress:
            results.update(self._clear_then_set(regress))
        return [results[u.crm_id] for u in updates]

    def _clear_then_set(self, updates: list[StageUpdate]) -> dict[str, WriteResult]:
        """Move lifecyclestage backwards the only way HubSpot allows: clear it, then set it."""
        results: dict[str, WriteResult] = {}
        try:
            self._update([(u.crm_id, {LIFECYCLE: ""}) for u in updates])
            response = self._update([(u.crm_id, {LIFECYCLE: u.fields[LIFECYCLE]}) for u in updates])
        except TransientError as error:
            return {
                u.crm_id: WriteResult(
                    crm_id=u.crm_id, outcome=WriteOutcome.RETRY, code=WriteCode.TRANSIENT, reason=str(error)
                )
                for u in updates
            }
        written = {item.id: item for item in response.results}
        failed = {i: error for error in response.errors for i in error.ids}
        for update in updates:
            item = written.get(update.crm_id)
            if item is not None and item.properties.get(LIFECYCLE) == update.fields[LIFECYCLE]:
                results[update.crm_id] = WriteResult(
                    crm_id=update.crm_id, outcome=WriteOutcome.WRITTEN, code=WriteCode.CLEARED_THEN_SET
                )
            else:
                failure = failed.get(update.crm_id)
                results[update.crm_id] = WriteResult(
                    crm_id=update.crm_id,
                    outcome=WriteOutcome.RETRY,
                    code=(failure.category if failure else None) or WriteCode.BACKWARDS_REFUSED,
                    reason="lifecyclestage could not be moved back",
                )
        return results

    def _update(self, inputs: list[tuple[str, dict[str, str]]]) -> BatchResponse:
        body = {"inputs": [{"id": crm_id, "properties": fields} for crm_id, fields in inputs]}
        data = self._send(
            Operation("contacts.batch_update", "POST", "/crm/v3/objects/contacts/batch/update", body=body)
        )
        return BatchResponse.model_validate_json(data)

    # -- schema ----------------------------------------------------------------------------
    def _properties(self, object_type: str = "contacts") -> dict[str, PropertyDefinition]:
        data = self._send(Operation("properties.list", "GET", path("/crm/v3/properties/{name}", name=object_type)))
        return {p.name: p for p in PropertyList.model_validate_json(data).results}

    def _forms(self) -> set[str]:
        data = self._send(Operation("forms.list", "GET", "/marketing/v3/forms/", query=(("limit", 500),)))
        return {form.id for form in FormList.model_validate_json(data).results}

    def _form_ids(self) -> list[str]:
        return form_ids(self.mapping)

    def check_schema(self) -> list[Problem]:
        forms = self._forms() if form_ids(self.mapping) else None
        companies = self._properties(COMPANY_OBJECT) if self.mapping.company_object("contacts") else None
        return schema_problems(self.mapping, self._properties(), forms, companies)

    def ensure_stage_property(self) -> list[str]:
        """Create the stage property (one option per rung) and its companions where missing; the names created."""
        existing = self._properties()
        created: list[str] = []
        for definition in setup_definitions(self.mapping):
            if definition["name"] in existing:
                continue
            self._send(Operation("properties.create", "POST", "/crm/v3/properties/contacts", body=definition))
            created.append(definition["name"])
            log.info("hubspot property created", extra={"connection": self.connection, "property": definition["name"]})
        return created

    # -- bookkeeping ---------------------------------------------------------------------------
    def usage(self) -> ApiUsage:
        return self._transport.usage.snapshot()

    def close(self) -> None:
        self._email_ids.clear()
        self._companies.clear()
        close = getattr(self._transport, "close", None)
        if close is not None:
            close()


class CompanyCache:
    """Company id -> the values of the mapped company properties, compact: one tuple per company in the order
    of ``properties`` (the extra properties HubSpot returns unasked are dropped) and repeated values such as
    an industry held once. About a quarter of the memory of the property dicts (~0.35 KB a company against
    ~1.4 KB): with ``COMPANY_CACHE`` entries at most, the client's memory stays bounded on any portal."""

    def __init__(self, properties: Sequence[str]) -> None:
        self._properties = tuple(properties)
        self._values: dict[str, tuple[str | None, ...]] = {}

    def put(self, company_id: str, properties: Mapping[str, str | None]) -> None:
        self._values[company_id] = tuple(_compact(properties.get(name)) for name in self._properties)

    def get(self, company_id: str) -> dict[str, str | None] | None:
        values = self._values.get(company_id)
        if values is None:
            return None
        return {name: value for name, value in zip(self._properties, values, strict=True) if value is not None}

    def keep_only(self, wanted: set[str]) -> None:
        self._values = {key: value for key, value in self._values.items() if key in wanted}

    def __contains__(self, company_id: object) -> bool:
        return company_id in self._values

    def __len__(self) -> int:
        return len(self._values)

    def clear(self) -> None:
        self._values.clear()


def _compact(value: str | None) -> str | None:
    return None if value is None else sys.intern(value)


class RecentEmails:
    """E-mail -> contact id of the ``size`` entries put or read last (memory bounded whatever the portal's size)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._ids: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()
        """Form submissions and e-mail events are read in threads of their own, side by side."""

    def put(self, email: str, contact_id: str) -> None:
        with self._lock:
            self._ids[email] = contact_id
            self._ids.move_to_end(email)
            if len(self._ids) > self._size:
                self._ids.popitem(last=False)

    def get(self, email: str) -> str | None:
        with self._lock:
            contact_id = self._ids.get(email)
            if contact_id is not None:
                self._ids.move_to_end(email)
            return contact_id

    def __len__(self) -> int:
        return len(self._ids)

    def clear(self) -> None:
        with self._lock:
            self._ids.clear()


_UNREAD = object()
"""A list body whose next ``after`` only the full parse can tell."""

Moved = Callable[[ActivityCursor], ActivityCursor]
"""What one activity page moves in the cursor: its own source's position, nothing else."""


def _object_moved(name: str, after: ObjectCursor, state: ActivityCursor) -> ActivityCursor:
    return state.model_copy(update={"objects": {**state.objects, name: after}})


def _form_moved(guid: str, after: FormCursor, state: ActivityCursor) -> ActivityCursor:
    return state.model_copy(update={"forms": {**state.forms, guid: after}})


def _events_moved(after: EngagementCursor, state: ActivityCursor) -> ActivityCursor:
    engagement = state.engagement.model_copy(update={"email_events": after.email_events})
    return state.model_copy(update={"engagement": engagement})


def _participations_moved(after: EngagementCursor, state: ActivityCursor) -> ActivityCursor:
    engagement = state.engagement.model_copy(update={"participations": after.participations})
    return state.model_copy(update={"engagement": engagement})


def _submission_ref(item: dict[str, Any]) -> str:
    """The identity of an unreadable submission, from what can be read of it."""
    return str(item.get("conversionId") or item.get("submittedAt") or "?")
