"""The signed identity cookie each browser gets on a server reachable without accounts: signing,
the key in the data dir, the middleware that issues it, and when the rule applies."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest
from fastapi import FastAPI, Request, Response
from fastapi.testclient import TestClient

from webui.browser_identity import (
    COOKIE_NAME,
    SECRET_FILE,
    USER_PREFIX,
    BrowserIdentities,
    BrowserIdentityMiddleware,
    browser_identities,
    cross_origin,
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


def test_without_hard_links_the_key_is_created_exclusively(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_links(src: str, dst: str) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    settings = Settings(data_dir=tmp_path, listen=True)
    first = load_secret(settings)
    path = tmp_path / SECRET_FILE
    assert len(first) == 64 and path.read_text().strip() == first.decode()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == [SECRET_FILE]
    assert load_secret(settings) == first


@pytest.mark.parametrize("content", [b"", b"short\n", b"\xff" * 64, b"a" * 20 + b" " + b"b" * 20])
def test_a_damaged_key_file_stops_the_start_with_what_to_do(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / SECRET_FILE
    path.write_bytes(content)
    with pytest.raises(UserFacingError) as caught:
        load_secret(Settings(data_dir=tmp_path))
    message = str(caught.value)
    assert str(path) in message and "damaged" in message and "Restore it from a backup" in message
    assert "delete it" in message and "new identity" in message
    assert path.read_bytes() == content  # never replaced behind the owner's back


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
    def page(request: Request) -> dict[str, str]:
        return {"page": "ok", **request.cookies}

    @app.post("/gradio_api/queue/join")
    def join(request: Request) -> dict[str, str]:
        return dict(request.cookies)

    @app.get("/assets/app.js")
    def asset(request: Request) -> Response:
        return Response("js", headers={"cache-control": "public, max-age=3600, s-maxage=600"})

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
    for attribute in ("Secure", "SameSite=None", "Partitioned", "HttpOnly"):
        assert attribute in header
    assert "Partitioned" not in set_cookie(client.get("/"))  # plain HTTP: Lax, and CHIPS needs Secure


def test_the_api_gets_no_cookie(client: TestClient) -> None:
    assert set_cookie(client.get("/v1/models")) == ""
    # a header with no identity cookie in it (here a malformed one) earns a new identity
    assert set_cookie(client.get("/", headers={"cookie": "broken=\"; junk"})).startswith(COOKIE_NAME + "=")


@pytest.mark.parametrize("others", [
    'g_state={"i_l":0}',  # a JSON value (Google's sign-in cookie)
    'broken="; junk',  # a stray quote
    "a b=c",  # a space in a name
    "ÿ=1",  # not ASCII
])
def test_a_valid_cookie_after_a_malformed_one_is_kept(client: TestClient, others: str) -> None:
    value = BrowserIdentities(KEY).new_cookie_value()
    response = client.get("/", headers={"cookie": f"{others}; {COOKIE_NAME}={value}".encode("latin-1")})
    assert set_cookie(response) == "" and response.json()[COOKIE_NAME] == value


def test_a_response_that_sets_the_cookie_is_private_to_the_browser(client: TestClient) -> None:
    first = client.get("/")
    assert set_cookie(first) and first.headers["cache-control"] == "private"
    # a cacheable asset fetched first: still cacheable by the browser, never by a shared cache
    client.cookies.clear()
    asset = client.get("/assets/app.js")
    assert set_cookie(asset) and asset.headers["cache-control"] == "private, max-age=3600"
    value = set_cookie(first).split(";")[0].split("=", 1)[1]
    client.cookies.clear()
    kept = client.get("/assets/app.js", headers={"cookie": f"{COOKIE_NAME}={value}"})
    assert set_cookie(kept) == "" and kept.headers["cache-control"] == "public, max-age=3600, s-maxage=600"


HOST = "someone-demo.hf.space"


@pytest.mark.parametrize(("headers", "foreign"), [
    ({"origin": f"https://{HOST}"}, False),
    ({"origin": f"https://{HOST}:443"}, False),
    ({"origin": f"https://{HOST.upper()}"}, False),
    ({"origin": f"https://{HOST}", "sec-fetch-site": "same-origin", "sec-fetch-mode": "cors"}, False),
    ({"sec-fetch-site": "none", "sec-fetch-mode": "navigate"}, False),  # typed into the address bar
    ({"sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate"}, False),  # a link, the Space's iframe
    ({"origin": "https://public.example", "x-forwarded-host": "public.example"}, False),  # behind a proxy
    ({}, False),  # no Origin, no Sec-Fetch-*: not a browser's cross-site request
    ({"origin": "https://evil.example"}, True),
    ({"origin": f"http://{HOST}"}, True),  # another scheme: another origin
    ({"origin": f"http://{HOST}", "x-forwarded-proto": "http"}, True),
    ({"origin": "https://public.example", "x-forwarded-host": "public.example:443"}, False),
    ({"origin": f"https://{HOST}:8443"}, True),
    ({"origin": f"https://{HOST}.evil.example"}, True),
    ({"origin": "null"}, True),
    ({"origin": "https://evil.example", "sec-fetch-site": "cross-site", "sec-fetch-mode": "cors"}, True),
    ({"origin": "https://b.hf.space", "sec-fetch-site": "same-site", "sec-fetch-mode": "cors"}, True),
    ({"sec-fetch-site": "cross-site", "sec-fetch-mode": "no-cors"}, True),
    # Sec-Fetch-Site cannot be set by a page; Origin matching a forged X-Forwarded-Host does not help then
    ({"origin": "https://evil.example", "x-forwarded-host": "evil.example", "sec-fetch-site": "cross-site",
      "sec-fetch-mode": "cors"}, True),
])
def test_which_requests_come_from_another_origin(headers: dict[str, str], foreign: bool) -> None:
    scope = {"type": "http", "method": "POST", "scheme": "https", "headers": [(b"host", HOST.encode())]
             + [(k.encode(), v.encode()) for k, v in headers.items()]}
    if headers.get("sec-fetch-mode") == "navigate" or not headers:
        scope["method"] = "GET"
    assert cross_origin(scope) is foreign


def test_a_cross_site_form_post_is_foreign_though_it_navigates() -> None:
    scope = {"type": "http", "method": "POST", "headers": [(b"host", HOST.encode()), (b"sec-fetch-site", b"cross-site"),
                                                            (b"sec-fetch-mode", b"navigate")]}
    assert cross_origin(scope)


def test_another_origin_acts_without_the_cookie_and_gets_none(client: TestClient) -> None:
    value = BrowserIdentities(KEY).new_cookie_value()
    cookies = f"theme=dark; {COOKIE_NAME}={value}; lang=en"
    same = client.post("/gradio_api/queue/join", headers={"cookie": cookies, "origin": "http://testserver"})
    assert same.json() == {"theme": "dark", COOKIE_NAME: value, "lang": "en"} and set_cookie(same) == ""
    for headers in ({"origin": "https://evil.example"},
                    {"sec-fetch-site": "cross-site", "sec-fetch-mode": "cors", "origin": "https://evil.example"}):
        foreign = client.post("/gradio_api/queue/join", headers={"cookie": cookies, **headers})
        assert foreign.json() == {"theme": "dark", "lang": "en"}  # only the identity cookie is gone
        assert set_cookie(foreign) == ""  # and none replaces the visitor's own
    only = client.post("/gradio_api/queue/join", headers={"cookie": f"{COOKIE_NAME}={value}",
                                                         "origin": "https://evil.example"})
    assert only.json() == {} and set_cookie(only) == ""
