"""The HubSpot sandbox's data: contacts, engagement objects and form submissions, held compactly.

Records are kept in columns (``array`` of ints for ids, instants and codes,
lists of shared strings for text) rather than one dict per record, so a
sandbox with a million activities stays small. Everything the HTTP layer
returns is rendered from the columns on demand, the way HubSpot renders
properties: every value a string, instants as ISO-8601 with milliseconds.

Generated activities are translated into HubSpot's own records here (see
``KIND_RECORDS``). ``page_view``, ``email_open``, ``email_click`` and
``webinar_attended`` live outside CRM objects in a real portal (contact
counters, marketing e-mail events, marketing-event participations): the
``Signals`` of ``engagement.py`` hold and serve them.
"""

from __future__ import annotations

import threading
from array import array
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from connector.sandbox.generator import FakeActivity, FakeCompany, FakePerson, Removal
from connector.sandbox.hubspot.conformance import realistic_properties
from connector.sandbox.hubspot.engagement import Signals

CONNECTED = "f240bbac-87c9-4f6e-bf70-924b57d47db7"
NO_ANSWER = "73a0d17f-1163-4015-bdd5-ec830791da20"
LEFT_VOICEMAIL = "b2cf5968-551e-4856-9783-52b3da59a7d0"

LIFECYCLE_ORDER: tuple[str, ...] = (
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
    "other",
)
STAGE_PROPERTY = "crmsync_lifecycle_stage"
STAGE_OPTIONS: tuple[str, ...] = ("suspect", "lead", "prospect", "mql", "sql", "meeting")

INDUSTRY: dict[str, str] = {
    "logistics": "LOGISTICS_AND_SUPPLY_CHAIN",
    "manufacturing": "MECHANICAL_OR_INDUSTRIAL_ENGINEERING",
    "retail": "RETAIL",
    "wholesale": "WHOLESALE",
    "transportation": "TRANSPORTATION_TRUCKING_RAILROAD",
    "software": "COMPUTER_SOFTWARE",
    "finance": "FINANCIAL_SERVICES",
    "healthcare": "HOSPITAL_HEALTH_CARE",
    "education": "EDUCATION_MANAGEMENT",
}
"""Neutral industry keys to HubSpot's ``industry`` option values."""

EMPLOYEE_RANGES: tuple[tuple[int, str], ...] = (
    (1000, "1000+"),
    (500, "500-1000"),
    (100, "100-500"),
    (50, "50-100"),
    (25, "25-50"),
    (5, "5-25"),
    (0, "1-5"),
)


@dataclass(frozen=True, slots=True)
class Form:
    guid: str
    name: str


FORMS: tuple[Form, ...] = (
    Form("5b0a4f2e-1d1c-4c8e-9c1a-000000000001", "Guide download"),
    Form("5b0a4f2e-1d1c-4c8e-9c1a-000000000002", "Case study download"),
    Form("5b0a4f2e-1d1c-4c8e-9c1a-000000000003", "Newsletter"),
    Form("5b0a4f2e-1d1c-4c8e-9c1a-000000000004", "Webinar registration"),
    Form("5b0a4f2e-1d1c-4c8e-9c1a-000000000005", "Information request"),
    Form("5b0a4f2e-1d1c-4c8e-9c1a-000000000006", "Demo request"),
    Form("5b0a4f2e-1d1c-4c8e-9c1a-000000000007", "Careers"),
)

# kind -> (object, code); for form submissions the code is the form's index in FORMS
KIND_RECORDS: dict[str, tuple[str, int]] = {
    "meeting_booked": ("meetings", 0),
    "meeting_held": ("meetings", 2),
    "email_reply": ("emails", 1),
    "call_connected": ("calls", 0),
    "content_download": ("form_submissions", 0),
    "newsletter_signup": ("form_submissions", 2),
    "webinar_registered": ("form_submissions", 3),
    "info_request": ("form_submissions", 4),
    "demo_request": ("form_submissions", 5),
    # outside CRM objects (engagement.py's Signals take them first); kept for callers of KIND_RECORDS
    "email_open": ("emails", 0),
    "email_click": ("emails", 2),
    "webinar_attended": ("emails", 0),
    "page_view": ("calls", 1),
}
UNEXPRESSED_KINDS: tuple[str, ...] = ("page_view", "email_open", "email_click", "webinar_attended")

