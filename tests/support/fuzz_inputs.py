"""Hostile inputs for every loader and importer, shared by the fuzz tests and ``bench/fuzz.py``.

Each :class:`Target` pairs a hypothesis strategy with a ``run`` function that feeds one input to
one loader the way the app does. The contract every target checks: an input either loads or
raises the project's user-facing error (``webui.errors.UserFacingError``; for the API a 4xx with
the OpenAI-shaped JSON error body), never anything else. :func:`outcome` classifies one run.

The strategies are structured: valid files with a few fields mutated (a wrong type in any
field, a key dropped or added, at any depth), plus random bytes, random JSON and YAML with the
constructs that break naive loaders (anchors and aliases, tags, dates, binary, deep nesting).
"""

from __future__ import annotations

import base64
import copy
import io
import json
import struct
import traceback
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

from webui.errors import UserFacingError

LOADED, USER_ERROR, OTHER = "loaded", "user-facing error", "other exception"

# -------------------------------------------------------------------------------- base values

V2_CARD: dict[str, Any] = {
    "spec": "chara_card_v2", "spec_version": "2.0", "name": "Mira", "description": "mirror",
    "data": {
        "name": "Mira", "description": "A mirror spirit.", "personality": "calm", "scenario": "a hall",
        "first_mes": "Hello {{user}}.", "mes_example": "<START>\n{{char}}: hi", "creator_notes": "",
        "system_prompt": "", "post_history_instructions": "", "alternate_greetings": ["Hi", "Yo"],
        "tags": ["fantasy"], "creator": "me", "character_version": "1", "extensions": {"depth_prompt": {}},
        "character_book": {
            "name": "lore", "scan_depth": 4, "token_budget": 100, "recursive_scanning": True, "extensions": {},
            "entries": [
                {"keys": ["hall", "mirror"], "content": "The hall is old.", "extensions": {"scan_depth": 2},
                 "enabled": True, "insertion_order": 10, "case_sensitive": False, "priority": 5, "id": 1,
                 "selective": True, "secondary_keys": ["old"], "constant": False, "position": "after_char"},
                {"keys": ["^mi.*"], "content": "Regex entry.", "use_regex": True, "extensions": {},
                 "enabled": True, "insertion_order": 1},
            ],
        },
    },
}
V3_CARD: dict[str, Any] = {
    "spec": "chara_card_v3", "spec_version": "3.0",
    "data": {**copy.deepcopy(V2_CARD["data"]), "nickname": "M", "group_only_greetings": ["All"],
             "source": ["https://example.org"], "creation_date": 1700000000, "modification_date": 1700000001,
             "assets": [{"type": "icon", "uri": "ccdefault:", "name": "main", "ext": "png"}],
             "creator_notes_multilingual": {"en": "notes"}},
}
V1_CARD: dict[str, Any] = {"name": "Tess", "description": "d", "personality": "p", "scenario": "s",
                           "first_mes": "Hi", "mes_example": "", "tags": "a, b", "creatorcomment": "c"}
OOBA_CARD: dict[str, Any] = {"char_name": "Ooba", "char_persona": "persona", "char_greeting": "Hello",
                             "world_scenario": "w", "example_dialogue": "e", "context": "ctx", "greeting": "g"}
CARDS = (V2_CARD, V3_CARD, V1_CARD, OOBA_CARD)

OUR_CHAT: dict[str, Any] = {
    "format": None,  # filled with EXPORT_FORMAT by chat_files()
    "title": "A chat", "character": "Mira", "created_at": "2024-01-02T03:04:05", "updated_at": "2024-01-02",
    "settings": {"mode": "chat", "persona": "", "greeting": 1, "template": "", "params": {"temperature": 0.5}},
    "messages": [
        {"role": "system", "versions": ["Be kind."], "active_version": 0},
        {"role": "user", "versions": ["Hi"], "active_version": 0},
        {"role": "assistant", "versions": ["Hello", "Hey"], "active_version": 1},
    ],
}
OOBA_CHAT: dict[str, Any] = {"internal": [["<|BEGIN-VISIBLE-CHAT|>", "Hello"], ["Hi", "How are you?"]],
                             "visible": [["", "Hello"], ["Hi", "How are you?"]]}
PRESET: dict[str, Any] = {"temperature": 0.7, "top_p": 0.9, "top_k": 40, "repetition_penalty": 1.1,
                          "max_new_tokens": 200, "stop": ["\n\n"], "seed": 3}
