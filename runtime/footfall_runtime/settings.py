"""Settings shared by every program: `FOOTFALL_` environment variables (nested with `__`)
over an optional TOML file over defaults, as docs/spec.md's "Configuration" asks."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from .config import ConfigError, MqttSettings
from .configerrors import describe_plain

__all__ = ["ConfigError", "FootfallSettings", "MqttSettings", "load_settings"]


class FootfallSettings(BaseSettings):
    """Base for each program's settings; `load()` adds the TOML file at run time."""

    model_config = SettingsConfigDict(
        env_prefix="FOOTFALL_", env_nested_delimiter="__", extra="forbid"
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = settings_cls.model_config.get("toml_file")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)


S = TypeVar("S", bound=FootfallSettings)


def load_settings(cls: type[S], path: Path | None = None, **overrides: Any) -> S:
    """Settings from env and `path` (TOML), or ConfigError naming every bad field in
    words an installer reads (configerrors)."""
    where = str(path) if path else "environment"
    target: type[S] = cls
    data: dict[str, Any] = {}
    if path is not None:
        if not path.is_file():
            raise ConfigError(f"{path}: no such configuration file")
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        config = dict(cls.model_config)
        config["toml_file"] = path
        target = type(cls.__name__, (cls,), {"model_config": config})
    try:
        return target(**overrides)
    except ValidationError as exc:
        raise ConfigError(describe_plain(where, exc, data, cls)) from None
