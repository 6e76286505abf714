"""The reference for bench/serving.py: raw llama-cpp-python in a process of its own.

Reads one JSON request per line on stdin ({"messages", "max_tokens", "temperature", "top_p", "top_k",
"min_p", "seed"}), streams a reply with ``Llama.create_chat_completion`` (llama-cpp-python's own
chat path, with the model's own template: nothing of the app), and writes one JSON line:
{"ttft": seconds to the first token, "stamps": [seconds of each delta], "text": the reply}.

    python bench/raw_llama.py MODEL.gguf --n-ctx 4096 --threads 2
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--n-ctx", type=int, required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--n-batch", type=int, default=512)
    args = parser.parse_args()
    import llama_cpp

    llm = llama_cpp.Llama(args.model, n_ctx=args.n_ctx, n_threads=args.threads, n_batch=args.n_batch, verbose=False)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        # no reset: llama-cpp-python keeps the prompt prefix it shares with the last request, as the app does
        start = time.perf_counter()
        stamps: list[float] = []
        parts: list[str] = []
        for chunk in llm.create_chat_completion(
            req["messages"], max_tokens=req["max_tokens"], temperature=req["temperature"], top_p=req["top_p"],
            top_k=req["top_k"], min_p=req["min_p"], repeat_penalty=1.0, seed=req["seed"], stream=True,
        ):
            text = chunk["choices"][0]["delta"].get("content")
            if text:
                stamps.append(time.perf_counter() - start)
                parts.append(text)
        print(json.dumps({"ttft": stamps[0] if stamps else None, "stamps": stamps, "parts": parts}), flush=True)


if __name__ == "__main__":
    main()
