"""The sampler part of the ExtensionManager: extensions' ``register_samplers`` and logits processors.

A mixin: it uses the manager's ``_implementers``, ``_invoke`` and ``_fail`` (isolation: a sampler or
processor that raises is reported, its extension disabled, and decoding goes on without it).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from webui.plugins.dispatch import GuardedProcessor, HookResultError, complete_args
from webui.plugins.hookspecs import HOOKS
from webui.plugins.params import ParamSpec
from webui.plugins.samplers import LogitsProcessor, SamplerContext, SamplerSpec

if TYPE_CHECKING:
    from webui.plugins.extension import LoadedExtension

log = logging.getLogger(__name__)


class SamplerDispatch:
    """``samplers()``, ``sampler_params()``, ``build_logits_processors()``, ``modify_logits_processors()``."""

    if TYPE_CHECKING:
        def _implementers(self, hook: str) -> list[LoadedExtension]: ...
        def _invoke(self, ext: LoadedExtension, spec: Any, values: Mapping[str, Any]) -> tuple[bool, Any]: ...
        def _fail(self, name: str, hook: str, exc: BaseException) -> None: ...

    def modify_logits_processors(self, processor_list: list[LogitsProcessor], input_ids: Any) -> list[LogitsProcessor]:
        """``logits_processor_modifier`` as a pipe, with each processor an extension adds guarded:
        one that raises while decoding is reported, its extension disabled, and decoding goes on.

        As upstream, an extension may return the list or change the one it was given in place.
        """
        spec = HOOKS["logits_processor_modifier"]
        current = list(processor_list)
        for ext in self._implementers("logits_processor_modifier"):
            before = {id(p) for p in current}
            given = list(current)
            ok, result = self._invoke(ext, spec, complete_args(spec, {"processor_list": given, "input_ids": input_ids}))
            if not ok:
                continue
            added = list(result) if isinstance(result, (list, tuple)) else given
            current = [p if id(p) in before else GuardedProcessor(p, ext.name, "logits_processor_modifier", self._fail)
                       for p in added]
        return current

    def samplers(self) -> dict[str, SamplerSpec]:
        """Samplers registered by enabled extensions, in enabled order (first name wins)."""
        found: dict[str, SamplerSpec] = {}
        for ext in self._implementers("register_samplers"):
            for sampler in self._samplers_of(ext):
                if sampler.name in found:
                    log.warning("sampler %r of %s is shadowed by %s's", sampler.name, ext.name,
                                found[sampler.name].extension)
                    continue
                found[sampler.name] = sampler
        return found

    def sampler_params(self) -> list[ParamSpec]:
        """Every sampler parameter (for Parameters-tab sliders and API fields)."""
        params: dict[str, ParamSpec] = {}
        for sampler in self.samplers().values():
            for p in sampler.params:
                params.setdefault(p.key, p)
        return list(params.values())

    def build_logits_processors(self, values: Mapping[str, Any],
                                ctx: SamplerContext | None = None) -> list[LogitsProcessor]:
        """Processors for the active samplers, given parameter ``values`` (missing: defaults).

        Raises ParamError for an invalid value. Each processor is isolated: if it raises while
        decoding, the failure is recorded, its extension disabled, and it passes scores through.
        """
        processors: list[LogitsProcessor] = []
        for sampler in self.samplers().values():
            sampler.resolve(values)  # validate first: a bad value is the caller's error
            try:
                if not sampler.active(values):
                    continue
                processor = sampler.build(values, ctx)
            except Exception as exc:  # noqa: BLE001 - isolation
                self._fail(sampler.extension, f"sampler {sampler.name}", exc)
                continue
            processors.append(GuardedProcessor(processor, sampler.extension, f"sampler {sampler.name}", self._fail))
        return processors

    def _samplers_of(self, ext: LoadedExtension) -> tuple[SamplerSpec, ...]:
        if ext.samplers is None:
            ok, result = self._invoke(ext, HOOKS["register_samplers"], {})
            if not ok:
                return ()
            items = list(result or [])
            bad = [item for item in items if not isinstance(item, SamplerSpec)]
            if bad:
                self._fail(ext.name, "register_samplers", HookResultError(
                    f"register_samplers() must return SamplerSpec items, got {type(bad[0]).__name__}"))
                return ()
            ext.samplers = tuple(replace(s, extension=ext.name) for s in items)
        return ext.samplers
