"""The Salesforce vendor package: the same files as every CRM crmsync syncs.

``settings``, ``transport`` (the one seam: ``SalesforceApi.send(Operation)``;
simple-salesforce is configured by crmsync there), ``errors`` (the error
table, as data), ``payloads``, ``normalise`` (pure), ``cursor`` (pure
transitions), ``schema`` (pure) and ``client`` (the ``CrmClient``). Vendor
quirks are written up in ``docs/salesforce.md``.
"""
