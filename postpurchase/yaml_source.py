"""YAML config files read with the line of every key, so errors can say ``file:line``.

Marketing edits these files by hand; an error that names the line is one they can fix alone.
Duplicate keys are errors (PyYAML would silently keep the last one).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from postpurchase.exceptions import ConfigError

YamlPath = tuple[str | int, ...]


class SourceMap:
    """Line numbers of every key and list item of a YAML document, by their path."""

    def __init__(self, path: Path, lines: dict[YamlPath, int]) -> None:
        self.path = path
        self._lines = lines

    def line(self, at: YamlPath) -> int:
        """The line of ``at``, or of its nearest ancestor the file has (1 at worst)."""
        for end in range(len(at), -1, -1):
            if at[:end] in self._lines:
                return self._lines[at[:end]]
        return 1

    def where(self, at: YamlPath) -> str:
        return f"{shown(self.path)}:{self.line(at)}"


def shown(path: Path) -> str:
    """``path`` relative to the working directory when it is below it (shorter messages)."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _walk(node: yaml.Node, at: YamlPath, lines: dict[YamlPath, int], problems: list[str]) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            name = str(key.value)
            lines[(*at, name)] = key.start_mark.line + 1
            if name in seen:
                problems.append(f"{key.start_mark.line + 1}: duplicate key {name!r}")
            seen.add(name)
            _walk(value, (*at, name), lines, problems)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*at, index)] = item.start_mark.line + 1
            _walk(item, (*at, index), lines, problems)


def parse_yaml(text: str, path: Path) -> tuple[Any, SourceMap]:
    """Parse ``text`` (the content of ``path``) into plain data plus its line map.

    Invalid YAML and duplicate keys raise ConfigError with ``file:line``.
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise ConfigError(f"{shown(path)}:{line}: invalid YAML: {exc.problem}") from None
    lines: dict[YamlPath, int] = {}
    problems: list[str] = []
    if node is not None:
        _walk(node, (), lines, problems)
    if problems:
        raise ConfigError("\n".join(f"{shown(path)}:{p}" for p in problems))
    return data, SourceMap(path, lines)


def read_yaml(path: Path) -> tuple[Any, SourceMap]:
    """Read and parse the file at ``path`` (see ``parse_yaml``); ConfigError if unreadable."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{shown(path)}: cannot read: {exc.strerror or exc}") from None
    return parse_yaml(text, path)
