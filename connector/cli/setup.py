"""``crmsync setup``: create the stage property and its companions on every HubSpot connection."""

from __future__ import annotations

import typer

from connector.cli.exits import ExitCode
from connector.cli.services import services
from connector.cli.terminal import err, line, out, safe


def setup(ctx: typer.Context) -> None:
    """Create crmsync's stage property (one option per rung) and companion properties where missing.

    Runs on every HubSpot connection of the config; idempotent: a property
    that already exists is left as it is. Prints what it created.
    """
    from connector.config import HubSpotConnection
    from connector.errors import CrmsyncError

    context = services(ctx)
    config = context.config()
    names = [name for name, settings in config.connections.items() if isinstance(settings, HubSpotConnection)]
    if not names:
        err.print("no HubSpot connection in the config: nothing to set up", markup=False)
        return
    failed = False
    for name in names:
        try:
            client = context.clients(config, name)
        except CrmsyncError as error:
            err.print(line(("✗", "red"), " ", safe(name), ": ", safe(error)))
            failed = True
            continue
        try:
            ensure = getattr(client, "ensure_stage_property", None)
            if ensure is None:
                raise CrmsyncError(f"connection {name!r}: this client cannot create properties")
            created = ensure()
        except CrmsyncError as error:
            err.print(line(("✗", "red"), " ", safe(name), ": ", safe(error)))
            failed = True
            continue
        finally:
            client.close()
        if created:
            out.print(line(("✓", "green"), " ", safe(name), ": created ", safe(", ".join(created))))
        else:
            out.print(line(("✓", "green"), " ", safe(name), ": every property already exists"))
    if failed:
        raise typer.Exit(ExitCode.FAILED)
