"""Microscope presets shipped with lfmsim (TOML files in this folder), listed by ``python -m optics presets``.

Each preset is an ordinary config file; ``get(name)`` loads it, ``path(name)`` gives the file to copy
and edit.  The systems follow ../shared/PHYSICS.md sections 6-7 (sets A and B, Prevedel 2014).
"""

from __future__ import annotations

import difflib
from pathlib import Path

from ..config import ConfigError, Microscope, load_config

__all__ = ["names", "get", "path"]

_DIR = Path(__file__).parent


def names() -> list[str]:
    """Names of the shipped presets."""
    return sorted(p.stem for p in _DIR.glob("*.toml"))


def path(name: str) -> Path:
    """The TOML file of preset ``name``."""
    p = _DIR / f"{name}.toml"
    if not p.is_file():
        close = difflib.get_close_matches(name, names(), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"preset = {name!r} is unknown{hint}; accepted: {', '.join(names())}")
    return p


def get(name: str, **changes) -> Microscope:
    """Load preset ``name``; keyword ``changes`` go to ``Microscope.replace`` (e.g. ``volume={...}``)."""
    m = load_config(path(name))
    return m.replace(**changes) if changes else m
