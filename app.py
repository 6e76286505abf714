"""Entry point: parse the command line, build the app context, serve UI + API on one port."""

from __future__ import annotations

import logging
import socket
import sys

from webui.privacy import apply_private_defaults

apply_private_defaults()

from webui.cli_args import parse_args, settings_values  # noqa: E402
from webui.errors import UserFacingError  # noqa: E402


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
    from webui.context import build_context

    try:
        settings = load_settings(settings_values(args))
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
    print(app.state.authenticator.protection(), flush=True)  # who can reach what (docs/deploy.md)
    try:
        uvicorn.run(app, host=host, port=settings.port, log_level="warning")
    finally:
        ctx.engine.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
