"""The one seam every Salesforce call goes through: ``SalesforceApi.send(operation)``.

An :class:`Operation` names the call (the endpoint counted in usage and
named in errors), its method, REST path, parameters and JSON body; the
client builds operations and never touches the SDK. Around each call: the
pacer of :mod:`connector.http.pacing` spaces calls, the retry policy of
:mod:`connector.http.retry` retries what is transient (5xx, resets,
timeouts, ``UNABLE_TO_LOCK_ROW``, 429 after its Retry-After), the error
table (``errors.py``) names what failed, and usage is counted per endpoint
with the org's ``Sforce-Limit-Info``. A TLS failure is a configuration
problem; a refused connection or an unknown host before the org answered
anything stops the run at once, naming the URL. simple-salesforce itself retries
nothing; it only re-logs in on 401 when *it* logged in, which it does not
here: crmsync logs in through the SDK's token call against the configured
login URL (the SDK's own login only reaches ``*.salesforce.com`` hosts), and
refreshes the session once on 401 ``INVALID_SESSION_ID``.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import requests
from pydantic import SecretStr
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceAuthenticationFailed, SalesforceError, SalesforceExpiredSession
from simple_salesforce.login import token_login
from tenacity import RetryCallState

from connector.crm import ApiUsage
from connector.errors import AuthError, ConfigError, RateLimited, TransientError, Unreachable
from connector.http.network import NetworkFailure, network_failure
from connector.http.pacing import Pacer
from connector.http.retry import parse_retry_after, retrying
from connector.http.usage import UsageCounter
from connector.salesforce.errors import classify, classify_login
from connector.salesforce.settings import SalesforceConnection

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
    refresh_token: SecretStr | None = None
    private_key: SecretStr | None = None
    """PEM private key of the connected app (JWT bearer grant), read from a file or a variable."""

    def __repr__(self) -> str:
        return "Secrets(***)"

    @classmethod
    def from_settings(cls, settings: SalesforceConnection, environ: Mapping[str, str] | None = None) -> Secrets:
        """Read the secrets ``settings.auth`` needs from ``environ`` (default the process environment; ``ConfigError`` naming a missing one)."""
        if settings.auth == "access_token":
            return cls(access_token=settings.secret(settings.access_token_env, environ))
        client_id = settings.secret(settings.client_id_env, environ)
        if settings.auth == "jwt":
            return cls(
                client_id=client_id,
                username=settings.secret(settings.username_env, environ),
                private_key=_private_key(settings, environ),
            )
        if settings.auth == "refresh_token":
            # the connected app may not require the secret for this grant ("Require Secret for Refresh Token Flow")
            secret = settings.secret(settings.client_secret_env, environ) if settings.client_secret_env else None
            return cls(
                client_id=client_id,
                client_secret=secret,
                refresh_token=settings.secret(settings.refresh_token_env, environ),
            )
        client_secret = settings.secret(settings.client_secret_env, environ)
        if settings.auth == "client_credentials":
            return cls(client_id=client_id, client_secret=client_secret)
        token = settings.secret(settings.security_token_env, environ) if settings.security_token_env else None
        return cls(
            client_id=client_id,
            client_secret=client_secret,
            username=settings.secret(settings.username_env, environ),
            password=settings.secret(settings.password_env, environ),
            security_token=token,
        )


def _private_key(settings: SalesforceConnection, environ: Mapping[str, str] | None) -> SecretStr:
    """The JWT grant's PEM key from ``private_key_env`` or ``private_key_file`` (errors name the file or variable, never the key)."""
    if settings.private_key_env:
        key = settings.secret(settings.private_key_env, environ)
        where = f"environment variable {settings.private_key_env}"
    else:
        assert settings.private_key_file is not None
        try:
            key = SecretStr(Path(settings.private_key_file).read_text(encoding="ascii"))
        except (OSError, UnicodeDecodeError) as error:
            reason = "no such file" if isinstance(error, FileNotFoundError) else type(error).__name__
            raise ConfigError(f"private_key_file {settings.private_key_file}: {reason}") from None
        where = f"private_key_file {settings.private_key_file}"
    if "PRIVATE KEY-----" not in key.get_secret_value():
        raise ConfigError(f"{where}: not a PEM private key (-----BEGIN PRIVATE KEY-----)")
    return key


JWT_LIFETIME_SECONDS = 180
"""How long a JWT assertion is valid: Salesforce accepts up to three minutes ahead."""


