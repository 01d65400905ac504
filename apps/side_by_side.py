"""The `side-by-side` app: input on the left, restored on the right, labelled; and `side_by_side`, the one place
where such a pair is composed (for this app, `b2b-run --side-by-side` and the live view alike)."""

from __future__ import annotations

import cv2
import numpy as np


def label(frame: np.ndarray, text: str) -> np.ndarray:
    """`text` written on `frame` (in place) at the top left, white with a dark outline to read on any content."""
    scale = max(0.4, frame.shape[0] / 720)
    stroke = max(1, round(2 * scale))
    for colour, thickness in (((0, 0, 0), stroke + 2), ((255, 255, 255), stroke)):
        cv2.putText(frame, text, (8, int(24 * scale) + 4), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thickness,
                    cv2.LINE_AA)
    return frame


def side_by_side(original: np.ndarray, shown: np.ndarray, text: str = "blur2blur") -> np.ndarray:
    """`original` | `shown`, labelled; `shown` is scaled to the original's height if it differs."""
    if shown.shape[0] != original.shape[0]:
        width = round(shown.shape[1] * original.shape[0] / shown.shape[0])
        shown = cv2.resize(shown, (width, original.shape[0]), interpolation=cv2.INTER_AREA)
    return np.hstack([label(original.copy(), "input"), label(shown.copy(), text)])


class SideBySide:
    emits_records = False
    beside_input = True  # the run shows its frames beside the input, as --side-by-side does

    def process(self, original: np.ndarray, restored: np.ndarray, timestamp_ms: int) -> tuple[np.ndarray, None]:
        return restored, None

    def close(self) -> None:
        pass
