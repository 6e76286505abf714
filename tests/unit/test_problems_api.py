"""``GET /v1/internal/problems``: anyone allowed to use the API reads the list; on a reachable server
without a key, ``?refresh=true`` (a rescan of every folder, extensions imported) is refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.support.ui_context import ui_context
from webui.problems import Problem
from webui.server import create_api_app


def client_for(tmp_path: Path, **settings: object) -> Iterator[TestClient]:
    with ui_context(tmp_path / "data", ["ok"], **settings) as ctx:
        ctx.problems.report("presets", [Problem.of("preset", tmp_path / "bad.yaml", "not YAML")])
        with TestClient(create_api_app(ctx)) as client:
            yield client


@pytest.fixture
def reachable(tmp_path: Path, fake_backend: None) -> Iterator[TestClient]:
    yield from client_for(tmp_path, listen=True)


@pytest.fixture
def local(tmp_path: Path, fake_backend: None) -> Iterator[TestClient]:
    yield from client_for(tmp_path)


def test_reachable_server_lists_but_refuses_a_keyless_refresh(reachable: TestClient) -> None:
    listed = reachable.get("/v1/internal/problems")
    assert listed.status_code == 200 and [p["kind"] for p in listed.json()] == ["preset"]
    refused = reachable.get("/v1/internal/problems", params={"refresh": "true"})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "refresh_not_allowed"


def test_local_server_refreshes(local: TestClient) -> None:
    refreshed = local.get("/v1/internal/problems", params={"refresh": "true"})
    assert refreshed.status_code == 200
    assert all(p["kind"] != "preset" or "bad.yaml" not in p["file"] for p in refreshed.json())
