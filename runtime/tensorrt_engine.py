"""The bundle's graph as a TensorRT engine, built on first use and cached; two submissions in flight.

Each input shape gets two slots of pinned host and device buffers, used in turn on one stream, so the host stages
one batch while the GPU works on the other. Tensor-address API only (TensorRT 10 and 11). Torch-free; tensorrt and the
CUDA binding are imported when an engine is made.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from blur2blur.errors import UserError, one_line
from blur2blur.export.tensorrt_build import build_for_bundle, default_cache_dir
from blur2blur.runtime.bundle import Bundle
from blur2blur.runtime.cuda_memory import CudaMemory, binding, gpu_name, open_cuda_memory

log = logging.getLogger(__name__)
SLOTS = 2  # one batch copies while the other computes


def unavailable_reason() -> str | None:
    """Why TensorRT cannot run here (a short line saying what to do), None when it can."""
    try:
        importlib.import_module("tensorrt")
    except ImportError:
        return "tensorrt is not installed here (pip install 'blur2blur[trt]' on a GPU machine)"
    except Exception as err:  # installed, but its libraries do not load
        return f"tensorrt does not load here ({one_line(err)}): reinstall it for this CUDA driver"
    if binding() is None:
        return "no CUDA binding: pip install pycuda or cuda-python"
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
    """The bundle's engine for this GPU (built and cached by blur2blur.export.tensorrt_build), one execution context."""

    depth = SLOTS

    def __init__(self, bundle: Bundle, precision: str | None = None, cache_dir: str | Path | None = None) -> None:
        reason = unavailable_reason()
        if reason:
            raise UserError(f"the TensorRT backend cannot run here: {reason}")
        import tensorrt as trt

        self._cuda = self._context = self._engine = self._runtime = None
        self._slots: dict[tuple[int, ...], list[_Slot]] = {}
        self._turn, self._closed = 0, False
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
                self._check_io(trt, build.path)
                self._context = self._engine.create_execution_context()
                if self._context is None:
                    raise UserError(f"TensorRT could not make an execution context for {build.path.name}: "
                                    "free GPU memory (close other GPU programs) and run again")
        except BaseException:
            self.close()
            raise
        version = ".".join(build.version.split(".")[:2])
        self.name = f"tensorrt {version} ({self._cuda.name}, model.{precision}.engine)"

    def _check_io(self, trt, path: Path) -> None:
        engine = self._engine
        names = {engine.get_tensor_name(i) for i in range(engine.num_io_tensors)}
        for name in (self._input, self._output):
            if name not in names:
                raise UserError(f"{path.name} has tensors {sorted(names)}, not {name!r} as meta.json says: "
                                "export the bundle again")
            if np.dtype(trt.nptype(engine.get_tensor_dtype(name))) != np.uint8:
                raise UserError(f"{path.name}: tensor {name!r} is not uint8 frames: export the bundle again")

    def _set_shape(self, shape: tuple[int, ...]) -> None:
        if not self._context.set_input_shape(self._input, shape):
            raise UserError(f"frames of shape {list(shape)} are outside this bundle's TensorRT profile (NHWC min "
                            f"{self._shapes.get('min')}, max {self._shapes.get('max')}): resize them, or export "
                            "the bundle again with --min-shape/--max-shape around them")

    def _slot(self, shape: tuple[int, ...]) -> _Slot:
        """The next slot for `shape`, alternating; buffers are allocated on a shape's first use and kept."""
        slots = self._slots.get(shape)
        if slots is None:
            self._set_shape(shape)
            out_shape = tuple(int(d) for d in self._context.get_tensor_shape(self._output))
            slots = self._slots[shape] = []
            for _ in range(SLOTS):
                host_in, host_out = self._cuda.pinned(shape, np.uint8), self._cuda.pinned(out_shape, np.uint8)
                slots.append(_Slot(host_in, host_out, self._cuda.device(host_in.nbytes),
                                   self._cuda.device(host_out.nbytes), self._cuda.event()))
        slot = slots[self._turn]
        self._turn = (self._turn + 1) % SLOTS
        return slot

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
            context.set_tensor_address(self._input, slot.dev_in)
            context.set_tensor_address(self._output, slot.dev_out)
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
