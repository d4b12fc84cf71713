"""The ``crmsync`` command line: one module per command group, registered in ``app.py``.

``app`` (the Typer app) and ``run`` (the console script) are the public
names; ``python -m connector`` runs the same app.
"""

from connector.cli.app import app, run

__all__ = ["app", "run"]
