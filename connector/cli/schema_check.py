"""``crmsync run`` checks the job's mapped fields against each CRM's schema before it starts.

A field name the CRM does not know (a typo in ``mappings/*.toml``, a
property deleted in the portal) would otherwise make every contact's value
null for the whole run. The check is what ``validate --remote`` does, one
connection at a time; a connection that passed is not asked again for an
hour while its mapping file and settings stay the same (a marker file in
the user's cache folder, ``$XDG_CACHE_HOME/crmsync``). Only success is
cached: a problem is asked again on the next run.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from connector.errors import ConfigError

if TYPE_CHECKING:
    from connector.cli.services import Services
    from connector.config import Config
    from connector.jobs import Job

TTL_SECONDS = 3600.0


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "crmsync"


def _marker(config: Config, name: str) -> Path:
    settings = config.connections[name]
    digest = hashlib.sha256()
    digest.update(name.encode())
    # the settings' JSON holds env var names, never a secret value
    digest.update(settings.model_dump_json().encode())
    try:
        digest.update(config.mapping_path(name).read_bytes())
    except OSError:
        digest.update(b"unreadable")
    return cache_dir() / f"schema-ok-{digest.hexdigest()[:32]}"


def check_job_schema(context: Services, config: Config, job: Job, *, now: float | None = None) -> list[str]:
    """Raise ``ConfigError`` (every problem, with file and key) when a mapped field is unknown to its CRM.

    Returns the connections actually asked (those not cached).
    """
    moment = time.time() if now is None else now
    asked: list[str] = []
    problems = []
    for name in job.connections:
        marker = _marker(config, name)
        try:
            if moment - marker.stat().st_mtime < TTL_SECONDS:
                continue
        except OSError:
            pass
        client = context.clients(config, name)
        try:
            found = client.check_schema()
        finally:
            client.close()
        asked.append(name)
        if found:
            problems.extend(found)
            continue
        try:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
        except OSError:  # no cache folder: the check just runs every time
            pass
    if problems:
        listed = "\n".join(f"  {problem}" for problem in problems)
        raise ConfigError(
            f"job {job.name!r} not run: the mapping names fields or values the CRM does not have "
            f"(fix the mapping, or create them with `crmsync setup`):\n{listed}",
            problems,
        )
    return asked
