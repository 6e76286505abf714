"""Writes imported.txt next to itself when imported (a disabled extension must never be)."""

from pathlib import Path

Path(__file__).with_name("imported.txt").write_text("imported\n", encoding="utf-8")

params = {"level": 3}


def output_modifier(string):
    return string
