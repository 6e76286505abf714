"""The sidebar's "Backup: everything" handlers (webui/ui/backup.py), called directly: what the web UI
exports and imports without accounts (everything) and with them (the account's own, no settings files)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import pytest

from tests.support.ui_context import ui_context, user
from webui.chat.character import Character
from webui.ui import backup
from webui.ui.session import current_user_id


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
        assert status.startswith("- Imported 1 chats and 1 personas;") and "settings.yaml" not in status
        assert (ctx.settings.data_dir / "settings.yaml").read_text() == "user_name: Robin\n"
        assert ctx.characters.get("Mira").description == "Keeps the greenhouse."
        with pytest.raises(gr.Error, match="not a zip archive"):
            backup.import_everything(ctx, str(ctx.settings.data_dir / "settings.yaml"), None)


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
        uid = current_user_id(ctx, tab)
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


def zf_read(path: str, name: str) -> bytes:
    with zipfile.ZipFile(path) as zf:
        return zf.read(name)
