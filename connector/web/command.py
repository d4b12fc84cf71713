"""``crmsync web``: what the CLI calls (the lead registers the command; this holds its behaviour)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pydantic import SecretStr

from connector.config import load_config
from connector.errors import ConfigError
from connector.pipeline import utc_now
from connector.store import open_store
from connector.web.app import create_app
from connector.web.security import MIN_TOKEN_LENGTH, is_loopback
from connector.web.server import serve

EXIT_CONFIG = 2


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
    """Serve the dashboard for the config at ``config_path``; the exit code (0 stopped, 2 refused or bad config).

    Problems go to stderr (every config problem at once); the token never appears in them.
    """
    try:
        token = read_token(token_env)
        if token is None and not is_loopback(host):
            raise ConfigError(
                f"refusing to serve the dashboard on {host}: off loopback a token is required (--token-env VAR)"
            )
        config = load_config(config_path)
        store = open_store(config.store_url)
    except ConfigError as error:
        sys.stderr.write(f"error: {error}\n")
        return EXIT_CONFIG
    try:
        app = create_app(store, config=config, token=token, clock=utc_now)
        where = f"http://{host if ':' not in host else f'[{host}]'}:{port}/"
        sys.stderr.write(
            f"dashboard on {where}" + (f" (open it with ?token=<the value of {token_env}>)" if token else "") + "\n"
        )
        serve(app, host, port)
    except ConfigError as error:
        sys.stderr.write(f"error: {error}\n")
        return EXIT_CONFIG
    finally:
        store.close()
    return 0
