"""What a HubSpot client we did not write expects of a portal, beyond the calls crmsync makes.

Singer's tap-hubspot and Airbyte's HubSpot source stopped on these against
the sandbox: object types by their singular names and ids, a scope error
(not a 404) for an API the sandbox does not model, the custom-object schema
list, and contacts that carry a few hundred properties, most of them empty,
as a real portal's do (so benchmarks pay real body sizes).
"""

from __future__ import annotations

import re
from typing import Any

OBJECT_ALIASES: dict[str, str] = {
    "contact": "contacts",
    "0-1": "contacts",
    "company": "companies",
    "0-2": "companies",
    "deal": "deals",
    "0-3": "deals",
    "ticket": "tickets",
    "0-5": "tickets",
    "call": "calls",
    "0-48": "calls",
    "email": "emails",
    "0-49": "emails",
    "meeting": "meetings",
    "0-47": "meetings",
    "note": "notes",
    "0-46": "notes",
    "task": "tasks",
    "0-27": "tasks",
}
"""Object type names and ids HubSpot accepts wherever a CRM path names an object type."""

_OBJECT_PATH = re.compile(r"^/crm/(v3|v4)/(objects|properties|associations)/([^/]+)(/.*)?$")
_ASSOCIATION_TARGET = re.compile(r"^/crm/v4/associations/([^/]+)/([^/]+)(/.*)$")


def canonical_path(path: str) -> str:
    """``path`` with object type aliases (``contact``, ``0-1``...) replaced by the plural names the routes use."""
    found = _ASSOCIATION_TARGET.match(path)
    if found:
        source, target, rest = found.groups()
        return f"/crm/v4/associations/{OBJECT_ALIASES.get(source, source)}/{OBJECT_ALIASES.get(target, target)}{rest}"
    found = _OBJECT_PATH.match(path)
    if found:
        version, kind, name, rest = found.groups()
        return f"/crm/{version}/{kind}/{OBJECT_ALIASES.get(name, name)}{rest or ''}"
    return path


def required_scope(path: str) -> str:
    """The scope HubSpot would name for an API the sandbox does not model (a best guess from the path)."""
    found = _OBJECT_PATH.match(path)
    if found:
        name = found.group(3)
        return f"crm.objects.{name}.read"
    if path.startswith("/crm/v3/schemas"):
        return "crm.schemas.custom.read"
    if path.startswith("/marketing/"):
        return "marketing.campaigns.read"
    if path.startswith("/email/") or path.startswith("/marketing-emails/"):
        return "content"
    if path.startswith("/automation/"):
        return "automation"
    return "oauth"


def missing_scopes_body(path: str, correlation: str) -> dict[str, Any]:
    """HubSpot's 403 for a call the app's token has no scope for: what a portal without that feature answers."""
    return {
        "status": "error",
        "message": "This app hasn't been granted all required scopes to make this call. "
        "Read more about required scopes here: https://developers.hubspot.com/scopes.",
        "correlationId": correlation,
        "errors": [
            {
                "message": "One or more of the following scopes are required.",
                "context": {"requiredGranularScopes": [required_scope(path)]},
            }
        ],
        "links": {"scopes": "https://developers.hubspot.com/scopes"},
        "category": "MISSING_SCOPES",
    }


