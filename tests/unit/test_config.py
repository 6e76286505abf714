import argparse
from pathlib import Path

import pytest

from webui.cli_args import build_parser, parse_args, settings_values
from webui.config import Settings, declared_settings, load_settings
from webui.engine import options as opts
from webui.engine import registry
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
    env = {"GRADIO_SERVER_PORT": "9999", "GRADIO_SERVER_NAME": "0.0.0.0"}
    s = load_settings({"data_dir": str(tmp_path)}, environ=env)
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


# -- one declaration: Settings fields -> flags, environment names, settings.yaml keys -------------


def _value_for(name: str) -> tuple[list[str], object]:
    """A command-line spelling that sets ``name``, and the value Settings should then hold."""
    _, field, setting = next(item for item in declared_settings() if item[0] == name)
    flag = setting.flag_for(name)
    assert flag is not None
    if setting.action == "store_true":
        return [flag], True
    if setting.action == "store_false":
        return [flag], False
    if setting.action == "append":
        return [flag, "u:one", flag, "two"], ["u:one", "two"]
    if setting.nargs == "*":
        return [flag, "a", "b"], ["a", "b"]
    choices = setting.choice_list()
    if choices:
        return [flag, choices[-1]], choices[-1]
    if "int" in str(field.annotation):
        return [flag, "7"], 7
    if "Path" in str(field.annotation):
        return [flag, "/tmp/some-dir"], Path("/tmp/some-dir")
    return [flag, "some-text"], "some-text"


def test_every_setting_is_declared_with_its_metadata(tmp_path: Path) -> None:
    assert Settings.model_config["extra"] == "forbid"
    names = [name for name, _, _ in declared_settings()]
    assert names == list(Settings.model_fields)
    for name in opts.FLAG_OPTIONS:  # the model fields come from the option table, not typed by hand
        setting = next(s for n, _, s in declared_settings() if n == name)
        option = opts.BY_NAME[name]
        assert setting.help.endswith(option.help) and setting.choice_list() == option.choices
    (tmp_path / "settings.yaml").write_text("bogus: 1\n")
    with pytest.raises(UserFacingError, match="bogus"):
        load_settings({"data_dir": str(tmp_path)}, environ={})


def test_every_flag_reaches_settings(tmp_path: Path) -> None:
    for name, _, setting in declared_settings():
        if setting.flag_for(name) is None or name == "data_dir":
            continue
        argv, expected = _value_for(name)
        args = parse_args([*argv, "--data-dir", str(tmp_path)])
        settings = load_settings(settings_values(args), environ={})
        assert getattr(settings, name) == expected, (name, argv)


def test_every_setting_reads_its_environment_variable_and_file_key(tmp_path: Path) -> None:
    env = {"WEBUI_N_CTX": "99", "WEBUI_USE_MMAP": "false", "WEBUI_EXTENSIONS": "a, b", "WEBUI_USER_NAME": "Env"}
    s = load_settings({"data_dir": str(tmp_path)}, environ=env)
    assert (s.n_ctx, s.use_mmap, s.extensions, s.user_name) == (99, False, ["a", "b"], "Env")
    (tmp_path / "settings.yaml").write_text("quantization: quanto\nauth: [al:pw]\nload_in_4bit: true\n")
    s = load_settings({"data_dir": str(tmp_path)}, environ={"GRADIO_SERVER_PORT": "5", "WEBUI_PORT": "6"})
    assert (s.quantization, s.auth, s.load_in_4bit, s.port) == ("quanto", ["al:pw"], True, 6)
    assert opts.flag_values(s.model_dump())["quantization"] == "bnb-4bit"


def test_flag_spellings_and_destinations_are_kept() -> None:
    args = parse_args(["--api-key", "k1", "--api-key", "bob:k2", "--auth", "a:b", "--auth", "c:d", "--save-api-chats",
                       "--no-mmap", "--load-in-8bit", "--quantization", "torchao", "--remote-api-key", "sk",
                       "--extensions", "x", "y", "--listen"])
    assert (args.api_keys, args.auth, args.api_save_chats) == (["k1", "bob:k2"], ["a:b", "c:d"], True)
    assert (args.use_mmap, args.load_in_8bit, args.quantization, args.remote_api_key) == (False, True, "torchao", "sk")
    assert (args.extensions, args.listen, args.command, args.log_level) == (["x", "y"], True, "serve", "INFO")
    assert parse_args(["--extensions"]).extensions == []  # "none": not "the saved set"
    untouched = vars(parse_args([]))
    assert all(untouched[name] is None for name in settings_values(parse_args([])))
    with pytest.raises(SystemExit):
        parse_args(["--quantization", "int3"])


def test_commands_have_their_own_arguments_and_log_level() -> None:
    run = parse_args(["run", "hello", "there", "--character", "Bob", "--max-tokens", "5"])
    assert (run.command, run.prompt, run.character, run.max_tokens, run.log_level) == (
        "run", ["hello", "there"], "Bob", 5, "WARNING")
    chat = parse_args(["chat", "--user", "al"])
    assert (chat.command, chat.user, chat.log_level) == ("chat", "al", "WARNING")
    with pytest.raises(SystemExit):
        parse_args(["list", "--character", "Bob"])
    assert parse_args(["list", "--log-level", "debug"]).log_level == "debug"


def test_loader_choices_come_from_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.BACKENDS, "fake", "tests.support.fakes:FakeBackend")
    assert parse_args(["--loader", "fake"]).loader == "fake"
    loader = next(a for a in build_parser("serve")._actions if a.dest == "loader")
    assert tuple(loader.choices) == registry.loader_names()


def test_parsing_reads_only_the_argv_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.argv", ["app.py", "--not-a-flag"])
    assert isinstance(parse_args(["--port", "1"]), argparse.Namespace)
