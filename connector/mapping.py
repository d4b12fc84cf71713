"""Field and activity mappings between one CRM and the common model.

A mapping file (``mappings/hubspot.toml``, ``mappings/salesforce.toml``) is
data, not code: a small strict vocabulary, loaded and checked here. The
vendor clients use the compiled :class:`CrmMapping` to normalise records at
their boundary; the write planner uses its stage section.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from connector.errors import ConfigError, Problem
from connector.loading import load_model
from connector.model import LADDER, Activity, ActivityKind, CounterKind, Stage

_STRICT = ConfigDict(frozen=True, extra="forbid")

COMMON_FIELDS: tuple[str, ...] = (
    "email",
    "first_name",
    "last_name",
    "job_title",
    "company.name",
    "company.domain",
    "company.employees",
    "company.industry",
    "company.country",
)


class Transform(StrEnum):
    """What may be done to a CRM value on its way into the common model."""

    TEXT = "text"
    """Stripped text; empty becomes missing."""
    LOWER = "lower"
    UPPER = "upper"
    EMAIL = "email"
    """Stripped and lower-cased; must look like an address."""
    INT = "int"
    """A whole number; ``"1,200"`` and ``"120.0"`` are accepted."""
    INT_RANGE = "int_range"
    """The lower bound of a range such as ``"25-50"`` or ``"1000+"`` (HubSpot ``numemployees``); plain numbers too."""
    DATETIME = "datetime"
    """ISO-8601 (a ``Z`` or offset; naive means UTC), ``YYYY-MM-DD``, or epoch milliseconds."""


class FieldSpec(BaseModel):
    model_config = _STRICT

    field: str = Field(min_length=1)
    transform: Transform = Transform.TEXT


class CompanySource(BaseModel):
    """The company a person's firmographics are read from: HubSpot reads the contact's *primary* associated
    company (``object = "companies"``). Its fields win; the person's own ``company.*`` fields are the fallback
    for a value the company lacks (or a person with no company)."""

    model_config = _STRICT

    object: str = Field(min_length=1)
    fields: dict[str, str | FieldSpec] = Field(min_length=1)

    @field_validator("fields")
    @classmethod
    def _company_targets(cls, value: dict[str, str | FieldSpec]) -> dict[str, str | FieldSpec]:
        wrong = sorted(target for target in value if not target.startswith("company.") or target not in COMMON_FIELDS)
        if wrong:
            known = [f for f in COMMON_FIELDS if f.startswith("company.")]
            raise ValueError(f"company fields must be company.* common fields; {wrong} are not (known: {known})")
        return value

    def specs(self) -> dict[str, FieldSpec]:
        return {
            target: spec if isinstance(spec, FieldSpec) else FieldSpec(field=spec)
            for target, spec in self.fields.items()
        }


class CounterSpec(BaseModel):
    """A running total kept on the person: the field with the total, and the one with the last date."""

    model_config = _STRICT

    total: str = Field(min_length=1)
    last: str | None = None
    """The field holding when the latest one happened; without it the counter is undated (scores nothing)."""


class PersonObject(BaseModel):
    """One CRM object that holds people (HubSpot ``contacts``; Salesforce ``Lead``, ``Contact``)."""

    model_config = _STRICT

    fields: dict[str, str | FieldSpec]
    company: CompanySource | None = None
    """Where the person's company fields come from first (see :class:`CompanySource`)."""
    counters: dict[CounterKind, CounterSpec] = Field(default_factory=dict)
    """Counters read from the person's own fields (HubSpot ``hs_analytics_num_page_views``...)."""
    extra_emails: list[str] = Field(default_factory=list)
    """Fields holding more addresses of the person (HubSpot ``hs_additional_emails``, several addresses
    separated by ``;``): matched to find one person's records across CRMs, never written."""

    @field_validator("fields")
    @classmethod
    def _known_targets(cls, value: dict[str, str | FieldSpec]) -> dict[str, str | FieldSpec]:
        unknown = sorted(set(value) - set(COMMON_FIELDS))
        if unknown:
            raise ValueError(f"unknown common field(s) {unknown}; known: {list(COMMON_FIELDS)}")
        if "email" not in value:
            raise ValueError("the e-mail field must be mapped")
        return value

    def specs(self) -> dict[str, FieldSpec]:
        return {
            target: spec if isinstance(spec, FieldSpec) else FieldSpec(field=spec)
            for target, spec in self.fields.items()
        }


