"""Shared fixtures: fake engine, real database in a temp dir, tiny real models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from webui.privacy import apply_private_defaults

apply_private_defaults()

from webui.chat.characters import CharacterLibrary  # noqa: E402
from webui.chat.service import ChatService  # noqa: E402
from webui.config import REPO_ROOT  # noqa: E402
from webui.engine import registry  # noqa: E402
from webui.engine.engine import Engine  # noqa: E402
from webui.engine.protocol import ModelSpec  # noqa: E402
from webui.storage.db import open_database, sqlite_url  # noqa: E402
from webui.storage.repository import ChatRepository  # noqa: E402


@pytest.fixture
def fake_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register the fake backend (tests/support/fakes.py) as loader "fake" for one test, through the
    registry like any backend: loader_names, options and the parameter support table then know it."""
    monkeypatch.setitem(registry.BACKENDS, "fake", "tests.support.fakes:FakeBackend")


@pytest.fixture
def make_engine(fake_backend: None) -> Iterator:
    engines: list[Engine] = []

    def make(tokens: list[str] | None = None, delay: float = 0.0, context_length: int = 4096) -> Engine:
        engine = Engine()
        options = {"delay": delay, "context_length": context_length}
        if tokens is not None:
            options["tokens"] = tokens
        engine.load(ModelSpec(path="fake", loader="fake", options=options, display_name="fake"))
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.shutdown()


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """The database the storage fixtures open: SQLite in the test's temp dir. Modules that run the
    same tests on PostgreSQL override it (tests/integration/test_postgres.py)."""
    return sqlite_url(tmp_path)


@pytest.fixture
def repo(database_url: str) -> ChatRepository:
    return ChatRepository(open_database(database_url))


@pytest.fixture
def characters() -> CharacterLibrary:
    return CharacterLibrary([REPO_ROOT / "characters"])


@pytest.fixture
def chat_service(make_engine, repo: ChatRepository, characters: CharacterLibrary):  # type: ignore[no-untyped-def]
    def make(**kwargs) -> ChatService:  # type: ignore[no-untyped-def]
        return ChatService(make_engine(**kwargs), repo, characters)

    return make


@pytest.fixture(scope="session")
def embedded_gguf() -> Path:
    from webui.engine.catalog import embedded_model_path

    return embedded_model_path()


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory: pytest.TempPathFactory, embedded_gguf: Path) -> Path:
    """A tiny random Llama (hidden 64, 2 layers) saved with SmolLM2's real tokenizer."""
    from tests.support.tiny_models import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"), embedded_gguf)


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    """A real Debian chromium driven by Playwright, one per test module."""
    from playwright.sync_api import sync_playwright

    from tests.support.browser_utils import CHROMIUM, CHROMIUM_ARGS

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (see .ci/run)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by its folder (unit, integration, browser), so ``-m "not browser"`` and the like work."""
    for item in items:
        folder = Path(str(item.fspath)).parent.name
        if folder in ("unit", "integration", "browser"):
            item.add_marker(getattr(pytest.mark, folder))
