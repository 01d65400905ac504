"""The `none` app: the restored frame, unchanged."""

from __future__ import annotations

import numpy as np


class PassThrough:
    emits_records = False

    def process(self, original: np.ndarray, restored: np.ndarray, timestamp_ms: int) -> tuple[np.ndarray, None]:
        return restored, None

    def close(self) -> None:
        pass
