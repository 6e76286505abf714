"""Entry point: parse the command line, build the app context, serve UI + API on one port."""

from __future__ import annotations

import argparse
import logging
import socket
import sys

from webui.privacy import apply_private_defaults

apply_private_defaults()

from webui.errors import UserFacingError  # noqa: E402


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="app.py", description="Chat with local language models in your browser.")
    p.add_argument("--model", help="model folder or .gguf file (default: the embedded SmolLM2-135M-Instruct)")
    p.add_argument("--loader", choices=["llama.cpp", "transformers", "remote"], help="force a loader (default: by file type; remote for an http(s) URL)")
    p.add_argument("--models-dir", help="where the Model tab finds and downloads models (default: <data-dir>/models)")
    p.add_argument("--port", type=int, help="port to serve on (default 7860; env GRADIO_SERVER_PORT)")
    p.add_argument("--listen", action="store_true", default=None, help="bind 0.0.0.0 so other machines can connect")
    p.add_argument("--data-dir", help="where chats and settings live (env WEBUI_DATA_DIR; default ./data)")
    p.add_argument("--database-url", help="any SQLAlchemy URL (default: SQLite in the data dir)")
    p.add_argument("--extensions", nargs="*", metavar="NAME", help="extensions to enable, in order (default: the saved set)")
    p.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING...")
    from webui.engine.options import add_model_flags

    add_model_flags(p)
    return p.parse_args(argv)


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
                **{name: getattr(args, name) for name in MODEL_SETTING_NAMES},
            }
        )
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

    app = create_app(ctx)
    host = settings.bind_host
    print(f"Serving on http://{'127.0.0.1' if host == '0.0.0.0' else host}:{settings.port}  (model: {ctx.engine.model_name})", flush=True)
    try:
        uvicorn.run(app, host=host, port=settings.port, log_level="warning")
    finally:
        ctx.engine.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
