"""HubSpot records to the common model, with the mapping. Pure: no IO, no client state.

Contacts become :class:`ContactRecord`; meetings, e-mails and calls, and
form submissions become activities through the mapping's one compiled
matcher and its one activity builder (:meth:`CrmMapping.activity`). A record
that cannot be normalised raises ``ValueError`` naming the field (the client
reports it as skipped); an activity no rule matches gives ``None``
(counted as unmapped, never guessed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from connector.crm import ActivityRecord, ContactRecord, RemovedRecord, SkippedRecord, SkipReason
from connector.hubspot.payloads import CrmObject, FormSubmission, Unreadable
from connector.mapping import CrmMapping, parse_instant
from connector.model import Activity, Contact

CONTACT_MODIFIED = "lastmodifieddate"
"""Contacts filter on ``lastmodifieddate``; ``hs_lastmodifieddate`` on contacts silently returns wrong records."""
OBJECT_MODIFIED = "hs_lastmodifieddate"
FORM_OBJECT = "form_submissions"


MERGED_IDS = "hs_merged_object_ids"
"""On a contact that others were merged into: their ids, ``;``-separated (HubSpot-defined, read-only)."""


def contact_properties(mapping: CrmMapping) -> list[str]:
    """Contact properties to read: mapped fields, stage fields, the modified instant and the merged ids."""
    return list(
        dict.fromkeys(
            [*mapping.person_fields("contacts"), *mapping.stage_fields("contacts"), CONTACT_MODIFIED, MERGED_IDS]
        )
    )


def merged_away(item: CrmObject) -> list[RemovedRecord]:
    """The contacts merged into ``item`` (its ``hs_merged_object_ids``): gone, their history is ``item``'s."""
    listed = (item.properties.get(MERGED_IDS) or "").split(";")
    ids = dict.fromkeys(part.strip() for part in listed if part.strip() and part.strip() != item.id)
    return [RemovedRecord(crm_id=crm_id, merged_into=item.id) for crm_id in ids]


COMPANY_OBJECT = "companies"
PRIMARY_COMPANY_TYPE = "contact_to_company"
"""The v3 inline association type of a contact's primary company (the unlabeled one is ``..._unlabeled``)."""
PRIMARY_COMPANY_TYPE_ID = 1
"""The v4 association type id of a contact's primary company (HubSpot-defined; 279 is unlabeled)."""
COMPANY_PRIMARY_CONTACT_TYPE_ID = 2
"""The same association read from the company: the contact has this company as its primary (280 is unlabeled)."""


def activity_properties(mapping: CrmMapping, name: str) -> list[str]:
    return list(dict.fromkeys([*mapping.activity_fields(name), OBJECT_MODIFIED]))


def contact_record(
    item: CrmObject, mapping: CrmMapping, company: Mapping[str, str | None] | None = None
) -> ContactRecord:
    """The contact, with ``company`` (its primary company's properties) first for the firmographics."""
    values = item.properties
    person = mapping.normalise_person("contacts", values, company)
    stage_values = {name: values.get(name) or None for name in mapping.stage_fields("contacts")}
    stage = mapping.stage_for_value(stage_values.get(mapping.stage.field))
    modified = values.get(CONTACT_MODIFIED) or item.updated_at
    return ContactRecord(
        crm_id=item.id,
        object_type="contact",
        contact=Contact(**person, stage=stage),
        stage_values=stage_values,
        modified_at=parse_instant(modified) if modified else None,
    )


def engagement_id(name: str, item: CrmObject) -> str:
    return f"{name}/{item.id}"


def engagement_activity(name: str, item: CrmObject, mapping: CrmMapping) -> Activity | None:
    """The activity of one meeting, e-mail or call; ``None`` when unmapped."""
    return mapping.activity(name, item.properties, engagement_id(name, item))


def engagement_record(activity: Activity, item: CrmObject, contact_ids: tuple[str, ...]) -> ActivityRecord:
    modified = item.properties.get(OBJECT_MODIFIED)
    return ActivityRecord(
        crm_id=activity.id or item.id,
        activity=activity,
        contact_ids=contact_ids,
        modified_at=parse_instant(modified) if modified else None,
    )


def submission_key(submission: FormSubmission) -> str:
    """A submission's identity within its form: HubSpot's conversion id, else instant and e-mail."""
    return submission.conversion_id or f"{submission.submitted_at}-{submission_email(submission)}"


def submission_email(submission: FormSubmission) -> str:
    return str(submission.value("email") or "").strip().lower()


def submission_id(guid: str, submission: FormSubmission) -> str:
    return f"{FORM_OBJECT}/{guid}/{submission_key(submission)}"


def submission_activity(guid: str, submission: FormSubmission, mapping: CrmMapping) -> Activity | None:
    """The activity of one form submission (its values, plus ``form_id``, ``submittedAt``, ``pageUrl``)."""
    values = {
        "form_id": guid,
        "submittedAt": str(submission.submitted_at),
        "pageUrl": submission.page_url,
        **{v.name: v.value for v in submission.values},
    }
    return mapping.activity(FORM_OBJECT, values, submission_id(guid, submission))


def form_ids(mapping: CrmMapping) -> list[str]:
    """The forms the mapping reads submissions of, in mapping order."""
    guids: dict[str, None] = {}
    for rule in mapping.activity_rules(FORM_OBJECT):
        wanted = rule.when.get("form_id", [])
        for guid in [wanted] if isinstance(wanted, str) else wanted:
            guids[guid] = None
    return list(guids)


def skipped(crm_id: str, error: Exception) -> SkippedRecord:
    return SkippedRecord.from_error(crm_id, error)


def unreadable(records: Sequence[Unreadable], prefix: str = "") -> list[SkippedRecord]:
    return [SkippedRecord(crm_id=prefix + r.crm_id, reason=r.reason, code=SkipReason.UNREADABLE) for r in records]
