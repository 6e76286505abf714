"""text-generation-webui's ``modules`` package, for extensions written for it (never imported by the app).

Every value is read from the app through ``webui.compat.bridge.current()`` when it is used; see
docs/extensions.md, "Extensions written for text-generation-webui", for what works.
"""
