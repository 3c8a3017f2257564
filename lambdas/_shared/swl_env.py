"""Environment configuration for the lab's Lambda functions (bundled into every zip).

Read when called, never at import: a handler builds its config once at module
scope from ``os.environ``; tests pass their own mapping.
"""

from __future__ import annotations

import os
from typing import Mapping


class ConfigError(ValueError):
    """An environment variable holds a value the function cannot use."""


def _env(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def get_str(name: str, default: str | None = None, env: Mapping[str, str] | None = None) -> str:
    value = _env(env).get(name, "")
    if value == "":
        if default is None:
            raise ConfigError(f"environment variable {name} is required")
        return default
    return value


def get_int(name: str, default: int, env: Mapping[str, str] | None = None, minimum: int | None = None) -> int:
    raw = _env(env).get(name, "")
    try:
        value = default if raw == "" else int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer") from None
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name}={value} is below the minimum {minimum}")
    return value


def get_float(name: str, default: float, env: Mapping[str, str] | None = None) -> float:
    raw = _env(env).get(name, "")
    try:
        return default if raw == "" else float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None


def get_bool(name: str, default: bool = False, env: Mapping[str, str] | None = None) -> bool:
    raw = _env(env).get(name, "").strip().lower()
    if raw == "":
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean (use 1/0, true/false)")


def get_list(name: str, env: Mapping[str, str] | None = None) -> list[str]:
    """A comma-separated list; empty items are dropped."""
    return [item.strip() for item in _env(env).get(name, "").split(",") if item.strip()]
