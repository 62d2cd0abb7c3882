"""Read YAML into dicts and lists that remember the line each mapping and key came from.

Why not `yaml.safe_load`: an invalid tag must be reported with its file and line, and the plain
loader drops the marks. Why not `yaml.compose`: its node tree carries marks but resolving every
scalar through PyYAML's Python resolver costs more than the whole import should (about 12 s for
the 28 MB of public TagPacks). This module walks libyaml's event stream (`yaml.CSafeLoader`'s C
parser) and builds the values itself, in about a fifth of that time.

Scalars resolve as YAML 1.1 core types only where TagPacks need them: plain `null`/`~`/empty
is None and plain `true`/`false`/`yes`/`no`/`on`/`off` are booleans (as `safe_load` gives);
every other scalar, numbers and dates included, stays the string written in the file, which is
what a label, an address or a `lastmod` date should be. Anchors and aliases work; merge keys
(`<<`) are kept as an ordinary key. Called by `chainsleuth.tags.packs` for TagPacks and
ActorPacks.

Example::

    doc = load_with_lines(b"title: t\\ntags:\\n- address: 1abc\\n")
    doc.key_lines["tags"] == 2 and doc["tags"][0].line == 3
"""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["LineDict", "LineList", "YamlError", "load_with_lines"]

_NULLS = frozenset(("", "~", "null", "Null", "NULL"))
_BOOLS = {
    **dict.fromkeys(("yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"), True),
    **dict.fromkeys(("no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"), False),
}
_STR_TAG = "tag:yaml.org,2002:str"


class YamlError(ValueError):
    """The file is not YAML; `line` is 1-based (0 when unknown)."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


class LineDict(dict[Any, Any]):
    """A mapping with `line` (where it starts, 1-based) and `key_lines` (where each key is)."""

    __slots__ = ("key_lines", "line")

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.key_lines: dict[Any, int] = {}


class LineList(list[Any]):
    """A sequence with the 1-based `line` it starts on."""

    __slots__ = ("line",)

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line


def _scalar(event: Any) -> Any:
    value = event.value
    if event.implicit[0]:  # plain scalar: resolve null and booleans, keep the rest as text
        if value in _NULLS:
            return None
        return _BOOLS.get(value, value)
    tag = event.tag
    if tag is None or tag == _STR_TAG or tag == "!":
        return value
    if tag.endswith(":null"):
        return None
    if tag.endswith(":bool"):
        return _BOOLS.get(value, value)
    return value


def load_with_lines(data: bytes | str) -> Any:
    """The first document of `data` as LineDict/LineList/scalars; YamlError if it is not YAML."""
    loader = yaml.CSafeLoader(data)
    # The event classes of this PyYAML (C or pure parser): dispatch on type, not isinstance.
    scalar_t, alias_t = yaml.ScalarEvent, yaml.AliasEvent
    map_start, map_end = yaml.MappingStartEvent, yaml.MappingEndEvent
    seq_start, seq_end = yaml.SequenceStartEvent, yaml.SequenceEndEvent
    doc_end = yaml.DocumentEndEvent
    anchors: dict[str, Any] = {}
    # stack of open containers; for a mapping, `pending` holds the key awaiting its value
    stack: list[Any] = []
    pending: list[Any] = []
    no_key = pending  # sentinel: a mapping that waits for a key
    root: Any = None
    have_root = False
    try:
        get_event = loader.get_event
        while True:
            event = get_event()
            if event is None:
                break
            kind = type(event)
            if kind is scalar_t:
                value = _scalar(event)
                if event.anchor is not None:
                    anchors[event.anchor] = value
            elif kind is map_start:
                value = LineDict(event.start_mark.line + 1)
                if event.anchor is not None:
                    anchors[event.anchor] = value
            elif kind is seq_start:
                value = LineList(event.start_mark.line + 1)
                if event.anchor is not None:
                    anchors[event.anchor] = value
            elif kind is alias_t:
                if event.anchor not in anchors:
                    raise YamlError(f"unknown alias *{event.anchor}", event.start_mark.line + 1)
                value = anchors[event.anchor]
            elif kind is map_end or kind is seq_end:
                stack.pop()
                pending.pop()
                continue
            elif kind is doc_end:
                break
            else:  # stream/document start
                continue
            # place `value` into the innermost open container (or make it the root)
            if stack:
                top = stack[-1]
                if type(top) is LineDict:
                    key = pending[-1]
                    if key is no_key:
                        if isinstance(value, (dict, list)):
                            raise YamlError(
                                "a mapping or sequence used as a key",
                                event.start_mark.line + 1,
                            )
                        pending[-1] = value
                        top.key_lines[value] = event.start_mark.line + 1
                    else:
                        top[key] = value
                        pending[-1] = no_key
                else:
                    top.append(value)
            elif not have_root:
                root, have_root = value, True
            if kind is map_start or kind is seq_start:
                stack.append(value)
                pending.append(no_key)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else 0
        raise YamlError(f"{e.problem or e}", line) from None
    except yaml.YAMLError as e:
        raise YamlError(str(e), 0) from None
    finally:
        loader.dispose()
    return root
