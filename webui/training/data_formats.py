"""Reading a training data file into rows of TRL's shapes (see ``webui.training.types``).

Files: ``.jsonl``, ``.json`` (a list of rows, or an object holding one list of rows), ``.csv``,
``.parquet`` and ``.txt``. The row format is detected from the first row's keys and named:

==========================  ===============================================  ===========
format (``Dataset.format``)  keys                                             kind
==========================  ===============================================  ===========
Prompt/completion           ``prompt``, ``completion``                       sft
Prompt/response             ``prompt``, ``response``                         sft
Alpaca                      ``instruction``, ``output`` (+ ``input``)        sft
Chat (messages)             ``messages``: ``[{"role", "content"}]``          sft
ShareGPT                    ``conversations``: ``[{"from", "value"}]``       sft
Preference                  ``prompt``, ``chosen``, ``rejected``             preference
Text                        ``text`` (a ``.txt`` file: its paragraphs)       text
==========================  ===============================================  ===========

Every later row must have the first row's format. Decisions:

- A ``system`` string key on a prompt/completion, Alpaca or preference row becomes a leading
  system message. Alpaca's ``input``, when not blank, follows the instruction after a blank line.
- A chat message may carry ``"train": false`` (Axolotl's convention; ShareGPT's ``"weight": 0``
  means the same): it stays in the conversation as context, but its tokens are not trained.
- ``method="dpo"`` needs preference rows. ``method="sft"`` on preference rows trains on the prompt
  and the *chosen* answer (the format is then named "Preference (prompt + chosen, for SFT)").
- A ``.txt`` file becomes text rows: its paragraphs (split at blank lines), consecutive ones
  joined (with the blank line kept) up to :data:`TEXT_ROW_CHARS` characters, so every character of
  the file is in some row, in order; the tokenizer later splits long rows into blocks.
- Anything else raises :class:`~webui.errors.UserFacingError` with one line naming the file,
  the row (1-based; JSONL and TXT say "line") and the keys expected against the keys found.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import re
from pathlib import Path
from typing import Any

from webui.bounded_parse import load_json
from webui.errors import UserFacingError
from webui.training.types import DataKind, Dataset, Method

MAX_FILE_BYTES = 512 * 1024 * 1024  # a bigger file would not fit in memory as rows; split it
TEXT_ROW_CHARS = 4000  # .txt paragraphs are grouped into rows of about this many characters
SUFFIXES = (".jsonl", ".json", ".csv", ".parquet", ".txt")
ROLES = ("system", "user", "assistant")
SHAREGPT_ROLES = {"system": "system", "human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant"}

# (name, kind, keys that must be present, optional keys), tried in this order on the first row.
FORMATS: tuple[tuple[str, DataKind, tuple[str, ...], tuple[str, ...]], ...] = (
    ("Chat (messages)", "sft", ("messages",), ()),
    ("ShareGPT", "sft", ("conversations",), ()),
    ("Preference", "preference", ("prompt", "chosen", "rejected"), ("system",)),
    ("Alpaca", "sft", ("instruction", "output"), ("input", "system")),
    ("Prompt/completion", "sft", ("prompt", "completion"), ("system",)),
    ("Prompt/response", "sft", ("prompt", "response"), ("system",)),
    ("Text", "text", ("text",), ()),
)
EXPECTED = (
    "prompt+completion, prompt+response, instruction+input+output (Alpaca), messages (chat), "
    "conversations (ShareGPT), prompt+chosen+rejected (preference) or text"
)
SFT_FROM_PREFERENCE = "Preference (prompt + chosen, for SFT)"


class RowError(ValueError):
    """What is wrong with one row; the reader adds the file and row number."""


def dataset_sha256(kind: DataKind, rows: list[dict[str, Any]]) -> str:
    """A hash of the normalized rows: the same data gives the same hash whatever file it came from."""
    blob = json.dumps({"kind": kind, "rows": rows}, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def make_dataset(kind: DataKind, format: str, rows: list[dict[str, Any]], source: str) -> Dataset:
    return Dataset(kind=kind, format=format, rows=rows, source=source, sha256=dataset_sha256(kind, rows))


# -- reading files ----------------------------------------------------------------------------


def read_dataset(path: Path, *, method: Method = "sft", max_bytes: int = MAX_FILE_BYTES) -> Dataset:
    """The rows of a data file, converted to TRL's shapes; one clear UserFacingError otherwise."""
    path = Path(path)
    name = path.name
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        kinds = ", ".join(SUFFIXES)
        raise UserFacingError(f"{name}: unsupported file type {suffix or '(none)'!r}; use one of {kinds}.")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise UserFacingError(f"{name}: cannot read the file ({exc.strerror or exc}).") from exc
    if size > max_bytes:
        raise UserFacingError(
            f"{name}: the file is {_size(size)}, more than the {_size(max_bytes)} a dataset may have; "
            "split it or keep a sample."
        )
    if size == 0:
        raise UserFacingError(f"{name}: the file is empty.")
    if suffix == ".parquet":
        records = _parquet_rows(path)
        label = "row"
    elif suffix == ".txt":
        return _text_dataset(_decode(path), name, method)
    else:
        text = _decode(path)
        if suffix == ".jsonl":
            records, label = _jsonl_rows(text, name), "line"
        elif suffix == ".json":
            records, label = _json_rows(text, name), "row"
        else:
            records, label = _csv_rows(text, name), "row"
    if not records:
        raise UserFacingError(f"{name}: the file holds no rows.")
    return convert_rows(records, name, method=method, label=label)


