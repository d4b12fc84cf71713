"""Who may read the dashboard: loopback names without a token, the token rule elsewhere, binding refused without one."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from starlette.testclient import TestClient

from connector.errors import ConfigError
from connector.store import Store, open_store
from connector.web import command, server
from connector.web.app import create_app
from connector.web.security import COOKIE, host_name, is_loopback, session_value
from tests.web.conftest import NOW

TOKEN = "s3cret-token-for-tests-0123456789"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    yield opened
    opened.close()


@pytest.fixture
def guarded(store: Store) -> Iterator[TestClient]:
    app = create_app(store, config=None, token=SecretStr(TOKEN), clock=lambda: NOW)
    with TestClient(app, base_url="http://dashboard.example:8765", follow_redirects=False) as client:
        yield client


# -- loopback without a token -----------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("127.0.0.1:8765", 200),
        ("localhost:8765", 200),
        ("[::1]:8765", 200),
        ("127.0.0.1", 200),
        ("rebind.attacker.example:8765", 421),
        ("192.168.1.20:8765", 421),
        ("", 421),
    ],
    ids=["ipv4", "localhost", "ipv6", "no-port", "dns-rebinding", "lan-address", "no-host"],
)
def test_without_a_token_only_loopback_host_names_are_answered(store: Store, host: str, status: int) -> None:
    app = create_app(store, config=None, token=None, clock=lambda: NOW)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        assert client.get("/", headers={"host": host}).status_code == status


# -- the token rule ---------------------------------------------------------------------


def test_without_credentials_the_answer_is_401_and_names_no_token(guarded: TestClient) -> None:
    answer = guarded.get("/runs")
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    assert TOKEN not in answer.text


@pytest.mark.parametrize(
    "authorization",
    [
        f"Bearer {TOKEN}x".encode(),
        f"Bearer {TOKEN[:-1]}".encode(),
        b"Bearer ",
        f"Basic {TOKEN}".encode(),
        TOKEN.encode(),
        "Bearer \xe9".encode("latin-1"),
    ],
    ids=["longer", "shorter", "empty", "basic", "no-scheme", "non-ascii"],
)
def test_a_wrong_bearer_token_is_refused(guarded: TestClient, authorization: bytes) -> None:
    assert guarded.get("/runs", headers={b"authorization": authorization}).status_code == 401


def test_the_right_bearer_token_is_accepted(guarded: TestClient) -> None:
    assert guarded.get("/runs", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert guarded.get("/runs", headers={"authorization": f"bearer {TOKEN}"}).status_code == 200


def test_a_token_in_the_address_sets_an_httponly_cookie_and_leaves_the_address(guarded: TestClient) -> None:
    answer = guarded.get("/runs", params={"job": "x", "token": TOKEN})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/runs?job=x"  # the token is gone from the address
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}={session_value(SecretStr(TOKEN))};")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert TOKEN not in cookie  # the cookie holds an HMAC of the token
    assert guarded.get("/", headers={"cookie": f"{COOKIE}={session_value(SecretStr(TOKEN))}"}).status_code == 200


@pytest.mark.parametrize("cookie", ["", TOKEN, session_value(SecretStr(TOKEN + "x"))], ids=["empty", "raw", "other"])
def test_a_wrong_cookie_is_refused(guarded: TestClient, cookie: str) -> None:
    assert guarded.get("/", headers={"cookie": f"{COOKIE}={cookie}"}).status_code == 401


def test_a_wrong_token_in_the_address_is_refused_without_a_cookie(guarded: TestClient) -> None:
    answer = guarded.get("/", params={"token": "guess"})
    assert answer.status_code == 401
    assert "set-cookie" not in answer.headers
    assert "guess" not in answer.text


def test_the_style_sheet_needs_no_token(guarded: TestClient) -> None:
    assert guarded.get("/static/dashboard.css").status_code == 200


def test_the_token_never_reaches_a_log(guarded: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    guarded.get("/", params={"token": TOKEN})
    guarded.get("/", headers={"authorization": f"Bearer {TOKEN}"})
    guarded.get("/", params={"token": "wrong"})
    ours = [r for r in caplog.records if r.name.split(".")[0] in ("connector", "uvicorn", "starlette")]
    assert all(TOKEN not in record.getMessage() + str(vars(record)) for record in ours)


# -- binding ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.20", False),
        ("dashboard.example", False),
    ],
    ids=str,
)
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize(
    ("header", "name"),
    [("127.0.0.1:8765", "127.0.0.1"), ("[::1]:8765", "::1"), ("[::1]", "::1"), ("localhost", "localhost"), ("", "")],
    ids=str,
)
def test_host_header_names(header: str, name: str) -> None:
    assert host_name(header) == name


def test_serving_off_loopback_needs_a_token(store: Store) -> None:
    open_app = create_app(store, config=None, token=None, clock=lambda: NOW)
    with pytest.raises(ConfigError) as refused:
        server.check_binding(open_app, "0.0.0.0")
    assert "\n" not in str(refused.value) and "token is required" in str(refused.value)
    server.check_binding(open_app, "127.0.0.1")
    server.check_binding(create_app(store, config=None, token=SecretStr(TOKEN), clock=lambda: NOW), "0.0.0.0")


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[store]\nurl = "sqlite:///{tmp_path / "state.db"}"\n', encoding="utf-8")
    return path


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[tuple[object, str, int]]:
    calls: list[tuple[object, str, int]] = []
    monkeypatch.setattr(server, "serve", lambda app, host, port: calls.append((app, host, port)))
    return calls


def test_web_command_refuses_a_non_loopback_host_without_a_token(
    config_file: Path, served: list[tuple[object, str, int]], capsys: pytest.CaptureFixture[str]
) -> None:
    assert command.web_command(config_file, "0.0.0.0", 8765, None) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "refusing to serve the dashboard on 0.0.0.0" in err
    assert served == []


@pytest.mark.parametrize(
    ("value", "message"),
    [(None, "CRMSYNC_TEST_WEB_TOKEN is not set"), ("tiny-7x", "shorter than 16 characters")],
    ids=["unset", "short"],
)
def test_web_command_refuses_a_missing_or_short_token(
    config_file: Path,
    served: list[tuple[object, str, int]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    value: str | None,
    message: str,
) -> None:
    if value is None:
        monkeypatch.delenv("CRMSYNC_TEST_WEB_TOKEN", raising=False)
    else:
        monkeypatch.setenv("CRMSYNC_TEST_WEB_TOKEN", value)
    assert command.web_command(config_file, "0.0.0.0", 8765, "CRMSYNC_TEST_WEB_TOKEN") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert value is None or value not in err
    assert served == []


def test_web_command_serves_off_loopback_with_a_token_and_never_prints_it(
    config_file: Path,
    served: list[tuple[object, str, int]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CRMSYNC_TEST_WEB_TOKEN", TOKEN)
    assert command.web_command(config_file, "0.0.0.0", 9000, "CRMSYNC_TEST_WEB_TOKEN") == 0
    [(app, host, port)] = served
    assert (host, port) == ("0.0.0.0", 9000)
    assert app.state.requires_token  # type: ignore[attr-defined]
    captured = capsys.readouterr()
    assert TOKEN not in captured.err + captured.out
    assert "?token=<the value of CRMSYNC_TEST_WEB_TOKEN>" in captured.err


def test_web_command_serves_loopback_without_a_token(config_file: Path, served: list[tuple[object, str, int]]) -> None:
    assert command.web_command(config_file, "127.0.0.1", 8765, None) == 0
    [(app, _host, _port)] = served
    assert not app.state.requires_token  # type: ignore[attr-defined]


def test_web_command_reports_a_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert command.web_command(tmp_path / "missing.toml", "127.0.0.1", 8765, None) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_web_command_without_the_web_extra_says_which_extra(
    config_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delitem(sys.modules, "connector.web.app")
    monkeypatch.setitem(sys.modules, "starlette.applications", None)
    assert command.web_command(config_file, "127.0.0.1", 8765, None) == 2
    assert capsys.readouterr().err == (
        "error: the dashboard needs the [web] extra (pip install 'crmsync[web]'): no starlette.applications\n"
    )


def test_the_token_redirect_stays_on_the_dashboard(guarded: TestClient) -> None:
    answer = guarded.get(f"http://dashboard.example:8765//attacker.example/x?token={TOKEN}")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/attacker.example/x"
