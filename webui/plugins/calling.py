"""Call a hook implementation with the subset of the contract's arguments it accepts.

Rules, in order:

1. A parameter whose name is one of the hook's arguments receives that argument.
2. A positional parameter with another name receives the argument at the same position in the
   contract, if that one was not already taken by name and is one text-generation-webui passes
   positionally (not ``is_chat``, which it passes by keyword). So ``def input_modifier(text,
   state)`` keeps working as it does there.
3. ``**kwargs`` receives every remaining argument (and the caller's extra keyword arguments).
4. Positional-only parameters are passed positionally, the others by keyword.

A required parameter that none of these rules can fill is a ``CallPlanError``: reported as a
warning when the extension loads, and raised (so isolated like any hook failure) when called.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_P = inspect.Parameter


class CallPlanError(TypeError):
    """The implementation requires an argument the hook does not provide."""


@dataclass(frozen=True)
class CallPlan:
    """How to map the hook's argument values onto one implementation's parameters."""

    positional: tuple[str, ...]  # argument names passed positionally, in order
    keyword: tuple[tuple[str, str], ...]  # (parameter name, argument name)
    rest_as_kwargs: bool  # it has **kwargs: pass the arguments not used above
    used: frozenset[str]

    def bind(self, values: Mapping[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        args = [values[name] for name in self.positional]
        kwargs = {param: values[name] for param, name in self.keyword}
        if self.rest_as_kwargs:
            kwargs.update((k, v) for k, v in values.items() if k not in self.used)
        return args, kwargs


def plan_call(func: Callable[..., Any], args: Sequence[str], extras: Sequence[str] = (),
              by_position: Sequence[str] | None = None) -> CallPlan:
    """Work out how to call ``func`` given the contract ``args`` and the caller's ``extras``.

    ``by_position``: the arguments that may fill a differently named parameter at the same
    position (default: all of ``args``).
    """
    positional_ok = set(args if by_position is None else by_position)
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):  # no introspectable signature: call it like upstream does
        return CallPlan(tuple(args), (), False, frozenset(args))

    available = set(args) | set(extras)
    named = [p for p in params if p.kind not in (_P.VAR_POSITIONAL, _P.VAR_KEYWORD)]
    source: dict[str, str] = {p.name: p.name for p in named if p.name in available}
    used = set(source.values())
    positional_params = [p for p in named if p.kind in (_P.POSITIONAL_ONLY, _P.POSITIONAL_OR_KEYWORD)]
    for index, p in enumerate(positional_params):
        if (p.name not in source and index < len(args) and args[index] not in used
                and args[index] in positional_ok):
            source[p.name] = args[index]
            used.add(args[index])

    positional: list[str] = []
    keyword: list[tuple[str, str]] = []
    positional_open = True  # once a positional-only parameter is skipped, later ones can't be passed
    for p in named:
        required = p.default is _P.empty
        if p.name not in source:
            if required:
                raise CallPlanError(
                    f"{_name(func)}() requires argument {p.name!r}, which the hook does not "
                    f"provide (it provides: {', '.join(list(args) + list(extras)) or 'nothing'})")
            if p.kind is _P.POSITIONAL_ONLY:
                positional_open = False
            continue
        if p.kind is _P.POSITIONAL_ONLY:
            if not positional_open:
                if required:
                    raise CallPlanError(f"{_name(func)}(): cannot pass positional-only {p.name!r}")
                used.discard(source[p.name])
                continue
            positional.append(source[p.name])
        else:
            keyword.append((p.name, source[p.name]))
    rest = any(p.kind is _P.VAR_KEYWORD for p in params)
    return CallPlan(tuple(positional), tuple(keyword), rest, frozenset(used))


def _name(func: Callable[..., Any]) -> str:
    return getattr(func, "__qualname__", None) or repr(func)
