"""The read-only web dashboard (``crmsync web``): jobs, runs, the funnel, dead letters, contacts.

Needs the ``[web]`` extra (starlette, jinja2, uvicorn). See docs/dashboard.md.
"""

from connector.web.app import create_app
from connector.web.server import serve

__all__ = ["create_app", "serve"]
