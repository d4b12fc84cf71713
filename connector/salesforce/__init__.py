"""The Salesforce client: simple-salesforce configured by crmsync (see docs/salesforce.md)."""
