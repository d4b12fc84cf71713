"""A sandbox Salesforce org on loopback that simple-salesforce talks to unchanged.

    with SalesforceSandbox(contacts=50, activities=400) as sandbox:
        settings = sandbox.connection_settings()      # a [connections.salesforce] section: URLs, CA file
        os.environ.update(sandbox.secrets_env())      # the client reads secrets from the environment

It serves TLS with a throwaway CA made at start-up (``ca_file``), an OAuth
token endpoint (JWT bearer, refresh-token, client-credentials and
username-password grants; ``private_key_pem`` and ``refresh_token`` are what an
admin would hand out), SOQL
queries with query locators, describe, limits and sObject collections. Faults
are injected with ``sandbox.faults``; ``sandbox.request_log`` counts requests
per endpoint; ``sandbox.org`` gives direct access to the records for
assertions. For a separate process (benchmarks) see
:mod:`connector.sandbox.salesforce.process`.
"""

from __future__ import annotations

import secrets
import shutil
import socket
import ssl
import tempfile
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import trustme

from connector.sandbox.generator import generate
from connector.sandbox.hostile import DELETED_TIMES, SeededCase, hostile_corpus
from connector.sandbox.kit import Fault, Faults, LoggedRequest, LoopbackSandbox, RequestLog
from connector.sandbox.salesforce.org import Org
from connector.sandbox.salesforce.seed import SeedShape, SeedSummary, seed_org, seed_people
from connector.sandbox.salesforce.server import Allocation, Credentials, OrgService, SandboxLimits, _Server

__all__ = [
    "SECRET_ENV",
    "Fault",
    "Faults",
    "Limits",
    "LoggedRequest",
    "RequestLog",
    "SalesforceSandbox",
    "SandboxLimits",
    "SeedShape",
]

Limits = SandboxLimits
"""The org's limits under the name the HubSpot sandbox uses for its own."""

SECRET_ENV = {
    "client_id": "SALESFORCE_CLIENT_ID",
    "client_secret": "SALESFORCE_CLIENT_SECRET",
    "username": "SALESFORCE_USERNAME",
    "password": "SALESFORCE_PASSWORD",
    "security_token": "SALESFORCE_SECURITY_TOKEN",
    "refresh_token": "SALESFORCE_REFRESH_TOKEN",
    "private_key": "SALESFORCE_PRIVATE_KEY",
}


