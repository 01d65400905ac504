"""What exporting costs and what the fused graphs give on the CPU: export time, ONNX sizes, frames/s.

For each deblurrer (random weights: speed and size do not depend on them), exports a bundle with --fp16 and
the default shapes (so the FP16 check runs on 1920 x 1080 extreme frames), then times the same fused module
(uint8 BGR frames in and out) in PyTorch eager FP32 and in ONNX Runtime (CPU) FP32 and FP16, one frame at a
time. Prints markdown tables. Budget here: about 10 minutes on 2 CPU threads.

    python bench/export.py [--archs nafnet-tiny,nafnet-w32] [--sizes 640x360,1280x720] [--threads 2]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from blur2blur.export.onnx_export import export_bundle
from blur2blur.models import count_parameters, create_model
from blur2blur.models.checkpoint import load_checkpoint, save_checkpoint
from blur2blur.models.deploy import DeployModel


def frames_per_second(infer, frames: np.ndarray, min_seconds: float = 3.0, min_runs: int = 2) -> float:
    """Frames/s of `infer` on `frames` after one warm-up call: at least `min_runs` calls and `min_seconds`."""
    infer(frames)
    runs, start = 0, time.perf_counter()
    while runs < min_runs or time.perf_counter() - start < min_seconds:
        infer(frames)
        runs += 1
    return runs * frames.shape[0] / (time.perf_counter() - start)


def ort_session(path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archs", default="nafnet-tiny,nafnet-w32")
    parser.add_argument("--sizes", default="640x360,1280x720", help="WIDTHxHEIGHT list")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", help="keep the bundles here instead of a temporary folder")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    torch.set_num_threads(args.threads)
    work = Path(args.work or tempfile.mkdtemp(prefix="b2b-export-bench-"))
    sizes = [tuple(int(v) for v in size.split("x")) for size in args.sizes.split(",")]
    rng = np.random.default_rng(0)

    export_rows, speed_rows = [], []
    for arch in args.archs.split(","):
        torch.manual_seed(0)
        save_checkpoint(work / f"{arch}.pt", create_model(arch), "deblurrer")
        start = time.perf_counter()
        meta = export_bundle(work / f"{arch}.pt", work / arch, fp16=True, force=True)
        export_seconds = time.perf_counter() - start
        sizes_mb = [meta["artefacts"][name]["bytes"] / 1e6 for name in ("model.onnx", "model.fp16.onnx")]
        model = DeployModel(load_checkpoint(work / f"{arch}.pt", kind="deblurrer")[0]).eval()
        export_rows.append((arch, count_parameters(model) / 1e6, export_seconds, *sizes_mb,
                            meta["verification"]["fp16"]["psnr_vs_fp32_db"]))
        fp32, fp16 = ort_session(work / arch / "model.onnx", args.threads), ort_session(
            work / arch / "model.fp16.onnx", args.threads)
        for width, height in sizes:
            frames = rng.integers(0, 256, (1, height, width, 3), dtype=np.uint8)
            with torch.inference_mode():
                eager = frames_per_second(lambda f, m=model: m(torch.from_numpy(f)), frames)
            row = [frames_per_second(lambda f, s=s: s.run(None, {"frames": f}), frames) for s in (fp32, fp16)]
            speed_rows.append((arch, f"{width}x{height}", eager, *row))
            print(f"{arch} {width}x{height}: eager {eager:.2f}, ORT FP32 {row[0]:.2f}, FP16 {row[1]:.2f} frames/s",
                  flush=True)

    print(f"\nb2b-export --fp16 with the default shapes (max 1080x1920), {args.threads} CPU threads\n")
    print("| deblurrer | parameters | export (s) | model.onnx (MB) | model.fp16.onnx (MB) | FP16 vs FP32 (dB) |")
    print("|---|---|---|---|---|---|")
    for arch, params, seconds, mb32, mb16, db in export_rows:
        print(f"| `{arch}` | {params:.1f} M | {seconds:.0f} | {mb32:.1f} | {mb16:.1f} | {db:.1f} |")
    print(f"\nFused graph (uint8 BGR in and out), one frame at a time, frames/s on {args.threads} CPU threads\n")
    print("| deblurrer | frame | PyTorch eager FP32 | ONNX Runtime FP32 | ONNX Runtime FP16 |")
    print("|---|---|---|---|---|")
    for arch, size, eager, fp32_fps, fp16_fps in speed_rows:
        print(f"| `{arch}` | {size} | {eager:.2f} | {fp32_fps:.2f} | {fp16_fps:.2f} |")


if __name__ == "__main__":
    main()