def _size(n: int) -> str:
    return f"{n / 2**20:.0f} MiB" if n >= 2**20 else f"{n / 2**10:.0f} KiB"


def _decode(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserFacingError(f"{path.name}: cannot read the file ({exc.strerror or exc}).") from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserFacingError(f"{path.name}: not UTF-8 text (a bad byte at offset {exc.start}).") from exc


def _jsonl_rows(text: str, name: str) -> list[tuple[int, Any]]:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append((number, load_json(line)))
        except json.JSONDecodeError as exc:
            raise UserFacingError(f"{name}, line {number}: not valid JSON ({exc.msg}, column {exc.colno}).") from exc
    return rows


def _json_rows(text: str, name: str) -> list[tuple[int, Any]]:
    try:
        value = load_json(text)
    except json.JSONDecodeError as exc:
        raise UserFacingError(f"{name}: not valid JSON ({exc.msg}, line {exc.lineno} column {exc.colno}).") from exc
    if isinstance(value, dict):
        lists = [v for v in value.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise UserFacingError(
                f"{name}: expected a list of rows, or an object holding one list of rows; found an object with "
                f"keys {_keys(value)}."
            )
        value = lists[0]
    if not isinstance(value, list):
        raise UserFacingError(f"{name}: expected a list of rows; found {type(value).__name__}.")
    return list(enumerate(value, start=1))


def _csv_rows(text: str, name: str) -> list[tuple[int, Any]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    rows: list[tuple[int, Any]] = []
    try:
        for number, row in enumerate(reader, start=1):
            if None in row:
                raise UserFacingError(f"{name}, row {number}: more values than the header has columns.")
            rows.append((number, {k.strip(): _cell(v) for k, v in row.items() if k is not None}))
    except csv.Error as exc:
        raise UserFacingError(f"{name}, row {len(rows) + 1}: not valid CSV ({exc}).") from exc
    if not reader.fieldnames:
        raise UserFacingError(f"{name}: no header row; the first row must name the columns ({EXPECTED}).")
    return rows


def _cell(value: str | None) -> Any:
    """A CSV cell; one holding a JSON list of objects (messages, conversations) is parsed."""
    if value is None:
        return ""
    stripped = value.strip()
    if stripped.startswith("[{") and stripped.endswith("}]"):
        try:
            parsed = load_json(stripped)
        except json.JSONDecodeError:
            return value
        if isinstance(parsed, list) and all(isinstance(item, dict) for item in parsed):
            return parsed
    return value


def _parquet_rows(path: Path) -> list[tuple[int, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise UserFacingError(f"{path.name}: not a readable Parquet file ({exc}).") from exc
    return list(enumerate(table.to_pylist(), start=1))


def _text_dataset(text: str, name: str, method: Method) -> Dataset:
    if method == "dpo":
        raise UserFacingError(f"{name}: DPO needs preference rows (prompt+chosen+rejected); a .txt file is plain text.")
    paragraphs = [p for p in re.split(r"\n[ \t]*\n", text.replace("\r\n", "\n")) if p.strip()]
    if not paragraphs:
        raise UserFacingError(f"{name}: the file holds only blank lines.")
    rows: list[dict[str, Any]] = []
    current: list[str] = []
    for paragraph in paragraphs:
        if current and sum(len(p) + 2 for p in current) + len(paragraph) > TEXT_ROW_CHARS:
            rows.append({"text": "\n\n".join(current)})
            current = []
        current.append(paragraph.strip("\n"))
    rows.append({"text": "\n\n".join(current)})
    return make_dataset("text", "Text (.txt)", rows, name)


# -- converting rows ----------------------------------------------------------------------------


def convert_rows(records: list[tuple[int, Any]], name: str, *, method: Method = "sft", label: str = "row") -> Dataset:
    """Detect the format from the first row, convert every row; ``records`` are (row number, value)."""
    first_number, first = records[0]
    if not isinstance(first, dict):
        raise UserFacingError(f"{name}, {label} {first_number}: expected an object with keys {EXPECTED}; "
                              f"found {type(first).__name__}.")
    fmt = next((f for f in FORMATS if all(k in first for k in f[2])), None)
    if fmt is None:
        raise UserFacingError(f"{name}, {label} {first_number}: expected keys {EXPECTED}; found {_keys(first)}.")
    fmt_name, kind, required, _optional = fmt
    if method == "dpo" and kind != "preference":
        raise UserFacingError(
            f"{name}: DPO needs preference rows with keys prompt+chosen+rejected; this file is {fmt_name} "
            f"(keys {_keys(first)})."
        )
    rows = []
    for number, record in records:
        if not isinstance(record, dict) or not all(k in record for k in required):
            found = _keys(record) if isinstance(record, dict) else type(record).__name__
            raise UserFacingError(
                f"{name}, {label} {number}: expected keys {'+'.join(required)} ({fmt_name}, as in {label} "
                f"{first_number}); found {found}."
            )
        try:
            rows.append(_convert(fmt_name, record))
        except RowError as exc:
            raise UserFacingError(f"{name}, {label} {number} ({fmt_name}): {exc}") from None
    if kind == "preference" and method == "sft":
        rows = [{"messages": [*r["prompt"], {"role": "assistant", "content": r["chosen"]}]} for r in rows]
        return make_dataset("sft", SFT_FROM_PREFERENCE, rows, name)
    return make_dataset(kind, fmt_name, rows, name)


def _convert(fmt: str, r: dict[str, Any]) -> dict[str, Any]:
    if fmt == "Chat (messages)":
        return {"messages": conversation(r["messages"], "messages", "role", "content", dict(zip(ROLES, ROLES)))}
    if fmt == "ShareGPT":
        return {"messages": conversation(r["conversations"], "conversations", "from", "value", SHAREGPT_ROLES)}
    if fmt == "Text":
        return {"text": _text(r, "text")}
    system = _system(r)
    if fmt == "Preference":
        prompt = _prompt_messages(r["prompt"])
        if system and prompt[0]["role"] != "system":
            prompt.insert(0, system)
        return {"prompt": prompt, "chosen": _answer(r["chosen"], "chosen"),
                "rejected": _answer(r["rejected"], "rejected")}
    if fmt == "Alpaca":
        instruction = _text(r, "instruction")
        extra = r.get("input")
        if extra is not None and not isinstance(extra, str):
            raise RowError(f"the field 'input' must be text; found {type(extra).__name__}.")
        user = instruction + (f"\n\n{extra.strip()}" if extra and extra.strip() else "")
        answer = _text(r, "output")
    else:
        answer_key = "completion" if fmt == "Prompt/completion" else "response"
        prompt_messages = _prompt_messages(r["prompt"])
        answer = _answer(r[answer_key], answer_key)
        return {"messages": [*([system] if system else []), *prompt_messages, {"role": "assistant", "content": answer}]}
    return {"messages": [*([system] if system else []), {"role": "user", "content": user},
                         {"role": "assistant", "content": answer}]}


def _system(r: dict[str, Any]) -> dict[str, str] | None:
    value = r.get("system")
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise RowError(f"the field 'system' must be text; found {type(value).__name__}.")
    return {"role": "system", "content": value}


def _text(r: dict[str, Any], key: str) -> str:
    value = r[key]
    if not isinstance(value, str):
        raise RowError(f"the field {key!r} must be text; found {type(value).__name__}.")
    if not value.strip():
        raise RowError(f"the field {key!r} is empty.")
    return value


def _prompt_messages(value: Any) -> list[dict[str, Any]]:
    """A prompt: a string (one user message) or a list of messages ending with the user's."""
    if isinstance(value, str):
        if not value.strip():
            raise RowError("the field 'prompt' is empty.")
        return [{"role": "user", "content": value}]
    messages = conversation(value, "prompt", "role", "content", dict(zip(ROLES, ROLES)), need_assistant=False)
    messages = [{"role": m["role"], "content": m["content"]} for m in messages]  # a prompt is all context
    if messages[-1]["role"] != "user":
        raise RowError(f"the prompt's last message must be the user's; found role {messages[-1]['role']!r}.")
    return messages


def _answer(value: Any, key: str) -> str:
    """A completion: a string, or a list holding one assistant message."""
    if isinstance(value, list):
        if len(value) != 1 or not isinstance(value[0], dict) or value[0].get("role", "assistant") != "assistant":
            raise RowError(f"the field {key!r} must be text or a list of one assistant message.")
        value = value[0].get("content")
    if not isinstance(value, str):
        raise RowError(f"the field {key!r} must be text; found {type(value).__name__}.")
    if not value.strip():
        raise RowError(f"the field {key!r} is empty.")
    return value


def conversation(
    value: Any, key: str, role_key: str, content_key: str, roles: dict[str, str], *, need_assistant: bool = True
) -> list[dict[str, Any]]:
    """A list of messages as ``{"role", "content"}`` (+ ``"train": False`` when a message is context only).

    System messages may only open the conversation; at least one assistant message is needed
    when ``need_assistant`` (nothing would be trained otherwise).
    """
    if not isinstance(value, list) or not value:
        raise RowError(f"the field {key!r} must be a non-empty list of messages.")
    messages: list[dict[str, Any]] = []
    for i, item in enumerate(value, start=1):
        if not isinstance(item, dict) or role_key not in item or content_key not in item:
            found = _keys(item) if isinstance(item, dict) else type(item).__name__
            raise RowError(f"message {i} of {key!r}: expected keys {role_key}+{content_key}; found {found}.")
        role = roles.get(str(item[role_key]).strip().lower()) if isinstance(item[role_key], str) else None
        if role is None:
            raise RowError(f"message {i} of {key!r}: unknown {role_key} {item[role_key]!r}; "
                           f"expected one of {', '.join(sorted(roles))}.")
        if role == "system" and messages and any(m["role"] != "system" for m in messages):
            raise RowError(f"message {i} of {key!r}: a system message may only open the conversation.")
        content = _content(item[content_key])
        if content is None:
            raise RowError(f"message {i} of {key!r}: {content_key!r} must be text; "
                           f"found {type(item[content_key]).__name__}.")
        if not content.strip():
            raise RowError(f"message {i} of {key!r}: {content_key!r} is empty.")
        message: dict[str, Any] = {"role": role, "content": content}
        if item.get("train") is False or item.get("weight") in (0, 0.0):
            message["train"] = False
        messages.append(message)
    if need_assistant and not any(m["role"] == "assistant" for m in messages):
        raise RowError(f"{key!r} has no assistant message, so nothing would be trained.")
    return messages


def _content(value: Any) -> str | None:
    """Text content; a list of blocks ``[{"type": "text", "text": ...}]`` (Gradio, OpenAI) is joined."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(b, dict) and isinstance(b.get("text"), str) for b in value):
        return "".join(b["text"] for b in value)
    return None


def _keys(value: dict[str, Any]) -> str:
    return "[" + ", ".join(str(k) for k in value) + "]" if value else "no keys"


# -- validation split --------------------------------------------------------------------------


def split_validation(dataset: Dataset, fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    """(training part, validation part): a seeded random ``fraction`` of the rows held out.

    At least one row is held out and at least one kept, so a dataset of fewer than 2 rows cannot be
    split (UserFacingError: give a validation file, or set the fraction to 0). Both parts keep the
    rows' order. ``fraction`` 0 gives an empty validation part.
    """
    if not 0 <= fraction < 1:
        raise UserFacingError(f"The validation fraction must be at least 0 and below 1; got {fraction}.")
    n = len(dataset.rows)
    if fraction == 0:
        return dataset, make_dataset(dataset.kind, dataset.format, [], f"{dataset.source} (no validation rows)")
    if n < 2:
        raise UserFacingError(
            f"{dataset.source}: {n} row{'s' if n != 1 else ''} cannot be split into training and validation "
            "parts; add rows, give a validation file, or set the validation fraction to 0."
        )
    n_val = min(n - 1, max(1, round(n * fraction)))
    held = set(random.Random(seed).sample(range(n), n_val))
    train = [r for i, r in enumerate(dataset.rows) if i not in held]
    val = [r for i, r in enumerate(dataset.rows) if i in held]
    return (
        make_dataset(dataset.kind, dataset.format, train, dataset.source),
        make_dataset(dataset.kind, dataset.format, val, f"{dataset.source} (validation {n_val} of {n} rows)"),
    )
