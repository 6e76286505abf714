"""Download a model from the Hugging Face Hub into the models dir.

Files go to a hidden temporary folder inside the models dir and are moved into place only when
every file has arrived, so an interrupted or failed download leaves nothing half-written behind.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from webui.errors import UserFacingError

Progress = Callable[[float | None, str], None]
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class DownloadError(UserFacingError):
    """A download could not be done; the message says why and what to do."""


def parse_repo_id(text: str) -> str:
    """Accept 'org/name' or a huggingface.co URL; refuse anything else with a clear message."""
    repo = text.strip().removeprefix("https://huggingface.co/").removeprefix("hf.co/").strip("/")
    repo = "/".join(repo.split("/")[:2]) if "/tree/" in repo or "/blob/" in repo else repo
    if not _REPO_ID.match(repo) or ".." in repo:
        raise DownloadError(
            f"{text!r} is not a Hugging Face model id; write it as org/name, e.g. HuggingFaceTB/SmolLM2-135M-Instruct."
        )
    return repo


def target_dir(models_dir: Path, repo_id: str) -> Path:
    """'org/name' -> <models_dir>/org_name (one flat folder per repo, as Oobabooga names them)."""
    return models_dir / repo_id.replace("/", "_")


def _progress_class(progress: Progress) -> type:
    """A tqdm class that forwards huggingface_hub's progress bars to ``progress``."""
    from tqdm.auto import tqdm

    class ReportingTqdm(tqdm):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.pop("name", None)
            kwargs["disable"] = False
            super().__init__(*args, **kwargs)
            self._report()

        def _report(self) -> None:
            total = self.total or 0
            desc = self.desc or "Downloading"
            if self.unit == "B":
                done = f"{self.n / 2**20:.1f} of {total / 2**20:.1f} MiB" if total else f"{self.n / 2**20:.1f} MiB"
            else:
                done = f"{self.n} of {total} files" if total else ""
            progress(self.n / total if total else None, f"{desc} {done}".strip())

        def update(self, n: float | None = 1) -> bool | None:
            out = super().update(n)
            self._report()
            return out

    return ReportingTqdm


def _explain(exc: BaseException, repo_id: str, revision: str | None) -> DownloadError:
    from huggingface_hub import errors

    if isinstance(exc, (errors.OfflineModeIsEnabled, errors.LocalEntryNotFoundError)) or _is_network(exc):
        return DownloadError(
            f"Cannot reach the Hugging Face Hub to download {repo_id} (offline or blocked network). "
            "Nothing was saved. Copy the model folder into the models dir instead, or try again when online."
        )
    if isinstance(exc, errors.GatedRepoError):
        return DownloadError(f"{repo_id} is gated: accept its license on huggingface.co and log in (hf auth login).")
    if isinstance(exc, errors.RepositoryNotFoundError):
        return DownloadError(f"No model {repo_id} on the Hugging Face Hub (or it is private). Check the id.")
    if isinstance(exc, errors.RevisionNotFoundError):
        return DownloadError(f"{repo_id} has no revision {revision!r}. Use a branch, tag or commit that exists.")
    if isinstance(exc, errors.EntryNotFoundError):
        return DownloadError(f"{repo_id} has no such file (check the file pattern).")
    if isinstance(exc, OSError):
        return DownloadError(f"Could not save {repo_id}: {exc.strerror or exc}. Check free disk space and permissions.")
    return DownloadError(f"Downloading {repo_id} failed: {exc}")


def _is_network(exc: BaseException) -> bool:
    """Connection/timeout errors of whichever HTTP client huggingface_hub uses (httpx, httpx2, requests)."""
    kinds: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for module, names in (
        ("httpx", ("TransportError",)),
        ("httpx2", ("TransportError",)),
        ("requests", ("ConnectionError", "Timeout")),
    ):
        try:
            mod = __import__(module)
        except ImportError:
            continue
        kinds.extend(getattr(mod, n) for n in names if isinstance(getattr(mod, n, None), type))
    return isinstance(exc, tuple(kinds))


def download(
    repo_id: str,
    models_dir: Path,
    *,
    revision: str | None = None,
    allow_patterns: str | list[str] | None = None,
    progress: Progress | None = None,
    token: str | None = None,
) -> Path:
    """Download ``repo_id`` (optionally only files matching ``allow_patterns``) into the models dir.

    Returns the model's folder. Raises DownloadError with a clear message; on any failure the
    temporary folder is removed and an existing copy of the model is left as it was.
    """
    from huggingface_hub import snapshot_download

    repo_id = parse_repo_id(repo_id)
    patterns: list[str] | None
    if isinstance(allow_patterns, str):
        patterns = [p.strip() for p in allow_patterns.split(",") if p.strip()] or None
    else:
        patterns = allow_patterns or None
    final = target_dir(models_dir, repo_id)
    try:
        models_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".download-{final.name}-", dir=models_dir))
    except OSError as exc:
        raise DownloadError(f"Cannot write to the models dir {models_dir}: {exc.strerror or exc}.") from exc
    report = progress or (lambda _f, _d: None)
    try:
        report(0.0, f"Contacting the Hub for {repo_id}")
        snapshot_download(
            repo_id,
            revision=revision or None,
            allow_patterns=patterns,
            local_dir=tmp,
            tqdm_class=_progress_class(report),
            token=token,
        )
        shutil.rmtree(tmp / ".cache", ignore_errors=True)  # huggingface_hub's bookkeeping
        files = [p for p in tmp.rglob("*") if p.is_file()]
        if not files:
            raise DownloadError(f"No file of {repo_id} matches {', '.join(patterns or [])}: nothing was downloaded.")
        _move_into_place(tmp, final)
    except DownloadError:
        raise
    except Exception as exc:  # noqa: BLE001 - every failure becomes one clear message
        raise _explain(exc, repo_id, revision) from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report(1.0, f"Downloaded {repo_id} to {final}")
    return final


def _move_into_place(tmp: Path, final: Path) -> None:
    """Merge the finished download into ``final`` (a second quant of a repo joins the first)."""
    if not final.exists():
        tmp.rename(final)
        return
    for src in sorted(tmp.rglob("*")):
        if src.is_file():
            dst = final / src.relative_to(tmp)
            dst.parent.mkdir(parents=True, exist_ok=True)
            src.replace(dst)