class ActivityRule(BaseModel):
    """CRM records of ``object`` whose fields match ``when`` become activities of ``kind``."""

    model_config = _STRICT

    object: str = Field(min_length=1)
    kind: ActivityKind
    at: str = Field(min_length=1)
    """The CRM field that holds the instant the activity happened."""
    detail: str | None = None
    """Optional CRM field shown with the activity (a title, a campaign name)."""
    when: dict[str, str | list[str]] = Field(default_factory=dict)
    """Every listed field must hold the value (or one of the values); values compare case-insensitively."""

    def wanted(self) -> tuple[tuple[str, frozenset[str]], ...]:
        """``when`` compiled: each field with the stripped, lower-cased values it may hold."""
        return tuple(
            (name, frozenset(v.strip().lower() for v in ([wanted] if isinstance(wanted, str) else wanted)))
            for name, wanted in self.when.items()
        )


class SecondaryStageField(BaseModel):
    """Another field written along with the stage, e.g. HubSpot's own ``lifecyclestage``.

    Its values follow the ladder's order; several rungs may share a value and
    rungs may be left out (nothing is written to this field for them).
    """

    model_config = _STRICT

    field: str = Field(min_length=1)
    values: dict[Stage, str]


class StageGuard(BaseModel):
    """A CRM field crmsync reads but never writes that can put a person beyond or outside the ladder, e.g. a
    Salesforce Lead's ``Status``: a value it does not list in ``on_ladder`` (``Closed - Converted``, a custom
    ``Recycled - Nurture``) means the CRM's stage wins and nothing is written to any stage field."""

    model_config = _STRICT

    field: str = Field(min_length=1)
    objects: list[str] = Field(default_factory=list)
    """The person objects that have the field (``["Lead"]``); empty: every person object of the mapping."""
    on_ladder: list[str] = Field(min_length=1)
    """The values that sit on the ladder; every other non-empty value is beyond or outside it."""


class StageSection(BaseModel):
    model_config = _STRICT

    field: str = Field(min_length=1)
    """The CRM field that holds the rung (a picklist / enumeration)."""
    values: dict[Stage, str]
    """The CRM value for each rung; every rung needs one, each value used once."""
    protected: list[Stage] = Field(default_factory=list)
    """Rungs people set by hand: a record on one is never changed by crmsync.
    CRM values outside the ladder are always protected."""
    reached_at_field: str | None = None
    """Optional field that gets the date the current rung was reached."""
    reason_field: str | None = None
    """Optional text field that gets a short reason sales people read, e.g. "MQL: guide 2026-10-02"."""
    reason_max_length: int = Field(default=255, ge=20)
    also: list[SecondaryStageField] = Field(default_factory=list)
    guards: list[StageGuard] = Field(default_factory=list)
    """Fields read, never written, whose values outside ``on_ladder`` put a person beyond the ladder."""

    @model_validator(mode="after")
    def _consistent(self) -> StageSection:
        missing = [stage.value for stage in LADDER if stage not in self.values]
        if missing:
            raise ValueError(f"values: no CRM value for rung(s) {missing}")
        seen: dict[str, Stage] = {}
        for stage, value in self.values.items():
            if value in seen:
                raise ValueError(f"values: {stage.value} and {seen[value].value} both map to {value!r}")
            seen[value] = stage
        targets = [self.field, self.reached_at_field, self.reason_field, *(a.field for a in self.also)]
        named = [t for t in targets if t]
        duplicates = sorted({t for t in named if named.count(t) > 1})
        if duplicates:
            raise ValueError(f"field(s) {duplicates} written twice")
        guarded = sorted({g.field for g in self.guards} & set(named))
        if guarded:
            raise ValueError(f"guards: field(s) {guarded} are written by crmsync; a guard is only read")
        return self


VENDOR_FILES = ("settings.py", "transport.py", "errors.py", "payloads.py", "normalise.py", "cursor.py", "schema.py",
                "client.py")  # fmt: skip
"""The files every vendor package has; a folder of ``connector/`` with all of them is a CRM crmsync can sync."""


@cache
def vendor_names() -> tuple[str, ...]:
    """The CRMs this install can sync: the vendor folders of the package (found on disk, nothing imported)."""
    package = Path(__file__).parent
    return tuple(
        sorted(
            folder.name
            for folder in package.iterdir()
            if folder.is_dir() and all((folder / name).is_file() for name in VENDOR_FILES)
        )
    )


