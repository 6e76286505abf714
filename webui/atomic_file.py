"""Write a file atomically: a crash mid-write leaves the old file, never half a new one.

A full disk (ENOSPC, or a quota: EDQUOT) leaves the old file too, and raises a
:class:`~webui.errors.DiskFullError` whose message says so, instead of a bare ``OSError``.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from webui.storage.failures import file_disk_full, is_disk_full


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a temp file beside ``path``, then rename it over ``path``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        if is_disk_full(exc):
            raise file_disk_full(exc, path) from exc
        raise
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and is_disk_full(exc):
            raise file_disk_full(exc, path) from exc
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """``text`` as UTF-8, written atomically (``write_bytes_atomic``)."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: Path, data: Any, **dump_kwargs: Any) -> None:
    """``data`` as indented JSON, written atomically (``write_bytes_atomic``)."""
    write_text_atomic(path, json.dumps(data, indent=2, **dump_kwargs))
