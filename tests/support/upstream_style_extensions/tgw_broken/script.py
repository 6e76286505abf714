"""Fails while it is imported."""

raise RuntimeError("tgw_broken fails on purpose")
