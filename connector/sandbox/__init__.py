"""Sandbox CRMs: local HTTP servers that behave like HubSpot and Salesforce (the ``sandbox`` extra).

``kit`` is what both are built from (faults, request log, rate limits,
server lifecycle, the :class:`~connector.sandbox.kit.Emulator` interface);
``generator`` makes the shared, deterministic, vendor-neutral fake data;
each vendor's sandbox (``hubspot``, ``salesforce``) translates it into its
own records. Only the core of the connector (model, rules, mapping) is
imported from here: never a client, the store, the sync or the command line.
"""
