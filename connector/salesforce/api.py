"""The one retry and pacing choke point for Salesforce (STYLE.md item 8).

Every REST call of the client goes through :meth:`SalesforceApi.call`:
the pacer spaces calls, tenacity retries what is transient (5xx, resets,
timeouts, ``UNABLE_TO_LOCK_ROW``, 429 after its Retry-After), the error
table (``errors.py``) names what failed, and usage is counted per endpoint
with the org's ``Sforce-Limit-Info``. simple-salesforce itself retries
nothing; it only re-logs in on 401 when *it* logged in, which it does not
here: crmsync logs in through the SDK's token call against the configured
login URL (the SDK's own login only reaches ``*.salesforce.com`` hosts), and
refreshes the session once on 401 ``INVALID_SESSION_ID``.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from pydantic import SecretStr
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceError, SalesforceExpiredSession
from simple_salesforce.login import token_login
from tenacity import RetryCallState, Retrying, retry_if_exception_type
from tenacity.wait import wait_random_exponential

from connector.config import SalesforceConnection
from connector.crm import ApiUsage
from connector.errors import AuthError, ConfigError, RateLimited, TransientError
from connector.salesforce.errors import classify

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Secrets:
    """What the client needs to log in; every value a ``SecretStr`` (never logged)."""

    client_id: SecretStr | None = None
    client_secret: SecretStr | None = None
    username: SecretStr | None = None
    password: SecretStr | None = None
    security_token: SecretStr | None = None
    access_token: SecretStr | None = None

    def __repr__(self) -> str:
        return "Secrets(***)"

    @classmethod
    def from_settings(cls, settings: SalesforceConnection) -> Secrets:
        """Read the secrets ``settings.auth`` needs from the environment (``ConfigError`` naming a missing one)."""
        if settings.auth == "access_token":
            return cls(access_token=settings.secret(settings.access_token_env))
        client_id = settings.secret(settings.client_id_env)
        client_secret = settings.secret(settings.client_secret_env)
        if settings.auth == "client_credentials":
            return cls(client_id=client_id, client_secret=client_secret)
        token = settings.secret(settings.security_token_env) if settings.security_token_env else None
        return cls(
            client_id=client_id,
            client_secret=client_secret,
            username=settings.secret(settings.username_env),
            password=settings.secret(settings.password_env),
            security_token=token,
        )


class _TimeoutAdapter(HTTPAdapter):
    """Our own timeout on every request (the SDK sets none) and no urllib3 retries."""

    def __init__(self, timeout: float, pool_size: int) -> None:
        super().__init__(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
        self.timeout = timeout

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().send(request, **kwargs)


class _Pacer:
    """Spaces calls at least ``1 / rate`` seconds apart."""

    def __init__(self, per_second: float, sleep: Callable[[float], None]) -> None:
        self.interval = 1.0 / per_second
        self.sleep = sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            delay = self._next - now
            self._next = max(now, self._next) + self.interval
        if delay > 0:
            self.sleep(delay)


class SalesforceApi:
    """A logged-in simple-salesforce handle behind one retry, pacing and error-classification point."""

    def __init__(
        self,
        settings: SalesforceConnection,
        secrets: Secrets,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self._secrets = secrets
        self._sleep = sleep
        self.session = session or requests.Session()
        adapter = _TimeoutAdapter(settings.timeout_seconds, pool_size=4)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        if settings.ca_bundle:
            # REQUESTS_CA_BUNDLE would otherwise win over ``verify``
            self.session.trust_env = False
            self.session.verify = settings.ca_bundle
        self.session.hooks["response"].append(self._on_response)
        self.usage = ApiUsage()
        self._pacer = _Pacer(settings.requests_per_second, sleep)
        self._local = threading.local()
        """Per thread: the Retry-After of the last response (reads run ahead in a second thread)."""
        self._lock = threading.RLock()
        self._sf: Salesforce | None = None
        self.logs_in = settings.auth != "access_token"

    # -- session ---------------------------------------------------------------
    @property
    def sf(self) -> Salesforce:
        with self._lock:
            if self._sf is None:
                self._sf = self._open()
            return self._sf

    def _count(self, endpoint: str) -> None:
        with self._lock:
            self.usage.calls[endpoint] = self.usage.calls.get(endpoint, 0) + 1

    def _open(self) -> Salesforce:
        version = self.settings.api_version
        if not self.logs_in:
            token = self._secrets.access_token
            assert token is not None
            return self._handle(token.get_secret_value(), self.settings.instance_url, version)
        access_token, instance = self._retrying("oauth/token", self._login)
        return self._handle(access_token, f"https://{instance}", version)

    def _handle(self, access_token: str, instance_url: str, version: str) -> Salesforce:
        # object_pairs_hook=None: plain dicts, parsed by json's C fast path
        return Salesforce(
            session_id=access_token,
            instance_url=instance_url,
            session=self.session,
            version=version,
            object_pairs_hook=None,
        )

    def _login(self) -> tuple[str, str]:
        secrets = self._secrets
        assert secrets.client_id is not None and secrets.client_secret is not None
        client_id = secrets.client_id.get_secret_value()
        login = (self.settings.login_url or self.settings.instance_url).rstrip("/")
        host = urlsplit(login).hostname or "login"
        headers: dict[str, str] | None = None
        if self.settings.auth == "client_credentials":
            pair = f"{client_id}:{secrets.client_secret.get_secret_value()}".encode()
            headers = {"Authorization": "Basic " + base64.b64encode(pair).decode()}
            data: dict[str, Any] = {"grant_type": "client_credentials"}
        else:
            assert secrets.username is not None and secrets.password is not None
            password = secrets.password.get_secret_value()
            if secrets.security_token is not None:
                password += secrets.security_token.get_secret_value()
            data = {
                "grant_type": "password",
                "client_id": client_id,
                "client_secret": secrets.client_secret.get_secret_value(),
                "username": secrets.username.get_secret_value(),
                "password": password,
            }
        try:
            access_token, instance = token_login(f"{login}/services/oauth2/token", data, host, client_id, headers, None,
                                                 self.session)  # fmt: skip
        except (AttributeError, TypeError, KeyError):
            # the SDK assumes a JSON object; a gateway's error page or list is not one
            raise TransientError("oauth/token: unreadable answer from the OAuth endpoint") from None
        log.info("salesforce login", extra={"event": "login", "flow": self.settings.auth})
        return str(access_token), str(instance)

    def _on_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        info = response.headers.get("Sforce-Limit-Info")
        if info:
            usage = Salesforce.parse_api_usage(info).get("api-usage")
            if usage is not None:
                self.usage.quota_used, self.usage.quota_total = usage.used, usage.total
        retry_after = response.headers.get("Retry-After")
        try:
            self._local.retry_after = float(retry_after) if retry_after is not None else None
        except ValueError:
            self._local.retry_after = None

    # -- the choke point -----------------------------------------------------------
    def call(self, endpoint: str, action: Callable[[Salesforce], T]) -> T:
        """Run one REST call with pacing, retries and the error table; 401 refreshes the session once."""
        refreshed = False

        def attempt() -> T:
            nonlocal refreshed
            sf = self.sf
            try:
                return action(sf)
            except SalesforceExpiredSession:
                if not self.logs_in or refreshed:
                    raise AuthError(f"{endpoint}: HTTP 401 INVALID_SESSION_ID (session expired or revoked)") from None
                refreshed = True
                log.info("salesforce session expired; logging in again", extra={"event": "refresh"})
                with self._lock:
                    if self._sf is sf:  # another thread may have refreshed it already
                        self._sf = None
                sf = self.sf
                self._count(endpoint)
                return action(sf)

        return self._retrying(endpoint, attempt)

    def _retrying(self, endpoint: str, action: Callable[[], T]) -> T:
        retry = self.settings.retry
        backoff = wait_random_exponential(multiplier=retry.initial_wait_seconds, max=retry.max_wait_seconds)

        def wait(state: RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            if isinstance(error, RateLimited) and error.retry_after is not None:
                return min(error.retry_after, retry.max_wait_seconds)
            return float(backoff(state))

        def stop(state: RetryCallState) -> bool:
            return state.attempt_number >= retry.max_attempts or state.idle_for >= retry.total_wait_seconds

        def before_sleep(state: RetryCallState) -> None:
            with self._lock:
                self.usage.retries += 1
            error = state.outcome.exception() if state.outcome else None
            log.warning(
                "salesforce call failed; retrying",
                extra={"event": "retry", "endpoint": endpoint, "attempt": state.attempt_number, "error": str(error)},
            )

        def one() -> T:
            self._pacer.wait()
            self._count(endpoint)
            self._local.retry_after = None
            try:
                return action()
            except (AuthError, ConfigError, TransientError):
                raise
            except (SalesforceError, requests.exceptions.RequestException) as error:
                problem = classify(endpoint, error, getattr(self._local, "retry_after", None))
                if isinstance(problem, RateLimited):
                    with self._lock:
                        self.usage.rate_limited += 1
                raise problem from None

        retrying = Retrying(
            retry=retry_if_exception_type(TransientError),
            wait=wait,
            stop=stop,
            sleep=self._sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        return retrying(one)

    def pause(self, seconds: float) -> None:
        """Wait before re-sending single records that failed transiently; counted as a retry."""
        with self._lock:
            self.usage.retries += 1
        self._sleep(seconds)

    def close(self) -> None:
        self.session.close()
