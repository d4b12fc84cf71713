"""The HTTP kit every vendor client shares: one retry policy, one pacer, API-usage counting, network failures.

Vendor packages (``connector/hubspot``, ``connector/salesforce``, and any
next CRM) build their transport from these parts, so that both vendors stop
retrying under the same rules, read ``Retry-After`` the same way and pace
their calls with the same clock-injectable pacer.

Modules: ``settings`` (what every connection's settings share, the retry
settings), ``retry`` (the policy), ``pacing`` (the pacer), ``usage`` (API
usage counting), ``network`` (what failed on the wire; which URLs may carry
a token). Nothing is imported here, so that loading the settings does not
load tenacity or urllib3.
"""
