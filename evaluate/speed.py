"""`b2b-bench`: frames/s and latency of the fused model per backend, frame size and precision, with its GFLOP.

Every backend runs the same fused module (uint8 BGR frames in and out): PyTorch eager from the checkpoints,
ONNX Runtime, OpenVINO and TensorRT from the bundle's graphs. Each configuration restores one frame at a time: a few
warm-up calls, then `frames` timed calls, each timed from the frame handed over to the restored frame back
on the host. The GFLOP of a frame are PyTorch's count of the module's multiply-adds (2 FLOP each) at that size;
the roofline column sets the GFLOP/s achieved against this machine's matrix-multiply peak at the precision the
hardware multiplies in (measured in PyTorch once per run, after the timing; both need PyTorch).
"""

from __future__ import annotations

import logging
import platform
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm import tqdm

from blur2blur.errors import UserError, one_line
from blur2blur.evaluate.restorers import Restorer, eager
from blur2blur.runtime.bundle import Bundle

log = logging.getLogger(__name__)
BACKENDS = ("pytorch", "onnxruntime", "openvino", "tensorrt")
PRECISIONS = ("fp32", "fp16", "bf16")


def time_calls(restore: Callable[[np.ndarray], np.ndarray], frame: np.ndarray, frames: int, warmup: int) -> dict:
    """frames/s and per-call latency p50/p95/mean in ms of `frames` calls after `warmup` untimed ones."""
    for _ in range(warmup):
        restore(frame)
    times = []
    for _ in range(frames):
        start = time.perf_counter()
        restore(frame)
        times.append(time.perf_counter() - start)
    ms = np.array(times) * 1000.0
    return {"fps": frames / sum(times), "p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
            "mean_ms": float(ms.mean())}


