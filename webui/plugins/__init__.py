"""Extensions: text-generation-webui's hook names, typed settings, isolated dispatch, samplers.

See docs/extensions.md and extensions/example/script.py.
"""

from webui.plugins.hookspecs import HOOKS, HookSpec
from webui.plugins.manager import ExtensionError, ExtensionInfo, ExtensionManager, Failure
from webui.plugins.params import ParamError, ParamSpec
from webui.plugins.samplers import SamplerContext, SamplerSpec, for_llama_cpp, sampler_param
from webui.plugins.store import JsonFileStore, MemoryStore, SettingsStore

__all__ = [
    "HOOKS",
    "ExtensionError",
    "ExtensionInfo",
    "ExtensionManager",
    "Failure",
    "HookSpec",
    "JsonFileStore",
    "MemoryStore",
    "ParamError",
    "ParamSpec",
    "SamplerContext",
    "SamplerSpec",
    "SettingsStore",
    "for_llama_cpp",
    "sampler_param",
]
