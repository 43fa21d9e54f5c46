"""Who may use the console and which POSTs it takes, through its real app over HTTP (no broker needed)."""

import base64
import re
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from espstream.console.app import build, create_app
from espstream.console.security import SESSION_COOKIE
from espstream.console.settings import ConsoleSettings
from espstream.embedded import free_port

NOWHERE = f"127.0.0.1:{free_port()}"


def client(**settings: str) -> TestClient:
    """The console's app, its index not started (no lifespan): the pages that need no broker answer."""
    console = build(ConsoleSettings(kafka_bootstrap_servers=NOWHERE, **settings))
    return TestClient(create_app(console), base_url="http://127.0.0.1:8090")


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_on_loopback_without_a_password_pages_need_no_credentials() -> None:
    assert client().get("/rates").status_code == 200


@pytest.mark.parametrize("headers", [{}, basic("operator", "wrong"), basic("someone", "s3cret-pass"),
                                     {"Authorization": "Basic !!!"}, {"Authorization": "Bearer s3cret-pass"}],
                         ids=["none", "wrong-password", "wrong-user", "not-base64", "not-basic"])
def test_with_a_password_every_page_needs_the_user_and_password(headers: dict[str, str]) -> None:
    response = client(console_password="s3cret-pass").get("/rates", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Basic realm="espstream console"'
    assert "s3cret" not in response.text


def test_the_right_user_and_password_open_the_pages() -> None:
    app = client(console_password="s3cret-pass", console_user="ops")
    assert app.get("/rates", headers=basic("ops", "s3cret-pass")).status_code == 200


def test_the_console_refuses_to_listen_beyond_loopback_without_a_password() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "espstream", "console"], capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "ESPSTREAM_CONSOLE_HOST": "0.0.0.0", "ESPSTREAM_KAFKA_BOOTSTRAP_SERVERS": NOWHERE},
    )
    assert result.returncode == 2
    assert "ESPSTREAM_CONSOLE_HOST=0.0.0.0 is reachable from other hosts: set ESPSTREAM_CONSOLE_PASSWORD" in result.stderr


def test_the_session_cookie_is_strict_and_http_only() -> None:
    cookie = client().get("/rates").headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie


REDRIVE = "/dead-letters/normalizer/redrive"


def test_a_post_without_the_session_s_token_is_refused() -> None:
    console = build(ConsoleSettings(kafka_bootstrap_servers=NOWHERE))
    browser = TestClient(create_app(console), base_url="http://127.0.0.1:8090")
    browser.get("/rates")  # the browser now has a session cookie
    token = console.guard.token(browser.cookies[SESSION_COOKIE])
    assert browser.post(REDRIVE, data={"csrf_token": ""}).status_code == 403
    assert browser.post(REDRIVE, data={"csrf_token": "0" * 64}).status_code == 403
    assert browser.post(REDRIVE, data={"csrf_token": token}, headers={"Origin": "http://evil.example"}).status_code == 403
    cookieless = TestClient(browser.app, base_url="http://127.0.0.1:8090")
    assert cookieless.post(REDRIVE, data={"csrf_token": token}).status_code == 403


def test_a_token_is_worth_nothing_in_another_session_or_another_console() -> None:
    from espstream.console.security import Guard

    guard, restarted = Guard("operator", None), Guard("operator", None)
    assert guard.token("a" * 43) != guard.token("b" * 43)
    assert guard.token("a" * 43) != restarted.token("a" * 43)  # the key is made at start
