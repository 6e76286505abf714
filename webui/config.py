"""Settings: command line > environment (WEBUI_*) > settings file in the data dir > defaults.

Each setting is declared once: a field of ``Settings`` annotated with a ``Setting`` (help, flag
spelling, argparse action...); the model-loading fields are generated from the load-option table
(``webui.engine.options.model_settings``). The flags (``webui.cli_args``), the environment names and
settings.yaml keys (here) and the table in docs/configuration.md (``webui.settings_docs``) all come
from these declarations. Nothing here reads ``sys.argv``: app.py parses it and passes the values in.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator
from pydantic.fields import FieldInfo

from webui.bounded_parse import load_yaml
from webui.engine.options import model_settings
from webui.engine.registry import loader_names
from webui.errors import UserFacingError
from webui.setting_meta import Setting, env_names

REPO_ROOT = Path(__file__).resolve().parents[1]
SETTINGS_FILE = "settings.yaml"
ACCOUNTS_GROUP = "accounts and API (see docs/deploy.md and docs/api.md)"


class SettingsCore(BaseModel):
    """The settings typed by hand; ``Settings`` adds the model-loading ones from the option table."""

    model_config = ConfigDict(extra="forbid")

    model: Annotated[str | None, Setting(
        "model folder or .gguf file (default: the embedded SmolLM2-135M-Instruct)",
        doc_default="the embedded SmolLM2-135M-Instruct")] = None
    loader: Annotated[str | None, Setting(
        "force a loader (default: by file type; remote for an http(s) URL)", choices=loader_names,
        doc_default="by file type")] = None
    models_dir: Annotated[Path | None, Setting(
        "where the Model tab finds and downloads models (default: <data-dir>/models)",
        doc_default="<data-dir>/models")] = None
    host: Annotated[str, Setting(
        "address to serve on; --listen (or SPACE_ID, on a Hugging Face Space) binds 0.0.0.0 instead",
        flag=None, env_aliases=("GRADIO_SERVER_NAME",))] = "127.0.0.1"
    port: Annotated[int, Setting(
        "port to serve on (default 7860; env GRADIO_SERVER_PORT)", env_aliases=("GRADIO_SERVER_PORT",))] = 7860
    listen: Annotated[bool, Setting("bind 0.0.0.0 so other machines can connect", action="store_true")] = False
    data_dir: Annotated[Path, Setting(
        "where chats and settings live (env WEBUI_DATA_DIR; default ./data)", in_file=False,
        doc_default="data/ beside app.py")] = REPO_ROOT / "data"
    database_url: Annotated[str | None, Setting(
        "any SQLAlchemy URL (default: SQLite in the data dir)", doc_default="SQLite in the data dir")] = None
    characters_dirs: Annotated[list[Path], Setting(
        "folders of read-only characters (<data-dir>/characters is always read too)", flag=None,
        doc_default="characters/ beside app.py")] = [REPO_ROOT / "characters"]
    user_name: Annotated[str, Setting("your name in chats ({{user}}) when no persona is chosen", flag=None)] = "You"
    extensions: Annotated[list[str] | None, Setting(
        "extensions to enable, in order (default: the saved set)", nargs="*", metavar="NAME",
        doc_default="the saved set")] = None
    lora: Annotated[list[str], Setting(
        "LoRA adapter from <data-dir>/loras to apply to the start-up model (repeatable, or NAME,NAME)",
        action="append", metavar="NAME")] = []
    # Accounts and the API (docs/deploy.md, docs/api.md).
    auth: Annotated[list[str], Setting(
        "an account (repeatable); turns on the login page", action="append", metavar="USER:PASSWORD",
        group=ACCOUNTS_GROUP)] = []
    auth_file: Annotated[Path | None, Setting("a file of USER:PASSWORD lines", group=ACCOUNTS_GROUP)] = None
    api_keys: Annotated[list[str], Setting(
        "require this Bearer key for /v1 and /api (repeatable); USER:KEY acts as that account",
        flag="--api-key", action="append", metavar="[USER:]KEY", group=ACCOUNTS_GROUP)] = []
    max_queue: Annotated[int, Field(ge=1), Setting(
        "queued generations past which the API answers 429 (default 64)", group=ACCOUNTS_GROUP)] = 64
    max_request_mb: Annotated[int, Field(ge=1), Setting(
        "largest request body, in MB, before the server answers 413 (default 20; file uploads: --max-upload-mb)",
        group=ACCOUNTS_GROUP)] = 20
    max_upload_mb: Annotated[int, Field(ge=1), Setting(
        "largest file uploaded through the web UI (a chat, a character, a backup archive), in MB (default 200)",
        group=ACCOUNTS_GROUP)] = 200
    session_secret: Annotated[str | None, Setting(
        "the key that signs each browser's private-history cookie when the server is reachable without accounts "
        "(default: generated once into <data-dir>/browser-identity.key)", flag=None, in_file=False,
        group=ACCOUNTS_GROUP, doc_default="generated into the data dir")] = None
    api_save_chats: Annotated[bool, Setting(
        'store API chats in the history unless a request says "save": false', flag="--save-api-chats",
        action="store_true", group=ACCOUNTS_GROUP)] = False

    @model_validator(mode="before")
    @classmethod
    def _split_lists(cls, data: Any) -> Any:
        """An environment variable or settings file may give a list as a comma-separated string."""
        if not isinstance(data, dict):
            return data
        fields = cls.model_fields
        return {
            key: [part.strip() for part in value.split(",") if part.strip()]
            if isinstance(value, str) and key in fields and _is_list(fields[key].annotation) else value
            for key, value in data.items()
        }

    @property
    def bind_host(self) -> str:
        """0.0.0.0 with --listen or on a Hugging Face Space, else the configured host."""
        return "0.0.0.0" if self.listen or os.environ.get("SPACE_ID") else self.host

    @property
    def reachable(self) -> bool:
        """Whether other machines can connect: the server binds anything but a loopback address."""
        return not is_loopback(self.bind_host)

    @property
    def has_accounts(self) -> bool:
        """Accounts are configured (``--auth``/``--auth-file``): the UI asks for a login."""
        return bool(self.auth) or self.auth_file is not None

    @property
    def per_browser_history(self) -> bool:
        """Reachable without accounts: each browser gets its own private history (a signed cookie)
        instead of the one shared single-user history (docs/deploy.md)."""
        return self.reachable and not self.has_accounts

    @property
    def models_path(self) -> Path:
        """Where the catalog looks for models and downloads go."""
        return (self.models_dir or self.data_dir / "models").expanduser()

    @property
    def user_characters_dir(self) -> Path:
        return self.data_dir / "characters"

    @property
    def extension_dirs(self) -> list[Path]:
        return [REPO_ROOT / "extensions", self.data_dir / "extensions"]


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address (127.0.0.0/8, ::1): only this machine can connect."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # a host name: assume others can reach it


def _is_list(annotation: Any) -> bool:
    return get_origin(annotation) is list or any(get_origin(arg) is list for arg in get_args(annotation))


if TYPE_CHECKING:  # type checkers see the hand-typed fields; the generated ones are read via model_dump()
    Settings = SettingsCore
else:
    # A real pydantic model (extra="forbid", inherited): SettingsCore plus one field per model-loading
    # setting, None meaning "not given" (the model's saved value, then the option's default applies).
    Settings = create_model(
        "Settings",
        __base__=SettingsCore,
        __module__=__name__,
        **{name: (Annotated[kind, setting], None) for name, (kind, setting) in model_settings().items()},
    )


def setting_of(field: FieldInfo) -> Setting:
    """The ``Setting`` a Settings field is annotated with."""
    for item in field.metadata:
        if isinstance(item, Setting):
            return item
    raise TypeError(f"a Settings field lacks its Setting metadata: {field!r}")


def declared_settings() -> list[tuple[str, FieldInfo, Setting]]:
    """Every setting in declaration order: ``(name, pydantic field, Setting)``."""
    return [(name, field, setting_of(field)) for name, field in Settings.model_fields.items()]


def _env_values(environ: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, _field, setting in declared_settings():
        for key in env_names(name, setting):
            if key in environ:
                values[name] = environ[key]
                break
    return values


def _file_values(data_dir: Path) -> dict[str, Any]:
    path = data_dir / SETTINGS_FILE
    if not path.is_file():
        return {}
    try:
        data = load_yaml(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UserFacingError(f"Cannot read {path}: {exc}. Fix or delete the file.") from exc
    if not isinstance(data, dict):
        raise UserFacingError(f"{path} must be a YAML mapping of setting names to values.")
    return data


def load_settings(cli: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Merge the sources; a CLI value of None means "not given"."""
    cli_values = {k: v for k, v in (cli or {}).items() if v is not None}
    env_values = _env_values(os.environ if environ is None else environ)
    default_dir = Settings.model_fields["data_dir"].default
    data_dir = Path(cli_values.get("data_dir") or env_values.get("data_dir") or default_dir)
    merged = {**_file_values(data_dir), **env_values, **cli_values}
    try:
        settings = Settings(**merged)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise UserFacingError(f"Invalid settings: {problems}") from exc
    settings.data_dir = settings.data_dir.expanduser().resolve()
    return settings
