"""`b2b-eval handpose --video`: hand landmarks on a user's own blurry footage, without ground truth.

MediaPipe's hand landmarker runs in video mode (tracking, as `b2b-run --app handpose` runs it) over the frames as
they are and as each restoration gives them. Reported per kind: the share of frames with a hand, the hands per
frame, and the landmark jitter: for a hand followed over three consecutive frames, the mean of
|p(t) - 2 p(t-1) + p(t-2)| over its 21 landmarks, as a fraction of the hand's size. Steady motion of a real
hand costs nothing there; landmarks that shake from frame to frame, as on blurred or artefacted frames, do.
"""

from __future__ import annotations

import time
from itertools import islice
from typing import Callable

import numpy as np
from tqdm import tqdm

from blur2blur.evaluate.handpose import MATCH_LIMIT, extent
from blur2blur.evaluate.restorers import LABELS, Restorer


def _points(hand: dict) -> np.ndarray:
    return np.asarray(hand["landmarks"], np.float64)[:, :2]


def _follow(points: np.ndarray, frame: list[dict]) -> np.ndarray | None:
    """The landmarks of the hand in `frame` closest to `points` (within MATCH_LIMIT of its size), or None."""
    size = max(extent(points), 1.0)
    best = min((np.linalg.norm(_points(h) - points, axis=1).mean() / size, i) for i, h in enumerate(frame)) \
        if frame else None
    return _points(frame[best[1]]) if best is not None and best[0] < MATCH_LIMIT else None


def landmark_jitter(frames: list[list[dict]]) -> list[float]:
    """One value per hand followed over three consecutive frames of `frames` (the detections of each frame):
    mean |p(t) - 2 p(t-1) + p(t-2)| of its landmarks over the hand's size."""
    values = []
    for before, previous, current in zip(frames, frames[1:], frames[2:]):
        for hand in current:
            now = _points(hand)
            then = _follow(now, previous)
            first = _follow(then, before) if then is not None else None
            if first is not None:
                size = max(extent(now), 1.0)
                values.append(float(np.linalg.norm(now - 2 * then + first, axis=1).mean() / size))
    return values


def evaluate_handpose_video(source, restorers: list[Restorer], make_detector: Callable[[], object],
                            max_frames: int = 0) -> dict:
    """Hands per frame and landmark jitter on the frames of `source` (a FrameSource) as they are and restored;
    `make_detector()` gives a HandPose in video mode (one per kind: each tracks its own frames)."""
    keys = ["blurry"] + [r.key for r in restorers]
    detectors = {key: make_detector() for key in keys}
    found: dict[str, list[list[dict]]] = {key: [] for key in keys}
    start = time.perf_counter()
    step_ms = 1000.0 / (source.fps or 30.0)
    try:
        frames = islice(source, max_frames) if max_frames else source
        for index, frame in enumerate(tqdm(frames, desc="evaluating", unit="frame", leave=False, disable=None,
                                           total=max_frames or source.frame_count)):
            versions = {"blurry": frame, **{r.key: r.restore(frame) for r in restorers}}
            for key, version in versions.items():
                found[key].append(detectors[key].detect(version, int(round(index * step_ms))))
    finally:
        for detector in detectors.values():
            detector.close()
    count = len(found["blurry"])
    summary = {}
    for key in keys:
        jitter = landmark_jitter(found[key])
        with_hand = sum(1 for hands in found[key] if hands)
        summary[key] = {"frames": count, "with_hand": with_hand, "rate": with_hand / count if count else 0.0,
                        "hands_per_frame": float(np.mean([len(h) for h in found[key]])) if count else 0.0,
                        "jitter": float(np.mean(jitter)) if jitter else None, "jitter_samples": len(jitter)}
    return {"video": source.spec, "frames": count,
            "columns": {"blurry": "blurry input", **{r.key: r.description for r in restorers}},
            "per_frame": {key: [len(h) for h in found[key]] for key in keys}, "summary": summary,
            "seconds": round(time.perf_counter() - start, 2)}


def format_video_table(result: dict) -> str:
    """A markdown table: frames with a hand, hands per frame and landmark jitter per kind."""
    lines = ["| frames | with a hand | hands per frame | landmark jitter (of hand size) |", "|---|---|---|---|"]
    for key, s in result["summary"].items():
        jitter = "-" if s["jitter"] is None else f"{s['jitter']:.4f}"
        lines.append(f"| {LABELS[key]} | {s['with_hand']}/{s['frames']} ({s['rate']:.0%}) | "
                     f"{s['hands_per_frame']:.2f} | {jitter} |")
    return "\n".join(lines + ["", f"{result['frames']} frames of {result['video']}; MediaPipe in video mode; jitter: "
                              "mean |p(t) - 2 p(t-1) + p(t-2)| of the landmarks of a hand followed over three frames, "
                              "over the hand's size (lower is steadier)"])
