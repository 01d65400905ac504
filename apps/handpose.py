"""The `handpose` app: MediaPipe's HandLandmarker (Tasks API, video mode) on the restored frames.

`HandPose(video=False)` detects in still images instead (each on its own, no tracking), for `b2b-eval handpose`.

It draws the 21 landmarks of each hand and their connections, and records per frame each hand's handedness,
score and landmarks in pixels (x, y; z is MediaPipe's depth relative to the wrist, in about the same scale as x).
"""

from __future__ import annotations

import logging
import os
import sys
from contextlib import contextmanager, nullcontext
from typing import Iterator

import cv2
import numpy as np

from blur2blur.apps.hand_model import resolve_hand_model
from blur2blur.errors import UserError, one_line

# The hand's bones, landmark index pairs: the palm, then thumb, index, middle, ring and little finger.
CONNECTIONS = ((0, 1), (0, 5), (5, 9), (9, 13), (13, 17), (0, 17),
               (1, 2), (2, 3), (3, 4), (5, 6), (6, 7), (7, 8), (9, 10), (10, 11), (11, 12),
               (13, 14), (14, 15), (15, 16), (17, 18), (18, 19), (19, 20))
COLOURS = {"Left": (255, 160, 0), "Right": (0, 200, 255)}  # BGR


class HandPose:
    """Hand landmarks on every restored frame; `num_hands` at most, each above `min_confidence`.

    `video`: MediaPipe's video mode, which tracks hands from frame to frame (timestamps must increase); else
    its image mode, where every image is detected on its own and the timestamp is ignored. `quiet`: LiteRT's
    native stderr lines (a warning for a frame it must copy, at random) discarded during detection too; for
    batch evaluation, where no other thread writes to stderr meanwhile.
    """

    emits_records = True

    def __init__(self, hand_model: str | None = None, num_hands: int = 2, min_confidence: float = 0.5,
                 video: bool = True, quiet: bool = False) -> None:
        path = resolve_hand_model(hand_model)
        try:
            import mediapipe as mp
            from mediapipe.tasks.python import BaseOptions, vision
        except ImportError:
            raise UserError("--app handpose needs MediaPipe: pip install 'blur2blur[handpose]'") from None
        mode = vision.RunningMode.VIDEO if video else vision.RunningMode.IMAGE
        options = vision.HandLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(path)), running_mode=mode, num_hands=num_hands,
            min_hand_detection_confidence=min_confidence, min_hand_presence_confidence=min_confidence,
            min_tracking_confidence=min_confidence)
        self.mp, self.video, self.quiet = mp, video, quiet
        with native_stderr_silenced():  # LiteRT's start-up lines would bury the run's own output
            try:
                self.landmarker = vision.HandLandmarker.create_from_options(options)
            except (RuntimeError, ValueError) as err:
                raise UserError(f"hand model {path}: MediaPipe cannot load it ({one_line(err)}); "
                                "fetch it again with `b2b-run fetch-hand-model --force`") from None
            try:
                self.detect(np.zeros((64, 64, 3), np.uint8), -1)  # warm-up
            except BaseException:
                self.landmarker.close()
                raise

    def image(self, frame: np.ndarray):
        return self.mp.Image(image_format=self.mp.ImageFormat.SRGB, data=aligned_rgb(frame))

    def detect(self, frame: np.ndarray, timestamp_ms: int = 0) -> list[dict]:
        """The hands in a BGR frame: handedness, score and 21 landmarks [x px, y px, z]."""
        with native_stderr_silenced() if self.quiet else nullcontext():
            if self.video:  # the warm-up took timestamp 0: frames start at 1
                result = self.landmarker.detect_for_video(self.image(frame), timestamp_ms + 1)
            else:
                result = self.landmarker.detect(self.image(frame))
        height, width = frame.shape[:2]
        hands = []
        for landmarks, handedness in zip(result.hand_landmarks, result.handedness):
            hands.append({"handedness": handedness[0].category_name, "score": round(handedness[0].score, 4),
                          "landmarks": [[round(p.x * width, 1), round(p.y * height, 1), round(p.z * width, 1)]
                                        for p in landmarks]})
        return hands

    def process(self, original: np.ndarray, restored: np.ndarray, timestamp_ms: int) -> tuple[np.ndarray, dict]:
        hands = self.detect(restored, timestamp_ms)
        return draw_hands(restored.copy(), hands), {"hands": hands}

    def close(self) -> None:
        with native_stderr_silenced():
            self.landmarker.close()


@contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Native code's writes to stderr (file descriptor 2) discarded, unless logging is at DEBUG (--debug)."""
    if logging.getLogger().isEnabledFor(logging.DEBUG):
        yield
        return
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def draw_hands(frame: np.ndarray, hands: list[dict]) -> np.ndarray:
    """Each hand's bones and landmarks drawn on `frame`, in place."""
    thickness = max(1, round(frame.shape[0] / 360))
    for hand in hands:
        colour = COLOURS.get(hand["handedness"], (0, 255, 0))
        points = [(int(round(x)), int(round(y))) for x, y, _ in hand["landmarks"]]
        for start, end in CONNECTIONS:
            cv2.line(frame, points[start], points[end], colour, thickness, cv2.LINE_AA)
        for point in points:
            cv2.circle(frame, point, thickness + 2, (255, 255, 255), -1, cv2.LINE_AA)
            cv2.circle(frame, point, thickness + 2, colour, 1, cv2.LINE_AA)
    return frame


ALIGNMENT = 64  # bytes: what LiteRT wants of an input tensor (else it warns on stderr and copies)


def aligned_rgb(frame: np.ndarray) -> np.ndarray:
    """`frame` (BGR) as RGB in a buffer that starts on an ALIGNMENT-byte boundary: numpy's own buffers sometimes do
    not, and then MediaPipe's LiteRT prints a warning per frame."""
    raw = np.empty(frame.nbytes + ALIGNMENT, np.uint8)
    start = -raw.ctypes.data % ALIGNMENT
    rgb = raw[start:start + frame.nbytes].reshape(frame.shape)
    cv2.cvtColor(frame, cv2.COLOR_BGR2RGB, dst=rgb)
    return rgb
