"""Drive UI events over Gradio's own queue protocol, as the browser does (no browser needed)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from html import unescape

import httpx


class GradioSession:
    """Calls UI events over Gradio's queue protocol, as the browser does, keeping every SSE message."""

    def __init__(self, url: str, session_hash: str, cookies: dict[str, str] | None = None) -> None:
        """``cookies``: sent with every request, as a browser sends its own (e.g. its identity cookie)."""
        self.url = url.rstrip("/")
        self.session_hash = session_hash
        self.cookies = dict(cookies or {})
        config = httpx.get(f"{self.url}/config", cookies=self.cookies).json()
        self.deps = config["dependencies"]
        self.components = {c["id"]: c for c in config["components"]}
        self.fn_index = {d.get("api_name"): i for i, d in enumerate(self.deps)}

    def page_load(self) -> None:
        """Run every on-load event, as opening the page does (fills the chat list and so on)."""
        for index, dep in enumerate(self.deps):
            if any(target[1] == "load" for target in dep["targets"]):
                self.run(index)

    def run(self, event: str | int, values: dict[str, object] | None = None) -> list[dict]:
        return [msg for _, msg in self.stream(event, values)]

    def stream(self, event: str | int, values: dict[str, object] | None = None) -> Iterator[tuple[float, dict]]:
        """Trigger an event (api_name or index); inputs take ``values`` by elem_id (or, for
        components without one, by label), else their default (None for states)."""
        index = event if isinstance(event, int) else self.fn_index[event]
        data = []
        for cid in self.deps[index]["inputs"]:
            comp = self.components[cid]
            props = comp.get("props", {})
            key = props.get("elem_id") or props.get("label")
            if values and key in values:
                data.append(values[key])
            else:
                data.append(None if comp.get("type") == "state" else comp.get("props", {}).get("value"))
        body = {"data": data, "fn_index": index, "session_hash": self.session_hash, "event_data": None,
                "trigger_id": None}
        if self.deps[index].get("queue") is False:  # runs at once, outside the queue
            response = httpx.post(f"{self.url}/gradio_api/run/predict", json=body, timeout=60, cookies=self.cookies)
            response.raise_for_status()
            yield time.perf_counter(), {"msg": "process_completed", "output": response.json()}
            return
        httpx.post(f"{self.url}/gradio_api/queue/join", json=body, cookies=self.cookies).raise_for_status()
        with httpx.stream(
            "GET", f"{self.url}/gradio_api/queue/data?session_hash={self.session_hash}", timeout=120,
            cookies=self.cookies,
        ) as stream:
            for line in stream.iter_lines():
                if line.startswith("data:"):
                    msg = json.loads(line[5:])
                    yield time.perf_counter(), msg
                    if msg.get("msg") == "process_completed":
                        break

    def element_index(self, event: str, elem_id: str) -> int:
        """Position of the component with ``elem_id`` among ``event``'s outputs."""
        outputs = self.deps[self.fn_index[event]]["outputs"]
        return outputs.index(
            next(cid for cid, c in self.components.items() if c.get("props", {}).get("elem_id") == elem_id)
        )

    def output(self, event: str, elem_id: str, messages: list[dict]) -> object:
        """The value ``event`` gave the component ``elem_id`` (from its completed message)."""
        done = next(m for m in reversed(messages) if m.get("msg") == "process_completed")
        value = done["output"]["data"][self.element_index(event, elem_id)]
        return value.get("value") if isinstance(value, dict) and "__type__" in value else value

    def live_reply(self, event: str, values: dict[str, object] | None = None) -> Iterator[tuple[float, dict]]:
        """Run a step that registers a reply (``prepare``, ``begin_regenerate``, ``begin_continue``) and
        read that reply's server-sent events as the page does: yields (arrival time, event payload)."""
        token = self.output(event, "live-token", self.run(event, values))
        assert token, f"{event} registered no reply"
        yield from self.read_live_reply(str(token))

    def read_live_reply(self, token: str) -> Iterator[tuple[float, dict]]:
        with httpx.stream("GET", f"{self.url}/live-reply/{token}", timeout=180, cookies=self.cookies) as response:
            response.raise_for_status()
            for line in response.iter_lines():
                if line.startswith("data:"):
                    payload = json.loads(line[5:])
                    yield time.perf_counter(), payload
                    if payload.get("done"):
                        return


def html_text(html: str) -> str:
    """The text a browser shows for an HTML fragment (tags dropped, entities decoded)."""
    return unescape(re.sub(r"<[^>]+>", "", html))
