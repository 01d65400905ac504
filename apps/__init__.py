"""Frame consumers: an app sees the original and the restored frame, draws an output frame and may emit records.

Apps are found by name in the `blur2blur.apps` entry-point group, so other packages can add their own.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Protocol

import numpy as np

from blur2blur.errors import UserError

GROUP = "blur2blur.apps"


class App(Protocol):
    def process(self, original: np.ndarray, restored: np.ndarray, timestamp_ms: int) -> tuple[np.ndarray, list[dict]]:
        """Return the frame to show/write and the records (JSON-serialisable dicts) for this frame."""
        ...

    def close(self) -> None: ...


def app_names() -> list[str]:
    return sorted(ep.name for ep in entry_points(group=GROUP))


def load_app(name: str, **options: object) -> App:
    """Instantiate the app registered under `name`; one-line error listing the known ones otherwise."""
    found = [ep for ep in entry_points(group=GROUP) if ep.name == name]
    if not found:
        raise UserError(f"--app {name}: unknown app; choose one of {', '.join(app_names())}")
    return found[0].load()(**options)