# -- a realistic contact property set ------------------------------------------------------


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_GROUPS: dict[str, tuple[str, ...]] = {
    "contactinformation": _words(
        """
        address annualrevenue city closedate company_size date_of_birth degree fax field_of_study gender
        graduation_date hs_additional_emails hs_all_assigned_business_unit_ids hs_avatar_filemanager_key
        hs_buying_role hs_content_membership_email hs_content_membership_notes
        hs_content_membership_status hs_count_is_unworked hs_count_is_worked hs_created_by_user_id
        hs_createdate hs_currently_enrolled_in_prospecting_agent hs_data_privacy_ads_consent
        hs_email_domain_type hs_facebook_click_id hs_facebookid hs_google_click_id hs_googleplusid
        hs_gps_error hs_gps_latitude hs_gps_longitude hs_inferred_language_codes hs_ip_timezone
        hs_is_contact hs_is_unworked hs_job_change_detected_date hs_journey_stage hs_language
        hs_last_metered_enrichment_timestamp hs_latest_sequence_ended_date hs_latest_sequence_enrolled
        hs_latest_sequence_enrolled_date hs_latest_sequence_finished_date
        hs_latest_sequence_unenrolled_date hs_lead_status hs_legal_basis hs_linkedin_url hs_linkedinid
        hs_live_enrichment_deadline hs_marketable_reason_id hs_marketable_reason_type
        hs_marketable_status hs_marketable_until_renewal hs_merged_object_ids hs_mobile_sdk_push_tokens
        hs_object_source hs_object_source_detail_1 hs_object_source_detail_2 hs_object_source_detail_3
        hs_object_source_id hs_object_source_label hs_object_source_user_id hs_persona
        hs_pinned_engagement_id hs_pipeline hs_predictivecontactscore_v2 hs_predictivescoringtier
        hs_read_only hs_registered_member hs_registration_method hs_sa_first_engagement_date
        hs_sa_first_engagement_descr hs_sa_first_engagement_object_type
        hs_searchable_calculated_phone_number hs_sequences_actively_enrolled_count
        hs_sequences_enrolled_count hs_sequences_is_enrolled hs_shared_team_ids hs_shared_user_ids
        hs_state_code hs_testpurge hs_testrollback hs_time_between_contact_creation_and_deal_close
        hs_time_between_contact_creation_and_deal_creation hs_time_to_first_engagement
        hs_time_to_move_from_lead_to_customer hs_time_to_move_from_marketingqualifiedlead_to_customer
        hs_time_to_move_from_opportunity_to_customer hs_time_to_move_from_salesqualifiedlead_to_customer
        hs_time_to_move_from_subscriber_to_customer hs_timezone hs_twitterid hs_unique_creation_key
        hs_updated_by_user_id hs_user_ids_of_all_notification_followers
        hs_user_ids_of_all_notification_unfollowers hs_user_ids_of_all_owners hs_was_imported
        hs_whatsapp_phone_number industry_detail ip_city ip_country ip_country_code ip_latlon ip_state
        ip_state_code ip_zipcode job_function lastname_phonetic marital_status message military_status
        mobilephone notes_last_contacted notes_last_updated notes_next_activity_date
        num_associated_deals num_contacted_notes num_conversion_events num_notes
        num_unique_conversion_events owneremail ownername phone recent_conversion_date
        recent_conversion_event_name recent_deal_amount recent_deal_close_date relationship_status
        salutation school seniority start_date state surveymonkeyeventlastupdated total_revenue
        twitterhandle webinareventlastupdated website work_email zip associatedcompanyid
        associatedcompanylastupdated first_conversion_date first_conversion_event_name
        first_deal_created_date followercount hubspot_owner_assigneddate hubspot_owner_id
        hubspot_team_id hubspotscore kloutscoregeneral linkedinbio linkedinconnections twitterbio
        twitterprofilephoto days_to_close currentlyinworkflow
        """
    ),
    "analyticsinformation": _words(
        """
        hs_analytics_average_page_views hs_analytics_first_referrer hs_analytics_first_timestamp
        hs_analytics_first_touch_converting_campaign hs_analytics_first_url
        hs_analytics_first_visit_timestamp hs_analytics_last_referrer hs_analytics_last_timestamp
        hs_analytics_last_touch_converting_campaign hs_analytics_last_url
        hs_analytics_last_visit_timestamp hs_analytics_num_event_completions hs_analytics_num_page_views
        hs_analytics_num_visits hs_analytics_revenue hs_analytics_source hs_analytics_source_data_1
        hs_analytics_source_data_2 hs_latest_source hs_latest_source_data_1 hs_latest_source_data_2
        hs_latest_source_timestamp hs_social_facebook_clicks hs_social_google_plus_clicks
        hs_social_last_engagement hs_social_linkedin_clicks hs_social_num_broadcast_clicks
        hs_social_twitter_clicks hs_document_last_revisited hs_first_engagement_object_id
        hs_last_sales_activity_date hs_last_sales_activity_timestamp hs_last_sales_activity_type
        hs_latest_meeting_activity hs_sales_email_last_clicked hs_sales_email_last_opened
        hs_sales_email_last_replied hs_lifecyclestage_customer_date hs_lifecyclestage_evangelist_date
        hs_lifecyclestage_lead_date hs_lifecyclestage_marketingqualifiedlead_date
        hs_lifecyclestage_opportunity_date hs_lifecyclestage_other_date
        hs_lifecyclestage_salesqualifiedlead_date hs_lifecyclestage_subscriber_date
        hs_v2_date_entered_lead hs_v2_date_exited_lead hs_v2_date_entered_marketingqualifiedlead
        hs_v2_date_exited_marketingqualifiedlead hs_v2_date_entered_salesqualifiedlead
        hs_v2_date_exited_salesqualifiedlead hs_v2_date_entered_customer hs_v2_date_entered_opportunity
        hs_v2_date_entered_subscriber hs_v2_cumulative_time_in_lead hs_v2_cumulative_time_in_subscriber
        hs_v2_latest_time_in_lead hs_v2_latest_time_in_subscriber
        """
    ),
    "emailinformation": _words(
        """
        hs_email_bad_address hs_email_bounce hs_email_click hs_email_customer_quarantined_reason
        hs_email_delivered hs_email_first_click_date hs_email_first_open_date hs_email_first_reply_date
        hs_email_first_send_date hs_email_hard_bounce_reason hs_email_hard_bounce_reason_enum
        hs_email_is_ineligible hs_email_last_click_date hs_email_last_email_name hs_email_last_open_date
        hs_email_last_reply_date hs_email_last_send_date hs_email_open hs_email_optout
        hs_email_optout_survey_reason hs_email_quarantined hs_email_quarantined_reason
        hs_email_recipient_fatigue_recovery_time hs_email_replied hs_email_sends_since_last_engagement
        hs_emailconfirmationstatus hs_sales_email_last_replied_date hs_calculated_form_submissions
        hs_calculated_merged_vids hs_calculated_mobile_number hs_calculated_phone_number
        hs_calculated_phone_number_area_code hs_calculated_phone_number_country_code
        hs_calculated_phone_number_region_code hs_clicked_linkedin_ad hs_conversations_visitor_email
        hs_created_by_conversations hs_email_domain_sent hs_feedback_last_ces_survey_date
        hs_feedback_last_nps_follow_up hs_feedback_last_nps_rating hs_feedback_last_survey_date
        hs_feedback_show_nps_web_survey hs_first_outreach_date hs_first_subscription_create_date
        hs_last_sms_send_date hs_last_sms_send_name hs_latest_disqualified_lead_date
        hs_latest_open_lead_date hs_latest_qualified_lead_date hs_latest_subscription_create_date
        hs_lead_status_updated_at hs_notes_last_activity hs_notes_next_activity
        hs_notes_next_activity_type hs_prospecting_agent_actively_enrolled_count
        hs_prospecting_agent_last_enrolled hs_quarantined_emails hs_recent_closed_order_date
        hs_returning_to_office_detected_date hs_role hs_seniority hs_sub_role hs_source_object_id
        hs_source_portal_id hs_employment_change_detected_date hs_first_closed_order_id
        hs_first_order_closed_date hs_has_active_subscription hs_last_metered_enrichment_date
        hs_all_accessible_team_ids hs_all_owner_ids hs_all_team_ids hs_associated_target_accounts
        hs_contact_enrichment_opt_out hs_contact_enrichment_opt_out_timestamp
        hs_enriched_email_bounce_detected hs_is_enriched hs_last_enrichment_date hs_linkedin_ad_clicked
        hs_lastmodifieddate hs_object_source_detail hs_prospecting_agent_total_enrolled_count
        hs_sms_consent hs_whatsapp_consent ip_timezone engagements_last_meeting_booked
        engagements_last_meeting_booked_campaign engagements_last_meeting_booked_medium
        engagements_last_meeting_booked_source hs_time_in_lead hs_time_in_subscriber
        hs_time_in_marketingqualifiedlead hs_time_in_salesqualifiedlead hs_time_in_opportunity
        hs_time_in_customer hs_time_in_evangelist hs_time_in_other
        """
    ),
}
"""HubSpot-defined contact properties by group: names as a portal lists them (values mostly empty)."""

NUMERIC = re.compile(
    r"(^num_|_num_|count|score|revenue|amount|_id$|_ids$|latitude|longitude"
    r"|^hs_email_(open|click|delivered|bounce|replied)$|^days_|^hs_time_)"
)
DATED = re.compile(r"(date|timestamp|_at$|lastupdated|last_activity|next_activity$|_visit$)")


def realistic_properties() -> list[tuple[str, str, str]]:
    """``(name, type, group)`` of the HubSpot-defined properties a real portal's contacts carry besides ours."""
    seen: set[str] = set()
    found: list[tuple[str, str, str]] = []
    for group, names in _GROUPS.items():
        for name in names:
            if name in seen:
                continue
            seen.add(name)
            kind = "number" if NUMERIC.search(name) else "datetime" if DATED.search(name) else "string"
            found.append((name, kind, group))
    return found
