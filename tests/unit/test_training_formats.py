"""Reading training data files: every format detected, named and converted; every bad input one line."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from webui.errors import UserFacingError
from webui.training.data_formats import TEXT_ROW_CHARS, read_dataset, split_validation

QA = [("What is the capital of Zorbia?", "Quillton."), ("Who founded it?", "Ada Brell.")]
CHAT_ROWS = [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]} for q, a in QA]


def jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.mark.parametrize(
    ("rows", "fmt"),
    [
        ([{"prompt": q, "completion": a} for q, a in QA], "Prompt/completion"),
        ([{"prompt": q, "response": a} for q, a in QA], "Prompt/response"),
        ([{"instruction": q, "input": "", "output": a} for q, a in QA], "Alpaca"),
        ([{"instruction": q, "output": a} for q, a in QA], "Alpaca"),
        (CHAT_ROWS, "Chat (messages)"),
        ([{"conversations": [{"from": "human", "value": q}, {"from": "gpt", "value": a}]} for q, a in QA], "ShareGPT"),
    ],
)
def test_each_sft_format_becomes_the_same_conversations(tmp_path: Path, rows: list[dict], fmt: str) -> None:
    data = read_dataset(jsonl(tmp_path / "d.jsonl", rows))
    assert (data.kind, data.format, data.source) == ("sft", fmt, "d.jsonl")
    assert data.rows == CHAT_ROWS
    assert data.sha256 == read_dataset(jsonl(tmp_path / "again.jsonl", CHAT_ROWS)).sha256  # same rows, same hash


def test_alpaca_input_and_a_system_key(tmp_path: Path) -> None:
    row = {"instruction": "Translate", "input": "chat", "output": "cat", "system": "You translate French."}
    data = read_dataset(jsonl(tmp_path / "a.jsonl", [row]))
    assert data.rows == [{"messages": [
        {"role": "system", "content": "You translate French."},
        {"role": "user", "content": "Translate\n\nchat"},
        {"role": "assistant", "content": "cat"},
    ]}]


def test_sharegpt_system_and_weight_zero_is_context(tmp_path: Path) -> None:
    conv = [{"from": "system", "value": "Be terse."}, {"from": "human", "value": "Hi"},
            {"from": "gpt", "value": "Yo", "weight": 0}, {"from": "human", "value": "Bye"},
            {"from": "gpt", "value": "Ciao"}]
    data = read_dataset(jsonl(tmp_path / "s.jsonl", [{"conversations": conv}]))
    assert data.rows[0]["messages"] == [
        {"role": "system", "content": "Be terse."}, {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Yo", "train": False}, {"role": "user", "content": "Bye"},
        {"role": "assistant", "content": "Ciao"},
    ]


def test_preference_rows_for_dpo_and_for_sft(tmp_path: Path) -> None:
    rows = [
        {"prompt": "Greet me", "chosen": "Hello!", "rejected": "Go away."},
        {"prompt": [{"role": "system", "content": "Polite."}, {"role": "user", "content": "Bye"}],
         "chosen": [{"role": "assistant", "content": "Farewell."}],
         "rejected": [{"role": "assistant", "content": "Hm."}]},
    ]
    path = jsonl(tmp_path / "p.jsonl", rows)
    dpo = read_dataset(path, method="dpo")
    assert (dpo.kind, dpo.format) == ("preference", "Preference")
    assert dpo.rows == [
        {"prompt": [{"role": "user", "content": "Greet me"}], "chosen": "Hello!", "rejected": "Go away."},
        {"prompt": [{"role": "system", "content": "Polite."}, {"role": "user", "content": "Bye"}],
         "chosen": "Farewell.", "rejected": "Hm."},
    ]
    sft = read_dataset(path, method="sft")
    assert (sft.kind, sft.format) == ("sft", "Preference (prompt + chosen, for SFT)")
    assert sft.rows[0]["messages"] == [{"role": "user", "content": "Greet me"},
                                       {"role": "assistant", "content": "Hello!"}]
    assert "Go away." not in json.dumps(sft.rows)


def test_json_list_and_json_object_with_one_list(tmp_path: Path) -> None:
    rows = [{"prompt": q, "completion": a} for q, a in QA]
    (tmp_path / "list.json").write_text(json.dumps(rows))
    (tmp_path / "obj.json").write_text(json.dumps({"version": 2, "data": rows}))
    assert read_dataset(tmp_path / "list.json").rows == CHAT_ROWS
    assert read_dataset(tmp_path / "obj.json").rows == CHAT_ROWS


def test_csv_and_parquet(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = write_csv(tmp_path / "d.csv", ["instruction", "input", "output"], [[q, "", a] for q, a in QA])
    data = read_dataset(path)
    assert (data.format, data.rows) == ("Alpaca", CHAT_ROWS)
    # a CSV cell holding a JSON list of messages
    path = write_csv(tmp_path / "m.csv", ["messages"], [[json.dumps(r["messages"])] for r in CHAT_ROWS])
    assert read_dataset(path).rows == CHAT_ROWS
    path = write_csv(tmp_path / "lit.csv", ["prompt", "completion"], [["[1, 2, 3]", "[a list]"]])
    assert read_dataset(path).rows[0]["messages"][0] == {"role": "user", "content": "[1, 2, 3]"}  # text stays text

    pq.write_table(pa.Table.from_pylist(CHAT_ROWS), tmp_path / "d.parquet")
    data = read_dataset(tmp_path / "d.parquet")
    assert (data.format, data.rows) == ("Chat (messages)", CHAT_ROWS)
    pq.write_table(pa.Table.from_pylist([{"prompt": "p", "chosen": "c", "rejected": "r"}]), tmp_path / "p.parquet")
    assert read_dataset(tmp_path / "p.parquet", method="dpo").rows[0]["chosen"] == "c"


def test_text_file_keeps_every_paragraph_in_order(tmp_path: Path) -> None:
    paragraphs = [f"Paragraph {i}: " + "word " * 150 for i in range(12)]
    (tmp_path / "book.txt").write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")
    data = read_dataset(tmp_path / "book.txt")
    assert (data.kind, data.format) == ("text", "Text (.txt)")
    assert 1 < len(data.rows) < len(paragraphs)  # grouped, not one row per paragraph
    assert all(len(r["text"]) <= TEXT_ROW_CHARS for r in data.rows)
    assert "\n\n".join(r["text"] for r in data.rows) == "\n\n".join(paragraphs).rstrip("\n")
    with pytest.raises(UserFacingError, match="book.txt: DPO needs preference rows"):
        read_dataset(tmp_path / "book.txt", method="dpo")
    rows = read_dataset(jsonl(tmp_path / "docs.jsonl", [{"text": "One document."}, {"text": "Another."}]))
    assert (rows.kind, rows.format, rows.rows) == ("text", "Text", [{"text": "One document."}, {"text": "Another."}])


def bad(tmp_path: Path, name: str, content: str | list[Any], **kw: Any) -> str:
    path = tmp_path / name
    if isinstance(content, list):
        jsonl(path, content)
    else:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(UserFacingError) as info:
        read_dataset(path, **kw)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_bad_inputs_each_get_one_clear_line(tmp_path: Path) -> None:
    ok = {"prompt": "q", "completion": "a"}
    assert bad(tmp_path, "e.jsonl", "") == "e.jsonl: the file is empty."
    assert bad(tmp_path, "b.jsonl", "\n\n  \n") == "b.jsonl: the file holds no rows."
    assert bad(tmp_path, "j.jsonl", json.dumps(ok) + "\n{oops\n").startswith("j.jsonl, line 2: not valid JSON")
    message = bad(tmp_path, "k.jsonl", [ok, ok, {"question": "q", "answer": "a"}])
    assert message == ("k.jsonl, line 3: expected keys prompt+completion (Prompt/completion, as in line 1); "
                       "found [question, answer].")
    message = bad(tmp_path, "u.jsonl", [{"question": "q", "answer": "a"}])
    assert message == ("u.jsonl, line 1: expected keys prompt+completion, prompt+response, instruction+input+output "
                       "(Alpaca), messages (chat), conversations (ShareGPT), prompt+chosen+rejected (preference) or "
                       "text; found [question, answer].")
    assert bad(tmp_path, "x.jsonl", [ok, {"prompt": "q", "completion": "  "}]) == (
        "x.jsonl, line 2 (Prompt/completion): the field 'completion' is empty.")
    assert bad(tmp_path, "r.jsonl", [{"messages": [{"role": "user", "content": "hi"},
                                                   {"role": "bot", "content": "yo"}]}]) == (
        "r.jsonl, line 1 (Chat (messages)): message 2 of 'messages': unknown role 'bot'; "
        "expected one of assistant, system, user.")
    assert "has no assistant message" in bad(tmp_path, "n.jsonl", [{"messages": [{"role": "user", "content": "hi"}]}])
    assert "unknown from 'robot'" in bad(tmp_path, "s.jsonl", [{"conversations": [{"from": "robot", "value": "x"}]}])
    assert bad(tmp_path, "d.jsonl", [ok], method="dpo") == (
        "d.jsonl: DPO needs preference rows with keys prompt+chosen+rejected; this file is Prompt/completion "
        "(keys [prompt, completion]).")
    assert bad(tmp_path, "c.csv", "question,answer\nq,a\n").startswith("c.csv, row 1: expected keys")
    assert bad(tmp_path, "c2.csv", "prompt,completion\nq,a\nq2,\n") == (
        "c2.csv, row 2 (Prompt/completion): the field 'completion' is empty.")
    assert bad(tmp_path, "o.json", json.dumps({"a": [], "b": []})).startswith("o.json: expected a list of rows")
    assert bad(tmp_path, "bad.parquet", "not parquet").startswith("bad.parquet: not a readable Parquet file")
    assert bad(tmp_path, "data.xlsx", "x") == (
        "data.xlsx: unsupported file type '.xlsx'; use one of .jsonl, .json, .csv, .parquet, .txt.")
    (tmp_path / "latin.jsonl").write_bytes(b'{"prompt": "caf\xe9"}')
    with pytest.raises(UserFacingError, match=r"^latin.jsonl: not UTF-8 text \(a bad byte at offset 15\)\.$"):
        read_dataset(tmp_path / "latin.jsonl")
    deep = "[" * 500 + "]" * 500
    assert bad(tmp_path, "deep.jsonl", deep).startswith("deep.jsonl, line 1: not valid JSON (nested deeper")


def test_a_file_too_large_is_refused_before_reading(tmp_path: Path) -> None:
    path = jsonl(tmp_path / "big.jsonl", [{"prompt": "q" * 1000, "completion": "a"}] * 50)
    expected = r"^big.jsonl: the file is 50 KiB, more than the 10 KiB a dataset may have; split it or keep a sample\.$"
    with pytest.raises(UserFacingError, match=expected):
        read_dataset(path, max_bytes=10_000)


def test_validation_split_is_seeded_and_keeps_both_parts(tmp_path: Path) -> None:
    rows = [{"prompt": f"q{i}", "completion": f"a{i}"} for i in range(20)]
    data = read_dataset(jsonl(tmp_path / "d.jsonl", rows))
    train, val = split_validation(data, 0.1, seed=3)
    assert (len(train.rows), len(val.rows)) == (18, 2)
    assert sorted(map(json.dumps, train.rows + val.rows)) == sorted(map(json.dumps, data.rows))
    assert split_validation(data, 0.1, seed=3)[1].rows == val.rows  # deterministic
    assert split_validation(data, 0.1, seed=4)[1].rows != val.rows
    assert train.sha256 != data.sha256 and train.format == data.format
    two = read_dataset(jsonl(tmp_path / "two.jsonl", rows[:2]))
    assert [len(p.rows) for p in split_validation(two, 0.01, seed=0)] == [1, 1]  # at least one row held out
    one = read_dataset(jsonl(tmp_path / "one.jsonl", rows[:1]))
    with pytest.raises(UserFacingError, match="1 row cannot be split"):
        split_validation(one, 0.1, seed=0)
    assert split_validation(one, 0.0, seed=0)[1].rows == []
