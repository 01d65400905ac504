"""The bundle's graph as a TensorRT engine, built on first use and cached; two submissions in flight.

Each input shape gets two slots of pinned host and device buffers, used in turn (per shape) on one stream, so the
host stages one batch while the GPU works on the other. Tensor-address API only (TensorRT 10 and 11). Torch-free;
tensorrt and the CUDA binding are imported when an engine is made.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from blur2blur.errors import UserError, one_line
from blur2blur.runtime.bundle import Bundle
from blur2blur.runtime.cuda_memory import NO_BINDING, CudaMemory, binding, gpu_name, open_cuda_memory
from blur2blur.runtime.tensorrt_build import build_for_bundle, default_cache_dir, tensorrt_too_old

log = logging.getLogger(__name__)
SLOTS = 2  # one batch copies while the other computes


def unavailable_reason() -> str | None:
    """Why TensorRT cannot run here (a short line saying what to do), None when it can."""
    try:
        trt = importlib.import_module("tensorrt")
    except ImportError:
        return "tensorrt is not installed here (pip install 'blur2blur[trt]' on a GPU machine)"
    except Exception as err:  # installed, but its libraries do not load
        return f"tensorrt does not load here ({one_line(err)}): reinstall it for this CUDA driver"
    too_old = tensorrt_too_old(trt.__version__)
    if too_old:
        return too_old
    if binding() is None:
        return NO_BINDING
    if gpu_name() is None:
        return "no CUDA GPU is present (TensorRT engines run on the GPU they are built on)"
    return None


@dataclass
class _Slot:
    host_in: np.ndarray  # pinned
    host_out: np.ndarray  # pinned
    dev_in: int
    dev_out: int
    event: object  # recorded after the copy back
    pending: _Pending | None = None  # the submission whose output is still in host_out


class _Pending:
    """One submission; result() waits for it and returns the restored frames."""

    def __init__(self, cuda: CudaMemory, slot: _Slot) -> None:
        self._cuda, self._slot, self._frames = cuda, slot, None

    def _collect(self) -> None:
        if self._frames is None:
            with self._cuda.active():
                self._cuda.wait(self._slot.event)
            self._frames = self._slot.host_out.copy()  # the pinned buffer is reused by a later submit()
            self._slot.pending = None

    def result(self) -> np.ndarray:
        """uint8 N x H x W x 3 BGR, a copy the caller owns."""
        self._collect()
        return self._frames


class TensorRTEngine:
    """The bundle's engine for this GPU (built and cached by blur2blur.runtime.tensorrt_build),
    one execution context."""

    depth = SLOTS
    why = ""  # set by open_engine
    device = "gpu"

    def __init__(self, bundle: Bundle, precision: str | None = None, cache_dir: str | Path | None = None) -> None:
        reason = unavailable_reason()
        if reason:
            raise UserError(f"the TensorRT backend cannot run here: {reason}")
        import tensorrt as trt

        self._cuda = self._context = self._engine = self._runtime = None
        self._slots: dict[tuple[int, ...], list[_Slot]] = {}
        self._turns: dict[tuple[int, ...], int] = {}  # per shape, so alternating shapes each use both their slots
        self._closed = False
        precision = precision or bundle.meta.get("precision", "fp32")
        self._input, self._output = bundle.meta["input"]["name"], bundle.meta["output"]["name"]
        self._shapes = bundle.meta.get("shapes", {})
        self._cuda = open_cuda_memory()
        try:
            cache = Path(cache_dir) if cache_dir else default_cache_dir()
            log.info("TensorRT: the first run on a GPU builds its engine (minutes on a Jetson); later runs reuse it "
                     "from %s", cache)
            with self._cuda.active():  # the builder, too, works in this GPU's context
                build = build_for_bundle(bundle.path, self._cuda.name, precision, cache)
                self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
                self._engine = self._runtime.deserialize_cuda_engine(build.path.read_bytes())
                if self._engine is None:
                    raise UserError(f"TensorRT cannot load {build.path} (its messages above say why): delete it, "
                                    "and the next run builds it again")
                self._engine_file = build.path.name
                self._check_io(trt)
                self._context = self._engine.create_execution_context()
                if self._context is None:
                    raise UserError(f"TensorRT could not make an execution context for {build.path.name}: "
                                    "free GPU memory (close other GPU programs) and run again")
        except BaseException:
            self.close()
            raise
        version = ".".join(build.version.split(".")[:2])
        self.name = f"tensorrt {version} ({self._cuda.name}, model.{precision}.engine)"

    def _check_io(self, trt) -> None:
        engine, path = self._engine, self._engine_file
        names = {engine.get_tensor_name(i) for i in range(engine.num_io_tensors)}
        for name, mode in ((self._input, trt.TensorIOMode.INPUT), (self._output, trt.TensorIOMode.OUTPUT)):
            if name not in names:
                raise UserError(f"{path} has tensors {sorted(names)}, not {name!r} as meta.json says: "
                                "export the bundle again")
            if engine.get_tensor_mode(name) != mode:
                raise UserError(f"{path}: tensor {name!r} is not the {mode.name.lower()} meta.json says it is: "
                                "export the bundle again")
            if np.dtype(trt.nptype(engine.get_tensor_dtype(name))) != np.uint8:
                raise UserError(f"{path}: tensor {name!r} is not uint8 frames: export the bundle again")

    def _set_shape(self, shape: tuple[int, ...]) -> None:
        if not self._context.set_input_shape(self._input, shape):
            raise UserError(f"frames of shape {list(shape)} are outside this bundle's TensorRT profile (NHWC min "
                            f"{self._shapes.get('min')}, max {self._shapes.get('max')}): resize them, or export "
                            "the bundle again with --min-shape/--max-shape around them")

    def _slot(self, shape: tuple[int, ...]) -> _Slot:
        """The next slot for `shape`, alternating per shape; buffers are allocated on a shape's first use and kept."""
        if shape not in self._slots:
            self._slots[shape], self._turns[shape] = self._new_slots(shape), 0  # stored only once all exist
        turn = self._turns[shape]
        self._turns[shape] = (turn + 1) % SLOTS
        return self._slots[shape][turn]

    def _new_slots(self, shape: tuple[int, ...]) -> list[_Slot]:
        """SLOTS slots of buffers for `shape`, or none: what was allocated is freed when one allocation fails."""
        self._set_shape(shape)
        out_shape = tuple(int(d) for d in self._context.get_tensor_shape(self._output))
        if any(d < 0 for d in out_shape):
            raise UserError(f"{self._engine_file}: output {self._output!r} keeps unresolved dimensions "
                            f"{list(out_shape)} for frames of shape {list(shape)}: export the bundle again")
        cuda, made = self._cuda, []
        allocations = (lambda: cuda.pinned(shape, np.uint8), lambda: cuda.pinned(out_shape, np.uint8),
                       lambda: cuda.device(int(np.prod(shape))), lambda: cuda.device(int(np.prod(out_shape))),
                       cuda.event)
        try:
            for _ in range(SLOTS):
                for allocate in allocations:
                    made.append(allocate())
        except BaseException:
            cuda.free(*made)  # out of memory (likely on a Jetson): give back the first buffers too
            raise
        return [_Slot(*made[i:i + len(allocations)]) for i in range(0, len(made), len(allocations))]

    def submit(self, frames: np.ndarray) -> _Pending:
        """Start restoring uint8 N x H x W x 3 BGR frames (inside the bundle's profile); returns at once."""
        if self._closed:
            raise RuntimeError("TensorRTEngine.submit() after close()")
        shape = tuple(int(d) for d in frames.shape)
        cuda, context = self._cuda, self._context
        with cuda.active():
            slot = self._slot(shape)
            if slot.pending is not None:
                slot.pending._collect()  # more than `depth` in flight: keep that output before reusing the buffers
            np.copyto(slot.host_in, frames, casting="no")
            cuda.to_device(slot.dev_in, slot.host_in)
            self._set_shape(shape)
            for name, address in ((self._input, slot.dev_in), (self._output, slot.dev_out)):
                if not context.set_tensor_address(name, address):
                    raise RuntimeError(f"TensorRT refused the address of tensor {name!r} of {self.name} "
                                       "(its messages above say why)")
            if not context.execute_async_v3(cuda.stream_handle):
                raise RuntimeError(f"TensorRT could not run {self.name} on {list(shape)} frames "
                                   "(its messages above say why)")
            cuda.to_host(slot.host_out, slot.dev_out)
            cuda.record(slot.event)
            slot.pending = _Pending(cuda, slot)
        return slot.pending

    def close(self) -> None:
        """Free the engine and its buffers; results of earlier submissions stay readable."""
        if self._closed:
            return
        self._closed = True
        cuda, self._cuda = self._cuda, None
        if cuda is None:
            return
        try:
            for slots in self._slots.values():
                for slot in slots:
                    if slot.pending is not None:
                        slot.pending._collect()
        finally:
            with cuda.active():  # TensorRT frees its GPU memory in the context that made it
                self._slots.clear()
                self._context = None
                self._engine = None
                self._runtime = None
            cuda.close()
