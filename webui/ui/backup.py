"""*Backup* in the chat-list sidebar: export everything to one archive, import an archive.

It sits in a closed accordion under the single-chat export/import, where a user already looks for
"get my chats out", and takes one line of the sidebar until opened. The web UI acts for the
logged-in account: with accounts on, an export holds that account's chats and personas and the
shared library (characters, presets, templates, LoRA metadata), not this install's settings files,
and an import puts chats and personas in that account and leaves the settings files alone (the
operator uses ``python app.py export/import`` for those); so does each browser's own history on a
server reachable without accounts (``webui.ui.session``). Local without accounts it is everything, as
the command line does. Models are only listed, never copied, from here (``--include-models`` is for
the command line).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr

from webui.archive.data import DataDir
from webui.archive.export import ExportScope, export_archive
from webui.archive.restore import ImportOptions, import_archive
from webui.context import AppContext
from webui.errors import UserFacingError
from webui.ui import chat_view as view
from webui.ui.events import action, bind, on
from webui.ui.session import acting_user_name, current_user_id

if TYPE_CHECKING:
    from webui.ui.chat_components import ChatComponents


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
    return DataDir(ctx.settings.data_dir, ctx.settings.models_path, ctx.repo, ctx.personas)


@action
def export_everything(ctx: AppContext, request: gr.Request | None) -> Any:
    """Write the archive to a temp folder and offer it for download."""
    owner, accounts = _acting(ctx, request)
    stamp = datetime.now().strftime("%Y-%m-%d-%H%M%S")
    dest = Path(tempfile.mkdtemp(prefix="webui-backup-")) / f"webui-backup-{stamp}.zip"
    # a browser's private history (no accounts) is written without an owner: it imports as the importer's own
    browser = owner is not None and not ctx.settings.has_accounts
    scope = ExportScope(owners=(owner,), server_files=not accounts, without_owners=browser)
    summary = export_archive(_data_dir(ctx), dest, scope)
    c = summary.counts
    gr.Info(f"Exported {c['chats']} chats, {c['personas']} personas, {c['character_files']} character files, "
            f"{c['presets']} presets and {c['instruction_templates']} templates.")
    return gr.update(value=str(dest), visible=True)


@action
def import_everything(ctx: AppContext, path: str | None, request: gr.Request | None) -> list[Any]:
    """Import the uploaded archive: [chat list, character, persona and template choices, status, upload box]."""
    owner, accounts = _acting(ctx, request)
    if not path:  # the upload box was cleared
        return [gr.update()] * 5 + [None]
    options = ImportOptions(keep_owners=False, owner=owner, server_files=not accounts)
    report = import_archive(Path(path), _data_dir(ctx), options)
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
