"""Tavern card PNG plumbing: read the card JSON out of a PNG, strip or add card text chunks.

Reading goes through Pillow (which validates the image); writing edits the chunk list directly, so
the picture's bytes are kept exactly and a card exported then re-imported gives the same picture.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import struct
import zlib
from collections.abc import Iterator
from typing import Any

from PIL import Image

from webui.bounded_parse import load_json
from webui.errors import CharacterError

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CARD_CHUNK_KEYWORDS = ("ccv3", "chara")  # in order of preference
_TEXT_CHUNK_TYPES = (b"tEXt", b"zTXt", b"iTXt")


def read_card_png(data: bytes, label: str) -> tuple[Any, bytes]:
    """Return (card JSON, picture without card chunks) from a Tavern card PNG."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.format != "PNG":
                raise CharacterError(f"{label} is not a PNG image (it is {img.format}); re-save it as PNG.")
            img.load()  # text chunks may sit after the image data
            texts = {str(k).lower(): str(v) for k, v in (getattr(img, "text", None) or {}).items()}
    except CharacterError:
        raise
    except (OSError, ValueError, SyntaxError, EOFError, struct.error, Image.DecompressionBombError) as exc:
        raise CharacterError(f"{label} is not a readable PNG image ({exc}).") from exc
    for keyword in CARD_CHUNK_KEYWORDS:
        if keyword in texts:
            return _decode_card_chunk(texts[keyword], keyword, label), strip_card_chunks(data, label)
    raise CharacterError(
        f"{label} is a PNG picture without a character card in it (no 'chara' or 'ccv3' text chunk). "
        "Export the card again from the app that made it, or use it as an avatar."
    )


def _decode_card_chunk(text: str, keyword: str, label: str) -> Any:
    text = "".join(text.split())
    if text.startswith("{"):
        payload = text  # a few old tools stored the JSON itself
    else:
        try:
            raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise CharacterError(f"{label}: the '{keyword}' chunk is not valid base64 ({exc}).") from exc
        try:
            payload = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CharacterError(f"{label}: the '{keyword}' chunk does not decode to UTF-8 text.") from exc
    try:
        return load_json(payload)
    except json.JSONDecodeError as exc:
        raise CharacterError(f"{label}: the '{keyword}' chunk does not hold valid JSON ({exc.msg}).") from exc


def _png_chunks(data: bytes, label: str = "The picture") -> Iterator[tuple[bytes, bytes, bytes]]:
    """Yield (type, payload, whole chunk bytes) of a PNG; raise CharacterError if it is malformed."""
    if not data.startswith(_PNG_SIGNATURE):
        raise CharacterError(f"{label} is not a PNG file.")
    pos = len(_PNG_SIGNATURE)
    while pos < len(data):
        if pos + 12 > len(data):
            raise CharacterError(f"{label} is a truncated PNG file.")
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        end = pos + 12 + length
        if end > len(data):
            raise CharacterError(f"{label} is a truncated PNG file.")
        kind = data[pos + 4 : pos + 8]
        yield kind, data[pos + 8 : pos + 8 + length], data[pos:end]
        pos = end
        if kind == b"IEND":
            return
    raise CharacterError(f"{label} is a PNG file without its end (IEND) chunk.")


def _is_card_chunk(kind: bytes, payload: bytes) -> bool:
    if kind not in _TEXT_CHUNK_TYPES:
        return False
    return payload.split(b"\0", 1)[0].decode("latin-1").lower() in CARD_CHUNK_KEYWORDS


def strip_card_chunks(png: bytes, label: str = "The picture") -> bytes:
    """The PNG without its ``chara``/``ccv3`` text chunks (the bare picture)."""
    return _PNG_SIGNATURE + b"".join(
        whole for kind, payload, whole in _png_chunks(png, label) if not _is_card_chunk(kind, payload)
    )


def text_chunk(keyword: str, text: str) -> bytes:
    payload = keyword.encode("latin-1") + b"\0" + text.encode("latin-1")
    return struct.pack(">I", len(payload)) + b"tEXt" + payload + struct.pack(">I", zlib.crc32(b"tEXt" + payload))


def add_chunks_before_end(png: bytes, extra: list[bytes]) -> bytes:
    parts = [_PNG_SIGNATURE]
    for kind, _payload, whole in _png_chunks(png):
        if kind == b"IEND":
            parts.extend(extra)
        parts.append(whole)
    return b"".join(parts)


def as_png(picture: bytes) -> bytes:
    """A PNG of ``picture`` (any format Pillow reads), unchanged when it already is one."""
    if picture.startswith(_PNG_SIGNATURE):
        return picture
    try:
        with Image.open(io.BytesIO(picture)) as img:
            img.load()
            out = io.BytesIO()
            img.convert("RGBA" if "A" in img.getbands() else "RGB").save(out, "PNG")
            return out.getvalue()
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
        raise CharacterError(f"The avatar is not a readable image ({exc}).") from exc


def placeholder_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (256, 384), (96, 96, 112)).save(out, "PNG")
    return out.getvalue()
