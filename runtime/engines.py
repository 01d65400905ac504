"""Engines turn a batch of frames (uint8 N x H x W x 3 BGR) into restored frames of the same shape.

The pipeline knows only `Engine`: `submit(frames)` starts a batch and returns a `Pending` whose `result()` waits
for it; up to `depth` batches may be in flight, so an engine with its own stream (TensorRT) stages the next batch
while the GPU works on the last. `open_engine` gives a `FittingEngine`: it takes frames of any size and brings
them inside the bundle's shape bounds itself (runtime/fit.py).
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from blur2blur.errors import UserError, one_line
from blur2blur.runtime.bundle import Bundle, DamagedGraph, ShapeBounds
from blur2blur.runtime.fit import BoundsFit

log = logging.getLogger(__name__)
BACKENDS = ("auto", "tensorrt", "openvino", "onnxruntime")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")


class Pending(Protocol):
    def result(self) -> np.ndarray:
        """Wait for the batch; uint8 N x H x W x 3 BGR that the caller owns."""
        ...


class Engine(Protocol):
    name: str
    depth: int  # batches the pipeline may keep in flight
    why: str  # why open_engine picked it, for b2b-run's first line
    device: str  # where it computes: "cpu" or "gpu"

    def submit(self, frames: np.ndarray) -> Pending:
        """Start restoring C-contiguous uint8 N x H x W x 3 BGR frames inside the bundle's shape bounds."""
        ...

    def close(self) -> None: ...


class Done:
    """A batch that finished when it was submitted."""

    def __init__(self, frames: np.ndarray) -> None:
        self.frames = frames

    def result(self) -> np.ndarray:
        return self.frames


class Mapped:
    """A batch whose result is mapped (back to its frames' own size) when it is fetched."""

    def __init__(self, pending: Pending, back: Callable[[np.ndarray], np.ndarray]) -> None:
        self.pending, self.back = pending, back

    def result(self) -> np.ndarray:
        return self.back(self.pending.result())


class FittingEngine:
    """An engine for frames of any size: each batch is brought inside the bundle's shape bounds on the way in and
    back to its own size on the way out (`fit` counts the frames it resized and padded)."""

    def __init__(self, engine: Engine, bounds: ShapeBounds | None) -> None:
        self.inner, self.fit = engine, BoundsFit(bounds)
        self.name, self.depth, self.why, self.device = engine.name, engine.depth, engine.why, engine.device
        self.verification = getattr(engine, "verification", None)  # OpenVINO's check against ONNX Runtime

    def submit(self, frames: np.ndarray) -> Pending:
        prepared, back = self.fit.prepare(frames)
        return Mapped(self.inner.submit(prepared), back)

    def warm_up(self, frames: np.ndarray) -> None:
        """Restore `frames` once, uncounted: engines that compile (OpenVINO) or allocate (TensorRT) per frame shape
        do so here, not in the first frame's latency."""
        counts = self.fit.resized, self.fit.padded
        self.submit(frames).result()
        self.fit.resized, self.fit.padded = counts

    def close(self) -> None:
        self.inner.close()


def infer(engine: Engine, frames: np.ndarray) -> np.ndarray:
    """Restore one batch and wait for it."""
    return engine.submit(np.ascontiguousarray(frames)).result()


class OnnxRuntimeEngine:
    """The fused graph in ONNX Runtime on the given providers (default: CUDA where present, else the CPU)."""

    depth = 1  # session.run is synchronous
    why = ""  # set by open_engine

    def __init__(self, onnx_path: Path, providers: list[str] | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(onnx_path), options, providers=providers or best_providers())
        except Exception as err:  # ONNX Runtime's own types: InvalidProtobuf, Fail, ...
            raise DamagedGraph(f"{onnx_path}: ONNX Runtime cannot load it ({type(err).__name__}: "
                               f"{one_line(err)[:160]}); the file is damaged or incomplete: export the bundle again") \
                from None
        self.input_name = self.session.get_inputs()[0].name
        provider = self.session.get_providers()[0]
        self.name = f"onnxruntime ({provider}, {Path(onnx_path).name})"
        self.device = "gpu" if provider == "CUDAExecutionProvider" else "cpu"

    def submit(self, frames: np.ndarray) -> Done:
        return Done(self.session.run(None, {self.input_name: frames})[0])

    def close(self) -> None:
        self.session = None


