"""Configuration types as plain frozen dataclasses, importable without pydantic.

pydantic-settings validates them (environment, TOML, constraints written with
annotated-types), but a long-running process on a Pi Zero need not carry pydantic: the
edge agent validates in a short-lived child and rebuilds the result here with
`from_dict` (see footfall_edge/settings.py)."""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin, get_type_hints

from annotated_types import Ge, Gt, Le

STRICT: Any = {"extra": "forbid"}  # pydantic config for a dataclass: unknown keys are errors


class ConfigError(Exception):
    """A configuration that cannot be used; the message names the field and the reason."""


@dataclass(frozen=True)
class MqttSettings:
    __pydantic_config__ = STRICT

    host: str = "localhost"
    port: Annotated[int, Ge(1), Le(65535)] = 1883
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    ca_certs: Path | None = None
    certfile: Path | None = None
    keyfile: Path | None = None
    insecure: bool = False
    """TLS without checking the broker's host name (a broker reached by IP address)."""
    keepalive_s: Annotated[int, Ge(5), Le(3600)] = 30
    reconnect_min_s: Annotated[float, Gt(0)] = 1.0
    reconnect_max_s: Annotated[float, Gt(0)] = 60.0

    def __post_init__(self) -> None:
        if self.reconnect_min_s > self.reconnect_max_s:
            raise ValueError("reconnect_min_s must not be larger than reconnect_max_s")


T = TypeVar("T")


def from_dict(cls: type[T], data: Mapping[str, Any]) -> T:
    """Rebuild an (already validated) dataclass tree from its `dataclasses.asdict` form."""
    hints = get_type_hints(cls)
    kwargs = {
        f.name: _convert(hints[f.name], data[f.name])
        for f in fields(cls)  # type: ignore[arg-type]
        if f.name in data
    }
    return cls(**kwargs)


def _convert(tp: Any, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(tp, type) and is_dataclass(tp):
        return from_dict(tp, value)
    origin = get_origin(tp)
    if origin is list:
        (item,) = get_args(tp)
        return [_convert(item, v) for v in value]
    if origin in (Union, types.UnionType):
        for arg in get_args(tp):
            if arg is Path or (isinstance(arg, type) and is_dataclass(arg)):
                return _convert(arg, value)
        return value
    if tp is Path:
        return Path(value)
    return value


def defaults_of(cls: type[Any]) -> dict[str, tuple[Any, Any]]:
    """(type, default) for each field, `...` where required: what `create_model` takes."""
    hints = get_type_hints(cls, include_extras=True)
    out: dict[str, tuple[Any, Any]] = {}
    for f in fields(cls):
        if f.default is not MISSING:
            default = f.default
        elif f.default_factory is not MISSING:
            default = f.default_factory()
        else:
            default = ...
        out[f.name] = (hints[f.name], default)
    return out
