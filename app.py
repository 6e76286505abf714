"""Entry point: parse the command line, build the app context, serve UI + API on one port."""

from __future__ import annotations

import argparse
import logging
import socket
import sys

from webui.privacy import apply_private_defaults

apply_private_defaults()

from webui.errors import UserFacingError  # noqa: E402


COMMANDS = ("serve", "run", "chat", "list")
COMMANDS_HELP = """commands (the first argument; default serve):
  serve              serve the web UI and the OpenAI/Ollama-compatible API (the default)
  run [PROMPT...]    print a reply to PROMPT (or stdin), streamed, then exit
  chat               an interactive chat in the terminal, saved to the same history
  list               list the models the Model tab lists
Run `python app.py COMMAND --help` for a command's options."""


def parse_args(argv: list[str]) -> argparse.Namespace:
    command = "serve"
    if argv and argv[0] in COMMANDS:
        command, argv = argv[0], argv[1:]
    p = argparse.ArgumentParser(
        prog="app.py" if command == "serve" else f"app.py {command}",
        description="Chat with local language models in your browser.",
        epilog=COMMANDS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if command == "run":
        p.add_argument("prompt", nargs="*", help="the prompt (default: read from stdin)")
    if command in ("run", "chat"):
        p.add_argument("--character", help="answer as this character (default: the model's plain assistant)")
        p.add_argument("--max-tokens", type=int, help="reply length limit in tokens")
    if command == "chat":
        p.add_argument("--user", help="save the chat in this account's history (see --auth)")
    p.add_argument("--model", help="model folder or .gguf file (default: the embedded SmolLM2-135M-Instruct)")
    p.add_argument("--loader", choices=["llama.cpp", "transformers", "remote"], help="force a loader (default: by file type; remote for an http(s) URL)")
    p.add_argument("--models-dir", help="where the Model tab finds and downloads models (default: <data-dir>/models)")
    p.add_argument("--port", type=int, help="port to serve on (default 7860; env GRADIO_SERVER_PORT)")
    p.add_argument("--listen", action="store_true", default=None, help="bind 0.0.0.0 so other machines can connect")
    p.add_argument("--data-dir", help="where chats and settings live (env WEBUI_DATA_DIR; default ./data)")
    p.add_argument("--database-url", help="any SQLAlchemy URL (default: SQLite in the data dir)")
    p.add_argument("--extensions", nargs="*", metavar="NAME", help="extensions to enable, in order (default: the saved set)")
    p.add_argument("--log-level", default="INFO" if command == "serve" else "WARNING", help="DEBUG, INFO, WARNING...")
    accounts = p.add_argument_group("accounts and API (see README, Accounts and API)")
    accounts.add_argument("--auth", action="append", metavar="USER:PASSWORD", help="an account (repeatable); turns on the login page")
    accounts.add_argument("--auth-file", help="a file of USER:PASSWORD lines")
    accounts.add_argument("--api-key", dest="api_keys", action="append", metavar="[USER:]KEY",
                          help="require this Bearer key for /v1 and /api (repeatable); USER:KEY acts as that account")
    accounts.add_argument("--max-queue", type=int, help="queued generations past which the API answers 429 (default 64)")
    accounts.add_argument("--save-api-chats", dest="api_save_chats", action="store_true", default=None,
                          help="store API chats in the history unless a request says \"save\": false")
    from webui.engine.options import add_model_flags

    add_model_flags(p)
    args = p.parse_args(argv)
    args.command = command
    return args


def port_is_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from webui.config import load_settings
    from webui.engine.options import MODEL_SETTING_NAMES
    from webui.context import build_context

    try:
        settings = load_settings(
            {
                "model": args.model,
                "loader": args.loader,
                "port": args.port,
                "listen": args.listen,
                "data_dir": args.data_dir,
                "database_url": args.database_url,
                "extensions": args.extensions,
                "models_dir": args.models_dir,
                "auth": args.auth,
                "auth_file": args.auth_file,
                "api_keys": args.api_keys,
                "max_queue": args.max_queue,
                "api_save_chats": args.api_save_chats,
                **{name: getattr(args, name) for name in MODEL_SETTING_NAMES},
            }
        )
        if args.command != "serve":
            from webui.cli import run_command

            return run_command(args, settings)
        if not port_is_free(settings.bind_host, settings.port):
            raise UserFacingError(
                f"Port {settings.port} is already in use (is the app already running?). Choose another with --port."
            )
        ctx = build_context(settings)
    except UserFacingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    import uvicorn

    from webui.server import create_app

    try:
        app = create_app(ctx)
    except UserFacingError as exc:
        ctx.engine.shutdown()
        print(f"error: {exc}", file=sys.stderr)
        return 1
    host = settings.bind_host
    where = f"http://127.0.0.1:{settings.port} (listening on all interfaces)" if host == "0.0.0.0" else f"http://{host}:{settings.port}"
    print(f"Serving on {where}  (model: {ctx.engine.model_name})", flush=True)
    try:
        uvicorn.run(app, host=host, port=settings.port, log_level="warning")
    finally:
        ctx.engine.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
