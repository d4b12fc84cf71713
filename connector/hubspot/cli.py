"""``crmsync setup``: create the stage property and its companions on every HubSpot connection.

Registered on the main app from the bottom of ``connector/cli.py``.
"""

from __future__ import annotations

import typer

from connector.cli import Context, app, err, fail, out
from connector.config import HubSpotConnection
from connector.connections import open_client
from connector.errors import CrmsyncError
from connector.hubspot.client import HubSpotClient


@app.command()
def setup(ctx: typer.Context) -> None:
    """Create crmsync's stage property (one option per rung) and companion properties where missing.

    Runs on every HubSpot connection of the config; idempotent: a property
    that already exists is left as it is. Prints what it created.
    """
    context: Context = ctx.obj
    try:
        config = context.config()
    except CrmsyncError as error:
        raise fail(str(error)) from None
    names = [name for name, settings in config.connections.items() if isinstance(settings, HubSpotConnection)]
    if not names:
        err.print("no HubSpot connection in the config: nothing to set up", highlight=False)
        return
    failed = False
    for name in names:
        try:
            client = open_client(config, name)
        except CrmsyncError as error:
            err.print(f"[red]✗[/red] {name}: {error}", highlight=False, soft_wrap=True)
            failed = True
            continue
        try:
            assert isinstance(client, HubSpotClient)
            created = client.ensure_stage_property()
        except CrmsyncError as error:
            err.print(f"[red]✗[/red] {name}: {error}", highlight=False, soft_wrap=True)
            failed = True
            continue
        finally:
            client.close()
        if created:
            out.print(f"[green]✓[/green] {name}: created {', '.join(created)}", highlight=False)
        else:
            out.print(f"[green]✓[/green] {name}: every property already exists", highlight=False)
    if failed:
        raise typer.Exit(1)
