"""What the streaming runtime costs on top of the engine, on a video file.

Measures, for a bundle (`--bundle`, else a random nafnet-tiny exported here: speed does not depend on the
weights) and a backend (`--backend`, as b2b-run's):
  1. engine only: the engine on frames already decoded in memory, one at a time;
  2. `b2b-run` end to end (decode, inference, app, MP4 encoding, each on its thread), with --app none and handpose.
The clip is ../shared/data's 1280x720 gesture video where present, else a generated one, resized to `--size`.
Prints a markdown table. (`b2b-bench` compares the backends on the engine alone.)

    python bench/runtime.py [--bundle DIR] [--backend auto] [--size 1280x720] [--frames 40] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from blur2blur.export.onnx_export import export_bundle
from blur2blur.models import create_model
from blur2blur.models.checkpoint import save_checkpoint
from blur2blur.runtime.bundle import open_bundle
from blur2blur.runtime.engines import infer, open_engine

CLIP = Path(__file__).resolve().parents[2] / "shared/data/video/mediapipe_samples_gesture_recognizer_test_video.mp4"
B2B_RUN = str(Path(sys.executable).parent / "b2b-run")


def clip(work: Path, frames: int, width: int, height: int) -> Path:
    """The shared clip (else moving gradients) as an MP4 of `frames` frames of width x height."""
    source = cv2.VideoCapture(str(CLIP)) if CLIP.is_file() else None
    path = work / f"clip-{width}x{height}.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (width, height))
    yy, xx = np.mgrid[0:720, 0:1280]
    for i in range(frames):
        ok, frame = source.read() if source is not None else (False, None)
        if not ok:
            frame = np.stack([(xx + 8 * i) % 256, yy % 256, (xx + yy + 4 * i) % 256], -1).astype(np.uint8)
        writer.write(cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA))
    writer.release()
    if source is not None:
        source.release()
    return path


def decoded(path: Path, frames: int) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    out = []
    while len(out) < frames:
        ok, frame = capture.read()
        if not ok:
            break
        out.append(frame)
    capture.release()
    return out


def b2b_run(bundle: Path, video: Path, frames: int, work: Path, app: str, backend: str) -> dict:
    stats = work / f"stats-{app}.json"
    command = [B2B_RUN, "--bundle", str(bundle), "--video", str(video), "--max-frames", str(frames), "--app", app,
               "--backend", backend, "--output", str(work / f"out-{app}.mp4"), "--stats", str(stats), "--headless"]
    subprocess.run(command, check=True, capture_output=True)
    return json.loads(stats.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", help="the bundle to run (default: a random nafnet-tiny, exported here)")
    parser.add_argument("--backend", default="auto", help="b2b-run's --backend (default auto)")
    parser.add_argument("--size", default="1280x720", help="frame size WxH (default 1280x720)")
    parser.add_argument("--frames", type=int, default=40, help="frames per measurement")
    parser.add_argument("--work", help="keep the bundle and outputs here instead of a temporary folder")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    work = Path(args.work or tempfile.mkdtemp(prefix="b2b-runtime-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    bundle = Path(args.bundle) if args.bundle else work / "bundle"
    if not args.bundle:
        torch.manual_seed(0)
        save_checkpoint(work / "tiny.pt", create_model("nafnet-tiny"), "deblurrer")
        export_bundle(work / "tiny.pt", bundle, force=True)
    width, height = (int(v) for v in args.size.split("x"))
    video = clip(work, args.frames, width, height)
    frames = decoded(video, args.frames)

    engine = open_engine(open_bundle(bundle), args.backend)
    infer(engine, frames[0][None])  # warm-up: compiles for this shape where the backend does
    start = time.perf_counter()
    for frame in frames:
        infer(engine, frame[None])
    engine_fps = len(frames) / (time.perf_counter() - start)
    engine.close()
    print(f"engine only: {engine_fps:.3f} frames/s ({engine.name})", flush=True)
    runs = {app: b2b_run(bundle, video, len(frames), work, app, args.backend) for app in ("none", "handpose")}

    print(f"\n{bundle}, {width}x{height}, {engine.name}, {len(frames)} frames\n")
    print("| measurement | frames/s | vs engine only | app p50 / p95 ms | infer p50 ms | dropped |")
    print("|---|---|---|---|---|---|")
    print(f"| engine only (frames in memory) | {engine_fps:.3f} | 100% | | | |")
    for app, report in runs.items():
        stages = report["stages"]
        print(f"| `b2b-run --app {app}` end to end | {report['fps']:.3f} | {100 * report['fps'] / engine_fps:.0f}% | "
              f"{stages['app']['p50_ms']:.1f} / {stages['app']['p95_ms']:.1f} | {stages['infer']['p50_ms']:.0f} | "
              f"{report['dropped']} |")


if __name__ == "__main__":
    main()
