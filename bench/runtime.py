"""What the streaming runtime costs on top of the engine, on a 1280x720 file.

Exports a random nafnet-tiny bundle (speed does not depend on the weights), then measures:
  1. engine only: ONNX Runtime on frames already decoded in memory, one at a time;
  2. `b2b-run` end to end (decode, inference, app, MP4 encoding, each on its thread), with --app none and handpose;
  3. the same fused module in PyTorch eager, against ONNX Runtime.
The clip is ../shared/data's 1280x720 gesture video where present, else a generated one. Prints markdown tables.

    python bench/runtime.py [--frames 40] [--threads 2] [--work DIR]
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
from blur2blur.models.checkpoint import load_checkpoint, save_checkpoint
from blur2blur.models.deploy import DeployModel
from blur2blur.runtime.bundle import open_bundle
from blur2blur.runtime.engines import OnnxRuntimeEngine, infer
from export import frames_per_second  # bench/export.py

CLIP = Path(__file__).resolve().parents[2] / "shared/data/video/mediapipe_samples_gesture_recognizer_test_video.mp4"
B2B_RUN = str(Path(sys.executable).parent / "b2b-run")


def clip_1280x720(work: Path, frames: int) -> Path:
    """The shared 1280x720 clip, or a generated one of moving gradients."""
    if CLIP.is_file():
        return CLIP
    path = work / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (1280, 720))
    yy, xx = np.mgrid[0:720, 0:1280]
    for i in range(frames):
        writer.write(np.stack([(xx + 8 * i) % 256, yy % 256, (xx + yy + 4 * i) % 256], -1).astype(np.uint8))
    writer.release()
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


def b2b_run(bundle: Path, clip: Path, frames: int, work: Path, app: str) -> dict:
    stats = work / f"stats-{app}.json"
    command = [B2B_RUN, "--bundle", str(bundle), "--video", str(clip), "--max-frames", str(frames), "--app", app,
               "--backend", "onnxruntime", "--output", str(work / f"out-{app}.mp4"), "--stats", str(stats),
               "--headless"]
    subprocess.run(command, check=True, capture_output=True)
    return json.loads(stats.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=40, help="frames per measurement")
    parser.add_argument("--threads", type=int, default=2, help="PyTorch threads (ONNX Runtime uses its default)")
    parser.add_argument("--work", help="keep the bundle and outputs here instead of a temporary folder")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    torch.set_num_threads(args.threads)
    work = Path(args.work or tempfile.mkdtemp(prefix="b2b-runtime-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    save_checkpoint(work / "tiny.pt", create_model("nafnet-tiny"), "deblurrer")
    export_bundle(work / "tiny.pt", work / "bundle", force=True)
    clip = clip_1280x720(work, args.frames)
    frames = decoded(clip, args.frames)
    print(f"clip {clip.name}: {len(frames)} frames of {frames[0].shape[1]}x{frames[0].shape[0]}", flush=True)

    engine = OnnxRuntimeEngine(open_bundle(work / "bundle").onnx_path("fp32"))
    infer(engine, frames[0][None])  # warm-up
    start = time.perf_counter()
    for frame in frames:
        infer(engine, frame[None])
    engine_fps = len(frames) / (time.perf_counter() - start)
    engine.close()
    print(f"engine only: {engine_fps:.3f} frames/s", flush=True)
    runs = {app: b2b_run(work / "bundle", clip, len(frames), work, app) for app in ("none", "handpose")}
    for app, report in runs.items():
        print(f"b2b-run --app {app}: {report['fps']:.3f} frames/s", flush=True)

    model = DeployModel(load_checkpoint(work / "tiny.pt", kind="deblurrer")[0]).eval()
    batch = frames[0][None]
    ort_engine = OnnxRuntimeEngine(work / "bundle" / "model.onnx")
    with torch.inference_mode():
        eager_fps = frames_per_second(lambda f: model(torch.from_numpy(f)), batch, min_runs=8)
    ort_fps = frames_per_second(lambda f: infer(ort_engine, f), batch, min_runs=8)

    print(f"\nnafnet-tiny fused graph, 1280x720, ONNX Runtime on the CPU, {len(frames)} frames\n")
    print("| measurement | frames/s | vs engine only | app p50 / p95 ms | infer p50 ms | dropped |")
    print("|---|---|---|---|---|---|")
    print(f"| engine only (frames in memory) | {engine_fps:.3f} | 100% | | | |")
    for app, report in runs.items():
        stages = report["stages"]
        print(f"| `b2b-run --app {app}` end to end | {report['fps']:.3f} | {100 * report['fps'] / engine_fps:.0f}% | "
              f"{stages['app']['p50_ms']:.1f} / {stages['app']['p95_ms']:.1f} | {stages['infer']['p50_ms']:.0f} | "
              f"{report['dropped']} |")
    print("\n| same fused module, one 1280x720 frame | frames/s |")
    print("|---|---|")
    print(f"| PyTorch eager FP32 ({args.threads} threads) | {eager_fps:.3f} |")
    print(f"| ONNX Runtime FP32 | {ort_fps:.3f} ({ort_fps / eager_fps:.2f}x) |")


if __name__ == "__main__":
    main()
