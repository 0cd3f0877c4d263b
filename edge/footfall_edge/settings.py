"""Loading the edge configuration with pydantic-settings: `FOOTFALL_*` variables over
`edge.toml`, every bad field named.

The agent runs for months on a Pi Zero with 512 MB, so the long-running process does not
import pydantic (about 12 MB resident): `load_config` validates in a short-lived child
(`python -m footfall_edge.settings`) that prints the result as JSON, and rebuilds the
plain dataclasses from it."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from footfall_runtime.config import ConfigError, defaults_of, from_dict

from .config import EdgeConfig


def settings_model() -> Any:
    """The pydantic-settings model with exactly EdgeConfig's fields and checks."""
    from pydantic import create_model, model_validator

    from footfall_runtime.settings import FootfallSettings

    def check(self: Any) -> Any:
        self.to_config()  # EdgeConfig.__post_init__: ids, pins, detector limits
        return self

    def to_config(self: Any) -> EdgeConfig:
        return EdgeConfig(**{name: getattr(self, name) for name in defaults_of(EdgeConfig)})

    model = create_model(  # type: ignore[call-overload]
        "EdgeConfig",
        __base__=FootfallSettings,
        __validators__={"check": model_validator(mode="after")(check)},
        **defaults_of(EdgeConfig),
    )
    model.to_config = to_config  # type: ignore[attr-defined]
    return model


def load_config_here(path: Path | None, **overrides: Any) -> EdgeConfig:
    """Validate in this process (tests, and the child below); errors in words an
    installer reads (footfall_runtime.configerrors)."""
    from footfall_runtime.settings import load_settings

    config: EdgeConfig = load_settings(settings_model(), path, **overrides).to_config()
    return config


def load_config(path: Path | None) -> EdgeConfig:
    """Validate in a child process and rebuild the result here without pydantic."""
    cmd = [sys.executable, "-m", "footfall_edge.settings"]
    if path is not None:
        cmd += ["--config", str(path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise ConfigError(proc.stderr.strip() or f"configuration check failed ({proc.returncode})")
    return from_dict(EdgeConfig, json.loads(proc.stdout))


def main() -> int:
    args = sys.argv[1:]
    path = Path(args[1]) if args[:1] == ["--config"] and len(args) > 1 else None
    try:
        config = load_config_here(path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    json.dump(asdict(config), sys.stdout, default=str)  # the password goes over the pipe
    return 0


if __name__ == "__main__":
    sys.exit(main())