class SalesforceSandbox(LoopbackSandbox):
    """A seeded sandbox org served over HTTPS on loopback."""

    scheme = "https"
    thread_name = "salesforce-sandbox"

    def __init__(
        self,
        *,
        contacts: int = 0,
        activities: int = 0,
        seed: int = 7,
        host: str = "127.0.0.1",
        port: int = 0,
        limits: SandboxLimits | None = None,
        faults: Faults | None = None,
        now: datetime | None = None,
        clock: Callable[[], datetime] | None = None,
        keep_log_entries: bool = True,
        client_id: str = "sandbox-client",
        client_secret: str = "sandbox-secret",
        username: str = "crmsync@sandbox.example",
        password: str = "sandbox-password",
        security_token: str = "sandbox-token",
        shape: SeedShape | None = None,
        hostile: bool = False,
        people: int | None = None,
        overlap: float | None = None,
    ) -> None:
        """``people`` is the former name of ``contacts`` (people are split into leads and contacts here).
        ``overlap`` makes this org the Salesforce of a world whose HubSpot portal is seeded with the same
        ``contacts``, ``activities``, ``seed``, ``now`` and ``overlap`` (``connector.sandbox.generator``)."""
        super().__init__(
            seed=seed, host=host, port=port, faults=faults, now=now, clock=clock, keep_log_entries=keep_log_entries
        )
        contacts = people if people is not None else contacts
        self.limits = limits or SandboxLimits()
        self.seeded_at = self.now
        self.org = Org(now=clock)
        self.credentials = Credentials(client_id, client_secret, username, password, security_token)
        self.refresh_token = "5Aep861" + secrets.token_urlsafe(60)
        """A refresh token the org honours until ``revoke_refresh_tokens()``."""
        self.credentials.refresh_tokens.add(self.refresh_token)
        self._private_key_pem = ""
        self.allocation = Allocation(self.limits)
        self.service = OrgService(
            self.org, self.credentials, self.limits, self.faults, self.request_log, self.allocation
        )
        self.summary = SeedSummary()
        if contacts:
            self.summary = seed_org(
                self.org,
                generate(contacts, activities, seed=seed, now=self.now, crm="salesforce", overlap=overlap),
                seed=seed,
                now=self.now,
                shape=shape,
            )
        self.hostile: list[SeededCase] = self._seed_hostile(contacts, activities) if hostile else []
        if contacts or hostile:
            for table in self.org.tables.values():
                table.stamp_order()  # the org's SystemModstamp index, built once after the load
        self._server: _Server | None = None
        self._tls: tuple[trustme.CA, ssl.SSLContext] | None = None
        self.ca_file = ""

    def _seed_hostile(self, people: int, activities: int) -> list[SeededCase]:
        """The hostile corpus twice, as Contacts and as Leads (their text fields differ), after the ordinary people."""
        seeded: list[SeededCase] = []
        size = len(hostile_corpus(now=self.now, first_person=0, first_activity=0))
        for n, (sobject, prefix) in enumerate((("Contact", ""), ("Lead", "lead-"))):
            cases = hostile_corpus(
                now=self.now, first_person=people + n * size, first_activity=activities + n * size * 10,
                email_prefix=prefix,
            )  # fmt: skip
            for case, record_id in zip(cases, seed_people(self.org, cases, sobject, now=self.now), strict=True):
                seeded.append(SeededCase(case, record_id, sobject))
        doomed = [s.crm_id for s in seeded if s.case.deleted]
        self.faults.reject(doomed, times=DELETED_TIMES, category="OBJECT_NOT_FOUND")
        return seeded

    @property
    def private_key_pem(self) -> str:
        """The connected app's private key (PEM): its certificate is registered with the org on first use
        (an RSA key costs a few tens of milliseconds, so sandboxes that never see a JWT do not pay it)."""
        if not self._private_key_pem:
            from cryptography.hazmat.primitives import serialization
            from cryptography.hazmat.primitives.asymmetric import rsa

            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.credentials.certificate_key = key.public_key()
            self._private_key_pem = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ).decode("ascii")
        return self._private_key_pem

    # -- the web stack -----------------------------------------------------------
    def _serve(self, sock: socket.socket, ready: threading.Event) -> None:
        if self._tls is None:  # one throwaway CA per sandbox: a restart keeps ``ca_file`` valid
            ca = trustme.CA()
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ca.issue_cert(self.host, "localhost").configure_cert(context)
            self._tls = (ca, context)
            self.ca_file = str(Path(tempfile.mkdtemp(prefix="crmsync-sf-sandbox-")) / "ca.pem")
        ca, context = self._tls
        Path(self.ca_file).parent.mkdir(exist_ok=True)
        ca.cert_pem.write_to_path(self.ca_file)
        server = self._server = _Server(sock, self.service, context)
        self.service.instance_url = self.url
        ready.set()
        server.serve_forever(poll_interval=0.05)
        server.server_close()

    def _shutdown(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    def stop(self) -> None:
        """Stop serving and delete the CA file (a restart writes it again, same path, same CA)."""
        super().stop()
        if self.ca_file:
            shutil.rmtree(Path(self.ca_file).parent, ignore_errors=True)

    @property
    def url(self) -> str:
        """The instance URL (also the OAuth login URL)."""
        return f"https://{self.host}:{self.port}"

    # -- the interface --------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        return self.service.stats()

    # -- how a client reaches it ------------------------------------------------
    def secrets_env(self, auth: str = "client_credentials") -> dict[str, str]:
        """Environment variables holding this org's credentials, as ``connection_settings`` names them."""
        creds = self.credentials
        values = {
            SECRET_ENV["client_id"]: creds.client_id,
            SECRET_ENV["client_secret"]: creds.client_secret,
        }
        if auth == "password":
            values[SECRET_ENV["username"]] = creds.username
            values[SECRET_ENV["password"]] = creds.password
            values[SECRET_ENV["security_token"]] = creds.security_token
        if auth == "refresh_token":
            values[SECRET_ENV["refresh_token"]] = self.refresh_token
        if auth == "jwt":
            del values[SECRET_ENV["client_secret"]]  # the JWT grant proves itself with the key, not the secret
            values[SECRET_ENV["username"]] = creds.username
            values[SECRET_ENV["private_key"]] = self.private_key_pem
        return values

    def connection_settings(self, **overrides: Any) -> dict[str, Any]:
        """A ``[connections.salesforce]`` section pointing at this org (its CA, fast retries, unpaced)."""
        auth = overrides.pop("auth", "client_credentials")
        values: dict[str, Any] = {
            "type": "salesforce",
            "instance_url": self.url,
            "login_url": self.url,
            "auth": auth,
            "client_id_env": SECRET_ENV["client_id"],
            "client_secret_env": SECRET_ENV["client_secret"],
            "ca_bundle": self.ca_file,
            "requests_per_second": 1000.0,
            "timeout_seconds": 10.0,
            "retry": {"initial_wait_seconds": 0.01, "max_wait_seconds": 0.05, "total_wait_seconds": 5.0},
        }
        if auth == "password":
            values |= {
                "username_env": SECRET_ENV["username"],
                "password_env": SECRET_ENV["password"],
                "security_token_env": SECRET_ENV["security_token"],
            }
        if auth == "refresh_token":
            values["refresh_token_env"] = SECRET_ENV["refresh_token"]
        if auth == "jwt":
            values |= {"username_env": SECRET_ENV["username"], "private_key_env": SECRET_ENV["private_key"]}
        return values | overrides

    # -- control ---------------------------------------------------------------
    def expire_sessions(self) -> None:
        """Every access token becomes invalid: the next REST call gets 401 INVALID_SESSION_ID."""
        self.service.expire_sessions()

    def revoke_refresh_tokens(self) -> None:
        """An admin revokes the app's refresh tokens: the next refresh-token login gets ``invalid_grant``."""
        self.service.revoke_refresh_tokens()

    def use_allocation(self, used: int) -> None:
        """Set how much of the rolling allocation is already used."""
        self.allocation.set_used(used)
