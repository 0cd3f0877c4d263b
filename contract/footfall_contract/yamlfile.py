"""YAML files written by hand (the site file, its alert rules): every problem is
`file:line: reason`, the way an operator has to fix it.

PyYAML's node tree keeps the line of every key and value, so a syntax error, a duplicate
key (which PyYAML would silently keep the last of) and a pydantic error location all end
up at the line at fault. PyYAML is imported only when a file is parsed: the edge agent
imports the contract without needing it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

if TYPE_CHECKING:
    from yaml import MarkedYAMLError
    from yaml.nodes import MappingNode, Node

__all__ = [
    "Document",
    "FileError",
    "Loc",
    "Located",
    "LocatedField",
    "node_line",
    "parse_mapping",
    "read_text",
    "walk_loc",
]

Loc = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)


class FileError(ValueError):
    """A file that cannot be used: `file:line: reason` (the line when one is at fault)."""

    def __init__(self, file: str, line: int | None, reason: str) -> None:
        self.file = file
        self.line = line
        self.reason = reason
        where = f"{file}:{line}" if line is not None else file
        super().__init__(f"{where}: {reason}")

    def __reduce__(self) -> tuple[type[FileError], tuple[str, int | None, str]]:
        return (type(self), (self.file, self.line, self.reason))


class Located(ValueError):
    """A validator's error that knows where in the file it belongs (relative `loc`).

    Its message is a complete reason, so it is shown without the path prefix.
    """

    def __init__(self, message: str, loc: Loc) -> None:
        super().__init__(message)
        self.loc = loc


class LocatedField(Located):
    """A `Located` whose message is about the field it points at: shown after its path
    (the validator of a nested field does not know the path above it)."""


def read_text(path: str | os.PathLike[str], what: str, error: type[FileError]) -> tuple[str, str]:
    """(file name, UTF-8 text) of a YAML file; a missing, unreadable or non-UTF-8 file is
    an `error` naming the file (and the line of the first bad byte)."""
    file = os.fspath(path)
    try:
        data = Path(file).read_bytes()
    except FileNotFoundError:
        raise error(file, None, f"no such {what}") from None
    except OSError as exc:
        raise error(file, None, f"cannot read the {what}: {exc.strerror}") from None
    try:
        return file, data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise error(file, line, f"the {what} is not UTF-8 text") from None


def _yaml(what: str) -> ModuleType:
    try:
        import yaml
    except ImportError:
        raise ModuleNotFoundError(
            f"reading a {what} needs PyYAML (install footfall[collector])", name="yaml"
        ) from None
    return yaml


@dataclass(frozen=True)
class Document:
    """A parsed YAML mapping: its data and the node tree that knows the lines."""

    file: str
    root: MappingNode
    data: Any

    def line_at(self, loc: Loc) -> int:
        return node_line(walk_loc(self.root, loc))

    def at(self, located: Located, error: type[FileError]) -> FileError:
        """`error` for a check made after validation, at the line its `loc` points at."""
        return error(self.file, self.line_at(located.loc), str(located))

    def validate(
        self, model: type[M], error: type[FileError], missing: Mapping[str, str] | None = None
    ) -> M:
        """The data as `model`; its first problem in file order (pydantic reports in field
        order) as `error`. `missing`: field name -> what to add to "Field required"."""
        try:
            return model.model_validate(self.data)
        except ValidationError as exc:
            problems = [
                (self.line_at(loc), reason) for loc, reason in _problems(exc, missing or {})
            ]
            line, reason = min(problems, key=lambda problem: problem[0])
            raise error(self.file, line, reason) from None


def parse_mapping(
    text: str, file: str, error: type[FileError], *, what: str, top_level: str
) -> Document | None:
    """YAML text whose top level is a mapping; None when it holds no document.

    `what` names the file in the message when PyYAML is missing; `top_level` is the
    reason when the top level is not a mapping (`{kind}`: a list, a single value)."""
    yaml = _yaml(what)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(file, exc, error) from None
    except yaml.YAMLError as exc:
        raise error(file, None, f"invalid YAML: {exc}") from None
    if root is None:
        return None
    if not isinstance(root, yaml.MappingNode):
        kind = "a list" if isinstance(root, yaml.SequenceNode) else "a single value"
        raise error(file, node_line(root), top_level.format(kind=kind))
    _check_duplicate_keys(file, root, error)
    loader = yaml.SafeLoader("")
    try:
        data = loader.construct_document(root)
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(file, exc, error) from None
    finally:
        loader.dispose()
    return Document(file, root, data)


def node_line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _syntax_error(file: str, exc: MarkedYAMLError, error: type[FileError]) -> FileError:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else None
    reason = f"invalid YAML: {exc.problem or exc.context}"
    if exc.problem and exc.context and exc.problem.startswith("but "):
        reason = f"invalid YAML: {exc.context}, {exc.problem}"
    elif exc.problem and exc.context:
        context_mark = exc.context_mark
        if context_mark is not None and context_mark.line + 1 != line:
            reason += f" ({exc.context} that starts on line {context_mark.line + 1})"
        else:
            reason += f" ({exc.context})"
    return error(file, line, reason)


def _check_duplicate_keys(file: str, root: Node, error: type[FileError]) -> None:
    """PyYAML keeps the last of two equal keys silently; a hand-written file must not."""
    from yaml.nodes import MappingNode, ScalarNode, SequenceNode

    seen_nodes: set[int] = set()

    def walk(node: Node, path: str) -> None:
        if id(node) in seen_nodes:  # aliases share nodes and may even be recursive
            return
        seen_nodes.add(id(node))
        if isinstance(node, MappingNode):
            first: dict[tuple[str, str], Node] = {}
            for key, value in node.value:
                if isinstance(key, ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                    if (key.tag, key.value) in first:
                        where = f" in {path}" if path else ""
                        previous = node_line(first[key.tag, key.value])
                        raise error(
                            file,
                            node_line(key),
                            f"duplicate key {key.value!r}{where} (first on line {previous})",
                        )
                    first[key.tag, key.value] = key
                    walk(value, f"{path}.{key.value}" if path else str(key.value))
                else:
                    walk(value, path)
        elif isinstance(node, SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, f"{path}[{i}]")

    walk(root, "")


def walk_loc(root: Node, loc: Loc) -> Node:
    """The node a pydantic error location points at: the key of a mapping entry, the
    item of a list, or the deepest existing parent when the field is missing."""
    from yaml.nodes import MappingNode, ScalarNode, SequenceNode

    node = root
    at = root
    for part in loc:
        if part == "[key]":
            continue
        if isinstance(node, MappingNode):
            for key, value in reversed(node.value):
                if isinstance(key, ScalarNode) and key.value == str(part):
                    node, at = value, key
                    break
            else:
                break
        elif isinstance(node, SequenceNode) and isinstance(part, int):
            if not 0 <= part < len(node.value):
                break
            node = at = node.value[part]
        else:
            break
    return at


def _format_loc(loc: Loc) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part != "[key]":
            text += f".{part}" if text else part
    return text


def _problems(exc: ValidationError, missing: Mapping[str, str]) -> Iterator[tuple[Loc, str]]:
    for err in exc.errors():
        loc: Loc = tuple(err["loc"])
        error = err.get("ctx", {}).get("error")
        if isinstance(error, LocatedField):
            full = (*loc, *error.loc)
            yield full, f"{_format_loc(full)}: {error}"
            continue
        if isinstance(error, Located):
            yield (*loc, *error.loc), str(error)
            continue
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] in ("model_type", "model_attributes_type", "dict_type"):
            msg = "Input should be a mapping (key: value)"
        elif err["type"] == "bool_type":
            msg += " (true or false)"
        elif err["type"] == "missing" and loc and str(loc[-1]) in missing:
            msg += f" ({missing[str(loc[-1])]})"
        path = _format_loc(loc)
        yield loc, f"{path}: {msg}" if path else msg
