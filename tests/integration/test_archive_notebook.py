"""The Notebook's saved prompts in the export/import archive, on the real database: exported per owner
like chats, restored with the personas' rule (a name the owner already uses keeps theirs), and an
archive made before the Notebook (format 1, no notebook.json) still restores."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from webui.archive.data import DataDir
from webui.archive.export import ExportScope, export_archive
from webui.archive.layout import ArchiveProblem
from webui.archive.restore import ImportOptions, import_archive
from webui.config import REPO_ROOT, load_settings

pytestmark = pytest.mark.slow


def open_dir(data_dir: Path) -> DataDir:
    return DataDir.open(load_settings({"data_dir": str(data_dir)}, environ={}))


def prompts_of(data_dir: Path) -> dict[str | None, list[tuple[str, str]]]:
    """Each owner's saved prompts as the Notebook lists them (the most recently saved first)."""
    dd = open_dir(data_dir)
    try:
        assert dd.notebook is not None
        owners = [(None, None), *sorted(dd.chats.users().items())]
        return {name: [(p.name, p.text) for p in dd.notebook.list(uid)] for name, uid in owners}
    finally:
        dd.close()


def build_source(data_dir: Path) -> None:
    dd = open_dir(data_dir)
    try:
        assert dd.notebook is not None
        dd.notebook.create("Story opening", "Once upon a time")
        poem = dd.notebook.create("Poem", "Roses are")
        dd.notebook.save_text(poem.id, "Roses are red,\nviolets")  # saved last: listed first
        dd.chats.create_conversation("A chat", "Assistant")
        alice = dd.chats.ensure_user("alice")
        dd.notebook.create("Alice's draft", "Dear diary,", alice)
    finally:
        dd.close()


def exported_source(tmp_path: Path) -> Path:
    """``build_source`` in tmp_path/source, exported whole to tmp_path/backup.zip (returned)."""
    source, archive = tmp_path / "source", tmp_path / "backup.zip"
    build_source(source)
    dd = open_dir(source)
    try:
        export_archive(dd, archive)
    finally:
        dd.close()
    return archive


