"""Where tuneport keeps its files: ``$TUNEPORT_HOME`` or the platform's user data folder."""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "TUNEPORT_HOME"


def home() -> Path:
    """tuneport's data folder: ``$TUNEPORT_HOME`` or the platform's user data dir."""
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("tuneport"))


def cache_dir(*parts: str) -> Path:
    """A folder under ``home()/cache`` (not created)."""
    return home().joinpath("cache", *parts)