class MappingFile(BaseModel):
    model_config = _STRICT

    crm: str
    """The vendor folder the mapping is for (``hubspot``, ``salesforce``...)."""

    @field_validator("crm")
    @classmethod
    def _known_crm(cls, value: str) -> str:
        if value not in vendor_names():
            raise ValueError(f"unknown CRM {value!r}; known: {list(vendor_names())}")
        return value

    people: dict[str, PersonObject] = Field(min_length=1)
    activities: list[ActivityRule] = Field(default_factory=list)
    stage: StageSection

    @model_validator(mode="after")
    def _no_duplicate_rules(self) -> MappingFile:
        seen: set[tuple[str, tuple[tuple[str, tuple[str, ...]], ...]]] = set()
        for index, rule in enumerate(self.activities):
            key = (
                rule.object,
                tuple(sorted((name, tuple(sorted([w] if isinstance(w, str) else w))) for name, w in rule.when.items())),
            )
            if key in seen:
                raise ValueError(f"activities[{index}] repeats an earlier rule for {rule.object} with the same 'when'")
            seen.add(key)
        return self

    @model_validator(mode="after")
    def _guards_on_people(self) -> MappingFile:
        for index, guard in enumerate(self.stage.guards):
            unknown = sorted(set(guard.objects) - set(self.people))
            if unknown:
                raise ValueError(f"stage.guards[{index}].objects: {unknown} are not person objects of this mapping")
        return self