OBJECT_CODES: dict[str, dict[str, tuple[str, ...]]] = {
    "meetings": {"hs_meeting_outcome": ("SCHEDULED", "RESCHEDULED", "COMPLETED", "NO_SHOW", "CANCELED")},
    "emails": {"hs_email_direction": ("EMAIL", "INCOMING_EMAIL", "FORWARDED_EMAIL")},
    "calls": {"hs_call_disposition": (CONNECTED, NO_ANSWER, LEFT_VOICEMAIL)},
}
OBJECT_TITLE = {"meetings": "hs_meeting_title", "emails": "hs_email_subject", "calls": "hs_call_title"}
OBJECT_ID_BASE = {"contacts": 0, "meetings": 20_000_000_000, "emails": 30_000_000_000, "calls": 40_000_000_000}
ASSOCIATION_TYPE = {
    "meetings": (200, "meeting_event_to_contact"),
    "emails": (198, "email_to_contact"),
    "calls": (194, "call_to_contact"),
}

COMPANY_ID_BASE = 10_000_000_000
COMPANY_PROPERTIES: tuple[str, ...] = ("name", "domain", "industry", "numberofemployees", "country")
PRIMARY_COMPANY = (1, "contact_to_company")
"""The contact-to-company association HubSpot marks primary: v4 type id, v3 inline type name."""
UNLABELED_COMPANY = (279, "contact_to_company_unlabeled")
"""Every associated company also carries the unlabeled type, the primary one included."""
COMPANY_PRIMARY_CONTACT = (2, "company_to_contact")
"""The same association seen from the company (v4 type id, v3 name); unlabeled: 280."""
COMPANY_UNLABELED_CONTACT = (280, "company_to_contact_unlabeled")
CONTACT_ONLY_FIRMOGRAPHICS = 5
"""One person in this many keeps a (possibly stale) copy of the firmographics on the contact itself; the others,
as in real portals, have them only on their company."""

CONTACT_TEXT: tuple[str, ...] = (
    "email",
    "firstname",
    "lastname",
    "jobtitle",
    "company",
    "hs_email_domain",
    "numemployees",
    "industry",
    "country",
    "lifecyclestage",
)
CONTACT_INSTANTS = ("createdate", "lastmodifieddate")


def iso(ms: int) -> str:
    """HubSpot's rendering of an instant: ISO-8601, milliseconds, ``Z``."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def employees_range(count: int) -> str:
    for floor, label in EMPLOYEE_RANGES:
        if count >= floor:
            return label
    return "1-5"


class Details:
    """Interned short texts (titles, subjects, page URLs) referred to by index."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self._index: dict[str, int] = {}

    def code(self, text: str) -> int:
        index = self._index.get(text)
        if index is None:
            index = self._index[text] = len(self.texts)
            self.texts.append(text)
        return index


