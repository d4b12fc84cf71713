"""The read-only web dashboard (``crmsync web``): jobs, runs, the funnel, dead letters, contacts.

Needs the ``[web]`` extra (starlette, jinja2, uvicorn); ``connector.web.command``
imports it only when called, so the CLI can say so instead of failing to start.
``connector.web.app.create_app`` builds the ASGI app, ``connector.web.server.serve``
serves it. See docs/dashboard.md.
"""
