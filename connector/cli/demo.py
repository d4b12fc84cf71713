"""The sandbox CRMs for ``crmsync demo`` and ``crmsync sandbox``: serving them, and a config folder pointing at them.

This is the only module of the command line that imports ``connector.sandbox``
(an optional extra, ``pip install "crmsync[sandbox]"``); the commands in
``connector/cli/sandbox.py`` import it inside their bodies, so a plain
install runs every other command without the emulators' dependencies.

The sandboxes' own throwaway credentials never go through ``os.environ``:
:func:`sandbox_clients` hands them to the clients directly.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from connector.errors import ConfigError
from connector.sandbox.hubspot import HubSpotSandbox
from connector.sandbox.salesforce import SalesforceSandbox

if TYPE_CHECKING:
    from connector.cli.services import ClientFactory
    from connector.config import Config
    from connector.crm import CrmClient

PROJECT = Path(__file__).resolve().parents[2]
HUBSPOT_TOKEN_ENV = "CRMSYNC_SANDBOX_HUBSPOT_TOKEN"
CONFIG_MARKER = "# Written by crmsync for the local sandbox CRMs."
CA_FILE = "sandbox-ca.pem"
STORE_FILE = "crmsync.db"
DEFAULT_OVERLAP = 0.1
"""Share of the sandboxes' people who are in both CRMs (``crmsync sandbox/demo --overlap``)."""


@dataclass
class Sandboxes:
    hubspot: HubSpotSandbox
    salesforce: SalesforceSandbox

    def secrets_env(self) -> dict[str, str]:
        """The sandboxes' own (throwaway) credentials, by the environment variable the config names for each."""
        return {HUBSPOT_TOKEN_ENV: self.hubspot.token, **self.salesforce.secrets_env()}


@contextmanager
def running_sandboxes(*, contacts: int, activities: int, seed: int, hubspot_port: int = 0,
                      salesforce_port: int = 0, overlap: float = DEFAULT_OVERLAP) -> Iterator[Sandboxes]:  # fmt: skip
    """Both sandbox CRMs, seeded with ``contacts`` people and ``activities`` activities each, serving: one world
    in which ``overlap`` of the people are in both CRMs (``connector.sandbox.generator``)."""
    with ExitStack() as stack:
        hubspot = stack.enter_context(
            HubSpotSandbox(contacts=contacts, activities=activities, seed=seed, port=hubspot_port, overlap=overlap)
        )
        salesforce = stack.enter_context(
            SalesforceSandbox(people=contacts, activities=activities, seed=seed, port=salesforce_port, overlap=overlap)
        )
        yield Sandboxes(hubspot, salesforce)


def find_defaults(mappings: Path | None) -> tuple[Path, Path]:
    """The shipped ``mappings/`` and ``jobs/`` folders (next to the package in a checkout)."""
    mappings = mappings or PROJECT / "mappings"
    jobs = mappings.parent / "jobs"
    if not (mappings / "lifecycle.toml").exists() or not jobs.is_dir():
        raise ConfigError(
            f"cannot find the shipped mappings and jobs next to {mappings}: run from a checkout installed with "
            "`pip install -e .`, or pass --mappings DIR (a folder with hubspot.toml, salesforce.toml, "
            "lifecycle.toml, and a jobs/ folder beside it)"
        )
    return mappings, jobs


def prepare_folder(folder: Path) -> bool:
    """Make ``folder`` ready for a freshly seeded sandbox; True when a previous sandbox's store was removed.

    The store of an earlier sandbox holds checkpoints against data that no
    longer exists (the CRMs are seeded afresh each start): kept, the next run
    would read nothing new and silently write nothing. A folder whose
    ``config.toml`` crmsync did not write for the sandbox is refused, so a
    real project's store is never touched.
    """
    config = folder / "config.toml"
    if config.exists():
        try:
            ours = config.read_text(encoding="utf-8", errors="replace").startswith(CONFIG_MARKER)
        except OSError:
            ours = False
        if not ours:
            raise ConfigError(
                f"{folder} holds a config.toml that crmsync did not write for the sandbox: choose another --dir"
            )
    removed = False
    for name in (STORE_FILE, f"{STORE_FILE}-wal", f"{STORE_FILE}-shm", f"{STORE_FILE}-journal"):
        path = folder / name
        if path.exists():
            path.unlink()
            removed = True
    return removed


def write_config_folder(folder: Path, sandboxes: Sandboxes, mappings: Path, jobs: Path) -> Path:
    """A config, mappings and jobs in ``folder`` pointing at the running sandboxes; returns the config path.

    The Salesforce sandbox's CA certificate is copied into the folder, so the
    config never names a file that goes away when the sandbox stops.
    """
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copytree(mappings, folder / "mappings", dirs_exist_ok=True)
    shutil.copytree(jobs, folder / "jobs", dirs_exist_ok=True)
    ca_file = (folder / CA_FILE).resolve()
    shutil.copyfile(sandboxes.salesforce.ca_file, ca_file)
    salesforce = sandboxes.salesforce.connection_settings()
    config = folder / "config.toml"
    config.write_text(
        f"""{CONFIG_MARKER} Secrets come from the environment.
[store]
url = "sqlite:///{STORE_FILE}"

[paths]
mappings = "mappings"
jobs = "jobs"
rules = "mappings/lifecycle.toml"

[connections.hubspot]
type = "hubspot"
base_url = "{sandboxes.hubspot.url}"
token_env = "{HUBSPOT_TOKEN_ENV}"
mapping = "hubspot.toml"

[connections.salesforce]
type = "salesforce"
instance_url = "{salesforce["instance_url"]}"
login_url = "{salesforce["login_url"]}"
auth = "{salesforce["auth"]}"
client_id_env = "{salesforce["client_id_env"]}"
client_secret_env = "{salesforce["client_secret_env"]}"
ca_bundle = "{ca_file}"
mapping = "salesforce.toml"
""",
        encoding="utf-8",
    )
    return config


def sandbox_clients(secrets: Mapping[str, str]) -> ClientFactory:
    """A client factory that takes each secret from ``secrets`` (by the variable the config names), not the environment."""

    def open_sandbox_client(config: Config, name: str) -> CrmClient:
        from connector.connections import open_client

        return open_client(config, name, environ=secrets)

    return open_sandbox_client


def exports(env: Mapping[str, str]) -> str:
    return "\n".join(f"  export {name}={value}" for name, value in sorted(env.items()))
