"""JSON and YAML parsing with bounds, for every file a user can hand the app (cards, chats, presets,
templates, settings).

``json.loads`` and PyYAML are fine for well-formed files but not for hostile ones:

- JSON nested tens of thousands of levels deep makes ``json.loads`` raise ``RecursionError``, which
  no caller expects; one nested a few hundred levels deep parses, then breaks whatever walks it
  recursively later (pydantic, ``json.dumps``, the UI).
- A YAML "billion laughs" file (anchors whose aliases refer to aliases, nine deep) is a few hundred
  bytes that expands to 10^9 nodes as soon as anything walks the loaded value; an alias to a node
  that contains it makes a cyclic value.
- PyYAML's composer is recursive, so a deeply nested YAML document raises ``RecursionError`` too.

:func:`load_json` and :func:`load_yaml` refuse these with the error type callers already handle
(``json.JSONDecodeError`` / ``yaml.YAMLError``), so each caller's message names the file.
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

MAX_DEPTH = 100  # nesting levels of lists/objects; real cards, chats and presets use fewer than 10
MAX_YAML_NODES = 1_000_000  # nodes of a YAML document once every alias is expanded


class YAMLLimitError(yaml.YAMLError):
    """A YAML document nested too deeply, expanding too far through aliases, or cyclic."""


class YAMLValueError(yaml.YAMLError):
    """A tagged YAML value PyYAML cannot build (``!!int x``, ``!!float y``): it raises a bare
    ValueError for those, which no caller would expect from a YAML parser."""


def nesting_depth(value: Any) -> int:
    """How many list/dict levels ``value`` has (0 for a scalar); iterative, so any depth is safe."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        depth += 1
        deepest = max(deepest, depth)
        stack.extend((child, depth) for child in children)
    return deepest


def load_json(text: str | bytes) -> Any:
    """``json.loads`` that raises ``json.JSONDecodeError`` for nesting deeper than MAX_DEPTH
    (instead of ``RecursionError``, or a value too deep for the code that walks it later)."""
    doc = text if isinstance(text, str) else text.decode("utf-8", errors="replace")
    try:
        value = json.loads(text)
    except RecursionError:
        raise json.JSONDecodeError(f"nested deeper than {MAX_DEPTH} levels", doc, 0) from None
    if nesting_depth(value) > MAX_DEPTH:
        raise json.JSONDecodeError(f"nested deeper than {MAX_DEPTH} levels", doc, 0)
    return value


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that counts nesting depth and alias-expanded nodes while composing, and refuses
    an alias to a node still being composed (a cycle)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._weights: dict[int, int] = {}  # id(node) -> nodes it stands for, aliases expanded

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        if self.check_event(yaml.AliasEvent):
            anchor = self.peek_event().anchor
            target = self.anchors.get(anchor)
            if target is not None and id(target) not in self._weights:
                raise YAMLLimitError(f"the alias *{anchor} refers to a node that contains it (a cycle)")
            return super().compose_node(parent, index)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise YAMLLimitError(f"nested deeper than {MAX_DEPTH} levels")
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        weight = 1
        if isinstance(node, SequenceNode):
            weight += sum(self._weights.get(id(child), 1) for child in node.value)
        elif isinstance(node, MappingNode):
            weight += sum(self._weights.get(id(k), 1) + self._weights.get(id(v), 1) for k, v in node.value)
        if weight > MAX_YAML_NODES:
            raise YAMLLimitError(
                f"expands to more than {MAX_YAML_NODES:,} values through its aliases (a 'billion laughs' file?)"
            )
        self._weights[id(node)] = weight
        return node


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` with the bounds above; raises only ``yaml.YAMLError`` (or a subclass)."""
    loader = _BoundedLoader(text)
    try:
        return loader.get_single_data()
    except RecursionError:  # a construct the depth count does not see (a very long flow-key chain)
        raise YAMLLimitError(f"nested deeper than {MAX_DEPTH} levels") from None
    except (ValueError, TypeError, OverflowError) as exc:
        raise YAMLValueError(f"a value cannot be read: {exc}") from None
    finally:
        loader.dispose()
