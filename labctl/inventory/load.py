"""YAML loading that keeps where every value came from.

PyYAML's plain ``safe_load`` forgets positions and silently keeps the last of
two duplicate keys. We compose the node graph instead (libyaml when present),
and walk it once to build plain data plus a map from document path to source
position, reporting duplicate keys on the way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

from labctl.inventory.problems import DocPath, Position, Problem, Severity

try:  # libyaml parses about ten times faster; fall back silently without it
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

_MERGE_TAG = "tag:yaml.org,2002:merge"
_SCALAR_CONSTRUCTORS: dict[str, Callable[[Any, Any], Any]] = dict(
    yaml.SafeLoader.yaml_constructors  # type: ignore[arg-type]
)
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


@dataclass
class SourceMap:
    """Positions of values (and of mapping keys) by document path."""

    file: str
    values: dict[DocPath, Position] = field(default_factory=dict)
    keys: dict[DocPath, Position] = field(default_factory=dict)

    def value_at(self, path: DocPath) -> Position | None:
        """Position of the value at ``path``, or of its nearest ancestor."""
        while True:
            found = self.values.get(path)
            if found is not None or not path:
                return found
            path = path[:-1]

    def key_at(self, path: DocPath) -> Position | None:
        """Position of the key naming ``path`` (falls back to the value's)."""
        return self.keys.get(path) or self.value_at(path)


class LoadFailed(Exception):
    """The text is not a usable YAML document; ``problems`` says why."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(p.message for p in problems))
        self.problems = problems


def _position(node: yaml.Node) -> Position:
    mark = node.start_mark
    return Position(mark.line + 1, mark.column + 1)


class _Builder:
    def __init__(self, source: SourceMap) -> None:
        self.source = source
        self.problems: list[Problem] = []
        self._constructor = yaml.SafeLoader("")
        self._active: set[int] = set()

    def _problem(self, check_id: str, message: str, node: yaml.Node, path: DocPath) -> None:
        self.problems.append(
            Problem(check_id, Severity.ERROR, message, self.source.file, _position(node), path)
        )

    def build(self, node: yaml.Node, path: DocPath) -> Any:
        self.source.values[path] = _position(node)
        if isinstance(node, yaml.ScalarNode):
            if node.tag == _TIMESTAMP_TAG:
                # Dates are data to us, not datetimes: keep the text.
                return node.value
            constructor = _SCALAR_CONSTRUCTORS.get(node.tag)
            if constructor is None:
                self._problem("LAB001", f"unsupported YAML tag {node.tag}", node, path)
                return None
            return constructor(self._constructor, node)
        if id(node) in self._active:
            self._problem("LAB001", "an alias refers to itself (recursive anchor)", node, path)
            return None
        self._active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
        finally:
            self._active.discard(id(node))
        self._problem("LAB001", "unsupported YAML node", node, path)  # pragma: no cover
        return None

    def _mapping(self, node: yaml.MappingNode, path: DocPath) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first_seen: dict[str, Position] = {}
        merged: list[tuple[yaml.Node, DocPath]] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merged.append((value_node, path))
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self._problem("LAB001", "a mapping key must be a plain scalar", key_node, path)
                continue
            # The key's source text, not its YAML type: `on:` stays "on", not True.
            key = str(key_node.value)
            child = (*path, key)
            if key in first_seen:
                self._problem(
                    "LAB002",
                    f"duplicate key '{key}' (first defined at line {first_seen[key].line}); "
                    "YAML would silently keep only the last one",
                    key_node,
                    child,
                )
                continue
            first_seen[key] = _position(key_node)
            self.source.keys[child] = first_seen[key]
            result[key] = self.build(value_node, child)
        for value_node, at in merged:
            sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            for source in sources:
                if not isinstance(source, yaml.MappingNode):
                    self._problem("LAB001", "a merge key (<<) needs a mapping", source, at)
                    continue
                for key, value in self._mapping(source, at).items():
                    result.setdefault(key, value)  # explicit keys win over merged ones
        return result


def load_yaml(text: str, file: str) -> tuple[Any, SourceMap]:
    """Parse one YAML document; raise ``LoadFailed`` with positioned problems."""
    source = SourceMap(file)
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        position = Position(mark.line + 1, mark.column + 1) if mark else None
        reason = exc.problem or exc.context or "invalid YAML"
        raise LoadFailed(
            [Problem("LAB001", Severity.ERROR, f"YAML syntax error: {reason}", file, position)]
        ) from None
    except yaml.YAMLError as exc:  # e.g. "expected a single document"
        message = str(exc).splitlines()[0] if str(exc) else "invalid YAML"
        raise LoadFailed([Problem("LAB001", Severity.ERROR, message, file, None)]) from None
    finally:
        loader.dispose()
    if node is None:
        raise LoadFailed(
            [Problem("LAB001", Severity.ERROR, "the file is empty", file, Position(1, 1))]
        )
    builder = _Builder(source)
    data = builder.build(node, ())
    if builder.problems:
        raise LoadFailed(builder.problems)
    return data, source
