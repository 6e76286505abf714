"""Settings: command line > environment (WEBUI_*) > settings file in the data dir > defaults.

Nothing here reads ``sys.argv``: app.py parses it and passes the values in.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from webui.errors import UserFacingError

REPO_ROOT = Path(__file__).resolve().parents[1]
SETTINGS_FILE = "settings.yaml"


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    loader: str | None = None
    host: str = "127.0.0.1"
    port: int = 7860
    listen: bool = False
    data_dir: Path = REPO_ROOT / "data"
    database_url: str | None = None
    characters_dirs: list[Path] = [REPO_ROOT / "characters"]
    user_name: str = "You"
    extensions: list[str] | None = None  # None: the saved enabled set
    # -- model loading (webui/engine/options.py; None = not given, the model's saved value applies)
    models_dir: Path | None = None  # None: <data_dir>/models
    dtype: str | None = None
    load_in_8bit: bool | None = None
    load_in_4bit: bool | None = None
    quant_type: str | None = None
    compute_dtype: str | None = None
    use_double_quant: bool | None = None
    quantization: str | None = None
    device_map: str | None = None
    attn_implementation: str | None = None
    trust_remote_code: bool | None = None
    compile: bool | None = None
    n_gpu_layers: int | None = None
    n_ctx: int | None = None
    threads: int | None = None
    n_batch: int | None = None
    flash_attn: bool | None = None
    cache_type: str | None = None
    use_mmap: bool | None = None
    use_mlock: bool | None = None
    tensor_split: str | None = None
    remote_api_key: str | None = None
    remote_model: str | None = None
    # Accounts and the API (README: "Accounts", "API").
    auth: list[str] = []  # "user:password" entries; any account turns on the login page
    auth_file: Path | None = None  # one "user:password" per line
    api_keys: list[str] = []  # "KEY" or "user:KEY" (the key's requests act as that account)
    max_queue: int = Field(default=64, ge=1)  # queued generations past which the API answers 429
    api_save_chats: bool = False  # store API chats in the key's history unless a request says "save": false

    @field_validator("auth", "api_keys", mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        """An environment variable or settings file may give a comma-separated string."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @property
    def bind_host(self) -> str:
        """0.0.0.0 with --listen or on a Hugging Face Space, else the configured host."""
        return "0.0.0.0" if self.listen or os.environ.get("SPACE_ID") else self.host

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


def _env_values(environ: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in Settings.model_fields:
        key = f"WEBUI_{name.upper()}"
        if key in environ:
            values[name] = environ[key]
    if "GRADIO_SERVER_NAME" in environ and "host" not in values:
        values["host"] = environ["GRADIO_SERVER_NAME"]
    if "GRADIO_SERVER_PORT" in environ and "port" not in values:
        values["port"] = environ["GRADIO_SERVER_PORT"]
    return values


def _file_values(data_dir: Path) -> dict[str, Any]:
    path = data_dir / SETTINGS_FILE
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise UserFacingError(f"Cannot read {path}: {exc}. Fix or delete the file.") from exc
    if not isinstance(data, dict):
        raise UserFacingError(f"{path} must be a YAML mapping of setting names to values.")
    return data


def load_settings(cli: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Merge the sources; a CLI value of None means "not given"."""
    cli_values = {k: v for k, v in (cli or {}).items() if v is not None}
    env_values = _env_values(os.environ if environ is None else environ)
    data_dir = Path(cli_values.get("data_dir") or env_values.get("data_dir") or Settings.model_fields["data_dir"].default)
    merged = {**_file_values(data_dir), **env_values, **cli_values}
    try:
        settings = Settings(**merged)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise UserFacingError(f"Invalid settings: {problems}") from exc
    settings.data_dir = settings.data_dir.expanduser().resolve()
    return settings
