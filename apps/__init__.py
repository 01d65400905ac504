"""Frame consumers: an app sees the original and the restored frame, draws an output frame and may emit a record.

Apps are found by name in the `blur2blur.apps` entry-point group, so other packages can add their own: a class
(or factory) taking the app's keyword options, with `process` and `close` as in `App`.
"""

from __future__ import annotations

import inspect
from importlib.metadata import entry_points
from typing import Protocol

import numpy as np

from blur2blur.errors import UserError

GROUP = "blur2blur.apps"


class App(Protocol):
    emits_records: bool  # whether process() returns records (--records is refused for an app that has none)
    beside_input: bool  # optional (False when absent): its frames are shown beside the input, as with --side-by-side

    def process(self, original: np.ndarray, restored: np.ndarray, timestamp_ms: int) -> tuple[np.ndarray, dict | None]:
        """The frame to show and write, and this frame's record (a JSON-serialisable dict) or None.

        Timestamps increase strictly from frame to frame.
        """
        ...

    def close(self) -> None: ...


def app_names() -> list[str]:
    return sorted(ep.name for ep in entry_points(group=GROUP))


def load_app(name: str, **options: object) -> App:
    """Instantiate the app registered under `name` with `options`; one-line errors for an unknown app or an
    option it does not take (options given as None are left out)."""
    found = [ep for ep in entry_points(group=GROUP) if ep.name == name]
    if not found:
        raise UserError(f"--app {name}: unknown app; choose one of {', '.join(app_names())}")
    factory = found[0].load()
    options = {key: value for key, value in options.items() if value is not None}
    accepted = inspect.signature(factory).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
    for key in options:
        if key not in accepted and not takes_any:
            raise UserError(f"--{key.replace('_', '-')}: the {name} app takes no such option")
    return factory(**options)
