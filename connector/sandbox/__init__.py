"""Sandbox CRMs: local HTTP servers that behave like HubSpot and Salesforce.

``generator`` makes the shared, deterministic, vendor-neutral fake data;
each vendor's sandbox translates it into its own records.
"""