EXT_PARAMS: dict[str, Any] = {"enabled": True, "count": 3, "ratio": 0.5, "text": "hi", "names": ["a", "b"],
                              "mode": "fast", "blob": {"x": 1}}
EXT_META: dict[str, dict[str, Any]] = {"count": {"min": 0, "max": 10}, "mode": {"choices": ["fast", "slow"]},
                                       "ratio": {"min": 0.0, "max": 1.0}}
TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] | trim }}\n{% endfor %}"
            "{% if add_generation_prompt %}<|assistant|>{% endif %}")

# -------------------------------------------------------------------------------- strategies

SCALARS = (
    st.none() | st.booleans() | st.integers() | st.integers(-3, 3) | st.text(max_size=20)
    | st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(["", " ", "chara_card_v2", "chat", "user"])
)
JSON_VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
# What YAML (SafeLoader) can produce beyond JSON: dates, bytes (!!binary), sets.
YAML_SCALARS = SCALARS | st.dates() | st.datetimes() | st.binary(max_size=12)
YAML_VALUES = st.recursive(YAML_SCALARS, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8) | st.integers(), inner, max_size=4), max_leaves=12)
YAML_SNIPPETS = (
    "&a [1, 2]", "*a", "!!binary aGVsbG8=", "!!set {a, b}", "2020-01-01", "2020-01-01 10:00:00", "? [a, b]\n: c",
    "<<: {x: 1}", "!!python/object:os.system ls", "~", ".inf", ".nan", "0x1F", "0o17", "1_000", "|\n  block",
    "{a: 1, a: 2}", "[1, [2, [3]]]", "'quoted'", '"\\u0000"', "!!str 5", "!!int x", "- a\n- b", "@bad", "%YAML 1.1",
    "&x {k: *x}", "--- a\n--- b",
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path (keys / indexes) to a value inside ``value``, in a stable order."""
    yield prefix
    if isinstance(value, dict):
        for key in value:
            yield from _paths(value[key], (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*prefix, index))


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        value = value[key]
    return value


@st.composite
def mutated(draw: st.DrawFn, base: Any, values: st.SearchStrategy[Any] = JSON_VALUES) -> Any:
    """``base`` with 0-3 changes: a value replaced by any other (usually of the wrong type), a key
    or item removed, or a key added; each anywhere in the tree."""
    value = copy.deepcopy(base)
    for _ in range(draw(st.integers(0, 3))):
        path = draw(st.sampled_from(list(_paths(value))))
        if not path:
            return draw(values)
        parent, key = _at(value, path[:-1]), path[-1]
        action = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if action == "replace":
            parent[key] = draw(values)
        elif action == "delete":
            del parent[key]
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=10) | st.sampled_from(list(parent)))] = draw(values)
        else:
            parent.append(draw(values))
    return value


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)  # NaN/Infinity included: json.loads accepts them


def _deep(levels: int, opener: str = "[", closer: str = "]") -> str:
    return opener * levels + closer * levels


HOSTILE_TEXTS = st.sampled_from([
    _deep(100_000), _deep(150), '{"a":' * 5000 + "1" + "}" * 5000, "", " ", "null", "[]", "1", '"x"', "\ufeff{}",
])


def json_files(bases: tuple[Any, ...]) -> st.SearchStrategy[bytes]:
    """JSON bytes: mutated ``bases`` (most), random JSON, hostile texts, random bytes, truncations."""
    texts = st.one_of(
        st.sampled_from(bases).flatmap(mutated).map(_json_text),
        st.sampled_from(bases).flatmap(mutated).map(_json_text).flatmap(
            lambda t: st.integers(0, len(t)).map(lambda n: t[:n])),
        JSON_VALUES.map(_json_text),
        HOSTILE_TEXTS,
    )
    return st.one_of(texts.map(lambda t: t.encode("utf-8")), st.binary(max_size=64))


def _yaml_text(value: Any) -> str:
    try:
        return yaml.safe_dump(value, allow_unicode=True)
    except yaml.YAMLError:  # a value safe_dump cannot write (it can write every YAML_VALUES value today)
        return _json_text(str(value))


@st.composite
def yaml_snippet_doc(draw: st.DrawFn, keys: tuple[str, ...]) -> str:
    """A document of ``key: snippet`` lines mixing real field names with YAML's odd constructs."""
    lines = [f"{draw(st.sampled_from(keys))}: {draw(st.sampled_from(YAML_SNIPPETS))}"
             for _ in range(draw(st.integers(1, 5)))]
    return "\n".join(lines) + "\n"


def billion_laughs(levels: int = 9) -> str:
    """The YAML alias bomb: ``levels`` anchors of nine aliases each (9**levels values expanded)."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]")
    return "\n".join(lines) + "\nname: bomb\ndescription: *a{}\n".format(levels - 1)


def yaml_files(bases: tuple[Any, ...], keys: tuple[str, ...]) -> st.SearchStrategy[bytes]:
    """YAML bytes: mutated ``bases`` (with YAML-only values), snippet documents, bombs, random."""
    texts = st.one_of(
        st.sampled_from(bases).flatmap(lambda b: mutated(b, YAML_VALUES)).map(_yaml_text),
        yaml_snippet_doc(keys),
        YAML_VALUES.map(_yaml_text),
        st.sampled_from([billion_laughs(), _deep(100_000), "a: &x [1, *x]\n", "- !!binary /w==\n"]),
        st.text(max_size=80),
    )
    return st.one_of(texts.map(lambda t: t.encode("utf-8")), st.binary(max_size=64))


# -------------------------------------------------------------------------------- PNG cards


@cache
def small_png() -> bytes:
    """A 2x2 PNG with no text chunks (built once)."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (2, 2), (1, 2, 3)).save(out, "PNG")
    return out.getvalue()


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _text_chunk(kind: str, keyword: str, text: bytes) -> bytes:
    key = keyword.encode("latin-1")
    if kind == "zTXt":
        return _chunk(b"zTXt", key + b"\0\0" + zlib.compress(text))
    if kind == "iTXt":
        return _chunk(b"iTXt", key + b"\0\0\0\0\0" + text)
    return _chunk(b"tEXt", key + b"\0" + text)


@st.composite
def png_cards(draw: st.DrawFn) -> bytes:
    """A card PNG: 1-2 text chunks (``chara``/``ccv3``/other; base64 JSON, raw JSON or junk),
    sometimes with a byte flipped or the file cut short."""
    chunks = []
    for _ in range(draw(st.integers(0, 2))):
        card = draw(st.sampled_from(CARDS).flatmap(mutated))
        payload = draw(st.sampled_from(["b64", "b64", "raw", "junk", "b64-junk"]))
        text = _json_text(card).encode("utf-8")
        body = {"b64": base64.b64encode(text), "raw": text, "junk": draw(st.binary(max_size=40)),
                "b64-junk": base64.b64encode(draw(st.binary(max_size=40)))}[payload]
        if payload == "raw" and draw(st.booleans()):
            body = base64.b64encode(_deep(5000).encode())
        keyword = draw(st.sampled_from(["chara", "ccv3", "CHARA", "comment", "chara\0x"]))
        kind = draw(st.sampled_from(["tEXt", "tEXt", "zTXt", "iTXt"]))
        if kind == "tEXt" and payload == "raw":
            body = body.decode("utf-8").encode("latin-1", errors="replace")
        chunks.append(_text_chunk(kind, keyword, body))
    png = small_png()
    data = png[:-12] + b"".join(chunks) + png[-12:]  # the text chunks before IEND
    damage = draw(st.sampled_from(["none", "none", "none", "flip", "cut", "header"]))
    if damage == "flip":
        i = draw(st.integers(0, len(data) - 1))
        data = data[:i] + bytes([data[i] ^ draw(st.integers(1, 255))]) + data[i + 1:]
    elif damage == "cut":
        data = data[: draw(st.integers(0, len(data)))]
    elif damage == "header":
        data = draw(st.sampled_from([b"GIF89a", b"\xff\xd8\xff", b"", b"\x89PNG\r\n\x1a\n"])) + data[8:]
    return data


# -------------------------------------------------------------------------------- GGUF


@st.composite
def gguf_files(draw: st.DrawFn) -> bytes:
    """A GGUF header (magic, version, counts) with mutations, then some bytes; or random bytes."""
    if draw(st.integers(0, 4)) == 0:
        return draw(st.binary(max_size=40))
    magic = draw(st.sampled_from([b"GGUF", b"GGUF", b"GGML", b"FUGG", b"GGU"]))
    version = draw(st.sampled_from([1, 2, 3, 4, 0, 2**31, 0x03000000]) | st.integers(0, 2**32 - 1))
    tensors = draw(st.integers(0, 300) | st.integers(0, 2**64 - 1))
    entries = draw(st.integers(0, 300) | st.integers(0, 2**64 - 1))
    header = magic + struct.pack("<IQQ", version, tensors, entries)
    header = header[: draw(st.integers(0, len(header)))] if draw(st.integers(0, 5)) == 0 else header
    return header + draw(st.binary(max_size=400))


# -------------------------------------------------------------------------------- targets


class Workspace:
    """Where a target writes its files (one folder per target run), and a database made once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._repo: Any = None

    def repo(self) -> Any:
        if self._repo is None:
            from webui.storage.db import open_database, sqlite_url
            from webui.storage.repository import ChatRepository

            self._repo = ChatRepository(open_database(sqlite_url(self.path)))
        return self._repo


@dataclass(frozen=True)
class Target:
    """One loader under fuzz: inputs, and how the app feeds one to it (in a Workspace)."""

    name: str
    inputs: st.SearchStrategy[Any]
    run: Callable[[Any, Workspace], object]
    valid: Any  # an input that loads: proves the harness reaches the loader's success path


CARD_KEYS = ("spec", "data", "name", "description", "first_mes", "tags", "character_book", "extensions",
             "alternate_greetings", "char_name", "context", "greeting")


def _use_character(character: Any) -> None:
    """What the app does with a loaded card: export it (JSON and PNG) and scan its lorebook."""
    from webui.chat.cards import export_card_json, export_card_png
    from webui.chat.lorebook import activate_entries

    for spec in ("v2", "v3"):
        json.dumps(export_card_json(character, spec))
    export_card_png(character, "v3")
    if character.character_book is not None:
        activate_entries(character.character_book, ["the hall mirror is old", "Mira"], count_tokens=len)


def _load_card(suffix: str) -> Callable[[bytes, Workspace], object]:
    def run(data: bytes, work: Workspace) -> object:
        from webui.chat.cards import load_character_bytes

        character = load_character_bytes(data, f"card{suffix}")
        _use_character(character)
        return character

    return run


def _load_card_file(data: bytes, work: Workspace) -> object:
    """A YAML card on disk with a sibling ``.png`` avatar (the flip side of the PNG target)."""
    from webui.chat.cards import load_character

    (work.path / "c.yaml").write_bytes(data)
    (work.path / "c.png").write_bytes(small_png()[: len(data) % 70])  # whole, or cut short
    character = load_character(work.path / "c.yaml")
    _use_character(character)
    return character


def _import_chat(data: bytes, work: Workspace) -> object:
    from webui.chat.transfer import parse_chat_file

    parsed = parse_chat_file(data, "chat.json")
    repo = work.repo()
    conv = repo.import_conversation(parsed, keep_dates=True)
    return repo.export_conversation(conv.id)


def chat_files() -> st.SearchStrategy[bytes]:
    from webui.storage.repository import EXPORT_FORMAT

    return json_files(({**OUR_CHAT, "format": EXPORT_FORMAT}, OOBA_CHAT))


def _load_preset(data: bytes, work: Workspace) -> object:
    from webui.generation.presets import PresetLibrary

    (work.path / "p.yaml").write_bytes(data)
    return PresetLibrary([work.path]).load("p")


def template_files() -> st.SearchStrategy[tuple[str, bytes]]:
    jinja = st.one_of(
        st.just(TEMPLATE),
        st.integers(0, len(TEMPLATE)).map(lambda n: TEMPLATE[:n] + TEMPLATE[n + 1:]),  # one character dropped
        st.sampled_from(["{{ 1 / 0 }}", "{{ messages + 1 }}", "{{ 'x' * 10**10 }}", "{{ 9 ** 9999999 }}",
                         "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "{{ raise_exception('no') }}",
                         "{{ messages[99] }}", "{{ ''.__class__ }}", "{% for i in range(10**9) %}{% endfor %}",
                         "{{ messages|map(attribute='x')|join }}", "{{ x.y.z }}", "{%", "{{ }}",
                         "{{ 'a'|int(none) }}"]),
        st.text(max_size=40),
    ).map(lambda t: (".jinja", t.encode("utf-8")))
    yamls = yaml_files(({"instruction_template": TEMPLATE},), ("instruction_template", "context", "user")).map(
        lambda b: (".yaml", b))
    raw = st.binary(max_size=40).map(lambda b: (".jinja", b))
    return st.one_of(jinja, yamls, raw)


def _render_template(item: tuple[str, bytes], work: Workspace) -> object:
    from webui.chat.instruct import InstructionTemplates

    suffix, data = item
    (work.path / f"t{suffix}").write_bytes(data)
    return InstructionTemplates(work.path).render("t", [{"role": "user", "content": "Hi"}])


def _load_ext_settings(data: bytes, work: Workspace) -> object:
    """An ``extensions.json`` as the manager reads it: each saved value coerced to its setting's type."""
    from webui.plugins.params import ParamError, infer_specs
    from webui.plugins.store import ENABLED_KEY, JsonFileStore

    (work.path / "extensions.json").write_bytes(data)
    store = JsonFileStore(work.path / "extensions.json")
    order = store.load(ENABLED_KEY).get("order")
    specs = infer_specs(EXT_PARAMS, EXT_META)
    values = {}
    for key, value in store.load("demo").items():
        spec = specs.get(key)
        if spec is not None:
            try:
                values[key] = spec.coerce(value)
            except ParamError:
                pass  # the manager keeps the default and warns; a ParamError is the expected refusal
    return order, values


def ext_settings_files() -> st.SearchStrategy[bytes]:
    saved = {"@enabled": {"order": ["demo", "other"]}, "demo": {k: v for k, v in EXT_PARAMS.items() if k != "blob"}}
    return json_files((saved,))


def _coerce_setting(item: tuple[str, Any], work: Workspace) -> object:
    """One value typed into the Extensions tab (or an API) for one setting."""
    from webui.plugins.params import infer_specs

    key, value = item
    return infer_specs(EXT_PARAMS, EXT_META)[key].coerce(value)


def setting_values() -> st.SearchStrategy[tuple[str, Any]]:
    return st.tuples(st.sampled_from([k for k in EXT_PARAMS if k != "blob"]),
                     JSON_VALUES | st.sampled_from(["1e400", "nan", "-inf", " 3 ", "[1]", '["fast"]', "yes"]))


def _check_gguf(data: bytes, work: Workspace) -> object:
    from webui.engine.llamacpp_backend import check_gguf_file

    path = work.path / "m.gguf"
    path.write_bytes(data)
    check_gguf_file(path)
    return path


def valid_png_card() -> bytes:
    png = small_png()
    return png[:-12] + _text_chunk("tEXt", "chara", base64.b64encode(_json_text(V2_CARD).encode())) + png[-12:]


def file_targets() -> list[Target]:
    """Every loader of a user's file, in-process (the API: api_client and api_requests)."""
    from webui.storage.repository import EXPORT_FORMAT

    our_chat = _json_text({**OUR_CHAT, "format": EXPORT_FORMAT}).encode()
    saved_settings = _json_text({"@enabled": {"order": ["demo"]}, "demo": {"count": 4, "mode": "slow"}}).encode()
    gguf = b"GGUF" + struct.pack("<IQQ", 3, 1, 2) + bytes(64)
    return [
        Target("card-json", json_files(CARDS), _load_card(".json"), _json_text(V2_CARD).encode()),
        Target("card-yaml", yaml_files(CARDS, CARD_KEYS), _load_card(".yaml"), _yaml_text(V3_CARD).encode()),
        Target("card-png", png_cards(), _load_card(".png"), valid_png_card()),
        Target("card-file", yaml_files(CARDS, CARD_KEYS), _load_card_file, _yaml_text(OOBA_CARD).encode()),
        Target("chat-import", chat_files(), _import_chat, our_chat),
        Target("preset", yaml_files((PRESET,), tuple(PRESET)), _load_preset, _yaml_text(PRESET).encode()),
        Target("instruct-template", template_files(), _render_template, (".jinja", TEMPLATE.encode())),
        Target("extension-settings-file", ext_settings_files(), _load_ext_settings, saved_settings),
        Target("extension-setting-value", setting_values(), _coerce_setting, ("ratio", "0.25")),
        Target("gguf-header", gguf_files(), _check_gguf, gguf),
    ]


# -------------------------------------------------------------------------------- outcomes


def outcome(target: Target, value: Any, work: Workspace) -> tuple[str, str]:
    """Run ``target`` on ``value``: (LOADED / USER_ERROR / OTHER, traceback text for OTHER)."""
    try:
        target.run(value, work)
    except UserFacingError:
        return USER_ERROR, ""
    except Exception:  # noqa: BLE001 - the point: anything else is what the fuzzing looks for
        return OTHER, traceback.format_exc()
    return LOADED, ""


def describe(value: Any, limit: int = 300) -> str:
    """A short repr of an input for a report."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"

