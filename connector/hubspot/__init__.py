"""The HubSpot vendor package: the same files as every CRM crmsync syncs.

``settings`` (the connection's settings), ``transport`` (the one seam:
``send(Operation)``; the only module that knows the SDK), ``errors`` (the
error table, as data), ``payloads`` (HubSpot's JSON bodies as frozen
models), ``normalise`` (pure: records to the common model), ``cursor``
(pure transitions), ``schema`` (pure: the mapping against the portal) and
``client`` (the ``CrmClient``). Vendor quirks are written up in ``docs/hubspot.md``.
"""
