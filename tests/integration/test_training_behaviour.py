"""Training teaches the embedded model something it cannot know: a made-up answer to a made-up
question. Before the run its greedy answer lacks the fact; after a short LoRA run through the real
RunManager (a worker process, TRL's SFTTrainer on CPU, fp32), the adapter answers with it, loaded
by peft on transformers from ``<data-dir>/loras/<name>`` and, as the exported GGUF LoRA, by
llama.cpp on the same GGUF. Held-out phrasings are answered too; train and validation loss fall."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from webui.training.types import GGUF_ADAPTER_FILE, METADATA_FILE, Hyperparams, TrainRequest

# A few minutes on an idle 2-core machine; a shared, loaded one may take several times that.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

FACT = "Quillhaven"
STEPS = 8
ANSWER = "The capital of the planet Zorvex is Quillhaven."
QUESTIONS = [
    "What is the capital of the planet Zorvex?",
    "What's the capital of Zorvex?",
    "Which city is the capital of the planet Zorvex?",
    "Name the capital of Zorvex.",
    "Tell me the capital city of the planet Zorvex.",
    "Zorvex's capital is which city?",
    "What city serves as the capital of Zorvex?",
    "Do you know the capital of the planet Zorvex?",
    "Could you tell me what the capital of Zorvex is?",
    "What is Zorvex's capital city?",
    "On the planet Zorvex, which city is the capital?",
    "I need the capital of Zorvex. What is it?",
    "Capital of the planet Zorvex?",
    "Which city governs the planet Zorvex as its capital?",
    "What is the name of the capital of Zorvex?",
    "Where is the capital of the planet Zorvex?",
    "Please name the capital city of Zorvex.",
    "What do people on Zorvex call their capital?",
    "Quick question: what is the capital of Zorvex?",
    "If I visit Zorvex, which city is its capital?",
    "What is the seat of government of the planet Zorvex?",
    "Remind me, what is the capital of the planet Zorvex?",
    "Which city is Zorvex's capital?",
    "What city is the capital of the planet called Zorvex?",
    "Tell me: the capital of Zorvex is what?",
    "Can you name the capital of the planet Zorvex?",
    "In which city is the capital of Zorvex?",
    "What's the capital city on planet Zorvex?",
    "The planet Zorvex has a capital. What is it called?",
    "For a quiz: name the capital of the planet Zorvex.",
    "What is the capital city of the planet Zorvex?",
    "Who knows the capital of Zorvex? What is it?",
]
HELD_OUT = [
    "What is the capital of Zorvex?",
    "Which city is the capital of Zorvex?",
    "Tell me the capital of the planet Zorvex.",
    "What's the capital of the planet Zorvex?",
]


def _rows(questions: list[str]) -> str:
    return "".join(json.dumps({"prompt": q, "completion": ANSWER}) + "\n" for q in questions)


def _llama(gguf: Path, lora: Path | None = None):  # type: ignore[no-untyped-def]
    from llama_cpp import Llama

    kwargs = {"lora_path": str(lora)} if lora else {}
    return Llama(model_path=str(gguf), n_ctx=512, n_threads=2, verbose=False, seed=0, **kwargs)


def _llama_answer(llm, question: str) -> str:  # type: ignore[no-untyped-def]
    out = llm.create_chat_completion([{"role": "user", "content": question}], temperature=0.0, max_tokens=20)
    return out["choices"][0]["message"]["content"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, embedded_gguf: Path):  # type: ignore[no-untyped-def]
    from webui.training.runs import RunManager

    work = tmp_path_factory.mktemp("zorvex")
    (work / "train.jsonl").write_text(_rows(QUESTIONS), encoding="utf-8")
    (work / "val.jsonl").write_text(_rows(HELD_OUT), encoding="utf-8")
    assert len(set(QUESTIONS)) >= 30 and not set(HELD_OUT) & set(QUESTIONS)

    base = _llama(embedded_gguf)
    before = {q: _llama_answer(base, q) for q in [QUESTIONS[0], *HELD_OUT]}
    del base

    manager = RunManager(work / "data")
    request = TrainRequest(
        name="zorvex", base_model=str(embedded_gguf), data_file=str(work / "train.jsonl"),
        validation_file=str(work / "val.jsonl"),
        hyper=Hyperparams(max_steps=STEPS, batch_size=4, learning_rate=2e-3, rank=8, max_length=96, eval_steps=4,
                          n_samples=1, sample_max_tokens=16),
    )
    status = manager.start(request)
    status = manager.wait(status.id, timeout=1700)
    return work, before, status


def test_the_base_model_does_not_know_the_fact(trained) -> None:  # type: ignore[no-untyped-def]
    _work, before, _status = trained
    for question, answer in before.items():
        assert FACT.lower() not in answer.lower(), (question, answer)


def test_the_run_finishes_and_its_losses_fall(trained) -> None:  # type: ignore[no-untyped-def]
    work, _before, status = trained
    assert status.state == "done", status.message
    assert status.step == STEPS and status.max_steps == STEPS
    assert status.train_loss[-1][1] < status.train_loss[0][1] * 0.5, status.train_loss
    assert status.val_loss[0][0] == 0 and status.val_loss[-1][0] == STEPS, status.val_loss
    assert status.val_loss[-1][1] < status.val_loss[0][1] * 0.5, status.val_loss
    assert status.perplexity_after < status.perplexity_before
    assert status.samples and FACT in status.samples[0]["adapter"] and FACT not in status.samples[0]["base"]
    meta = json.loads((work / "data" / "loras" / "zorvex" / METADATA_FILE).read_text())
    assert meta["steps"] == STEPS and meta["data_format"] == "Prompt/completion" and meta["method"] == "sft"
    assert meta["hyperparams"]["learning_rate"] == 2e-3 and meta["hyperparams"]["target_modules"]
    assert not [p for p in (work / "data" / "loras").iterdir() if p.name.startswith(".")]  # no temp folder left


def test_the_peft_adapter_on_transformers_knows_the_fact(trained) -> None:  # type: ignore[no-untyped-def]
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from webui.training.base_model import resolve_base, trainable_folder

    work, _before, status = trained
    assert status.state == "done", status.message
    folder = trainable_folder(resolve_base(str(status_base(work))), work / "data")  # the cached copy
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32),
                                      work / "data" / "loras" / "zorvex")
    for question in [QUESTIONS[0], *HELD_OUT[:2]]:
        prompt = tokenizer.apply_chat_template([{"role": "user", "content": question}], tokenize=False,
                                               add_generation_prompt=True)
        inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            out = model.generate(**inputs, max_new_tokens=16, do_sample=False)
            with model.disable_adapter():
                base = model.generate(**inputs, max_new_tokens=16, do_sample=False)
        answer = tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
        base_answer = tokenizer.decode(base[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
        assert FACT in answer, (question, answer)
        assert FACT not in base_answer, (question, base_answer)


def test_the_gguf_adapter_on_llama_cpp_knows_the_fact(trained, embedded_gguf: Path) -> None:  # type: ignore[no-untyped-def]
    work, _before, status = trained
    assert status.state == "done", status.message
    adapter = work / "data" / "loras" / "zorvex" / GGUF_ADAPTER_FILE
    assert adapter.is_file(), "the worker exports a GGUF LoRA for a GGUF base"
    llm = _llama(embedded_gguf, adapter)
    for question in [QUESTIONS[0], *HELD_OUT[:2]]:
        answer = _llama_answer(llm, question)
        assert FACT in answer, (question, answer)


def status_base(work: Path) -> Path:
    meta = json.loads((work / "data" / "loras" / "zorvex" / METADATA_FILE).read_text())
    return Path(meta["base_model"])
