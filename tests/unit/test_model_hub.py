"""Hub downloads against a mocked huggingface_hub (no network): progress, placement, error paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2
import huggingface_hub
import pytest
from huggingface_hub import errors

from webui.engine.catalog import scan_models_dir
from webui.engine.hub import DownloadError, download, parse_repo_id

FILES = {"config.json": b"{}", "model.Q4_K_M.gguf": b"GGUF" + b"\0" * 2048, "model.Q8_0.gguf": b"GGUF" + b"\1" * 4096}


def fake_snapshot(calls: list[dict], fail: BaseException | None = None, fail_after: int = 99):  # type: ignore[no-untyped-def]
    """A stand-in for snapshot_download that writes matching files and drives tqdm_class like the real one."""
    import fnmatch

    def snapshot_download(
        repo_id: str, *, local_dir: Path, allow_patterns: Any = None, tqdm_class: Any = None, **kw: Any
    ) -> str:
        calls.append({"repo_id": repo_id, "allow_patterns": allow_patterns, **kw})
        names = [n for n in FILES if allow_patterns is None or any(fnmatch.fnmatch(n, p) for p in allow_patterns)]
        bar = tqdm_class(total=len(names), desc="Fetching files")
        size = tqdm_class(total=sum(len(FILES[n]) for n in names), desc="Downloading", unit="B")
        for i, name in enumerate(names):
            if i >= fail_after:
                raise fail  # type: ignore[misc]
            Path(local_dir, ".cache").mkdir(exist_ok=True)
            Path(local_dir, name).write_bytes(FILES[name])
            size.update(len(FILES[name]))
            bar.update(1)
        bar.close()
        size.close()
        if fail is not None and fail_after >= len(names):
            raise fail
        return str(local_dir)

    return snapshot_download


def response(status: int) -> httpx2.Response:
    return httpx2.Response(status, request=httpx2.Request("GET", "https://huggingface.co/api/models/x"))


def leftovers(models: Path) -> list[str]:
    return sorted(p.name for p in models.iterdir()) if models.exists() else []


def test_download_one_gguf_with_progress(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict] = []
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot(calls))
    events: list[tuple[float | None, str]] = []
    folder = download("org/Model-GGUF", tmp_path / "models", revision="v1", allow_patterns="*Q4_K_M.gguf",
                      progress=lambda f, d: events.append((f, d)))
    assert folder == tmp_path / "models" / "org_Model-GGUF"
    assert sorted(p.name for p in folder.iterdir()) == ["model.Q4_K_M.gguf"]  # .cache bookkeeping removed
    assert calls[0]["revision"] == "v1" and calls[0]["allow_patterns"] == ["*Q4_K_M.gguf"]
    fractions = [f for f, _ in events if f is not None]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0 and 0 < max(f for f in fractions[1:-1]) <= 1
    assert any("MiB" in d for _, d in events) and any("1 of 1 files" in d for _, d in events)
    assert [e.label for e in scan_models_dir(tmp_path / "models")] == ["org_Model-GGUF/model.Q4_K_M.gguf"]
    assert leftovers(tmp_path / "models") == ["org_Model-GGUF"]

    # A second quant of the same repo joins the first.
    download("org/Model-GGUF", tmp_path / "models", allow_patterns="*Q8_0.gguf")
    assert sorted(p.name for p in folder.iterdir()) == ["model.Q4_K_M.gguf", "model.Q8_0.gguf"]


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (errors.LocalEntryNotFoundError("Got: ConnectError"), "Cannot reach the Hugging Face Hub"),
        (httpx2.ConnectError("Name or service not known"), "Cannot reach the Hugging Face Hub"),
        (errors.RepositoryNotFoundError("404", response=response(404)), "No model org/Model-GGUF"),
        (errors.RevisionNotFoundError("404", response=response(404)), "no revision 'nope'"),
        (errors.GatedRepoError("403", response=response(403)), "gated"),
        (OSError(28, "No space left on device"), "No space left on device. Check free disk space"),
    ],
)
def test_failures_are_explained_and_leave_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: BaseException, message: str
) -> None:
    models = tmp_path / "models"
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot([], fail=error, fail_after=1))
    with pytest.raises(DownloadError, match=message):
        download("org/Model-GGUF", models, revision="nope")
    assert leftovers(models) == []  # the half-written temp folder is gone


def test_failed_update_keeps_the_existing_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    models = tmp_path / "models"
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot([]))
    folder = download("org/m", models, allow_patterns="config.json")
    monkeypatch.setattr(
        huggingface_hub, "snapshot_download", fake_snapshot([], fail=OSError(5, "I/O error"), fail_after=1)
    )
    with pytest.raises(DownloadError):
        download("org/m", models)
    assert leftovers(models) == ["org_m"] and (folder / "config.json").read_bytes() == b"{}"
    assert not (folder / "model.Q4_K_M.gguf").exists()


def test_pattern_matching_nothing_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot([]))
    with pytest.raises(DownloadError, match="No file of org/m matches \\*.bin"):
        download("org/m", tmp_path / "models", allow_patterns="*.bin")
    assert leftovers(tmp_path / "models") == []


@pytest.mark.parametrize("text", ["", "justaname", "org/name/extra", "../../etc", "org/..", "a b/c"])
def test_bad_ids_are_refused(text: str) -> None:
    with pytest.raises(DownloadError, match="not a Hugging Face model id"):
        parse_repo_id(text)


def test_ids_and_urls_are_accepted() -> None:
    assert parse_repo_id(" HuggingFaceTB/SmolLM2-135M-Instruct ") == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert parse_repo_id("https://huggingface.co/org/m.v2/tree/main") == "org/m.v2"


def test_unwritable_models_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(DownloadError, match="Cannot write to the models dir"):
        download("org/m", blocker / "models")


def test_download_button_handler_selects_the_new_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Model tab's Download handler: progress reported, the new GGUF listed and selected; errors as gr.Error."""
    import gradio as gr

    from webui.config import load_settings
    from webui.ui.model_tab import run_download

    class Ctx:
        settings = load_settings({"data_dir": str(tmp_path / "data")}, environ={})

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot([]))
    seen: list[float | None] = []
    message, dropdown = run_download(Ctx(), "org/Model-GGUF", "", "*Q8_0.gguf", lambda f, d: seen.append(f))  # type: ignore[arg-type]
    expected = tmp_path / "data" / "models" / "org_Model-GGUF" / "model.Q8_0.gguf"
    assert "Downloaded to" in message and dropdown["value"] == str(expected.resolve())
    assert (str(expected.resolve())) in [path for _, path in dropdown["choices"]]
    assert seen[-1] == 1.0
    monkeypatch.setattr(
        huggingface_hub,
        "snapshot_download",
        fake_snapshot([], fail=errors.LocalEntryNotFoundError("offline"), fail_after=0),
    )
    with pytest.raises(gr.Error, match="Cannot reach the Hugging Face Hub"):
        run_download(Ctx(), "org/Other", "", "", lambda f, d: None)  # type: ignore[arg-type]
    with pytest.raises(gr.Error, match="Enter a model id"):
        run_download(Ctx(), "  ", "", "", lambda f, d: None)  # type: ignore[arg-type]
