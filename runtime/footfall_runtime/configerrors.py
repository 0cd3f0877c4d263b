"""Configuration errors in words an installer reads without knowing pydantic: the field
as the file spells it (`doors[0] (library-main).outer_pin`), what is wrong, the value
given (never a password or token), the keys allowed where a key is misspelt, and the
environment variable when the value came from one. Every program's settings loader
(`settings.load_settings`) words its errors through `describe_plain`."""

from __future__ import annotations

import dataclasses
import os
import types
from collections.abc import Mapping
from typing import Annotated, Any, Union, get_args, get_origin, get_type_hints

from pydantic import BaseModel, ValidationError


def describe_plain(
    where: str, exc: ValidationError, data: Mapping[str, Any] | None = None, model: Any = None
) -> str:
    """Every problem on a line of its own. `data` (the file's content) lets a list item
    be named by its id, `model` lists the keys allowed where one is unknown."""
    lines = [f"{where}: invalid configuration"]
    for err in exc.errors():
        loc = tuple(err["loc"])
        place = _place(loc, data or {})
        text = _plain(err, loc, model)
        env = _env_name(loc)
        if env is not None and env in os.environ:
            text += f" (from the environment variable {env})"
        lines.append(f"  {place}: {text}" if place else f"  {text}")
    return "\n".join(lines)


_SECRET = ("password", "token", "secret")
_PLAIN = {
    "missing": "missing: this setting is required",
    "int_parsing": "must be a whole number",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "string_type": "must be text (in quotes)",
    "list_type": "must be a list ([...] or [[tables]])",
    "dict_type": "must be a table ([section] or {key = value})",
    "model_type": "must be a table ([section] or {key = value})",
    "dataclass_type": "must be a table ([section] or {key = value})",
    "finite_number": "must be a finite number",
}


def _plain(err: Any, loc: tuple[Any, ...], model: Any) -> str:
    kind = err["type"]
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        known = _fields_at(model, loc[:-1])
        hint = f"; the settings here are: {', '.join(known)}" if known else "; check the spelling"
        return f"unknown setting{hint}"
    if kind in ("value_error", "assertion_error"):
        return str(err.get("ctx", {}).get("error", err["msg"]))
    text = _PLAIN.get(kind) or str(err["msg"]).replace("Input should be", "must be")
    value = err.get("input")
    secret = any(s in str(p).lower() for p in loc for s in _SECRET)
    if kind != "missing" and not secret and isinstance(value, str | int | float | bool):
        text += f" (got {value!r})"
    return text


def _place(loc: tuple[Any, ...], data: Mapping[str, Any]) -> str:
    """`doors[0] (door-1).outer_pin`: list items by index and, when they have one, id."""
    out = ""
    node: Any = data
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            node = node[part] if isinstance(node, list) and 0 <= part < len(node) else None
            if isinstance(node, Mapping) and isinstance(node.get("id"), str):
                out += f" ({node['id']})"
        else:
            out += f".{part}" if out else str(part)
            node = node.get(part) if isinstance(node, Mapping) else None
    return out


def _env_name(loc: tuple[Any, ...]) -> str | None:
    if not loc or not all(isinstance(p, str) for p in loc):
        return None
    return "FOOTFALL_" + "__".join(str(p).upper() for p in loc)


def _fields_at(model: Any, loc: tuple[Any, ...]) -> list[str] | None:
    """The keys a table at `loc` of `model` may have (None when it cannot be told)."""
    tp: Any = model
    for part in loc:
        tp = _unwrap(tp)
        if isinstance(part, int):
            args = get_args(tp) if get_origin(tp) is list else ()
            tp = args[0] if args else None
        else:
            tp = _field_types(tp).get(part)
        if tp is None:
            return None
    return list(_field_types(_unwrap(tp))) or None


def _field_types(tp: Any) -> dict[str, Any]:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return {name: f.annotation for name, f in tp.model_fields.items()}
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = get_type_hints(tp)
        return {f.name: hints[f.name] for f in dataclasses.fields(tp)}
    return {}


def _unwrap(tp: Any) -> Any:
    """The table or list type inside Annotated[...] and `X | None`."""
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            candidates = [a for a in get_args(tp) if a is not type(None)]
            tp = next((a for a in candidates if _field_types(a) or get_origin(a)), candidates[0])
            if not (_field_types(tp) or get_origin(tp) in (list, Annotated)):
                return tp
        else:
            return tp
