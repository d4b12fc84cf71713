"""``HubSpotClient``: the CrmClient for HubSpot.

Reading: a first (full) pull lists every record (pages of 100, associations
inline, no search limits); later pulls search what changed since the
checkpoint (contacts on ``lastmodifieddate``, other objects on
``hs_lastmodifieddate``), sorted by ``hs_object_id`` and re-anchored on it
before the 10,000-result search cap, with associations read by the v4
batch API. Form submissions are read per mapped form, newest first, down
to the watermark. Bodies are parsed into ``connector.hubspot.payloads`` and
normalised into the common model here; nothing past this module sees
HubSpot's JSON.

Writing: batch update of up to 100 contacts, errors matched to inputs by
id, and a backwards ``lifecyclestage`` (which HubSpot keeps without an
error) reported as not applied, or cleared then set when the rules allow
regression.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from pydantic import SecretStr, ValidationError

from connector.config import HubSpotConnection
from connector.crm import (
    ActivityPage,
    ActivityRecord,
    ApiUsage,
    ContactPage,
    ContactRecord,
    SkippedRecord,
    StageUpdate,
    WriteOutcome,
    WriteResult,
)
from connector.errors import ConfigError, Problem, TransientError
from connector.hubspot.cursors import ActivityCursor, ContactCursor, FormCursor, ObjectCursor, dump_cursor, load_cursor
from connector.hubspot.payloads import (
    AssociationBatch,
    BatchResponse,
    CrmObject,
    FormList,
    FormSubmission,
    ObjectPage,
    PropertyDefinition,
    PropertyList,
    SubmissionPage,
)
from connector.hubspot.schema import schema_problems, setup_definitions
from connector.hubspot.transport import FORM_SUBMISSIONS_PATH, Transport
from connector.mapping import CrmMapping, parse_instant
from connector.model import Activity, Contact

log = logging.getLogger(__name__)

LIST_PAGE = 100
SEARCH_PAGE = 200
BATCH = 100
FORM_PAGE = 50
ENGAGEMENT_OBJECTS = ("meetings", "emails", "calls")
FORM_OBJECT = "form_submissions"
CONTACT_MODIFIED = "lastmodifieddate"
"""Contacts filter on ``lastmodifieddate``; ``hs_lastmodifieddate`` on contacts silently returns wrong records."""
OBJECT_MODIFIED = "hs_lastmodifieddate"
LIFECYCLE = "lifecyclestage"

ScanPage = tuple[tuple[CrmObject, ...], ObjectCursor, bool]
"""Records of one page, the cursor after it, and whether associations came inline."""


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
    ) -> None:
        if mapping.crm != "hubspot":
            raise ConfigError(f"connection {connection!r}: {mapping.source} is not a HubSpot mapping")
        unknown = [o for o in mapping.activity_objects() if o not in (*ENGAGEMENT_OBJECTS, FORM_OBJECT)]
        if unknown:
            raise ConfigError(f"{mapping.source}: activity object(s) {unknown} are not read from HubSpot")
        self.connection = connection
        self.mapping = mapping
        self.settings = settings
        self.lookback_ms = int(lookback_seconds * 1000)
        self._clock = clock
        self._transport = Transport(settings, token.get_secret_value(), sleep=sleep, pacing=pacing)
        self._cap = settings.search_result_cap
        self._email_ids: dict[str, str] = {}
        fields = [*mapping.person_fields("contacts"), *mapping.stage_fields(), CONTACT_MODIFIED]
        self._contact_properties = list(dict.fromkeys(fields))

    @classmethod
    def from_settings(cls, name: str, settings: HubSpotConnection, mapping: CrmMapping) -> HubSpotClient:
        """A client for connection ``name``; the token is read from ``settings.token_env`` here."""
        return cls(name, settings, mapping, settings.secret(settings.token_env))

    def __repr__(self) -> str:
        return f"HubSpotClient(connection={self.connection!r}, base_url={self.settings.base_url!r})"

    # -- reading: contacts ---------------------------------------------------------
    def pull_contacts(self, cursor: str | None) -> Iterator[ContactPage]:
        state = load_cursor(ContactCursor, cursor) or ContactCursor()
        for results, after, _ in self._scan("contacts", state.contacts, self._contact_properties, associate=False):
            records: list[ContactRecord] = []
            skipped: list[SkippedRecord] = []
            for item in results:
                try:
                    records.append(self._contact(item))
                except (ValueError, ValidationError) as error:
                    skipped.append(SkippedRecord(crm_id=item.id, reason=_reason(error)))
            yield ContactPage(
                records=tuple(records), cursor=dump_cursor(ContactCursor(contacts=after)), skipped=tuple(skipped)
            )

    def _contact(self, item: CrmObject) -> ContactRecord:
        values = item.properties
        person = self.mapping.normalise_person("contacts", values)
        stage_values = {name: values.get(name) or None for name in self.mapping.stage_fields()}
        stage = self.mapping.stage_for_value(stage_values.get(self.mapping.stage.field))
        modified = values.get(CONTACT_MODIFIED) or item.updated_at
        record = ContactRecord(
            crm_id=item.id,
            object_type="contact",
            contact=Contact(**person, stage=stage),
            stage_values=stage_values,
            modified_at=parse_instant(modified) if modified else None,
        )
        if record.contact.email:
            self._email_ids[record.contact.email] = item.id
        return record

    # -- reading: activities ---------------------------------------------------------
    def pull_activities(self, cursor: str | None) -> Iterator[ActivityPage]:
        state = load_cursor(ActivityCursor, cursor) or ActivityCursor()
        for name in self.mapping.activity_objects():
            if name == FORM_OBJECT:
                continue
            fields = list(dict.fromkeys([*self.mapping.activity_fields(name), OBJECT_MODIFIED]))
            start = state.objects.get(name) or ObjectCursor()
            for results, after, inline in self._scan(name, start, fields, associate=True):
                page = self._engagements(name, results, inline)
                state = state.model_copy(update={"objects": {**state.objects, name: after}})
                yield page.model_copy(update={"cursor": dump_cursor(state)})
        for guid in self._form_ids():
            for page, form_state in self._submissions(guid, state.forms.get(guid) or FormCursor()):
                state = state.model_copy(update={"forms": {**state.forms, guid: form_state}})
                yield page.model_copy(update={"cursor": dump_cursor(state)})

    def _engagements(self, name: str, results: tuple[CrmObject, ...], inline: bool) -> ActivityPage:
        mapped: list[tuple[CrmObject, Activity]] = []
        skipped: list[SkippedRecord] = []
        unmapped = 0
        for item in results:
            crm_id = f"{name}/{item.id}"
            rule = self.mapping.kind_for(name, item.properties)
            if rule is None:
                unmapped += 1
                continue
            try:
                at = item.properties.get(rule.at)
                if not at:
                    raise ValueError(f"{rule.at}: no value")
                detail = item.properties.get(rule.detail) if rule.detail else None
                activity = Activity(kind=rule.kind.value, occurred_at=parse_instant(at), detail=detail, id=crm_id)
            except (ValueError, ValidationError) as error:
                skipped.append(SkippedRecord(crm_id=crm_id, reason=_reason(error)))
                continue
            mapped.append((item, activity))
        # search results carry no associations: read them for the mapped records only
        contacts = {} if inline else self._associations(name, [item.id for item, _ in mapped])
        records: list[ActivityRecord] = []
        for item, activity in mapped:
            ids = item.associated("contacts") if inline else contacts.get(item.id, ())
            if not ids:
                skipped.append(SkippedRecord(crm_id=activity.id or item.id, reason="no associated contact"))
                continue
            modified = item.properties.get(OBJECT_MODIFIED)
            records.append(
                ActivityRecord(
                    crm_id=activity.id or item.id,
                    activity=activity,
                    contact_ids=ids,
                    modified_at=parse_instant(modified) if modified else None,
                )
            )
        return ActivityPage(records=tuple(records), cursor=None, skipped=tuple(skipped), unmapped=unmapped)

    def _associations(self, name: str, ids: list[str]) -> dict[str, tuple[str, ...]]:
        found: dict[str, tuple[str, ...]] = {}
        for start in range(0, len(ids), BATCH):
            chunk = ids[start : start + BATCH]
            response = self._transport.call(
                "associations.batch_read",
                self._transport.associations.get_page,
                from_object_type=name,
                to_object_type="contacts",
                batch_input_public_fetch_associations_batch_request={"inputs": [{"id": i} for i in chunk]},
            )
            batch = AssociationBatch.model_validate_json(response.data)
            for result in batch.results:
                found[result.source.id] = tuple(str(target.to_object_id) for target in result.to)
        return found

    def _form_ids(self) -> list[str]:
        guids: dict[str, None] = {}
        for rule in self.mapping.activity_rules(FORM_OBJECT):
            wanted = rule.when.get("form_id", [])
            for guid in [wanted] if isinstance(wanted, str) else wanted:
                guids[guid] = None
        return list(guids)

    def _submissions(self, guid: str, state: FormCursor) -> Iterator[tuple[ActivityPage, FormCursor]]:
        """New submissions of one form, newest first, down to the watermark."""
        after, top, top_seen = state.after, state.top, set(state.top_seen)
        watermark, seen = state.watermark, set(state.seen)
        forms_api = self._transport.forms.api_client
        while True:
            query: list[tuple[str, Any]] = [("limit", FORM_PAGE)]
            if after:
                query.append(("after", after))
            response = self._transport.call(
                "forms.submissions",
                forms_api.call_api,
                resource_path=FORM_SUBMISSIONS_PATH,
                method="GET",
                path_params={"formId": guid},
                query_params=query,
                header_params={"Accept": "application/json"},
                auth_settings=["oauth2"],
                response_types_map={},
            )
            page = SubmissionPage.model_validate_json(response.data)
            fresh = [
                s
                for s in page.results
                if watermark is None
                or s.submitted_at > watermark
                or (s.submitted_at == watermark and _submission_key(s) not in seen)
            ]
            if fresh:
                newest = max(s.submitted_at for s in fresh)
                if top is None or newest > top:
                    top, top_seen = newest, set()
                top_seen |= {_submission_key(s) for s in fresh if s.submitted_at == top}
            reached = watermark is not None and any(s.submitted_at < watermark for s in page.results)
            next_after = page.next_after
            done = reached or next_after is None
            if not done:
                after_state = FormCursor(
                    watermark=watermark, seen=sorted(seen), after=next_after, top=top, top_seen=sorted(top_seen)
                )
            elif top is None or (watermark is not None and top <= watermark):
                after_state = FormCursor(watermark=watermark, seen=sorted(seen | top_seen))
            else:
                after_state = FormCursor(watermark=top, seen=sorted(top_seen))
            yield self._submission_page(guid, fresh), after_state
            if done:
                return
            after = next_after

    def _submission_page(self, guid: str, submissions: list[Any]) -> ActivityPage:
        emails = {str(s.value("email") or "").strip().lower() for s in submissions}
        self._resolve_emails(sorted(e for e in emails if e and e not in self._email_ids))
        records: list[ActivityRecord] = []
        skipped: list[SkippedRecord] = []
        unmapped = 0
        for submission in submissions:
            email = str(submission.value("email") or "").strip().lower()
            crm_id = f"{FORM_OBJECT}/{guid}/{_submission_key(submission)}"
            values = {
                "form_id": guid,
                "submittedAt": str(submission.submitted_at),
                "pageUrl": submission.page_url,
                **{v.name: v.value for v in submission.values},
            }
            rule = self.mapping.kind_for(FORM_OBJECT, values)
            if rule is None:
                unmapped += 1
                continue
            contact_id = self._email_ids.get(email)
            if contact_id is None:
                skipped.append(SkippedRecord(crm_id=crm_id, reason="no contact with the submitted e-mail"))
                continue
            try:
                at = values.get(rule.at)
                if not at:
                    raise ValueError(f"{rule.at}: no value")
                detail = values.get(rule.detail) if rule.detail else None
                activity = Activity(kind=rule.kind.value, occurred_at=parse_instant(at), detail=detail, id=crm_id)
            except (ValueError, ValidationError) as error:
                skipped.append(SkippedRecord(crm_id=crm_id, reason=_reason(error)))
                continue
            records.append(
                ActivityRecord(
                    crm_id=crm_id, activity=activity, contact_ids=(contact_id,), modified_at=activity.occurred_at
                )
            )
        return ActivityPage(records=tuple(records), cursor=None, skipped=tuple(skipped), unmapped=unmapped)

    def _resolve_emails(self, emails: list[str]) -> None:
        """Contact ids of submitters not seen in this client's contact pulls (batch read by e-mail)."""
        for start in range(0, len(emails), BATCH):
            chunk = emails[start : start + BATCH]
            response = self._transport.call(
                "contacts.batch_read",
                self._transport.contacts_batch.read,
                batch_read_input_simple_public_object_id={
                    "inputs": [{"id": e} for e in chunk],
                    "idProperty": "email",
                    "properties": ["email"],
                },
            )
            for found in BatchResponse.model_validate_json(response.data).results:
                email = (found.properties.get("email") or "").lower()
                if email:
                    self._email_ids[email] = found.id

    # -- the scan shared by every CRM object -------------------------------------------
    def _scan(self, name: str, state: ObjectCursor, properties: list[str], *, associate: bool) -> Iterator[ScanPage]:
        started = state.started if state.started is not None else self._now_ms() - self.lookback_ms
        if state.phase == "list":
            yield from self._list(name, state.after, started, properties, associate)
        else:
            yield from self._search(name, state.since, state.anchor, started, properties)

    def _list(
        self, name: str, after: str | None, started: int, properties: list[str], associate: bool
    ) -> Iterator[ScanPage]:
        basic = self._transport.contacts_basic if name == "contacts" else self._transport.object_basic[name]
        while True:
            kwargs: dict[str, Any] = {"limit": LIST_PAGE, "properties": properties, "archived": False}
            if after:
                kwargs["after"] = after
            if associate:
                kwargs["associations"] = ["contacts"]
            response = self._transport.call(f"{name}.list", basic.get_page, **kwargs)
            page = ObjectPage.model_validate_json(response.data)
            after = page.next_after
            if after is None:
                # the list is done: from now on, search what changed since the list started
                yield page.results, ObjectCursor(phase="search", since=started), True
                return
            yield page.results, ObjectCursor(phase="list", after=after, started=started), True

    def _search(self, name: str, since: int, anchor: int, started: int, properties: list[str]) -> Iterator[ScanPage]:
        search = self._transport.contacts_search if name == "contacts" else self._transport.object_search[name]
        modified = CONTACT_MODIFIED if name == "contacts" else OBJECT_MODIFIED
        offset = 0
        while True:
            body: dict[str, Any] = {
                "filterGroups": [
                    {
                        "filters": [
                            {"propertyName": modified, "operator": "GTE", "value": str(since)},
                            {"propertyName": "hs_object_id", "operator": "GT", "value": str(anchor)},
                        ]
                    }
                ],
                "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
                "properties": properties,
                "limit": SEARCH_PAGE,
            }
            if offset:
                body["after"] = str(offset)
            response = self._transport.call(
                f"{name}.search", search.do_search, search=True, public_object_search_request=body
            )
            page = ObjectPage.model_validate_json(response.data)
            next_after = page.next_after
            if next_after is None or not page.results:
                yield page.results, ObjectCursor(phase="search", since=started), False
                return
            last = int(page.results[-1].id)
            yield page.results, ObjectCursor(phase="search", since=since, anchor=last, started=started), False
            offset = int(next_after)
            if offset + SEARCH_PAGE > self._cap:
                # a query returns at most `cap` results (HTTP 400 past it): start a new one after the last id
                anchor, offset = last, 0

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
                WriteResult(crm_id=u.crm_id, outcome=WriteOutcome.RETRY, code="TRANSIENT", reason=str(error))
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
                outcome = (
                    WriteOutcome.REJECTED
                    if category in ("OBJECT_NOT_FOUND", "VALIDATION_ERROR")
                    else WriteOutcome.RETRY
                )
                results[update.crm_id] = WriteResult(
                    crm_id=update.crm_id, outcome=outcome, code=category, reason=(failure.message or "")[:200] or None
                )
                continue
            item = written.get(update.crm_id)
            if item is None:
                results[update.crm_id] = WriteResult(
                    crm_id=update.crm_id, outcome=WriteOutcome.RETRY, code="MISSING", reason="not in HubSpot's response"
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
                    code="BACKWARDS_REFUSED",
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
                u.crm_id: WriteResult(crm_id=u.crm_id, outcome=WriteOutcome.RETRY, code="TRANSIENT", reason=str(error))
                for u in updates
            }
        written = {item.id: item for item in response.results}
        failed = {i: error for error in response.errors for i in error.ids}
        for update in updates:
            item = written.get(update.crm_id)
            if item is not None and item.properties.get(LIFECYCLE) == update.fields[LIFECYCLE]:
                results[update.crm_id] = WriteResult(
                    crm_id=update.crm_id, outcome=WriteOutcome.WRITTEN, code="CLEARED_THEN_SET"
                )
            else:
                failure = failed.get(update.crm_id)
                results[update.crm_id] = WriteResult(
                    crm_id=update.crm_id,
                    outcome=WriteOutcome.RETRY,
                    code=failure.category if failure else "BACKWARDS_REFUSED",
                    reason="lifecyclestage could not be moved back",
                )
        return results

    def _update(self, inputs: list[tuple[str, dict[str, str]]]) -> BatchResponse:
        response = self._transport.call(
            "contacts.batch_update",
            self._transport.contacts_batch.update,
            batch_input_simple_public_object_batch_input={
                "inputs": [{"id": crm_id, "properties": fields} for crm_id, fields in inputs]
            },
        )
        return BatchResponse.model_validate_json(response.data)

    # -- schema ----------------------------------------------------------------------------
    def _properties(self) -> dict[str, PropertyDefinition]:
        response = self._transport.call("properties.list", self._transport.properties.get_all, object_type="contacts")
        return {p.name: p for p in PropertyList.model_validate_json(response.data).results}

    def _forms(self) -> set[str]:
        response = self._transport.call("forms.list", self._transport.forms.get_page, limit=500)
        return {form.id for form in FormList.model_validate_json(response.data).results}

    def check_schema(self) -> list[Problem]:
        forms = self._forms() if self._form_ids() else None
        return schema_problems(self.mapping, self._properties(), forms)

    def ensure_stage_property(self) -> list[str]:
        """Create the stage property (one option per rung) and its companions where missing; the names created."""
        existing = self._properties()
        created: list[str] = []
        for definition in setup_definitions(self.mapping):
            if definition["name"] in existing:
                continue
            self._transport.call(
                "properties.create",
                self._transport.properties.create,
                object_type="contacts",
                property_create=definition,
            )
            created.append(definition["name"])
            log.info("hubspot property created", extra={"connection": self.connection, "property": definition["name"]})
        return created

    # -- bookkeeping ---------------------------------------------------------------------------
    def usage(self) -> ApiUsage:
        transport = self._transport
        used = None
        if transport.quota_total is not None and transport.quota_remaining is not None:
            used = transport.quota_total - transport.quota_remaining
        return ApiUsage(
            calls=dict(transport.calls),
            retries=transport.retries,
            rate_limited=transport.rate_limited,
            quota_used=used,
            quota_total=transport.quota_total,
        )

    def close(self) -> None:
        self._email_ids.clear()


def _reason(error: Exception) -> str:
    if isinstance(error, ValidationError):
        first = error.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        return f"{where}: {first['msg']}" if where else str(first["msg"])
    return str(error)


def _submission_key(submission: FormSubmission) -> str:
    """A submission's identity within its form: HubSpot's conversion id, else instant and e-mail."""
    email = str(submission.value("email") or "").strip().lower()
    return submission.conversion_id or f"{submission.submitted_at}-{email}"
