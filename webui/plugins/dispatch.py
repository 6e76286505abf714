"""Pieces of hook dispatch that hold no manager state: argument checks, result shapes, guards."""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from webui.plugins.hookspecs import HOOKS, HookSpec
from webui.plugins.samplers import LogitsProcessor

# Called with (extension name, hook label, exception) when a hook fails.
OnFailure = Callable[[str, str, BaseException], None]


class HookResultError(TypeError):
    """A hook returned something of the wrong shape."""


@dataclass(frozen=True)
class Failure:
    """A hook that raised (or returned the wrong shape); shown in the Extensions tab."""

    extension: str
    hook: str
    message: str
    traceback: str
    time: float

    @classmethod
    def from_exception(cls, extension: str, hook: str, exc: BaseException, when: float) -> Failure:
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        return cls(extension, hook, f"{type(exc).__name__}: {exc}", tb, when)


def hook_spec(hook: str, kind: str) -> HookSpec:
    spec = HOOKS.get(hook)
    if spec is None or spec.kind != kind:
        raise ValueError(f"{hook!r} is not a {kind} hook")
    return spec


def complete_args(spec: HookSpec, args: Mapping[str, Any]) -> dict[str, Any]:
    """The caller's arguments with defaults filled in; TypeError for a caller's mistake."""
    missing = [a for a in spec.args if a not in args and a not in spec.defaults]
    unknown = [] if spec.extra_kwargs else [a for a in args if a not in spec.args]
    if missing or unknown:
        raise TypeError(f"{spec.signature_text()}: missing {missing}, unexpected {unknown}")
    return {**spec.defaults, **args}


def pipe_result(spec: HookSpec, result: Any) -> dict[str, Any]:
    """The piped arguments a hook's return value replaces; HookResultError for a wrong shape."""
    names = spec.returns
    if spec.name == "logits_processor_modifier":
        # text-generation-webui keeps the (in-place changed) list unless a list is returned.
        return {names[0]: result} if isinstance(result, list) else {}
    if len(names) == 1:
        if result is None:
            raise HookResultError(f"{spec.name}() returned None instead of the {names[0]}")
        return {names[0]: result}
    if not isinstance(result, (tuple, list)) or len(result) != len(names):
        raise HookResultError(f"{spec.name}() must return a tuple ({', '.join(names)}), "
                              f"got {type(result).__name__}")
    return dict(zip(names, result))


def guard_iterator(name: str, hook: str, result: Any, on_failure: OnFailure) -> Iterator[Any]:
    """Iterate a generator hook's result; an exception ends the iteration and is reported."""
    if isinstance(result, str):
        yield result
        return
    try:
        yield from result
    except Exception as exc:  # noqa: BLE001 - isolation: any extension error is reported
        on_failure(name, hook, exc)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()


class GuardedProcessor:
    """An extension's logits processor that turns into a pass-through after its first exception
    (the failure is reported once, naming the extension and where the processor came from)."""

    def __init__(self, inner: LogitsProcessor, extension: str, origin: str, on_failure: OnFailure) -> None:
        self.inner = inner
        self.extension = extension
        self.origin = origin  # e.g. "sampler dry" or "logits_processor_modifier"
        self._on_failure = on_failure
        self.failed = False

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if self.failed:
            return scores
        try:
            return self.inner(input_ids, scores)
        except Exception as exc:  # noqa: BLE001 - isolation: decoding goes on without it
            self.failed = True
            self._on_failure(self.extension, self.origin, exc)
            return scores