class Engagements:
    """One engagement object (meetings, emails or calls) in columns; record ``i`` has id ``base + i + 1``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.base = OBJECT_ID_BASE[name]
        self.contact = array("l")
        """Contact index of each record (one association)."""
        self.at = array("q")
        """When the record was created (``hs_createdate``): for a meeting, when it was booked."""
        self.start = array("q")
        """When it takes place (``hs_timestamp``; a meeting's ``hs_meeting_start_time``), often after ``at``."""
        self.modified = array("q")
        self.code = array("b")
        self.detail = array("l")
        self.code_property, self.code_values = next(iter(OBJECT_CODES[name].items()))
        self.raw: dict[tuple[int, str], str] = {}
        """(record index, property) -> text served instead of the column's value: malformed records for tests."""

    def __len__(self) -> int:
        return len(self.at)

    def add(
        self, contact: int, at_ms: int, modified_ms: int, code: int, detail: int, start_ms: int | None = None
    ) -> int:
        self.contact.append(contact)
        self.at.append(at_ms)
        self.start.append(at_ms if start_ms is None else start_ms)
        self.modified.append(modified_ms)
        self.code.append(code)
        self.detail.append(detail)
        return len(self.at) - 1

    def object_id(self, index: int) -> int:
        return self.base + index + 1

    def index_of(self, object_id: int) -> int | None:
        index = object_id - self.base - 1
        return index if 0 <= index < len(self.at) else None


class Companies:
    """HubSpot companies in columns; company ``i`` has id ``COMPANY_ID_BASE + i + 1``."""

    def __init__(self) -> None:
        self.text: dict[str, list[str | None]] = {name: [] for name in COMPANY_PROPERTIES}
        self.created = array("q")
        self.modified = array("q")
        self.by_domain: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.created)

    def add(self, values: dict[str, str | None], *, created_ms: int) -> int:
        for name, column in self.text.items():
            column.append(values.get(name))
        self.created.append(created_ms)
        self.modified.append(created_ms)
        index = len(self.created) - 1
        domain = values.get("domain")
        if domain:
            self.by_domain[domain.lower()] = index
        return index

    @staticmethod
    def object_id(index: int) -> int:
        return COMPANY_ID_BASE + index + 1

    def index_of(self, object_id: int) -> int | None:
        index = object_id - COMPANY_ID_BASE - 1
        return index if 0 <= index < len(self.created) else None

    def get(self, index: int, name: str) -> str | None:
        column = self.text.get(name)
        if column is not None:
            return column[index]
        if name in ("createdate", "hs_createdate"):
            return iso(self.created[index])
        if name == "hs_lastmodifieddate":
            return iso(self.modified[index])
        if name == "hs_object_id":
            return str(self.object_id(index))
        return None

    def sort_value(self, index: int, name: str) -> int | str | None:
        if name in ("createdate", "hs_createdate"):
            return self.created[index]
        if name == "hs_lastmodifieddate":
            return self.modified[index]
        if name == "hs_object_id":
            return self.object_id(index)
        return self.get(index, name)


@dataclass(frozen=True, slots=True)
class Submission:
    submitted_at: int
    seq: int
    contact: int
    page: int


class FormSubmissions:
    """Submissions of one form, kept newest first (the order HubSpot pages them in)."""

    def __init__(self, form: Form) -> None:
        self.form = form
        self.items: list[Submission] = []
        self._keys: list[tuple[int, int]] = []  # (-submitted_at, -seq), ascending = newest first
        self._pending: list[Submission] = []

    def add(self, item: Submission, *, bulk: bool = False) -> None:
        if bulk:
            self._pending.append(item)
            return
        key = (-item.submitted_at, -item.seq)
        position = bisect_right(self._keys, key)
        self._keys.insert(position, key)
        self.items.insert(position, item)

    def settle(self) -> None:
        """Sort what was added in bulk (seeding) into place."""
        if self._pending:
            self.items.extend(self._pending)
            self._pending = []
            self.items.sort(key=lambda s: (-s.submitted_at, -s.seq))
            self._keys = [(-s.submitted_at, -s.seq) for s in self.items]

    def position_after(self, key: tuple[int, int]) -> int:
        """Index of the first submission older than the one with ``key``."""
        return bisect_right(self._keys, key)


@dataclass
class PropertyDef:
    name: str
    label: str
    type: str
    field_type: str
    options: list[str]
    group: str = "contactinformation"
    hubspot_defined: bool = True


