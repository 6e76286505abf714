"""API keys, accounts and capacity against the real server: 401 shapes, keys mapped to accounts,
private histories through the API, 429 past --max-queue."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.support.server_utils import RunningApp, served_app

pytestmark = pytest.mark.slow

CHAT = {"messages": [{"role": "user", "content": "Hello"}], "max_tokens": 3}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    yield from served_app(
        tmp_path_factory, "auth",
        "--api-key", "sk-shared", "--api-key", "alice:sk-alice", "--api-key", "bob:sk-bob",
        "--auth", "alice:wonderland", "--auth", "bob:builder", "--max-queue", "1",
    )


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_requests_without_a_valid_key_get_401(app: RunningApp) -> None:
    for headers in ({}, bearer("sk-wrong"), {"Authorization": "Basic bm9ib2R5Om5vcGU="}):
        for method, path in (("GET", "/v1/models"), ("POST", "/v1/chat/completions"), ("GET", "/api/tags")):
            r = httpx.request(method, f"{app.url}{path}", headers=headers, json=CHAT)
            assert r.status_code == 401, (path, headers, r.text)
            err = r.json()["error"]
            if path.startswith("/api/"):  # Ollama's error shape
                assert isinstance(err, str) and err, err
            else:
                assert err["type"] == "authentication_error" and err["message"]
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{app.url}/v1", api_key="sk-wrong", max_retries=0).models.list()


def test_keys_and_basic_auth_work(app: RunningApp) -> None:
    client = openai.OpenAI(base_url=f"{app.url}/v1", api_key="sk-shared", max_retries=0, timeout=60)
    assert client.models.list().data
    r = httpx.post(f"{app.url}/v1/chat/completions", json=CHAT, auth=("bob", "builder"), timeout=60)
    assert r.status_code == 200, r.text


def test_saved_api_chats_are_private_to_the_keys_account(app: RunningApp) -> None:
    alice = openai.OpenAI(base_url=f"{app.url}/v1", api_key="sk-alice", max_retries=0, timeout=60)
    raw = alice.chat.completions.with_raw_response.create(
        model="default", messages=[{"role": "user", "content": "Alice's secret"}], max_tokens=3,
        extra_body={"save": True})
    conv_id = int(raw.headers["x-conversation-id"])
    cont = {**CHAT, "conversation_id": conv_id}
    assert (
        httpx.post(f"{app.url}/v1/chat/completions", json=cont, headers=bearer("sk-alice"), timeout=60).status_code
        == 200
    )
    # Bob (by key or by password) and the shared key cannot continue -- or even see -- Alice's chat.
    for headers, auth in ((bearer("sk-bob"), None), (bearer("sk-shared"), None), ({}, ("bob", "builder"))):
        r = httpx.post(f"{app.url}/v1/chat/completions", json=cont, headers=headers, auth=auth, timeout=60)
        assert r.status_code == 404 and r.json()["error"]["code"] == "conversation_not_found", r.text
    # Alice's password works like her key.
    r = httpx.post(f"{app.url}/v1/chat/completions", json=cont, auth=("alice", "wonderland"), timeout=60)
    assert r.status_code == 200


def test_past_capacity_answers_429_and_keeps_serving(app: RunningApp) -> None:
    long = {"messages": [{"role": "user", "content": "Write a long story."}], "max_tokens": 400, "stream": True}
    started = threading.Event()

    def hold() -> None:
        with httpx.stream(
            "POST", f"{app.url}/v1/chat/completions", json=long, headers=bearer("sk-shared"), timeout=60
        ) as r:
            for i, _ in enumerate(r.iter_lines()):
                if i == 2:
                    started.set()

    t = threading.Thread(target=hold)
    t.start()
    assert started.wait(60)
    r = httpx.post(f"{app.url}/v1/chat/completions", json=CHAT, headers=bearer("sk-shared"), timeout=60)
    assert r.status_code == 429, r.text
    assert r.json()["error"]["code"] == "queue_full" and r.headers["retry-after"]
    t.join()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        r = httpx.post(f"{app.url}/v1/chat/completions", json=CHAT, headers=bearer("sk-shared"), timeout=60)
        if r.status_code == 200:
            break
        time.sleep(0.5)
    assert r.status_code == 200


def test_the_ui_asks_for_a_login(app: RunningApp) -> None:
    page = httpx.get(f"{app.url}/", follow_redirects=True)
    assert page.status_code == 200
    config = httpx.get(f"{app.url}/config")
    assert config.status_code in (401, 403) or "auth_required" in config.text
    ok = httpx.post(f"{app.url}/login", data={"username": "alice", "password": "wonderland"})
    bad = httpx.post(f"{app.url}/login", data={"username": "alice", "password": "nope"})
    assert ok.status_code == 200 and bad.status_code == 400
