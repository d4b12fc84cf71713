"""Team mode: jobs run by any number of ``crmsync worker`` processes on procrastinate over the PostgreSQL store.

``queue`` builds the procrastinate app (the run task, each job's periodic
deferral from its cron, the stalled-run recovery); ``budget`` is the rate
budget every worker shares per connection; ``tenants`` expands a connection
template over many client portals. Nothing here is imported by ``crmsync
--help`` or the single-machine scheduler.
"""
