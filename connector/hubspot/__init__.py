"""The HubSpot client: vendor payloads, error table, one retry/pacing choke point, normalisation, write-back.

Vendor quirks the code relies on are written up in ``docs/hubspot.md``.
"""
