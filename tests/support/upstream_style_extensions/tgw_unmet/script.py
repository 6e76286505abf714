"""Needs a package that is not installed."""

import no_such_package_for_webui_tests  # noqa: F401

params = {"activate": True}
