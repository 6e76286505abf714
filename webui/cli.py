"""The terminal commands, like ``ollama run``: ``run``, ``chat`` and ``list`` (argv is parsed in app.py),
and ``export`` / ``import`` (one archive of everything, ``webui.archive``), which load no model.

They run in-process (no server needed) on the same AppContext, ChatService and database as the
web UI, so ``chat`` conversations appear in the UI's chat list and replies are built the same way.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from webui.chat.characters import DEFAULT_CHARACTER
from webui.config import Settings
from webui.context import AppContext, build_context
from webui.engine.catalog import CatalogEntry, scan_catalog
from webui.errors import UserFacingError
from webui.generation.params import GenerationParams
from webui.generation.presets import resolve_params

CLI_SESSION = "cli"
EXIT_WORDS = ("/bye", "/exit", "/quit")


def catalog(settings: Settings) -> list[CatalogEntry]:
    """The models the Model tab lists (embedded default, models dir, Hugging Face cache)."""
    return scan_catalog(settings.models_path)


def list_models(settings: Settings, out: TextIO) -> int:
    entries = catalog(settings)
    if not entries:
        print("No models found. Put .gguf files or model folders in " + str(settings.models_path), file=out)
        return 0
    width = max(len(e.label) for e in entries)
    print(f"{'NAME':<{width}}  {'LOADER':<12}  {'SOURCE':<10}  PATH", file=out)
    for e in entries:
        print(f"{e.label:<{width}}  {e.loader:<12}  {e.source:<10}  {e.path}", file=out)
    return 0


def pick_model(settings: Settings) -> Settings:
    """``--model NAME`` may also be a name that ``list`` prints (or its file/folder name)."""
    name = settings.model
    if not name or Path(name).expanduser().exists() or name.startswith(("http://", "https://")):
        return settings
    for e in catalog(settings):
        if name in (e.label, Path(e.path).name, Path(e.path).stem):
            return settings.model_copy(update={"model": e.path, "loader": settings.loader or e.loader})
    return settings


def _params(ctx: AppContext, args: argparse.Namespace) -> GenerationParams:
    body = {"max_new_tokens": args.max_tokens} if getattr(args, "max_tokens", None) else {}
    return resolve_params(body, getattr(ctx, "presets", None))


def _check_character(ctx: AppContext, name: str | None) -> None:
    if name is not None and name not in ctx.characters.names():
        raise UserFacingError(f"No character named {name!r}. Available: {', '.join(ctx.characters.names())}.")


def run_prompt(
    ctx: AppContext, prompt: str, params: GenerationParams, out: TextIO, character: str | None = None
) -> int:
    """Stream one reply to ``prompt`` to ``out`` (nothing is saved, like ``ollama run``)."""
    _check_character(ctx, character)
    shown = ""
    for progress in ctx.chat.answer([("user", prompt)], params, character=character, session_key=CLI_SESSION):
        if progress.text.startswith(shown):
            out.write(progress.text[len(shown):])
            out.flush()
            shown = progress.text
    out.write("\n")
    out.flush()
    return 0


def chat_loop(
    ctx: AppContext, params: GenerationParams, inp: TextIO, out: TextIO, *,
    character: str | None = None, user: str | None = None,
) -> int:
    """An interactive chat, stored like a UI chat. /new starts another, /bye (or Ctrl+D) quits;
    Ctrl+C stops the reply being written."""
    _check_character(ctx, character)
    user_id = ctx.repo.ensure_user(user) if user else None
    interactive = inp.isatty()

    def new_chat() -> int:
        conv = ctx.chat.new_conversation(character or DEFAULT_CHARACTER, user_id)
        for m in ctx.repo.messages(conv.id, user_id):
            print(m.content, file=out)
        return conv.id

    print(f"Chatting with {ctx.engine.model_name}. /new starts a new chat, /bye quits.", file=out)
    conv_id = new_chat()
    while True:
        if interactive:
            out.write(">>> ")
            out.flush()
        try:
            line = inp.readline()
        except KeyboardInterrupt:
            print(file=out)
            return 0
        if not line:
            return 0
        text = line.strip()
        if not text:
            continue
        if text in EXIT_WORDS:
            return 0
        if text == "/new":
            conv_id = new_chat()
            continue
        shown = ""
        try:
            for progress in ctx.chat.send(conv_id, text, params, session_key=CLI_SESSION, user_id=user_id):
                if progress.text.startswith(shown):
                    out.write(progress.text[len(shown):])
                    out.flush()
                    shown = progress.text
        except KeyboardInterrupt:
            ctx.chat.stop(CLI_SESSION)
        out.write("\n")
        out.flush()


def export_everything(settings: Settings, args: argparse.Namespace, out: TextIO) -> int:
    """``export FILE``: every account's chats by default, one account's with ``--user NAME``."""
    from webui.archive.data import DataDir
    from webui.archive.export import ExportScope, export_archive

    scope = ExportScope(owners=(args.user,) if args.user else None)
    source = DataDir.open(settings)
    try:
        summary = export_archive(source, Path(args.file), scope, include_models=args.include_models)
    finally:
        source.close()
    c = summary.counts
    print(f"Wrote {summary.path}: {c['chats']} chats ({c['messages']} messages, {c['message_versions']} versions), "
          f"{c['personas']} personas, {c['notebook_prompts']} saved Notebook prompts, "
          f"{c['character_files']} character files, {c['presets']} presets, "
          f"{c['instruction_templates']} instruction templates, {c['loras']} LoRA metadata files, "
          f"{c['settings_files']} settings files.", file=out)
    copied = f"{c['model_files_copied']} model files copied" if args.include_models else "not copied (--include-models)"
    print(f"Models: {c['models_listed']} listed in the manifest, {copied}.", file=out)
    for note in summary.left_out:
        print(f"Left out: {note}", file=out)
    return 0


def import_everything(settings: Settings, args: argparse.Namespace, out: TextIO) -> int:
    """``import FILE``: into the accounts the archive names, or all into ``--user NAME``."""
    from webui.archive.data import DataDir
    from webui.archive.restore import ImportOptions, import_archive

    options = ImportOptions(keep_owners=not args.user, owner=args.user or None)
    target = DataDir.open(settings)
    try:
        report = import_archive(Path(args.file), target, options)
    finally:
        target.close()
    for line in report.lines():
        print(line, file=out)
    return 0


def run_command(args: argparse.Namespace, settings: Settings) -> int:
    """``list``, ``run``, ``chat``, ``export``, ``import`` or ``train``; raises UserFacingError for app.py to print."""
    if args.command == "list":
        return list_models(settings, sys.stdout)
    if args.command == "export":
        return export_everything(settings, args, sys.stdout)
    if args.command == "import":
        return import_everything(settings, args, sys.stdout)
    if args.command == "train":  # loads no chat model: the run's own process loads the base
        from webui.training.cli import train_command

        return train_command(settings, args, sys.stdout)
    prompt = ""
    if args.command == "run":
        prompt = " ".join(args.prompt).strip() or ("" if sys.stdin.isatty() else sys.stdin.read().strip())
        if not prompt:
            raise UserFacingError('Nothing to answer: python app.py run "your prompt" (or pipe text in).')
    ctx = build_context(pick_model(settings))
    try:
        params = _params(ctx, args)
        if args.command == "run":
            return run_prompt(ctx, prompt, params, sys.stdout, character=args.character)
        return chat_loop(ctx, params, sys.stdin, sys.stdout, character=args.character, user=args.user)
    finally:
        ctx.engine.shutdown()