def gflop_per_frame(model, height: int, width: int) -> float:
    """GFLOP of one frame through the fused module, as PyTorch's FLOP counter counts them."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    frame = torch.zeros(1, height, width, 3, dtype=torch.uint8)
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model(frame)
    return counter.get_total_flops() / 1e9


@dataclass
class Subject:
    """The fused model under test: its bundle, and its PyTorch module (None where it cannot be had, `no_model`
    saying why)."""

    bundle: Bundle
    model: object | None
    no_model: str
    description: str


def _describe(sources: dict) -> str:
    return " then ".join(sources[role]["arch"] for role in ("converter", "deblurrer") if role in sources)


def open_subject(bundle: str | None, deblurrer: str | None, converter: str | None, work: Path,
                 sizes: tuple[tuple[int, int], ...], fp16: bool = True, verify: bool = True) -> Subject:
    """A bundle with the checkpoints it was exported from (where they still are), or checkpoints exported now into
    a temporary bundle in `work` whose shapes hold `sizes` (with the FP16 graph when `fp16`)."""
    from blur2blur.evaluate.restorers import bundle_checkpoints, check_model_options
    from blur2blur.runtime.bundle import open_bundle

    check_model_options(bundle, deblurrer, converter)
    if bundle:
        loaded = open_bundle(bundle, verify)
        description = _describe(loaded.meta.get("sources") or {}) or str(bundle)
        checkpoints = bundle_checkpoints(loaded.meta)
        if checkpoints is None:
            why = "the bundle's checkpoints are not where they were exported from, or have changed" \
                if loaded.meta.get("sources") else "the bundle records no checkpoints"
            return Subject(loaded, None, why, description)
        deblurrer, converter = checkpoints["deblurrer"], checkpoints.get("converter")
    try:
        from blur2blur.export.onnx_export import export_bundle, load_models
    except ImportError:
        if not bundle:
            raise UserError("--deblurrer needs PyTorch (pip install 'blur2blur[export]'); without it, give --bundle") \
                from None
        return Subject(loaded, None, "PyTorch is not installed here", description)
    model, sources = load_models(deblurrer, converter)
    if not bundle:
        from blur2blur.runtime.bundle import ShapeBounds

        log.info("exporting %s into a temporary bundle for ONNX Runtime and TensorRT", deblurrer)
        smallest = (min(h for _, h in sizes), min(w for w, _ in sizes))
        largest = (max(h for _, h in sizes), max(w for w, _ in sizes))
        export_bundle(deblurrer, work / "bundle", converter=converter, fp16=fp16,
                      bounds=ShapeBounds(min=smallest, opt=(sizes[0][1], sizes[0][0]), max=largest))
        loaded = open_bundle(work / "bundle")
    return Subject(loaded, model, "", _describe(sources))


def open_timed(subject: Subject, backend: str, precision: str) -> Restorer | str:
    """What restores frames on `backend` in `precision` (the runtime's engine, or PyTorch eager), or why that cannot
    run here."""
    if backend == "pytorch":
        return _eager(subject, precision)
    if backend != "openvino" and precision == "fp16" and "fp16" not in subject.bundle.precisions:
        return "the bundle has no fp16 graph (export with --fp16)"
    from blur2blur.runtime.engines import infer, open_engine

    try:
        engine = open_engine(subject.bundle, backend, precision)
    except UserError as err:
        return str(err)
    except Exception as err:  # noqa: BLE001 -- one configuration that cannot start leaves the others to time
        return f"it cannot start here: {one_line(err)}"
    # ONNX Runtime's CPU computes an FP16 graph's nodes in FP32 (it inserts casts); OpenVINO's multiplies in bf16
    math = precision if engine.device == "gpu" or backend == "openvino" else "fp32"
    return Restorer(backend, engine.name, lambda frame: infer(engine, frame[None])[0], engine.close, engine.device,
                    math)


def _eager(subject: Subject, precision: str) -> Restorer | str:
    if subject.model is None:
        return subject.no_model
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if precision == "fp16" and device == "cpu":
        return "PyTorch computes FP16 convolutions only on a GPU"
    if precision == "bf16":
        return "bf16 is timed on OpenVINO, the CPU runtime that compiles it"
    model = (subject.model.to_fp16() if precision == "fp16" else subject.model).to(device)
    return Restorer("pytorch", f"PyTorch eager ({device.upper()})", eager(model, device),
                    device="gpu" if device == "cuda" else "cpu", math=precision)


PEAK_SIZE = 2048  # square matrices: large enough for any BLAS to reach its peak


def matmul_peak(device: str, math: str) -> float:
    """This machine's matrix-multiply GFLOP/s at a precision: the best of a few 2048 x 2048 products in PyTorch
    (which also counts the GFLOP of a frame), TF32 off on a GPU."""
    import torch

    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[math]
    x = torch.rand(PEAK_SIZE, PEAK_SIZE, device="cuda" if device == "gpu" else "cpu").to(dtype)
    if device == "gpu":
        torch.backends.cuda.matmul.allow_tf32 = False
        return 2.0 * PEAK_SIZE**3 / _best_seconds(lambda: (x @ x, torch.cuda.synchronize())) / 1e9
    return 2.0 * PEAK_SIZE**3 / _best_seconds(lambda: x @ x) / 1e9


def _best_seconds(work: Callable[[], object], runs: int = 8) -> float:
    work()  # warm-up: compilation, allocation, thread pools
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def machine() -> str:
    """The CPU (and GPU) this runs on, in words."""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor() or platform.machine()
    from blur2blur.runtime.cuda_memory import gpu_name

    gpu = gpu_name()
    return f"{cpu}{f', {gpu}' if gpu else ''}"


def check_sizes(bundle: Bundle, sizes: tuple[tuple[int, int], ...]) -> None:
    """Every (width, height) inside the bundle's shape bounds, which TensorRT's engine is built for."""
    bounds = bundle.bounds
    if bounds is None:
        return
    (min_h, min_w), (max_h, max_w) = bounds.min, bounds.max
    for width, height in sizes:
        if not (min_h <= height <= max_h and min_w <= width <= max_w):
            raise UserError(f"--sizes {width}x{height}: outside the bundle's {min_w}x{min_h} to {max_w}x{max_h}; "
                            "time sizes inside it, or export the bundle with a wider --min-shape/--max-shape")


def run_bench(bundle: str | None = None, deblurrer: str | None = None, converter: str | None = None,
              backends: tuple[str, ...] = BACKENDS, sizes: tuple[tuple[int, int], ...] = ((640, 360), (1280, 720)),
              precisions: tuple[str, ...] = PRECISIONS, frames: int = 20, warmup: int = 2, verify: bool = True) -> dict:
    """Every backend x size (width, height) x precision that can run here, timed; the others with the reason."""
    rows, skipped = [], []
    with tempfile.TemporaryDirectory(prefix="b2b-bench-") as work:
        subject = open_subject(bundle, deblurrer, converter, Path(work), sizes, fp16="fp16" in precisions,
                               verify=verify)
        check_sizes(subject.bundle, sizes)
        gflop = {}
        if subject.model is not None:
            gflop = {size: gflop_per_frame(subject.model, size[1], size[0]) for size in sizes}
        rng = np.random.default_rng(0)
        configs = [(b, p) for b in backends for p in precisions]
        bar = tqdm(total=len(configs) * len(sizes), desc="timing", unit="config", leave=False, disable=None)
        for backend, precision in configs:
            timed = open_timed(subject, backend, precision)
            if isinstance(timed, str):
                skipped.append({"backend": backend, "precision": precision, "reason": timed})
                bar.update(len(sizes))
                continue
            try:
                for width, height in sizes:
                    frame = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
                    figures = time_calls(timed.restore, frame, frames, warmup)
                    work_gflop = gflop.get((width, height))
                    rows.append({"backend": backend, "precision": precision, "engine": timed.description,
                                 "size": f"{width}x{height}", **figures, "gflop_per_frame": work_gflop,
                                 "gflop_per_s": work_gflop * figures["fps"] if work_gflop else None,
                                 "device": timed.device, "math": timed.math})
                    bar.update()
            finally:
                timed.close()
        bar.close()
    peaks = {}
    for row in rows:  # measured after the timing, so its warm clocks and threads do not favour one backend
        where = (row["device"], row["math"])
        if row["gflop_per_s"] and where not in peaks:
            peaks[where] = matmul_peak(*where)
        row["peak_gflop_per_s"] = peaks.get(where)
        row["of_peak"] = row["gflop_per_s"] / peaks[where] if where in peaks else None
    return {"model": subject.description, "machine": machine(), "frames": frames, "warmup": warmup,
            "rows": rows, "skipped": skipped,
            "peaks": [{"device": d, "math": m, "gflop_per_s": v} for (d, m), v in peaks.items()]}


def format_bench_table(result: dict) -> str:
    """A markdown table of the timed configurations, then a line per configuration that could not run."""
    lines = [f"{result['model']} on {result['machine']}; one frame at a time, {result['frames']} timed after "
             f"{result['warmup']} warm-up", "",
             "| backend | precision | frame | frames/s | p50 ms | p95 ms | GFLOP/frame | GFLOP/s | matmul peak | "
             "of peak |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in result["rows"]:
        gflop = f"{row['gflop_per_frame']:.1f} | {row['gflop_per_s']:.1f}" if row["gflop_per_frame"] else "- | -"
        peak = f"{row['peak_gflop_per_s']:,.0f} ({row['device'].upper()} {row['math']})" \
            if row.get("peak_gflop_per_s") else "-"
        share = f"{100 * row['of_peak']:.0f} %" if row.get("of_peak") else "-"
        lines.append(f"| {row['engine']} | {row['precision']} | {row['size']} | {row['fps']:.2f} | "
                     f"{row['p50_ms']:.1f} | {row['p95_ms']:.1f} | {gflop} | {peak} | {share} |")
    lines += [f"not run: {s['backend']} {s['precision']}: {s['reason']}" for s in result["skipped"]]
    return "\n".join(lines)
