"""Export everything, import everything (``webui/archive``): `python app.py export/import` as a user
types them, the round trip into a fresh data dir, an import into a data dir that already has content,
and the archives an import must refuse (damaged, foreign, unsafe names, zip bombs)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image

from webui.archive.data import DataDir
from webui.archive.export import ExportScope, export_archive
from webui.archive.layout import ArchiveLimits, ArchiveProblem
from webui.archive.restore import ImportOptions, import_archive
from webui.chat.character import Character
from webui.chat.characters import CharacterLibrary
from webui.chat.instruct import InstructionTemplates
from webui.config import REPO_ROOT, load_settings
from webui.engine.model_settings import ModelSettingsStore
from webui.generation.params import GenerationParams
from webui.generation.presets import PresetLibrary
from webui.plugins.store import JsonFileStore

SETTINGS_YAML = "# my settings\nuser_name: Robin\nport: 7861\n"
TEMPLATE = "{% for m in messages %}<{{ m.role }}>{{ m.content }}\n{% endfor %}<assistant>"
CONTENT = ("characters", "presets", "instruction-templates", "loras", "models")
JSON_FILES = ("model-settings.json", "extensions.json")


def app_py(*args: str, data_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO_ROOT / "app.py"), *args, "--data-dir", str(data_dir)],
                          capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)


def png(color: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (3, 2), color).save(out, "PNG")
    return out.getvalue()


def open_dir(data_dir: Path) -> DataDir:
    return DataDir.open(load_settings({"data_dir": str(data_dir)}, environ={}))


def add_chat(dd: DataDir, title: str, turns: list[tuple[str, list[str], int]], user_id: int | None = None,
             character: str = "Mira", settings: dict[str, Any] | None = None) -> None:
    """A chat whose messages have the given versions, the active one chosen by index."""
    conv = dd.chats.create_conversation(title, character, user_id, settings)
    for role, versions, active in turns:
        msg = dd.chats.add_message(conv.id, role, versions[0], user_id)
        for text in versions[1:]:
            version_id = dd.chats.add_version(msg.id, user_id)
            dd.chats.update_version(version_id, text, True)
        dd.chats.set_active_version(msg.id, active, user_id)


def build_source(data_dir: Path) -> None:
    """A data dir with something of every kind an archive carries."""
    dd = open_dir(data_dir)
    try:
        add_chat(dd, "Greenhouse", [
            ("assistant", ["Welcome to the greenhouse."], 0),
            ("user", ["What grows here?", "What grows here in winter?"], 1),
            ("assistant", ["Tomatoes.", "Kale and leeks.", "Mostly moss."], 1),
        ], settings={"persona": "Robin", "mode": "instruct", "template": "Plain", "greeting": 0,
                     "params": {"temperature": 0.5, "max_new_tokens": 64}})
        add_chat(dd, "Second", [("user", ["hello"], 0), ("assistant", ["hi", "hey"], 0)], character="")
        alice = dd.chats.ensure_user("alice")
        add_chat(dd, "Alice's chat", [("user", ["mine"], 0), ("assistant", ["yours", "ours"], 1)], alice)
        dd.personas.save("Robin", "A gardener.", png((200, 10, 10)))
        dd.personas.save("Sky", "No picture.")
        dd.personas.save("Ally", "Alice's persona.", png((1, 2, 3)), alice)
    finally:
        dd.close()
    CharacterLibrary([data_dir / "characters"]).save(
        Character(name="Mira", description="Keeps the greenhouse.", avatar_png=png((10, 200, 30))))
    PresetLibrary([data_dir / "presets"]).save("Warm", GenerationParams(temperature=0.5, top_k=20))
    (data_dir / "instruction-templates").mkdir()
    (data_dir / "instruction-templates" / "Plain.jinja").write_text(TEMPLATE, encoding="utf-8")
    (data_dir / "settings.yaml").write_text(SETTINGS_YAML, encoding="utf-8")
    ModelSettingsStore.in_data_dir(data_dir).put("/srv/models/big.gguf", "llama.cpp", {"n_ctx": 4096})
    store = JsonFileStore(data_dir / "extensions.json")
    store.save("@enabled", {"order": ["example"]})
    store.save("example", {"greeting": "Hi", "level": 3})
    (data_dir / "loras" / "kind-tone").mkdir(parents=True)
    (data_dir / "loras" / "kind-tone" / "adapter_config.json").write_text('{"r": 8, "base": "SmolLM2"}')
    (data_dir / "loras" / "kind-tone" / "weights.safetensors").write_bytes(b"\0" * 64)  # weights: not exported


def snapshot(data_dir: Path) -> dict[str, Any]:
    """Everything a user sees of a data dir: chats (every version, dates, order) and personas per
    owner, the library files and settings, and how the app reads them back."""
    dd = open_dir(data_dir)
    try:
        owners = [(None, None), *sorted(dd.chats.users().items())]
        chats = {name: [dd.chats.export_conversation(c.id, uid) for c in dd.chats.list_conversations(uid)]
                 for name, uid in owners}
        personas = {name: [(p.name, p.description, p.avatar) for p in dd.personas.list(uid)] for name, uid in owners}
    finally:
        dd.close()
    files = {p.relative_to(data_dir).as_posix(): p.read_bytes() for p in sorted(data_dir.rglob("*"))
             if p.is_file() and (p.relative_to(data_dir).parts[0] in CONTENT or p.name == "settings.yaml")}
    characters = CharacterLibrary([data_dir / "characters"])
    templates = InstructionTemplates(data_dir / "instruction-templates")
    settings = load_settings({"data_dir": str(data_dir)}, environ={})
    return {
        "chats": chats, "personas": personas, "files": files,
        "json": {name: json.loads((data_dir / name).read_text()) for name in JSON_FILES if (data_dir / name).exists()},
        "characters": {n: (characters.get(n).description, characters.get(n).avatar_png) for n in characters.names()},
        "presets": {n: PresetLibrary([data_dir / "presets"]).values(n) for n in ("Warm",)
                    if (data_dir / "presets" / f"{n}.yaml").exists()},
        "templates": {n: templates.render(n, [{"role": "user", "content": "x"}]) for n in templates.names()},
        "settings": (settings.user_name, settings.port),
    }


def test_round_trip_into_a_fresh_data_dir_gives_the_same_chats_and_settings(tmp_path: Path) -> None:
    source, fresh, archive = tmp_path / "source", tmp_path / "fresh", tmp_path / "backup.zip"
    build_source(source)
    r = app_py("export", str(archive), data_dir=source)
    assert r.returncode == 0, r.stderr
    assert ("3 chats (7 messages, 12 versions), 3 personas, 0 saved Notebook prompts, 2 character files, "
            "1 presets") in r.stdout
    assert "1 LoRA metadata files, 3 settings files" in r.stdout and "not copied" in r.stdout

    with zipfile.ZipFile(archive) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        names = set(zf.namelist())
    assert (manifest["format"], manifest["version"], manifest["app_version"]) == ("webui-archive", 2, "0.1.0")
    assert manifest["created"].endswith("Z") and manifest["users"] == "all" and manifest["accounts"] == ["alice"]
    assert manifest["counts"] == {
        "chats": 3, "messages": 7, "message_versions": 12, "personas": 3, "notebook_prompts": 0, "character_files": 2,
        "presets": 1, "instruction_templates": 1, "loras": 1, "settings_files": 3, "models_listed": 1,
        "model_files_copied": 0,
    }
    assert manifest["models"] == [
        {"name": "big.gguf", "path": "/srv/models/big.gguf", "loader": "llama.cpp", "copied": False}]
    assert "loras/kind-tone/adapter_config.json" in names and "loras/kind-tone/weights.safetensors" not in names
    assert set(manifest["files"]) == names - {"manifest.json"}

    r = app_py("import", str(archive), data_dir=fresh)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Imported 3 chats and 3 personas; 8 files added.")
    before, after = snapshot(source), snapshot(fresh)
    assert after["files"].pop("loras/kind-tone/weights.safetensors", None) is None
    before["files"].pop("loras/kind-tone/weights.safetensors")
    assert after == before
    # and what that comparison covered
    greenhouse = after["chats"][None][1]
    assert [(m["role"], m["versions"], m["active_version"]) for m in greenhouse["messages"]] == [
        ("assistant", ["Welcome to the greenhouse."], 0),
        ("user", ["What grows here?", "What grows here in winter?"], 1),
        ("assistant", ["Tomatoes.", "Kale and leeks.", "Mostly moss."], 1)]
    assert greenhouse["settings"] == {"persona": "Robin", "mode": "instruct", "template": "Plain", "greeting": 0,
                                      "params": {"temperature": 0.5, "max_new_tokens": 64}}
    assert [c["title"] for c in after["chats"][None]] == ["Second", "Greenhouse"]  # newest first, dates kept
    assert [c["title"] for c in after["chats"]["alice"]] == ["Alice's chat"]
    assert after["personas"]["alice"] == [("Ally", "Alice's persona.", png((1, 2, 3)))]
    assert after["characters"]["Mira"] == ("Keeps the greenhouse.", png((10, 200, 30)))
    assert after["presets"] == {"Warm": {"temperature": 0.5, "top_k": 20, "top_p": 0.9}}
    assert after["templates"] == {"Plain": "<user>x\n<assistant>"}
    assert after["settings"] == ("Robin", 7861) and after["files"]["settings.yaml"] == SETTINGS_YAML.encode()
    assert after["json"]["extensions.json"]["example"] == {"greeting": "Hi", "level": 3}


def test_import_into_a_data_dir_with_content_adds_chats_and_keeps_what_is_there(tmp_path: Path) -> None:
    source, target, archive = tmp_path / "source", tmp_path / "target", tmp_path / "backup.zip"
    build_source(source)
    assert app_py("export", str(archive), "--all-users", data_dir=source).returncode == 0
    dd = open_dir(target)
    add_chat(dd, "Already here", [("user", ["old"], 0)])
    dd.personas.save("Robin", "My own Robin.")
    dd.close()
    CharacterLibrary([target / "characters"]).save(Character(name="Mira", description="My Mira."))
    (target / "presets").mkdir()
    (target / "presets" / "Warm.yaml").write_text("temperature: 0.9\n")
    (target / "instruction-templates").mkdir()
    (target / "instruction-templates" / "Plain.jinja").write_text(TEMPLATE)  # identical: counted as there
    (target / "settings.yaml").write_text("port: 9000\n")
    ModelSettingsStore.in_data_dir(target).put("/srv/models/big.gguf", "transformers", {})
    ModelSettingsStore.in_data_dir(target).put("/srv/models/mine.gguf", "llama.cpp", {})
    JsonFileStore(target / "extensions.json").save("other", {"on": True})
    kept_before = {p: (target / p).read_bytes() for p in ("characters/Mira.yaml", "presets/Warm.yaml", "settings.yaml")}

    r = app_py("import", str(archive), data_dir=target)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "Imported 3 chats and 2 personas; 3 files added, 1 already there.",
        "Chats went to the accounts: alice.",
        "Kept yours, skipped the imported one: characters/Mira.yaml, model-settings.json (1 entry of yours), "
        "presets/Warm.yaml, settings.yaml, persona 'Robin'.",
        "Settings take effect when the app is next started.",
    ]

    after = snapshot(target)
    assert sorted(c["title"] for c in after["chats"][None]) == ["Already here", "Greenhouse", "Second"]
    assert [c["title"] for c in after["chats"]["alice"]] == ["Alice's chat"]
    assert {p: (target / p).read_bytes() for p in kept_before} == kept_before  # yours are kept
    assert after["characters"]["Mira"][0] == "My Mira."
    assert after["files"]["characters/Mira.png"] == png((10, 200, 30))  # a file you did not have is added
    assert ("Robin", "My own Robin.", None) in after["personas"][None]
    assert ("Sky", "No picture.", None) in after["personas"][None]
    assert after["json"]["model-settings.json"] == {  # merged entry by entry, yours kept
        "/srv/models/big.gguf": {"loader": "transformers", "options": {}},
        "/srv/models/mine.gguf": {"loader": "llama.cpp", "options": {}}}
    assert after["json"]["extensions.json"] == {
        "other": {"on": True}, "@enabled": {"order": ["example"]}, "example": {"greeting": "Hi", "level": 3}}
    # importing the same archive again adds its chats again; --user puts them all in one account
    r = app_py("import", str(archive), "--user", "carol", data_dir=target)
    assert r.returncode == 0 and r.stdout.startswith("Imported 3 chats and 3 personas; 0 files added,"), r.stdout
    again = snapshot(target)
    assert len(again["chats"][None]) == 3 and len(again["chats"]["alice"]) == 1
    assert sorted(c["title"] for c in again["chats"]["carol"]) == ["Alice's chat", "Greenhouse", "Second"]
    assert [name for name, _, _ in again["personas"]["carol"]] == ["Ally", "Robin", "Sky"]


def test_user_scope_secrets_and_models(tmp_path: Path) -> None:
    source = tmp_path / "source"
    build_source(source)
    (source / "settings.yaml").write_text("user_name: Robin\napi_keys: [sk-secret]\nauth: ['a:pw']\n"
                                          f"remote_api_key: sk-remote\ndatabase_url: sqlite:///{source}/webui.db\n")
    (source / "models" / "tiny").mkdir(parents=True)
    (source / "models" / "tiny.gguf").write_bytes(b"GGUF" + b"\1" * 300)
    (source / "models" / "tiny" / "config.json").write_text("{}")
    (source / "models" / ".partial.gguf").write_bytes(b"x")
    old_key = str((source / "models" / "tiny.gguf").resolve())
    ModelSettingsStore.in_data_dir(source).put(old_key, "llama.cpp", {"n_ctx": 512})
    r = app_py("export", str(tmp_path / "bob.zip"), "--user", "bob", data_dir=source)
    assert r.returncode == 1 and r.stderr == "error: No account named 'bob' in this data dir (accounts: alice).\n"
    dd = open_dir(source)
    try:
        with pytest.raises(ArchiveProblem, match="No account named 'bob'"):
            export_archive(dd, tmp_path / "bob.zip", ExportScope(owners=("bob",)))
        summary = export_archive(dd, tmp_path / "alice.zip", ExportScope(owners=("alice",)), include_models=True)
        with pytest.raises(ArchiveProblem, match="already exists"):
            export_archive(dd, tmp_path / "alice.zip")
    finally:
        dd.close()
    assert (summary.counts["chats"], summary.counts["personas"], summary.counts["model_files_copied"]) == (1, 1, 2)
    assert sorted(summary.left_out) == [
        "settings.yaml: api_keys (API keys)", "settings.yaml: auth (account passwords)",
        "settings.yaml: database_url (where this install stores its chats)",
        "settings.yaml: remote_api_key (an API key)"]
    with zipfile.ZipFile(summary.path) as zf:
        assert yaml.safe_load(zf.read("settings.yaml")) == {"user_name": "Robin"}
        assert b"sk-" not in b"".join(zf.read(n) for n in zf.namelist())
        copied = sorted(n for n in zf.namelist() if n.startswith("models/"))
        assert copied == ["models/tiny.gguf", "models/tiny/config.json"]

    fresh = tmp_path / "fresh"
    target = open_dir(fresh)
    try:
        report = import_archive(summary.path, target, ImportOptions(keep_owners=False, owner=None))
    finally:
        target.close()
    assert report.chats == 1 and not report.owners
    after = snapshot(fresh)
    assert [c["title"] for c in after["chats"][None]] == ["Alice's chat"] and "alice" not in after["chats"]
    assert after["files"]["models/tiny.gguf"] == b"GGUF" + b"\1" * 300
    assert "models/.partial.gguf" not in after["files"]
    # the copied model's saved settings follow it to the new models dir; others keep their path
    assert after["json"]["model-settings.json"] == {
        "/srv/models/big.gguf": {"loader": "llama.cpp", "options": {"n_ctx": 4096}},
        str((fresh / "models" / "tiny.gguf").resolve()): {"loader": "llama.cpp", "options": {"n_ctx": 512}}}


# -- archives an import refuses ---------------------------------------------------------------------
def forged(path: Path, members: dict[str, bytes], *, manifest: dict[str, Any] | None = None,
           compress: int = zipfile.ZIP_DEFLATED) -> Path:
    """A zip holding ``members`` plus a manifest that lists them correctly (unless one is given)."""
    import hashlib

    files = {n: {"size": len(d), "sha256": hashlib.sha256(d).hexdigest()} for n, d in members.items()}
    manifest = manifest or {"format": "webui-archive", "version": 1, "files": files}
    with zipfile.ZipFile(path, "w", compression=compress) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        zf.writestr("manifest.json", json.dumps(manifest))
    return path


CHAT = json.dumps({"format": "webui-chat", "title": "t", "messages": [{"role": "user", "versions": ["x"]}]}).encode()


@pytest.mark.parametrize("name", ["../evil.yaml", "characters/../../evil.yaml", "/etc/evil.yaml",
                                  "characters/..\\..\\evil.yaml", "models/../../evil.gguf", "presets/.hidden.yaml"])
def test_path_traversal_member_names_are_refused_and_nothing_is_written(tmp_path: Path, name: str) -> None:
    archive = forged(tmp_path / "bad.zip", {"chats/000001.json": CHAT, name: b"pwned: true\n"})
    target = tmp_path / "deep" / "target"
    r = app_py("import", str(archive), data_dir=target)
    assert r.returncode == 1 and r.stderr.startswith("error:") and "unsafe member name" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert not list(tmp_path.rglob("evil*")) and snapshot(target)["chats"] == {None: []}


def test_damaged_foreign_and_bomb_archives_are_refused(tmp_path: Path) -> None:
    good = tmp_path / "good.zip"
    build_source(tmp_path / "source")
    assert app_py("export", str(good), data_dir=tmp_path / "source").returncode == 0
    (tmp_path / "half.zip").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    (tmp_path / "text.zip").write_text("not a zip")
    with zipfile.ZipFile(good) as zf, zipfile.ZipFile(tmp_path / "tampered.zip", "w") as out:
        for info in zf.infolist():
            data = zf.read(info)
            out.writestr(info, data.replace(b"Kale", b"Cake") if info.filename.startswith("chats/") else data)
    link = tmp_path / "link.zip"
    with zipfile.ZipFile(link, "w") as zf:
        info = zipfile.ZipInfo("characters/x.png")
        info.external_attr = 0o120777 << 16  # a symlink
        zf.writestr(info, "/etc/passwd")
    cases = {
        "text.zip": "not a zip archive or is damaged",
        "half.zip": "not a zip archive or is damaged",
        "tampered.zip": "does not match its checksum",
        "link.zip": "not a plain file",
        "readme.zip": "not part of an export of this app",
        "other.zip": "not an archive exported by this app",
        "newer.zip": "newer version of the app",
        "unlisted.zip": "is not in its manifest",
        "bomb.zip": "zip bomb",
        "notchat.zip": "chats/000001.json is not a chat",
    }
    forged(tmp_path / "readme.zip", {"README.txt": b"hello"})
    forged(tmp_path / "other.zip", {}, manifest={"format": "something-else", "version": 1, "files": {}})
    forged(tmp_path / "newer.zip", {}, manifest={"format": "webui-archive", "version": 99, "files": {}})
    forged(tmp_path / "unlisted.zip", {"presets/x.yaml": b"a: 1"},
           manifest={"format": "webui-archive", "version": 1, "files": {}})
    forged(tmp_path / "bomb.zip", {"characters/big.yaml": b"\0" * (20 * 2**20)})
    forged(tmp_path / "notchat.zip", {"chats/000001.json": b'{"format": "webui-chat", "messages": 3}'})
    for name, why in cases.items():
        target = open_dir(tmp_path / "target")
        try:
            with pytest.raises(ArchiveProblem, match=why):
                import_archive(tmp_path / name, target)
        finally:
            target.close()
    assert not (tmp_path / "target" / "characters").exists() and snapshot(tmp_path / "target")["chats"] == {None: []}
    # the total cap, with small limits: members each under the per-member cap, together over it
    many = forged(tmp_path / "many.zip", {f"presets/p{i}.yaml": bytes([i]) * 4000 for i in range(5)})
    target = open_dir(tmp_path / "target")
    try:
        with pytest.raises(ArchiveProblem, match="would unpack to"):
            import_archive(many, target, limits=ArchiveLimits(max_member_bytes=5000, max_content_bytes=10_000))
    finally:
        target.close()
    r = app_py("import", str(tmp_path / "half.zip"), data_dir=tmp_path / "target")
    assert r.returncode == 1 and r.stderr.startswith("error: half.zip is not a zip archive")
    assert "Traceback" not in r.stderr


def test_a_member_over_a_mib_is_checked_for_its_compression_ratio(tmp_path: Path) -> None:
    """Not only members over 10 MiB: 2 MiB of zeros packs about 1000:1."""
    archive = forged(tmp_path / "bomb.zip", {"chats/000001.json": CHAT, "presets/p.yaml": b"\0" * (2 * 2**20)})
    target = open_dir(tmp_path / "target")
    try:
        with pytest.raises(ArchiveProblem, match="zip bomb"):
            import_archive(archive, target)
    finally:
        target.close()


@pytest.mark.parametrize("manifest", [
    {"format": "webui-archive", "version": 1, "files": {"chats/000001.json": {"size": "x", "sha256": "y"}}},
    {"format": "webui-archive", "version": 1, "files": {"chats/000001.json": []}},
    {"format": "webui-archive", "version": 1, "files": {}, "counts": []},
    {"format": "webui-archive", "version": 1, "files": {}, "counts": {"model_files_copied": "1"}},
    {"format": "webui-archive", "version": 1, "files": {}, "models": "x", "models_dir": "/m"},
    {"format": "webui-archive", "version": 1, "files": {}, "models_dir": 3},
    {"format": "webui-archive", "version": 1, "files": []},
])
def test_a_hand_made_manifest_of_the_wrong_shape_is_refused_cleanly(tmp_path: Path, manifest: dict) -> None:
    archive = forged(tmp_path / "odd.zip", {"chats/000001.json": CHAT}, manifest=manifest)
    target = open_dir(tmp_path / "target")
    try:
        with pytest.raises(ArchiveProblem, match="manifest"):
            import_archive(archive, target)
    finally:
        target.close()
    assert snapshot(tmp_path / "target")["chats"] == {None: []}


EVIL_SETTINGS = {
    "user_name": "Eve", "port": 7999, "n_ctx": 2048, "threads": "many",  # threads: not a number, left out
    "database_url": "postgresql://evil@attacker/db", "auth_file": "/tmp/evil-passwords", "auth": ["eve:pw"],
    "api_keys": ["sk-evil"], "remote_api_key": "sk-evil", "listen": True, "host": "0.0.0.0",
    "model": "http://attacker.example/v1", "loader": "remote", "models_dir": "/tmp/evil-models",
    "characters_dirs": ["/etc"], "extensions": ["example"], "trust_remote_code": True, "max_request_mb": 9999,
    "session_secret": "known", "not_a_setting": 1,
}


def test_import_writes_only_harmless_settings(tmp_path: Path) -> None:
    """An archive decides nothing about where chats go, who connects or what runs: not from the CLI either."""
    from webui.archive.layout import IMPORTABLE_SETTINGS
    from webui.config import declared_settings

    security = {"database_url", "auth", "auth_file", "api_keys", "remote_api_key", "listen", "host",
                "session_secret", "model", "loader", "models_dir", "trust_remote_code", "characters_dirs",
                "extensions", "max_request_mb", "max_upload_mb", "max_queue", "api_save_chats", "remote_model"}
    assert security <= {name for name, _f, _s in declared_settings()} and not security & IMPORTABLE_SETTINGS
    archive = forged(tmp_path / "evil.zip", {
        "chats/000001.json": CHAT, "settings.yaml": yaml.safe_dump(EVIL_SETTINGS).encode(),
        "models/evil/modeling_evil.py": b"print('hi')\n",
        "model-settings.json": json.dumps(
            {"/m/evil": {"loader": "transformers", "options": {"trust_remote_code": True, "dtype": "auto"}}}).encode(),
    })
    fresh = tmp_path / "fresh"
    r = app_py("import", str(archive), data_dir=fresh)
    assert r.returncode == 0, r.stderr
    assert yaml.safe_load((fresh / "settings.yaml").read_text()) == {"user_name": "Eve", "port": 7999, "n_ctx": 2048}
    refused = next(line for line in r.stdout.splitlines() if line.startswith("Left out for safety"))
    for key in set(EVIL_SETTINGS) - {"user_name", "port", "n_ctx"}:
        assert f"settings.yaml: {key}" in refused
    assert json.loads((fresh / "model-settings.json").read_text()) == {
        "/m/evil": {"loader": "transformers", "options": {"dtype": "auto"}}}
    settings = load_settings({"data_dir": str(fresh)}, environ={})  # the app starts with what was written
    assert (settings.database_url, settings.listen, settings.model, settings.auth_file) == (None, False, None, None)
    # only harmful keys: no settings.yaml at all
    only_bad = forged(tmp_path / "bad.zip", {"settings.yaml": b"listen: true\ndatabase_url: sqlite:////tmp/x.db\n"})
    other = tmp_path / "other"
    r = app_py("import", str(only_bad), data_dir=other)
    assert r.returncode == 0 and not (other / "settings.yaml").exists(), r.stderr
    assert "settings.yaml: listen, settings.yaml: database_url" in r.stdout


def test_a_file_created_while_importing_is_never_overwritten(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from webui.archive import restore

    target = tmp_path / "presets" / "Warm.yaml"

    def someone_else_writes_first(tmp: Path) -> None:
        target.write_bytes(b"theirs")  # after _place looked, before the file is put in place
        tmp.write_bytes(b"ours")

    assert restore._place(target, someone_else_writes_first, lambda t: t.read_bytes() == b"ours") == "kept"
    assert target.read_bytes() == b"theirs" and [p.name for p in target.parent.iterdir()] == ["Warm.yaml"]
    # where the file system has no hard links: O_EXCL, same guarantee
    import errno
    import os

    def no_links(src: object, dst: object) -> None:
        raise OSError(errno.EPERM, "no hard links here")

    monkeypatch.setattr(os, "link", no_links)
    other = tmp_path / "presets" / "Cold.yaml"

    def race(tmp: Path) -> None:
        other.write_bytes(b"theirs")
        tmp.write_bytes(b"ours")

    assert restore._place(other, race, lambda t: False) == "kept" and other.read_bytes() == b"theirs"
    fresh = tmp_path / "presets" / "New.yaml"
    assert restore._place(fresh, lambda tmp: tmp.write_bytes(b"ours"), lambda t: False) == "added"
    assert fresh.read_bytes() == b"ours" and sorted(p.name for p in fresh.parent.iterdir()) == [
        "Cold.yaml", "New.yaml", "Warm.yaml"]


def chat_json(title: str, text: str) -> bytes:
    return json.dumps({"format": "webui-chat", "title": title,
                       "messages": [{"role": "user", "versions": [text]}]}).encode()


def test_a_failure_halfway_names_the_chats_already_imported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy.exc import OperationalError

    archive = forged(tmp_path / "three.zip", {f"chats/00000{i}.json": chat_json(f"c{i}", "x") for i in (1, 2, 3)})
    target = open_dir(tmp_path / "target")
    real = target.chats.import_conversation
    calls = []

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 3:
            raise OperationalError("INSERT", {}, Exception("database is locked"))
        return real(*args, **kwargs)

    monkeypatch.setattr(target.chats, "import_conversation", flaky)
    try:
        with pytest.raises(ArchiveProblem, match=r"2 of its 3 chats were imported \(chats/000001.json to "
                                                 r"chats/000002.json\); importing the archive again would add"):
            import_archive(archive, target)
    finally:
        target.close()
    assert sorted(c["title"] for c in snapshot(tmp_path / "target")["chats"][None]) == ["c1", "c2"]


def test_chats_are_parsed_and_imported_one_at_a_time(tmp_path: Path) -> None:
    """Memory holds one chat, not the archive's all: 16 chats of 1 MiB each, the peak far under 16 MiB."""
    import os
    import tracemalloc

    chats = {f"chats/{i:06d}.json": chat_json(f"c{i}", os.urandom(2**19).hex()) for i in range(1, 17)}
    archive = forged(tmp_path / "many.zip", chats)
    target = open_dir(tmp_path / "target")
    try:
        tracemalloc.start()
        try:
            report = import_archive(archive, target)
            _size, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    finally:
        target.close()
    assert report.chats == 16
    assert peak < 10 * 2**20, f"peak {peak / 2**20:.1f} MiB"
