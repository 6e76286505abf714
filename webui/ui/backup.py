"""*Backup* in the chat-list sidebar: export everything to one archive, import an archive.

It sits in a closed accordion under the single-chat export/import, where a user already looks for
"get my chats out", and takes one line of the sidebar until opened. The web UI acts for the
logged-in account: with accounts on, an export holds that account's chats and personas and the
shared library (characters, presets, templates, LoRA metadata), not this install's settings files,
and an import puts chats and personas in that account and leaves the settings files alone (the
operator uses ``python app.py export/import`` for those); so does each browser's own history on a
server reachable without accounts (``webui.ui.session``). Local without accounts an export is
everything, as the command line does. Models are only listed, never copied, from here
(``--include-models`` is for the command line), and an import from here never writes models nor
settings.yaml (which decide what runs and who can connect: the operator's, through the command line),
and accepts an archive of at most ``WEB_LIMITS`` (64 MiB of content; larger ones: the command line).

An export is written straight into Gradio's cache (so Gradio serves it without another copy), in a
fresh unguessable folder under ``EXPORTS``; each export deletes the same user's earlier archives and
anyone's older than ``KEEP_EXPORTS_S``, so repeated clicks leave one archive each, not one per click.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr
from gradio.utils import get_upload_folder

from webui.archive.data import DataDir
from webui.archive.export import ExportScope, export_archive
from webui.archive.layout import WEB_LIMITS
from webui.archive.restore import ImportOptions, import_archive
from webui.context import AppContext
from webui.errors import UserFacingError
from webui.ui import chat_view as view
from webui.ui.events import action, bind, on
from webui.ui.session import acting_user_name, current_user_id

if TYPE_CHECKING:
    from webui.ui.chat_components import ChatComponents

EXPORTS = "webui-exports"  # under Gradio's cache folder (GRADIO_TEMP_DIR)
KEEP_EXPORTS_S = 3600  # anyone's archive older than this is deleted at the next export


@dataclass
class BackupComponents:
    export_btn: gr.Button
    export_file: gr.File
    import_file: gr.File
    status: gr.Markdown


def build() -> BackupComponents:
    """The accordion (inside the caller's sidebar)."""
    with gr.Accordion("Backup: everything", open=False, elem_id="backup"):
        export_btn = gr.Button("Export everything", size="sm", elem_id="export-everything")
        export_file = gr.File(label="Archive", visible=False, interactive=False, elem_id="export-everything-file")
        import_file = gr.File(label="Import archive (.zip from Export everything)", file_types=[".zip"],
                              type="filepath", elem_id="import-archive")
        status = gr.Markdown(elem_id="backup-status")
    return BackupComponents(export_btn, export_file, import_file, status)


def _acting(ctx: AppContext, request: gr.Request | None) -> tuple[str | None, bool]:
    """Who the request acts for (None: the single-user history), and whether that is one user among
    others (an account, or a browser's own history on a server reachable without accounts): then the
    install's settings files are none of its business."""
    current_user_id(ctx, request)  # refuses a request without a login when accounts are on; creates the row
    name = acting_user_name(ctx, request)
    return name, name is not None


def _data_dir(ctx: AppContext) -> DataDir:
    if ctx.personas is None:
        raise UserFacingError("Backups need the persona store, which this app was started without.")
    return DataDir(ctx.settings.data_dir, ctx.settings.models_path, ctx.repo, ctx.personas,
                   notebook=ctx.notebooks)


@action
def export_everything(ctx: AppContext, request: gr.Request | None) -> Any:
    """Write the archive to a temp folder and offer it for download."""
    owner, accounts = _acting(ctx, request)
    stamp = datetime.now().strftime("%Y-%m-%d-%H%M%S")
    dest = _export_folder(owner) / f"webui-backup-{stamp}.zip"
    # a browser's private history (no accounts) is written without an owner: it imports as the importer's own
    browser = owner is not None and not ctx.settings.has_accounts
    # a browser that has saved nothing has no users row yet (none is made just to look): it owns nothing
    owners = () if owner is not None and ctx.repo.find_user(owner) is None else (owner,)
    scope = ExportScope(owners=owners, server_files=not accounts, without_owners=browser)
    summary = export_archive(_data_dir(ctx), dest, scope)
    c = summary.counts
    gr.Info(f"Exported {c['chats']} chats, {c['personas']} personas, {c['character_files']} character files, "
            f"{c['presets']} presets and {c['instruction_templates']} templates.")
    return gr.update(value=str(dest), visible=True)


def _export_folder(owner: str | None) -> Path:
    """A new folder for one export, after deleting this user's earlier ones and anyone's stale ones.

    ``EXPORTS/<hash of the user>/<random>/``: the random part keeps the archive's URL unguessable.
    """
    root = Path(get_upload_folder()) / EXPORTS
    mine = root / hashlib.sha256(f"user:{owner}".encode()).hexdigest()[:32]
    stale = time.time() - KEEP_EXPORTS_S
    for user_dir in root.iterdir() if root.is_dir() else ():
        for folder in user_dir.iterdir() if user_dir.is_dir() else ():
            try:
                old = user_dir == mine or folder.stat().st_mtime < stale
            except OSError:  # deleted meanwhile by another export
                continue
            if old:
                shutil.rmtree(folder, ignore_errors=True)
    mine.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=mine))


@action
def import_everything(ctx: AppContext, path: str | None, request: gr.Request | None) -> list[Any]:
    """Import the uploaded archive: [chat list, character, persona and template choices, status, upload box]."""
    owner, accounts = _acting(ctx, request)
    if not path:  # the upload box was cleared
        return [gr.update()] * 5 + [None]
    options = ImportOptions(keep_owners=False, owner=owner, server_files=not accounts,
                            settings_yaml=False, models=False)
    report = import_archive(Path(path), _data_dir(ctx), options, WEB_LIMITS)
    ctx.characters.reload()
    lines = report.lines()
    gr.Info(lines[0])
    uid = current_user_id(ctx, request)
    return [
        gr.update(choices=view.chat_choices(ctx, uid)),
        gr.update(choices=ctx.characters.names()),
        gr.update(choices=view.persona_choices(ctx, uid)),
        gr.update(choices=view.template_choices(ctx)),
        "\n".join(f"- {line}" for line in lines),
        None,
    ]


def wire(ctx: AppContext, b: BackupComponents, c: ChatComponents) -> None:
    on(b.export_btn.click, bind(export_everything, ctx), None, b.export_file)
    on(b.import_file.upload, bind(import_everything, ctx), b.import_file,
       [c.chat_list, c.character, c.persona, c.template, b.status, b.import_file])
