"""``crmsync web``: the read-only dashboard (the ``[web]`` extra), served by uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from connector.cli.services import services


def web(
    ctx: typer.Context,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on; any other than loopback needs --token-env.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8765,
    token_env: Annotated[
        str | None,
        typer.Option("--token-env", help="Environment variable holding the access token (16+ characters)."),
    ] = None,
) -> None:
    """Serve the read-only web dashboard: jobs, runs, the funnel, dead letters, contacts.

    Loopback only by default; bound to another address it requires a token
    (from the environment variable named by --token-env). See docs/dashboard.md.
    """
    from connector.web.command import web_command

    code = web_command(services(ctx).config_path, host, port, token_env)
    if code:
        raise typer.Exit(code)
