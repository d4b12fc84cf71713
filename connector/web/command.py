"""``crmsync web``: what the CLI calls (the lead registers the command; this holds its behaviour).

Imports nothing of the ``[web]`` extra until called, so the CLI stays importable without it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pydantic import SecretStr

from connector.config import load_config
from connector.errors import ConfigError
from connector.store import open_store
from connector.sync import utc_now

EXIT_CONFIG = 2
MIN_TOKEN_LENGTH = 16


def read_token(token_env: str | None) -> SecretStr | None:
    """The token held by ``token_env`` (``None`` when no variable is named); a missing or short one is an error."""
    if token_env is None:
        return None
    value = os.environ.get(token_env, "")
    if not value:
        raise ConfigError(f"environment variable {token_env} is not set (it must hold the dashboard's token)")
    if len(value) < MIN_TOKEN_LENGTH:
        raise ConfigError(
            f"the token in {token_env} is shorter than {MIN_TOKEN_LENGTH} characters "
            '(make one with: python -c "import secrets; print(secrets.token_urlsafe(32))")'
        )
    return SecretStr(value)


def web_command(config_path: Path, host: str, port: int, token_env: str | None) -> int:
    """Serve the dashboard for the config at ``config_path`` until stopped; the exit code.

    0 when stopped; 2 when it refuses to start (off loopback without a token,
    a missing or short token, a bad config, the ``[web]`` extra not
    installed). Problems go to stderr (every config problem at once); the
    token never appears in them.
    """
    try:
        from connector.web import server
        from connector.web.app import create_app
    except ImportError as error:
        sys.stderr.write(f"error: the dashboard needs the [web] extra (pip install 'crmsync[web]'): no {error.name}\n")
        return EXIT_CONFIG
    try:
        token = read_token(token_env)
        if token is None:
            server.check_loopback(host)
        config = load_config(config_path)
        store = open_store(config.store_url)
    except ConfigError as error:
        sys.stderr.write(f"error: {error}\n")
        return EXIT_CONFIG
    try:
        app = create_app(store, config=config, token=token, clock=utc_now)
        where = f"http://{f'[{host}]' if ':' in host else host}:{port}/"
        hint = f" (open it with ?token=<the value of {token_env}>)" if token is not None else ""
        sys.stderr.write(f"dashboard on {where}{hint}; Ctrl-C stops\n")
        server.serve(app, host, port)
    except ConfigError as error:
        sys.stderr.write(f"error: {error}\n")
        return EXIT_CONFIG
    finally:
        store.close()
    return 0
