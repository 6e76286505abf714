"""Start-up never fails because of a user's file: the real app (``python app.py``) on a data dir with
one bad file of each kind starts, loads the good ones, and lists each bad one with its file at
``GET /v1/internal/problems`` (and in its log, one warning line each)."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.server_utils import RunningApp, start_app
from webui.chat.cards import export_card_png
from webui.chat.character import Character

pytestmark = pytest.mark.slow

BROKEN_SETTINGS = "{not json"


def alias_bomb(levels: int = 9) -> str:
    """A few hundred bytes of YAML that expand to 9**levels nodes when walked."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(textwrap.dedent(content), encoding="utf-8")
    return path


def seed(data: Path) -> dict[str, Path]:
    """Good files of each kind, and the bad ones (returned, by what they stand for)."""
    write(data / "characters" / "Goodie.yaml", "name: Goodie\ncontext: Goodie keeps a lighthouse.\n")
    write(data / "presets" / "Good one.yaml", "temperature: 0.5\n")
    write(data / "instruction-templates" / "good.jinja",
          "{% for m in messages %}<<{{ m.role }}>> {{ m.content }}\n{% endfor %}<<assistant>>")
    write(data / "extensions" / "fine" / "script.py", """
        from pathlib import Path
        params = {"display_name": "Fine", "level": 3}

        def setup():
            (Path(__file__).parent / "setup-ran").write_text("yes")
        """)
    card = export_card_png(Character(name="Truncated", description="cut short"))
    bad = {
        "list spec card": write(data / "characters" / "list-spec.json",
                                '{"spec": ["chara_card_v2"], "data": {"name": "Listy"}}'),
        "truncated card": write(data / "characters" / "truncated.png", card[: len(card) // 2]),
        "alias bomb preset": write(data / "presets" / "bomb.yaml", alias_bomb()),
        "broken template": write(data / "instruction-templates" / "broken.jinja",
                                 "{% for m in messages %}{{ m.content }}"),
        "extension raising at import": write(data / "extensions" / "boom" / "script.py",
                                             "raise RuntimeError('boom at import')\n"),
        "unmet requirements": write(data / "extensions" / "needy" / "requirements.txt",
                                    "surely-not-installed-package-xyz>=1.0\n"),
        "model settings": write(data / "model-settings.json", BROKEN_SETTINGS),
        "extension settings": write(data / "extensions.json", BROKEN_SETTINGS),
        "junk model file": write(data / "models" / "junk.gguf", os.urandom(64).replace(b"GGUF", b"XXXX")),
    }
    write(data / "extensions" / "needy" / "script.py", "params = {'display_name': 'Needy'}\n")
    write(data / "models" / "notes.txt", "not a model, and not a problem\n")
    return bad


@pytest.fixture(scope="module")
def started(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningApp, dict[str, Path]]]:
    data = tmp_path_factory.mktemp("problems") / "data"
    bad = seed(data)
    app = start_app(data, "--extensions", "fine", "nosuch", "boom")  # a disabled extension is never imported
    try:
        yield app, bad
    finally:
        app.stop()


def problems(app: RunningApp, **params: str) -> list[dict[str, str]]:
    response = httpx.get(f"{app.url}/v1/internal/problems", params=params, timeout=120)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_app_starts_and_lists_each_bad_file_with_its_file(started: tuple[RunningApp, dict[str, Path]]) -> None:
    app, bad = started
    listed = problems(app)
    by_file = {p["file"]: p for p in listed}
    for what, path in bad.items():
        assert str(path) in by_file, f"{what} ({path}) is not listed: {listed}"
        assert by_file[str(path)]["reason"].strip(), what
    kinds = {by_file[str(path)]["kind"] for path in bad.values()}
    assert kinds == {"character", "preset", "instruction template", "extension", "model settings",
                     "extension settings", "model file"}
    assert "boom at import" in by_file[str(bad["extension raising at import"])]["reason"]
    assert "surely-not-installed-package-xyz" in by_file[str(bad["unmet requirements"])]["reason"]
    assert "spec" in by_file[str(bad["list spec card"])]["reason"]
    # The extension asked for by name that does not exist: listed, with who asked for it.
    assert any(p["file"] == "--extensions" and "nosuch" in p["reason"] for p in listed), listed
    # Nothing good is listed; the notes file in the models folder is not a model, so not a problem.
    files = " ".join(by_file)
    for good in ("Goodie.yaml", "Good one.yaml", "good.jinja", "fine", "notes.txt"):
        assert good not in files
    assert len(listed) == len(bad) + 1


def test_each_skipped_file_is_one_warning_line_in_the_log(started: tuple[RunningApp, dict[str, Path]]) -> None:
    app, bad = started
    log = app.log()
    for what, path in bad.items():
        lines = [line for line in log.splitlines() if "WARNING" in line and "skipped" in line and str(path) in line]
        assert len(lines) == 1, f"{what}: {lines}"
    assert "Traceback" not in log


def test_the_good_files_load(started: tuple[RunningApp, dict[str, Path]]) -> None:
    app, bad = started
    body = {"messages": [{"role": "user", "content": "Hello"}], "character": "Goodie",
            "instruction_template": "good"}
    response = httpx.post(f"{app.url}/v1/internal/chat-prompt", json=body, timeout=60)
    assert response.status_code == 200, response.text
    prompt = response.json()["prompt"]
    assert "Goodie keeps a lighthouse." in prompt and "<<user>> Hello" in prompt
    assert (app.data_dir / "extensions" / "fine" / "setup-ran").read_text() == "yes"  # enabled: setup() ran


def test_broken_settings_files_are_left_for_the_user_to_fix(started: tuple[RunningApp, dict[str, Path]]) -> None:
    app, bad = started  # the model loaded and --extensions asked for a save: neither overwrote them
    assert bad["model settings"].read_text() == BROKEN_SETTINGS
    assert bad["extension settings"].read_text() == BROKEN_SETTINGS


def test_a_refresh_follows_the_files(started: tuple[RunningApp, dict[str, Path]]) -> None:
    app, bad = started
    preset = bad["alias bomb preset"]
    preset.write_text("temperature: 0.7\n", encoding="utf-8")  # fixed
    try:
        after = {p["file"] for p in problems(app, refresh="true")}
        assert str(preset) not in after
        assert str(bad["truncated card"]) in after and str(bad["extension raising at import"]) in after
    finally:
        preset.write_text(alias_bomb(), encoding="utf-8")
    assert str(preset) in {p["file"] for p in problems(app, refresh="true")}
