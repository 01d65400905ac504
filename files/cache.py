"""Where blur2blur keeps what it makes once per machine (TensorRT engines, the hand model)."""

from __future__ import annotations

import os
from pathlib import Path


def user_cache_dir(name: str) -> Path:
    """$XDG_CACHE_HOME/blur2blur/NAME, or ~/.cache/blur2blur/NAME where XDG_CACHE_HOME is unset or empty."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "blur2blur" / name
