from pathlib import Path

import pytest

from webui.config import load_settings
from webui.errors import UserFacingError


def test_precedence_cli_over_env_over_file(tmp_path: Path) -> None:
    (tmp_path / "settings.yaml").write_text("port: 1111\nuser_name: FileUser\nmodel: from-file\n")
    env = {"WEBUI_DATA_DIR": str(tmp_path), "WEBUI_PORT": "2222", "WEBUI_MODEL": "from-env"}
    s = load_settings({"model": "from-cli", "port": None}, environ=env)
    assert s.model == "from-cli"
    assert s.port == 2222
    assert s.user_name == "FileUser"
    assert s.data_dir == tmp_path.resolve()


def test_gradio_env_vars_are_honoured(tmp_path: Path) -> None:
    s = load_settings({"data_dir": str(tmp_path)}, environ={"GRADIO_SERVER_PORT": "9999", "GRADIO_SERVER_NAME": "0.0.0.0"})
    assert (s.port, s.host) == (9999, "0.0.0.0")


def test_listen_and_space_bind_all_interfaces(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPACE_ID", raising=False)
    assert load_settings({"data_dir": str(tmp_path)}, environ={}).bind_host == "127.0.0.1"
    assert load_settings({"data_dir": str(tmp_path), "listen": True}, environ={}).bind_host == "0.0.0.0"
    monkeypatch.setenv("SPACE_ID", "user/space")
    assert load_settings({"data_dir": str(tmp_path)}, environ={}).bind_host == "0.0.0.0"


def test_bad_values_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(UserFacingError, match="port"):
        load_settings({"data_dir": str(tmp_path)}, environ={"WEBUI_PORT": "eighty"})
    (tmp_path / "settings.yaml").write_text("port: [unclosed")
    with pytest.raises(UserFacingError, match="settings.yaml"):
        load_settings({"data_dir": str(tmp_path)}, environ={})
