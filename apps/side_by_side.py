"""The `side-by-side` app: input on the left, restored on the right, labelled."""

from __future__ import annotations

import cv2
import numpy as np


def label(frame: np.ndarray, text: str) -> np.ndarray:
    scale = max(0.4, frame.shape[0] / 720)
    cv2.putText(frame, text, (8, int(24 * scale) + 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 2, cv2.LINE_AA)
    return frame


class SideBySide:
    def process(self, original: np.ndarray, restored: np.ndarray, timestamp_ms: int) -> tuple[np.ndarray, list[dict]]:
        return np.hstack([label(original.copy(), "input"), label(restored.copy(), "blur2blur")]), []

    def close(self) -> None:
        pass