def best_providers() -> list[str]:
    """ONNX Runtime's providers present here, fastest first (CUDA, then the CPU)."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


def open_engine(bundle: Bundle, backend: str = "auto", precision: str = "auto") -> FittingEngine:
    """The engine for a bundle, with `why` it was picked, taking frames of any size (see FittingEngine).

    `auto`: TensorRT where it imports with a CUDA binding and a GPU; else OpenVINO where it imports on an x86-64
    CPU; else ONNX Runtime. `precision` auto: the bundle's own for TensorRT; bf16 for OpenVINO where the CPU has
    matrix units for it (else fp32); for ONNX Runtime fp16 on CUDA and fp32 on the CPU, where ONNX Runtime
    computes FP16 nodes in FP32 and gains nothing from the FP16 graph.
    """
    if backend not in BACKENDS:
        raise UserError(f"--backend {backend}: choose one of {', '.join(BACKENDS)}")
    if precision not in PRECISIONS:
        raise UserError(f"--precision {precision}: choose one of {', '.join(PRECISIONS)}")
    if precision == "bf16" and backend in ("tensorrt", "onnxruntime"):
        raise UserError(f"--precision bf16 runs on --backend openvino (the CPU's matrix units), not {backend}")
    passed = []  # why auto did not pick a backend
    # the accelerators in auto's order, each where the precision asked for is one it runs
    for name, label, engine_class, runs in (("tensorrt", "TensorRT", "TensorRTEngine", ("auto", "fp32", "fp16")),
                                            ("openvino", "OpenVINO", "OpenVinoEngine", ("auto", "fp32", "bf16"))):
        if backend not in (name, "auto"):
            continue
        if precision not in runs:
            if backend == name:  # asked for: never another backend in its place
                raise UserError(f"--precision {precision}: {label} runs {' or '.join(runs[1:])}")
            continue
        module = importlib.import_module(f"blur2blur.runtime.{name}_engine")
        reason = module.unavailable_reason()
        if reason is not None:
            if backend == name:
                raise UserError(f"--backend {name}: {reason}; or use --backend onnxruntime")
            passed.append(f"no {label}: {reason}")
            continue
        try:
            engine = getattr(module, engine_class)(bundle, None if precision == "auto" else precision)
            return _picked(engine, backend, passed, bundle.bounds)
        except UserError as err:  # auto: another backend may still run the bundle, unless its graph is damaged
            if backend == name or isinstance(err, DamagedGraph):
                raise
            log.warning("%s: %s; trying the next backend", label, err)
            passed.append(f"{label} failed")
    if precision == "bf16":
        raise UserError(f"--precision bf16 needs OpenVINO ({'; '.join(passed)})")
    providers = best_providers()
    if precision == "auto":
        precision = "fp16" if providers[0] == "CUDAExecutionProvider" and "fp16" in bundle.precisions else "fp32"
    return _picked(OnnxRuntimeEngine(bundle.onnx_path(precision), providers), backend, passed, bundle.bounds)


def _picked(engine: Engine, backend: str, passed: list[str], bounds: ShapeBounds | None) -> FittingEngine:
    engine.why = "as asked" if backend != "auto" else f"auto{': ' if passed else ''}{'; '.join(passed)}"
    check = getattr(engine, "verification", None)
    if check:
        engine.why += (f"; output {check['psnr_db']:.1f} dB from ONNX Runtime FP32, "
                       f"{'checked on an earlier run' if check['cached'] else 'checked now'}")
    log.debug("backend: %s (%s)", engine.name, engine.why)
    return FittingEngine(engine, bounds)
