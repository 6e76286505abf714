"""Start-up with unusable saved model options: reported, loaded without them, and the saved options kept."""

from __future__ import annotations

import json
from pathlib import Path

from webui.config import load_settings
from webui.engine.catalog import embedded_model_path
from webui.engine.engine import Engine
from webui.engine.model_settings import FILE_NAME, load_at_startup
from webui.problems import Problems


def test_bad_saved_options_are_reported_not_erased(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    saved = {str(embedded_model_path()): {"loader": "llama.cpp", "options": {"n_ctx": -5, "threads": 1}}}
    (data / FILE_NAME).write_text(json.dumps(saved), encoding="utf-8")
    settings = load_settings({"data_dir": str(data)}, environ={})
    engine, problems = Engine(), Problems()
    try:
        info = load_at_startup(engine, settings, problems)
        assert info.loader == "llama.cpp" and engine.model is not None
    finally:
        engine.shutdown()
    reasons = [p.reason for p in problems.all()]
    assert len(reasons) == 1 and "Context size" in reasons[0], reasons
    # The hand-edited options are still there for the user to fix: the fallback load did not save over them.
    assert json.loads((data / FILE_NAME).read_text(encoding="utf-8")) == saved