def test_prompts_round_trip_per_owner_in_their_order(tmp_path: Path) -> None:
    source, fresh, archive = tmp_path / "source", tmp_path / "fresh", tmp_path / "backup.zip"
    build_source(source)
    before = prompts_of(source)
    assert before[None] == [("Poem", "Roses are red,\nviolets"), ("Story opening", "Once upon a time")]
    r = subprocess.run([sys.executable, str(REPO_ROOT / "app.py"), "export", str(archive), "--data-dir", str(source)],
                       capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert r.returncode == 0 and "3 saved Notebook prompts" in r.stdout, r.stdout + r.stderr
    with zipfile.ZipFile(archive) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        entries = json.loads(zf.read("notebook.json"))
    assert manifest["version"] == 2 and manifest["counts"]["notebook_prompts"] == 3
    assert [(e["owner"], e["name"]) for e in entries] == [(None, "Story opening"), (None, "Poem"),
                                                          ("alice", "Alice's draft")]

    target = open_dir(fresh)
    try:
        report = import_archive(archive, target)
    finally:
        target.close()
    assert report.notebook_prompts == 3 and "Imported 3 saved Notebook prompts." in report.lines()
    assert prompts_of(fresh) == before


def test_import_keeps_your_prompt_of_the_same_name_and_can_put_all_in_one_account(tmp_path: Path) -> None:
    target_dir, archive = tmp_path / "target", exported_source(tmp_path)
    target = open_dir(target_dir)
    try:
        assert target.notebook is not None
        target.notebook.create("Poem", "My own poem")  # same name, other text: yours is kept
        target.notebook.create("Story opening", "Once upon a time")  # identical: already there
        report = import_archive(archive, target)
        assert report.notebook_prompts == 1  # Alice's draft only
        assert "saved prompt 'Poem'" in report.kept and "saved prompt 'Story opening'" in report.same
        assert any("saved prompt 'Poem'" in line for line in report.lines())
        # --user carol: every prompt goes to that account, once; a second import adds nothing new
        to_carol = ImportOptions(keep_owners=False, owner="carol")
        assert import_archive(archive, target, to_carol).notebook_prompts == 3
        again = import_archive(archive, target, to_carol)
        assert again.notebook_prompts == 0 and len([x for x in again.same if "saved prompt" in x]) == 3
    finally:
        target.close()
    after = prompts_of(target_dir)
    assert dict(after[None])["Poem"] == "My own poem" and len(after[None]) == 2
    assert after["alice"] == [("Alice's draft", "Dear diary,")]
    assert sorted(name for name, _ in after["carol"]) == ["Alice's draft", "Poem", "Story opening"]


def test_a_users_export_holds_only_their_prompts(tmp_path: Path) -> None:
    source, archive = tmp_path / "source", tmp_path / "alice.zip"
    build_source(source)
    dd = open_dir(source)
    try:
        export_archive(dd, archive, ExportScope(owners=("alice",)))
        export_archive(dd, tmp_path / "browser.zip", ExportScope(owners=("alice",), without_owners=True))
    finally:
        dd.close()
    with zipfile.ZipFile(archive) as zf:
        entries = json.loads(zf.read("notebook.json"))
    assert [(e["owner"], e["name"], e["text"]) for e in entries] == [("alice", "Alice's draft", "Dear diary,")]
    with zipfile.ZipFile(tmp_path / "browser.zip") as zf:  # a browser's history: imports as the importer's own
        assert [(e["owner"], e["name"]) for e in json.loads(zf.read("notebook.json"))] == [(None, "Alice's draft")]


def without_notebook(archive: Path, dest: Path) -> Path:
    """``archive`` as the app wrote it before the Notebook: format 1, no notebook.json."""
    with zipfile.ZipFile(archive) as src, zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as out:
        manifest = json.loads(src.read("manifest.json"))
        for name in src.namelist():
            if name not in ("manifest.json", "notebook.json"):
                out.writestr(name, src.read(name))
        manifest["version"] = 1
        manifest["files"].pop("notebook.json")
        manifest["counts"].pop("notebook_prompts")
        out.writestr("manifest.json", json.dumps(manifest))
    return dest


def test_an_archive_from_before_the_notebook_still_restores(tmp_path: Path) -> None:
    old = without_notebook(exported_source(tmp_path), tmp_path / "old.zip")
    target = open_dir(tmp_path / "target")
    try:
        report = import_archive(old, target)
    finally:
        target.close()
    assert report.chats == 1 and report.notebook_prompts == 0
    assert not any("Notebook" in line for line in report.lines())
    assert prompts_of(tmp_path / "target") == {None: []}


@pytest.mark.parametrize("notebook", [b"not json", b'{"name": "x"}', b'[{"name": "", "text": "x"}]',
                                      b'[{"name": "x", "text": 5}]', b'[{"name": "x", "owner": 7}]'])
def test_a_malformed_notebook_json_is_refused_and_nothing_is_imported(tmp_path: Path, notebook: bytes) -> None:
    chat = json.dumps({"format": "webui-chat", "title": "t", "messages": [{"role": "user", "versions": ["x"]}]})
    members = {"chats/000001.json": chat.encode(), "notebook.json": notebook}
    files = {n: {"size": len(d), "sha256": hashlib.sha256(d).hexdigest()} for n, d in members.items()}
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        zf.writestr("manifest.json", json.dumps({"format": "webui-archive", "version": 2, "files": files}))
    target = open_dir(tmp_path / "target")
    try:
        with pytest.raises(ArchiveProblem, match="notebook.json.*nothing was imported"):
            import_archive(archive, target)
        assert target.chats.list_conversations() == []
    finally:
        target.close()
