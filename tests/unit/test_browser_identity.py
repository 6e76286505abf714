"""The signed identity cookie each browser gets on a server reachable without accounts: signing,
the key in the data dir, the middleware that issues it, and when the rule applies."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from webui.browser_identity import (
    COOKIE_NAME,
    SECRET_FILE,
    USER_PREFIX,
    BrowserIdentities,
    BrowserIdentityMiddleware,
    browser_identities,
    load_secret,
)
from webui.config import Settings, is_loopback, load_settings
from webui.errors import UserFacingError

KEY = b"k" * 64


def test_a_new_cookie_verifies_and_every_one_is_different() -> None:
    ids = BrowserIdentities(KEY)
    first, second = ids.new_cookie_value(), ids.new_cookie_value()
    assert ids.identity(first) and ids.identity(second)
    assert ids.identity(first) != ids.identity(second)
    assert ids.user_name({COOKIE_NAME: first}) == USER_PREFIX + str(ids.identity(first))


@pytest.mark.parametrize("tamper", [
    lambda v: "A" + v[1:] if v[0] != "A" else "B" + v[1:],  # another identity, the old signature
    lambda v: v[:-1] + ("A" if v[-1] != "A" else "B"),  # the signature altered
    lambda v: v.split(".")[0],  # no signature
    lambda v: v.split(".")[0] + ".",  # an empty signature
    lambda v: "." + v.split(".")[1],  # no identity
    lambda v: v + "x" * 300,  # absurdly long
    lambda v: "é" + v,  # not ASCII
])
def test_a_tampered_cookie_is_no_identity(tamper) -> None:  # type: ignore[no-untyped-def]
    ids = BrowserIdentities(KEY)
    value = ids.new_cookie_value()
    assert ids.identity(tamper(value)) is None
    assert ids.user_name({COOKIE_NAME: tamper(value)}) is None


def test_a_cookie_signed_with_another_key_is_no_identity() -> None:
    foreign = BrowserIdentities(b"x" * 64).new_cookie_value()
    assert BrowserIdentities(KEY).identity(foreign) is None
    assert BrowserIdentities(KEY).user_name({}) is None and BrowserIdentities(KEY).user_name(None) is None


def test_page_identities_are_private_per_page_and_never_a_browser_identity() -> None:
    ids = BrowserIdentities(KEY)
    assert ids.page_user_name("abc") == ids.page_user_name("abc") != ids.page_user_name("abd")
    assert not ids.page_user_name("abc").startswith(USER_PREFIX)
    assert BrowserIdentities(b"y" * 64).page_user_name("abc") != ids.page_user_name("abc")


# -- the key ----------------------------------------------------------------------------------


def test_the_key_is_made_once_with_owner_only_permissions(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, listen=True)
    first = load_secret(settings)
    path = tmp_path / SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_secret(settings) == first  # a restart keeps every browser's identity
    assert [p.name for p in tmp_path.iterdir()] == [SECRET_FILE]  # no temporary file left behind
    path.chmod(0o644)
    assert load_secret(settings) == first and stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_key_from_the_environment_wins_and_must_be_long(tmp_path: Path) -> None:
    settings = load_settings({"data_dir": str(tmp_path)}, environ={"WEBUI_SESSION_SECRET": "s" * 40})
    assert load_secret(settings) == b"s" * 40 and not (tmp_path / SECRET_FILE).exists()
    with pytest.raises(UserFacingError, match="too short"):
        load_secret(Settings(data_dir=tmp_path, session_secret="short"))


def test_a_damaged_key_file_is_reported(tmp_path: Path) -> None:
    (tmp_path / SECRET_FILE).write_text("")
    with pytest.raises(UserFacingError, match="damaged"):
        load_secret(Settings(data_dir=tmp_path))


# -- when it applies --------------------------------------------------------------------------


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.0.0.2", True), ("localhost", True), ("::1", True), ("[::1]", True),
    ("0.0.0.0", False), ("192.168.1.5", False), ("::", False), ("myhost.lan", False),
])
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_reachable_means_private_per_browser_unless_accounts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPACE_ID", raising=False)
    assert not Settings(data_dir=tmp_path).per_browser_history  # local: the single-user app
    assert browser_identities(Settings(data_dir=tmp_path)) is None and not (tmp_path / SECRET_FILE).exists()
    assert Settings(data_dir=tmp_path, listen=True).per_browser_history
    assert Settings(data_dir=tmp_path, host="192.168.1.5").per_browser_history
    assert not Settings(data_dir=tmp_path, listen=True, auth=["a:b"]).per_browser_history
    monkeypatch.setenv("SPACE_ID", "someone/space")
    assert Settings(data_dir=tmp_path).reachable and Settings(data_dir=tmp_path).per_browser_history
    assert browser_identities(Settings(data_dir=tmp_path)) is not None


# -- the middleware ---------------------------------------------------------------------------


@pytest.fixture
def client() -> TestClient:
    app = FastAPI()

    @app.get("/")
    def page() -> dict[str, str]:
        return {"page": "ok"}

    @app.get("/v1/models")
    def models() -> dict[str, str]:
        return {"api": "ok"}

    app.add_middleware(BrowserIdentityMiddleware, identities=BrowserIdentities(KEY))
    return TestClient(app)


def set_cookie(response) -> str:  # type: ignore[no-untyped-def]
    return response.headers.get("set-cookie", "")


def test_a_browser_without_a_cookie_gets_one_that_lasts(client: TestClient) -> None:
    header = set_cookie(client.get("/"))
    assert header.startswith(COOKIE_NAME + "=")
    for attribute in ("HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=34560000"):
        assert attribute in header
    assert "Secure" not in header
    value = header.split(";")[0].split("=", 1)[1]
    assert BrowserIdentities(KEY).identity(value)
    # sent back, it is kept: no new cookie
    assert set_cookie(client.get("/", headers={"cookie": f"{COOKIE_NAME}={value}"})) == ""


def test_a_tampered_cookie_is_replaced_by_a_new_identity(client: TestClient) -> None:
    ids = BrowserIdentities(KEY)
    value = ids.new_cookie_value()
    forged = ("B" if value[0] == "A" else "A") + value[1:]
    header = set_cookie(client.get("/", headers={"cookie": f"{COOKIE_NAME}={forged}"}))
    new = header.split(";")[0].split("=", 1)[1]
    assert ids.identity(new) not in (None, ids.identity(value), ids.identity(forged))


def test_over_https_the_cookie_is_secure_and_survives_the_space_iframe(client: TestClient) -> None:
    header = set_cookie(client.get("/", headers={"x-forwarded-proto": "https"}))
    assert "Secure" in header and "SameSite=None" in header and "HttpOnly" in header


def test_the_api_gets_no_cookie(client: TestClient) -> None:
    assert set_cookie(client.get("/v1/models")) == ""
    assert set_cookie(client.get("/", headers={"cookie": "broken=\"; junk"})) != ""