def jwt_assertion(client_id: str, username: str, audience: str, private_key: str, now: float) -> str:
    """The signed assertion of the OAuth 2.0 JWT bearer grant (RS256; iss, sub, aud, exp)."""
    import jwt  # PyJWT, with cryptography for RS256; imported only by this grant

    claims = {"iss": client_id, "sub": username, "aud": audience, "exp": int(now) + JWT_LIFETIME_SECONDS}
    try:
        return jwt.encode(claims, private_key, algorithm="RS256")
    except (ValueError, TypeError, jwt.PyJWTError) as error:
        raise ConfigError(
            f"oauth/token (jwt grant): the private key cannot sign RS256 ({type(error).__name__})"
        ) from None


@dataclass(frozen=True, slots=True)
class Operation:
    """One Salesforce REST call, described as data."""

    endpoint: str
    """Short name counted in usage and named in errors, e.g. ``query``, ``composite/sobjects``."""
    path: str
    """Relative to the versioned REST base (``query/``, ``composite/sobjects``), or, for
    ``next_url``, the ``nextRecordsUrl`` the API handed out."""
    method: Literal["GET", "POST", "PATCH"] = "GET"
    params: dict[str, str] | None = None
    body: Any = None
    next_url: bool = False


class _TimeoutAdapter(HTTPAdapter):
    """Our own timeout on every request (the SDK sets none), no urllib3 retries, and our CA file.

    The CA file is set per request here rather than with ``session.verify``:
    with ``trust_env`` on, ``REQUESTS_CA_BUNDLE`` would win over the session's
    ``verify``, and turning ``trust_env`` off would also drop the proxy settings.
    """

    def __init__(self, timeout: float, pool_size: int, ca_bundle: str | None = None) -> None:
        super().__init__(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
        self.timeout = timeout
        self.ca_bundle = ca_bundle

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        if self.ca_bundle and kwargs.get("verify") is not False:
            kwargs["verify"] = self.ca_bundle
        return super().send(request, **kwargs)


class SalesforceApi:
    """A logged-in simple-salesforce handle behind one retry, pacing and error-classification point."""

    def __init__(
        self,
        settings: SalesforceConnection,
        secrets: Secrets,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        pacer: Pacer | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``clock`` dates the JWT assertions (a test moves it to make one expire)."""
        self.settings = settings
        self._clock = clock
        self._secrets = secrets
        self._sleep = sleep
        self.session = session or requests.Session()
        adapter = _TimeoutAdapter(settings.timeout_seconds, pool_size=4, ca_bundle=settings.ca_bundle)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        if settings.ca_bundle:
            self.session.verify = settings.ca_bundle
        self.session.hooks["response"].append(self._on_response)
        self.counter = UsageCounter()
        self._pacer = pacer or Pacer.per_second(settings.requests_per_second, sleep=sleep)
        self._answered = False
        """Whether Salesforce answered any call yet: before that, a refused connection is not retried."""
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
        self.counter.call(endpoint)

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
        assert secrets.client_id is not None
        client_id = secrets.client_id.get_secret_value()
        login = (self.settings.login_url or self.settings.instance_url).rstrip("/")
        host = urlsplit(login).hostname or "login"
        flow = self.settings.auth
        data, headers = self._grant(client_id)
        try:
            with warnings.catch_warnings():
                # the SDK warns with an authorize URL on *.salesforce.com holding the consumer key; our error says it
                warnings.simplefilter("ignore", UserWarning)
                access_token, instance = token_login(f"{login}/services/oauth2/token", data, host, client_id, headers,
                                                     None, self.session)  # fmt: skip
        except SalesforceAuthenticationFailed as error:
            raise classify_login(flow, error) from None
        except (AttributeError, TypeError, KeyError):
            # the SDK assumes a JSON object; a gateway's error page or list is not one
            raise TransientError(f"oauth/token ({flow} grant): unreadable answer from the OAuth endpoint") from None
        log.info("salesforce login", extra={"event": "login", "flow": flow})
        return str(access_token), str(instance)

    def _grant(self, client_id: str) -> tuple[dict[str, Any], dict[str, str] | None]:
        """The token request's form and headers for the configured grant."""
        secrets = self._secrets
        flow = self.settings.auth
        if flow == "jwt":
            assert secrets.username is not None and secrets.private_key is not None
            audience = self.settings.jwt_audience or self.settings.login_url or "https://login.salesforce.com"
            assertion = jwt_assertion(client_id, secrets.username.get_secret_value(), audience.rstrip("/"),
                                      secrets.private_key.get_secret_value(), self._clock())  # fmt: skip
            return {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion}, None
        if flow == "refresh_token":
            assert secrets.refresh_token is not None
            data: dict[str, Any] = {
                "grant_type": "refresh_token",
                "client_id": client_id,
                "refresh_token": secrets.refresh_token.get_secret_value(),
            }
            if secrets.client_secret is not None:
                data["client_secret"] = secrets.client_secret.get_secret_value()
            return data, None
        assert secrets.client_secret is not None
        if flow == "client_credentials":
            pair = f"{client_id}:{secrets.client_secret.get_secret_value()}".encode()
            return {"grant_type": "client_credentials"}, {"Authorization": "Basic " + base64.b64encode(pair).decode()}
        assert secrets.username is not None and secrets.password is not None
        password = secrets.password.get_secret_value()
        if secrets.security_token is not None:
            password += secrets.security_token.get_secret_value()
        return {
            "grant_type": "password",
            "client_id": client_id,
            "client_secret": secrets.client_secret.get_secret_value(),
            "username": secrets.username.get_secret_value(),
            "password": password,
        }, None

    def _on_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._answered = True
        info = response.headers.get("Sforce-Limit-Info")
        if info:
            usage = Salesforce.parse_api_usage(info).get("api-usage")
            if usage is not None:
                self.counter.quota(usage.used, usage.total)
        self._local.retry_after = parse_retry_after(response.headers.get("Retry-After"))

    # -- the seam ------------------------------------------------------------------
    def send(self, operation: Operation) -> Any:
        """Send ``operation``; its JSON answer (``None`` for an empty one)."""

        def action(sf: Salesforce) -> Any:
            if operation.next_url:
                return sf.query_more(operation.path, identifier_is_url=True)
            return sf.restful(operation.path, params=operation.params, method=operation.method, json=operation.body)

        return self.call(operation.endpoint, action)

    def send_parsed(self, operation: Operation, parse: Callable[[bytes], T]) -> T:
        """Send a ``GET`` ``operation`` and ``parse`` its answer's body, for a caller that parses into its model in
        one pass (a query page: ~2,000 records parsed by pydantic straight from the bytes, not by ``json`` and then
        copied by validation). The same request, errors and retries as :meth:`send`; a body that is not JSON
        (``parse`` raises ``json``'s error) is retried as it is there."""

        def action(sf: Salesforce) -> T:
            # built as ``query_more`` (a ``nextRecordsUrl``) and ``restful`` build them
            url = f"https://{sf.sf_instance}{operation.path}" if operation.next_url else sf.base_url + operation.path
            # the SDK's own request and error table (``_call_salesforce`` raises its exceptions for >= 300)
            response = sf._call_salesforce(operation.method, url, name=operation.endpoint, params=operation.params)
            try:
                return parse(response.content)
            except json.JSONDecodeError as error:
                raise requests.exceptions.InvalidJSONError(f"not JSON: {error.msg}") from None

        return self.call(operation.endpoint, action)

    @property
    def usage(self) -> ApiUsage:
        """API usage so far (an :class:`~connector.crm.ApiUsage` snapshot)."""
        return self.counter.snapshot()

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
        def before_sleep(state: RetryCallState) -> None:
            self.counter.retry()
            error = state.outcome.exception() if state.outcome else None
            log.warning(
                "salesforce call failed; retrying",
                extra={"event": "retry", "endpoint": endpoint, "attempt": state.attempt_number, "error": str(error)},
            )

        def one() -> T:
            self._pacer.acquire()
            self._count(endpoint)
            self._local.retry_after = None
            try:
                return action()
            except (AuthError, ConfigError, TransientError):
                raise
            except requests.exceptions.ConnectionError as error:
                raise self._no_response(endpoint, error) from None
            except (SalesforceError, requests.exceptions.RequestException) as error:
                problem = classify(endpoint, error, getattr(self._local, "retry_after", None))
                if isinstance(problem, RateLimited):
                    self.counter.limited()
                raise problem from None
            except OSError as error:
                # requests raises a bare OSError for a CA file it cannot read
                raise ConfigError(
                    f"{endpoint}: cannot use the CA file ({type(error).__name__}): check ca_bundle"
                ) from None

        policy = retrying(self.settings.retry, sleep=self._sleep, before_sleep=before_sleep)
        return policy(one)

    def _no_response(self, endpoint: str, error: requests.exceptions.ConnectionError) -> ConfigError | TransientError:
        """A call that got no HTTP response: TLS, DNS, refused, reset or timeout."""
        kind = network_failure(error)
        url = self.settings.login_url if endpoint == "oauth/token" and self.settings.login_url else None
        where = f"{endpoint}: {url or self.settings.instance_url}"
        if kind is NetworkFailure.TLS:
            return ConfigError(f"{where}: TLS verification failed (check ca_bundle and the instance URL)")
        if kind.fails_fast and not self._answered:
            return Unreachable(f"{where}: {kind.value} (check the URL and the network)")
        return TransientError(f"{where}: no response ({kind.value})")

    def pause(self, seconds: float) -> None:
        """Wait before re-sending single records that failed transiently; counted as a retry."""
        self.counter.retry()
        self._sleep(seconds)

    def close(self) -> None:
        self.session.close()