class Store:
    """All the sandbox portal's data. Thread-safe for the server thread plus a test thread."""

    def __init__(self, *, with_stage_property: bool = True, clock: Callable[[], float] | None = None) -> None:
        self.lock = threading.RLock()
        self.version = 0
        """Bumped on every change; search caches key on it."""
        self._clock = clock
        self.text: dict[str, list[str | None]] = {name: [] for name in CONTACT_TEXT}
        self.instants: dict[str, array[int]] = {name: array("q") for name in CONTACT_INSTANTS}
        self.extra: dict[str, dict[int, str]] = {}
        """Properties created through the API: sparse, contact index to value."""
        self.by_email: dict[str, int] = {}
        self.companies = Companies()
        self.contact_company = array("l")
        """Each contact's primary company index (-1: none)."""
        self.details = Details()
        self.engagements = {name: Engagements(name) for name in ("meetings", "emails", "calls")}
        self.forms = {form.guid: FormSubmissions(form) for form in FORMS}
        self.signals = Signals()
        """E-mail events, webinar participations, page-view and e-mail counters (``engagement.py``)."""
        self._submission_seq = 0
        self.merged_into: dict[int, int] = {}
        """Merged-away contacts: index -> the index of the contact it was merged into (reads follow it)."""
        self.archived: dict[int, int] = {}
        """Archived (deleted) contacts: index -> ``archivedAt`` ms. Lists, searches and reads no longer show them;
        ``GET /crm/v3/objects/contacts?archived=true`` does."""
        self.properties: dict[str, PropertyDef] = {}
        for name in (*CONTACT_TEXT, *CONTACT_INSTANTS, "hs_object_id"):
            kind = "datetime" if name in CONTACT_INSTANTS else "number" if name == "hs_object_id" else "string"
            self.properties[name] = PropertyDef(name, name, kind, "text", [])
        self.properties["lifecyclestage"] = PropertyDef(
            "lifecyclestage", "Lifecycle Stage", "enumeration", "radio", list(LIFECYCLE_ORDER)
        )
        self.properties["industry"] = PropertyDef(
            "industry", "Industry", "enumeration", "select", sorted(set(INDUSTRY.values()))
        )
        self.properties["numemployees"] = PropertyDef(
            "numemployees", "Number of Employees", "enumeration", "select", [label for _, label in EMPLOYEE_RANGES]
        )
        self.company_properties: dict[str, PropertyDef] = {
            name: PropertyDef(name, name, "string", "text", [], group="companyinformation")
            for name in (*COMPANY_PROPERTIES, "createdate", "hs_lastmodifieddate", "hs_object_id")
        }
        self.company_properties["industry"] = PropertyDef(
            "industry", "Industry", "enumeration", "select", sorted(set(INDUSTRY.values())), group="companyinformation"
        )
        self.company_properties["numberofemployees"] = PropertyDef(
            "numberofemployees", "Number of Employees", "number", "number", [], group="companyinformation"
        )
        for name, kind, group in realistic_properties():  # a real portal's few hundred, mostly empty
            if name not in self.properties:
                self.properties[name] = PropertyDef(name, name, kind, "text", [], group=group)
                self.extra[name] = {}
        if with_stage_property:
            self.create_property(
                PropertyDef(STAGE_PROPERTY, "Lifecycle stage (crmsync)", "enumeration", "select", list(STAGE_OPTIONS))
            )
            self.create_property(PropertyDef("crmsync_stage_reached_at", "Stage reached", "date", "date", []))
            self.create_property(PropertyDef("crmsync_stage_reason", "Stage reason", "string", "text", []))

    # -- clock ---------------------------------------------------------------
    def now_ms(self) -> int:
        import time

        return int((self._clock() if self._clock else time.time()) * 1000)

    # -- properties ------------------------------------------------------------
    def create_property(self, definition: PropertyDef) -> PropertyDef:
        with self.lock:
            definition.hubspot_defined = False
            self.properties[definition.name] = definition
            if definition.name not in self.text and definition.name not in self.instants:
                self.extra.setdefault(definition.name, {})
            self.version += 1
            return definition

    # -- contacts ------------------------------------------------------------
    @property
    def contact_count(self) -> int:
        return len(self.instants["createdate"])

    @staticmethod
    def contact_id(index: int) -> int:
        return index + 1

    def contact_index(self, contact_id: int) -> int | None:
        """The index of a live contact (``None`` for an unknown or archived id)."""
        index = contact_id - 1
        return index if 0 <= index < self.contact_count and index not in self.archived else None

    def read_index(self, contact_id: int) -> int | None:
        """The contact a read by ``contact_id`` returns: a merged-away id reads as the contact it was merged into
        (HubSpot: "fetching any records using the original IDs will return the merged record"); an archived
        (deleted) one as nothing."""
        index = contact_id - 1
        seen = 0
        while index in self.merged_into and seen <= len(self.merged_into):
            index, seen = self.merged_into[index], seen + 1
        return self.contact_index(index + 1)

    def add_contact(
        self, values: dict[str, str | None], *, created_ms: int, modified_ms: int, company: int = -1
    ) -> int:
        """A contact with ``values``, associated with company index ``company`` (primary) unless it is -1."""
        with self.lock:
            index = self.contact_count
            self.contact_company.append(company)
            for name, column in self.text.items():
                column.append(values.get(name))
            self.instants["createdate"].append(created_ms)
            self.instants["lastmodifieddate"].append(modified_ms)
            for name, value in values.items():
                if name in self.extra and value is not None:
                    self.extra[name][index] = value
            email = values.get("email")
            if email:
                self.by_email[email.lower()] = index
            self.version += 1
            return index

    def add_company(self, company: FakeCompany, created_ms: int) -> int:
        """The company with ``company``'s domain, added on first sight."""
        with self.lock:
            found = self.companies.by_domain.get(company.domain.lower())
            if found is not None:
                return found
            self.version += 1
            return self.companies.add(
                {
                    "name": company.name,
                    "domain": company.domain,
                    "industry": INDUSTRY.get(company.industry, company.industry.upper()),
                    "numberofemployees": str(company.employees),
                    "country": company.country,
                },
                created_ms=created_ms,
            )

    def set_company(self, index: int, name: str, value: str | None) -> None:
        """Edit one company property (its ``hs_lastmodifieddate`` moves to now), as a person in HubSpot would."""
        with self.lock:
            self.companies.text[name][index] = value or None
            self.companies.modified[index] = max(self.now_ms(), self.companies.modified[index])
            self.version += 1

    def add_person(self, person: FakePerson) -> int:
        """The person as a contact associated with their company (primary). Most contacts carry no firmographics
        of their own, as in real portals; one in ``CONTACT_ONLY_FIRMOGRAPHICS`` keeps a copy. A standing beyond
        the ladder (``customer``...) is the contact's ``lifecyclestage``; other addresses go to
        ``hs_additional_emails``, ``;``-separated as HubSpot keeps them."""
        company = person.company
        own = person.index % CONTACT_ONLY_FIRMOGRAPHICS == 0
        return self.add_contact(
            {
                "email": person.email,
                "firstname": person.first_name,
                "lastname": person.last_name,
                "jobtitle": person.job_title,
                "company": company.name,
                "hs_email_domain": company.domain,
                "numemployees": employees_range(company.employees) if own else None,
                "industry": INDUSTRY.get(company.industry, company.industry.upper()) if own else None,
                "country": company.country if own else None,
                "lifecyclestage": person.standing or "subscriber",
                "hs_additional_emails": ";".join(person.additional_emails) or None,
            },
            created_ms=to_ms(person.created_at),
            modified_ms=to_ms(person.modified_at),
            company=self.add_company(company, to_ms(person.created_at)),
        )

    def get(self, index: int, name: str) -> str | None:
        """A contact's property as HubSpot renders it (``None`` when empty or unknown)."""
        column = self.text.get(name)
        if column is not None:
            return column[index]
        instants = self.instants.get(name)
        if instants is not None:
            return iso(instants[index])
        if name == "hs_object_id":
            return str(self.contact_id(index))
        extra = self.extra.get(name)
        return extra.get(index) if extra is not None else None

    def sort_value(self, index: int, name: str) -> int | str | None:
        """A contact's property for filters and sorts: instants and ids as ints."""
        instants = self.instants.get(name)
        if instants is not None:
            return instants[index]
        if name == "hs_object_id":
            return self.contact_id(index)
        return self.get(index, name)

    def set(self, index: int, name: str, value: str) -> None:
        """Write one property; caller holds the lock and bumps ``lastmodifieddate``."""
        column = self.text.get(name)
        stored: str | None = value if value != "" else None
        if column is not None:
            column[index] = stored
            if name == "email" and stored:
                self.by_email[stored.lower()] = index
        elif name in self.extra:
            if stored is None:
                self.extra[name].pop(index, None)
            else:
                self.extra[name][index] = stored
        else:  # pragma: no cover - the HTTP layer validates names first
            raise KeyError(name)

    def archive(self, index: int) -> None:
        """Delete a contact as HubSpot does: archived (restorable for 90 days), gone from lists, searches, reads."""
        with self.lock:
            self.archived[index] = max(self.now_ms(), self.instants["lastmodifieddate"][index])
            self.version += 1

    def merge(self, primary: int, merged: int) -> None:
        """``POST /crm/v3/objects/contacts/merge``: the primary keeps its id and its values; the merged contact's
        engagements and form submissions become the primary's, its id joins the primary's
        ``hs_merged_object_ids`` (with the ids merged into it before), and it is archived."""
        with self.lock:
            if primary == merged or primary in self.archived or merged in self.archived:
                raise ValueError("merge needs two distinct contacts that are not archived")
            now = self.now_ms()
            for engagements in self.engagements.values():
                for n, owner in enumerate(engagements.contact):
                    if owner == merged:
                        engagements.contact[n] = primary
                        engagements.modified[n] = max(now, engagements.modified[n])
            for form in self.forms.values():
                for n, item in enumerate(form.items):
                    if item.contact == merged:
                        form.items[n] = Submission(item.submitted_at, item.seq, primary, item.page)
            ids = self.extra.setdefault("hs_merged_object_ids", {})
            earlier = [part for part in (ids.get(merged) or "").split(";") if part]
            mine = [part for part in (ids.get(primary) or "").split(";") if part]
            ids[primary] = ";".join(dict.fromkeys([*mine, *earlier, str(self.contact_id(merged))]))
            email = self.text["email"][merged]
            if email and self.by_email.get(email.lower()) == merged:
                self.by_email[email.lower()] = primary  # the merged address is the primary's now
            self.archived[merged] = now
            self.merged_into[merged] = primary
            self.touch(primary)

    def apply_removals(self, removals: Iterable[Removal]) -> tuple[int, int]:
        """Archive and merge seeded people as a user would (``generator.removals``; person index = contact
        index, as seeded); returns (archived, merged)."""
        archived = merged = 0
        with self.lock:
            for removal in removals:
                if removal.index in self.archived or removal.index >= self.contact_count:
                    continue
                if removal.into is None:
                    self.archive(removal.index)
                    archived += 1
                elif removal.into not in self.archived and removal.into < self.contact_count:
                    self.merge(removal.into, removal.index)
                    merged += 1
        return archived, merged

    def touch(self, index: int) -> None:
        self.instants["lastmodifieddate"][index] = max(self.now_ms(), self.instants["lastmodifieddate"][index])
        self.version += 1

    # -- activities ------------------------------------------------------------
    def add_activity(self, activity: FakeActivity, contact: int, *, bulk: bool = False) -> None:
        at = to_ms(activity.occurred_at)
        with self.lock:
            if self.signals.add(activity.kind, contact, at, activity.index):  # engagement.py
                if not bulk:
                    self.settle_signals()
                return
        target, code = KIND_RECORDS.get(activity.kind, ("emails", 0))
        if target == "form_submissions":
            form = FORMS[code]
            if activity.kind == "content_download" and activity.index % 3 == 0:
                form = FORMS[1]
            self.add_submission(form.guid, contact, at, activity.detail, bulk=bulk)
            return
        if activity.kind == "meeting_booked" and activity.index % 7 == 0:
            code = 1  # RESCHEDULED counts as booked too
        engagements = self.engagements[target]
        with self.lock:
            start = to_ms(activity.starts_at) if activity.starts_at is not None else at
            engagements.add(contact, at, at, code, self.details.code(activity.detail), start)
            self.version += 1

    def add_submission(self, guid: str, contact: int, at_ms: int, page: str, *, bulk: bool = False) -> None:
        with self.lock:
            self._submission_seq += 1
            url = f"https://www.example.com{page}" if page.startswith("/") else f"https://www.example.com/{_slug(page)}"
            self.forms[guid].add(Submission(at_ms, self._submission_seq, contact, self.details.code(url)), bulk=bulk)
            self.version += 1

    def seed(self, people: Iterable[tuple[FakePerson, list[FakeActivity]]]) -> None:
        with self.lock:
            for person, activities in people:
                index = self.add_person(person)
                for activity in activities:
                    self.add_activity(activity, index, bulk=True)
            for form in self.forms.values():
                form.settle()
            self.settle_signals()
            self.version += 1

    def settle_signals(self) -> None:
        """Fold the signals' counters into the contact properties (caller holds the lock)."""
        for name, values in self.signals.counters().items():
            self.extra[name] = values
        self.version += 1

    def activity_total(self) -> int:
        signals = self.signals
        counted = sum(len(e) for e in self.engagements.values()) + sum(len(f.items) for f in self.forms.values())
        return counted + signals.event_count + len(signals.part_at) + sum(v[0] for v in signals.views.values())

    def iter_contacts(self) -> Iterator[int]:
        return iter(range(self.contact_count))


def _slug(text: str) -> str:
    return "-".join("".join(ch if ch.isalnum() else " " for ch in text.lower()).split())
