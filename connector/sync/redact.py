"""Error text fit to store and print: no secret, no record content."""

from __future__ import annotations

import os

from connector.config import Config


def secret_values(config: Config) -> list[str]:
    """Values of the environment variables that hold this config's secrets (to scrub from error text)."""
    found = []
    for settings in config.connections.values():
        for name, value in settings:
            if name.endswith("_env") and isinstance(value, str):
                secret = os.environ.get(value)
                if secret and len(secret) >= 4:
                    found.append(secret)
    return found


def scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text