class CrmMapping:
    """A loaded mapping, with the look-ups the clients and the planner need."""

    def __init__(self, spec: MappingFile, source: str = "<memory>") -> None:
        self.spec = spec
        self.source = source
        self.crm = spec.crm
        self.people = {name: obj.specs() for name, obj in spec.people.items()}
        self.companies: dict[str, tuple[str, dict[str, FieldSpec]]] = {
            name: (obj.company.object, obj.company.specs()) for name, obj in spec.people.items() if obj.company
        }
        """Person object -> (company object, company field specs by common field)."""
        self.stage = spec.stage
        self._stage_by_value = {value: stage for stage, value in spec.stage.values.items()}
        self._activity_rules: dict[str, list[ActivityRule]] = {}
        for rule in spec.activities:
            self._activity_rules.setdefault(rule.object, []).append(rule)
        # the one compiled matcher (a million records go through it): plain tuples, no pydantic on the hot path
        self._matchers: dict[str, tuple[tuple[ActivityRule, tuple[tuple[str, frozenset[str]], ...]], ...]] = {
            name: tuple((rule, rule.wanted()) for rule in rules) for name, rules in self._activity_rules.items()
        }
        self._stage_fields: dict[str | None, tuple[str, ...]] = {}

    # -- stages -----------------------------------------------------------
    def stage_for_value(self, value: str | None) -> Stage | None:
        """The rung a primary stage-field value stands for; ``None`` when empty or outside the ladder."""
        return self._stage_by_value.get(value) if value else None

    def value_for_stage(self, stage: Stage) -> str:
        return self.stage.values[stage]

    def stage_fields(self, crm_object: str | None = None) -> list[str]:
        """Every CRM field that carries a stage: the primary field first, then the secondary ones, then the
        guards (read, never written) that ``crm_object`` has (every guard when it is ``None``)."""
        fields = self._stage_fields.get(crm_object)
        if fields is None:  # worked out once per object: it is asked for every record read
            guards = [
                g.field for g in self.stage.guards if crm_object is None or not g.objects or crm_object in g.objects
            ]
            fields = self._stage_fields[crm_object] = tuple(
                dict.fromkeys([self.stage.field, *(also.field for also in self.stage.also), *guards])
            )
        return list(fields)

    def beyond_ladder(self, stage_values: Mapping[str, str | None]) -> str | None:
        """Why a person whose stage fields hold ``stage_values`` is beyond or outside the ladder (the first field
        holding a value the ladder does not know), or ``None``. Empty values are not beyond anything."""
        primary = stage_values.get(self.stage.field)
        if primary and self.stage_for_value(primary) is None:
            return f"CRM {self.stage.field} is {primary!r}, outside the ladder: the CRM's stage wins, nothing written"
        for also in self.stage.also:
            value = stage_values.get(also.field)
            if value and value not in also.values.values():
                return f"CRM {also.field} is {value!r}, outside the ladder: the CRM's stage wins, nothing written"
        for guard in self.stage.guards:
            value = stage_values.get(guard.field)
            if value and value not in guard.on_ladder:
                return f"CRM {guard.field} is {value!r}, beyond the ladder: the CRM's stage wins, nothing written"
        return None

    def written_fields(self) -> list[str]:
        """Every CRM field crmsync may write (the guards are only read)."""
        extra = [f for f in (self.stage.reached_at_field, self.stage.reason_field) if f]
        return [self.stage.field, *(also.field for also in self.stage.also), *extra]

    # -- activities ----------------------------------------------------------
    def activity_objects(self) -> list[str]:
        return list(self._activity_rules)

    def activity_rules(self, crm_object: str) -> list[ActivityRule]:
        return self._activity_rules.get(crm_object, [])

    def activity_fields(self, crm_object: str) -> list[str]:
        """CRM fields to read for ``crm_object`` so that its rules can be applied."""
        names: dict[str, None] = {}
        for rule in self.activity_rules(crm_object):
            names[rule.at] = None
            if rule.detail:
                names[rule.detail] = None
            for name in rule.when:
                names[name] = None
        return list(names)

    def kind_for(self, crm_object: str, values: Mapping[str, Any]) -> ActivityRule | None:
        """The first rule of ``crm_object`` that matches ``values``; ``None`` means unmapped.

        Values compare stripped and case-insensitively; a missing value matches nothing.
        """
        for rule, wanted in self._matchers.get(crm_object, ()):
            for name, accepted in wanted:
                value = values.get(name)
                if value is None or str(value).strip().lower() not in accepted:
                    break
            else:
                return rule
        return None

    def activity(self, crm_object: str, values: Mapping[str, Any], activity_id: str) -> Activity | None:
        """The activity a CRM record of ``crm_object`` stands for; ``None`` when no rule matches (unmapped).

        The one place an :class:`Activity` is built from CRM values, for every
        vendor. Raises ``ValueError`` naming the field when the instant is
        missing or unreadable.
        """
        rule = self.kind_for(crm_object, values)
        if rule is None:
            return None
        return build_activity(rule, values, activity_id)

    # -- people ------------------------------------------------------------
    def person_fields(self, crm_object: str) -> list[str]:
        names = [spec.field for spec in self.people[crm_object].values()]
        for counter in self.spec.people[crm_object].counters.values():
            names += [counter.total, *([counter.last] if counter.last else [])]
        names += self.spec.people[crm_object].extra_emails
        return list(dict.fromkeys(names))

    def company_object(self, crm_object: str) -> str | None:
        """The CRM object the people of ``crm_object`` read their company from, if the mapping names one."""
        found = self.companies.get(crm_object)
        return found[0] if found else None

    def company_fields(self, crm_object: str) -> list[str]:
        """The company properties to read for the people of ``crm_object``."""
        found = self.companies.get(crm_object)
        return [spec.field for spec in found[1].values()] if found else []

    def normalise_person(
        self, crm_object: str, values: Mapping[str, Any], company_values: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Common-model fields (nested ``company``) from one CRM record's values.

        With ``company_values`` (the person's company record), the mapping's company fields win and the
        person's own ``company.*`` fields fill what the company lacks. Raises ``ValueError`` naming the field
        when a value that is used cannot be transformed.
        """
        person: dict[str, Any] = {}
        company: dict[str, Any] = {}
        found = self.companies.get(crm_object)
        if found is not None and company_values is not None:
            company_object, company_specs = found
            for target, spec in company_specs.items():
                value = apply_transform(
                    spec.transform, company_values.get(spec.field), f"{company_object}.{spec.field}"
                )
                if value is not None:
                    company[target.removeprefix("company.")] = value
        for target, spec in self.people[crm_object].items():
            if target.startswith("company.") and target.removeprefix("company.") in company:
                continue  # the company's value wins
            value = apply_transform(spec.transform, values.get(spec.field), spec.field)
            if value is None:
                continue
            if target.startswith("company."):
                company[target.removeprefix("company.")] = value
            else:
                person[target] = value
        if company:
            person["company"] = company
        counters = self.spec.people[crm_object].counters
        if counters:
            person["counters"] = person_counters(counters, values)
        extra = self.spec.people[crm_object].extra_emails
        if extra:
            others = extra_addresses(values, extra, person.get("email"))
            if others:
                person["other_emails"] = others
        return person


def extra_addresses(values: Mapping[str, Any], fields: list[str], primary: str | None) -> list[str]:
    """The valid addresses in ``fields`` (each may hold several, separated by ``;`` as HubSpot's
    ``hs_additional_emails`` does), normalised, without ``primary`` or repeats. An address that is not
    one is left out (it can only match nothing), never an error: the person is synced all the same."""
    found: dict[str, None] = {}
    for name in fields:
        raw = values.get(name)
        if not isinstance(raw, str):
            continue
        for part in raw.replace(",", ";").split(";"):
            if not part.strip():
                continue
            try:
                email = normalise_email(part)
            except ValueError:
                continue
            if email != primary:
                found[email] = None
    return list(found)


def person_counters(specs: Mapping[CounterKind, CounterSpec], values: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The counters of one person's record: those with a total above zero, dated when the CRM dates them.

    Raises ``ValueError`` naming the field when a total or a date cannot be read.
    """
    counters: list[dict[str, Any]] = []
    for kind, spec in specs.items():
        total = apply_transform(Transform.INT, values.get(spec.total), spec.total)
        if not total:
            continue
        last = apply_transform(Transform.DATETIME, values.get(spec.last), spec.last) if spec.last else None
        counters.append({"kind": kind.value, "total": total, "last_at": last})
    return counters


def build_activity(rule: ActivityRule, values: Mapping[str, Any], activity_id: str) -> Activity:
    """``rule``'s activity from a record's values; ``ValueError`` naming the field when the instant is bad."""
    at = values.get(rule.at)
    if at is None or at == "":
        raise ValueError(f"{rule.at}: no value")
    try:
        occurred_at = parse_instant(at)
    except (ValueError, TypeError, OverflowError) as error:
        raise ValueError(f"{rule.at}: {error}") from None
    detail = text_value(values.get(rule.detail)) if rule.detail else None
    return Activity(kind=rule.kind.value, occurred_at=occurred_at, detail=detail, id=activity_id)


def text_value(value: Any) -> str | None:
    """A CRM value as stripped text; ``None`` when missing or blank."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def apply_transform(transform: Transform, value: Any, field: str) -> Any:
    """Apply one mapping transform; ``None`` for a missing or empty value."""
    if value is None:
        return None
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return None
    try:
        match transform:
            case Transform.TEXT:
                return str(value)
            case Transform.LOWER:
                return str(value).lower()
            case Transform.UPPER:
                return str(value).upper()
            case Transform.EMAIL:
                return normalise_email(str(value))
            case Transform.INT:
                return _to_int(value)
            case Transform.INT_RANGE:
                return _to_int(str(value).split("-")[0].rstrip("+"))
            case Transform.DATETIME:
                return parse_instant(value)
    except (ValueError, TypeError, OverflowError) as error:
        raise ValueError(f"{field}: {error}") from None
    raise AssertionError(transform)  # pragma: no cover - StrEnum is exhaustive


def normalise_email(value: str) -> str:
    email = value.strip().lower()
    local, _, domain = email.partition("@")
    if not local or "." not in domain or " " in email or len(email) > 254:
        raise ValueError(f"not an e-mail address: {value[:80]!r}")
    return email


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("not a number")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    text = str(value).replace(",", "").replace(" ", "")
    return int(float(text)) if "." in text else int(text)


def parse_instant(value: Any) -> datetime:
    """An aware UTC datetime from ISO-8601 text, a date, or epoch milliseconds."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    text = str(value).strip()
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
    parsed = datetime.fromisoformat(text.replace("+0000", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def load_mapping(path: Path) -> CrmMapping:
    """Load and check one mapping file; every problem is reported at once as a ``ConfigError``."""
    spec = load_model(MappingFile, path)
    return CrmMapping(spec, str(path))


def check_mapping(path: Path) -> list[Problem]:
    try:
        load_mapping(path)
    except ConfigError as error:
        return error.problems
    return []


__all__ = [
    "ActivityRule",
    "CrmMapping",
    "FieldSpec",
    "MappingFile",
    "Transform",
    "apply_transform",
    "build_activity",
    "check_mapping",
    "load_mapping",
    "normalise_email",
    "parse_instant",
    "text_value",
    "vendor_names",
]
