"""GPU 0 for the TensorRT engine through a CUDA binding: pycuda where it imports, else cuda-python.

Torch-free and thin: a stream, pinned host arrays, device buffers, async copies and events. The bindings are
imported inside functions, so this module imports on machines without CUDA.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
from typing import Iterator

import numpy as np

from blur2blur.errors import UserError

NO_BINDING = "no CUDA binding: pip install cuda-python (blur2blur[trt] installs it; pycuda works too)"


def _pycuda():
    import pycuda.driver as drv

    return drv


def _cudart():
    try:
        from cuda.bindings import runtime as cudart  # cuda-python 12.6 and later
    except ImportError:
        from cuda import cudart  # earlier cuda-python
    return cudart


def binding() -> str | None:
    """The binding to use: "cuda-python" (NVIDIA's, with binary wheels) where it imports, else "pycuda"; None
    when neither imports."""
    for name, load in (("cuda-python", _cudart), ("pycuda", _pycuda)):
        try:
            load()
        except Exception:  # not installed, or installed without the CUDA libraries it links to
            continue
        return name
    return None


def gpu_name() -> str | None:
    """GPU 0's name, None without a binding or a GPU; never raises.

    The driver's name, as torch.cuda.get_device_name gives it, so engines b2b-export cached are found again.
    """
    try:
        kind = binding()
        if kind == "pycuda":
            drv = _pycuda()
            drv.init()
            return drv.Device(0).name() if drv.Device.count() else None
        if kind == "cuda-python":
            rt = _cudart()
            return _device_name(rt) if _ok(rt.cudaGetDeviceCount(), "cudaGetDeviceCount") else None
    except Exception:  # no driver, no device or a broken install all mean: no GPU to use here
        return None
    return None


def open_cuda_memory() -> CudaMemory:
    """GPU 0 through cuda-python, or pycuda where cuda-python does not import."""
    kind = binding()
    if kind is None:
        raise UserError(NO_BINDING)
    if gpu_name() is None:
        raise UserError("no CUDA GPU is present (or its driver does not load): run on a machine with an NVIDIA GPU")
    return _PyCudaMemory() if kind == "pycuda" else _RuntimeMemory()


class CudaMemory:
    """GPU 0 for one engine. Wrap all work in `with active():` so any thread may use it."""

    binding: str
    name: str  # the GPU's name
    stream_handle: int  # the stream, as TensorRT's execute_async_v3 takes it

    def active(self) -> contextlib.AbstractContextManager: ...
    def pinned(self, shape: tuple[int, ...], dtype) -> np.ndarray: ...  # page-locked, so copies are async
    def device(self, nbytes: int) -> int: ...  # a device buffer's address
    def to_device(self, dst: int, src: np.ndarray) -> None: ...  # async on the stream; src pinned
    def to_host(self, dst: np.ndarray, src: int) -> None: ...  # async on the stream; dst pinned
    def event(self) -> object: ...
    def free(self, *resources) -> None: ...  # pinned arrays, device buffers or events from above, freed now
    def record(self, event) -> None: ...  # the event fires once the stream's work so far is done
    def wait(self, event) -> None: ...  # blocks this thread until the event fired
    def close(self) -> None: ...  # frees everything; the arrays from pinned() are invalid afterwards


class _PyCudaMemory(CudaMemory):
    binding = "pycuda"

    def __init__(self) -> None:
        drv = self._drv = _pycuda()
        drv.init()
        self.name = drv.Device(0).name()
        self._context = _primary_context(drv)
        self._host: dict[int, object] = {}  # address: page-locked allocation
        self._device: dict[int, object] = {}  # address: device allocation
        self._events: list = []
        with self.active():
            self._stream = drv.Stream()
        self.stream_handle = self._stream.handle

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        self._context.push()
        try:
            yield
        finally:
            self._drv.Context.pop()

    def pinned(self, shape, dtype) -> np.ndarray:
        array = self._drv.pagelocked_empty(tuple(shape), np.dtype(dtype))
        self._host[array.ctypes.data] = array.base  # the page-locked allocation behind the array
        return array

    def device(self, nbytes: int) -> int:
        allocation = self._drv.mem_alloc(nbytes)
        self._device[int(allocation)] = allocation
        return int(allocation)

    def to_device(self, dst: int, src: np.ndarray) -> None:
        self._drv.memcpy_htod_async(dst, src, self._stream)

    def to_host(self, dst: np.ndarray, src: int) -> None:
        self._drv.memcpy_dtoh_async(dst, src, self._stream)

    def event(self):
        flags = self._drv.event_flags
        event = self._drv.Event(flags.DISABLE_TIMING | flags.BLOCKING_SYNC)  # the waiting thread sleeps, not spins
        self._events.append(event)
        return event

    def free(self, *resources) -> None:
        for resource in resources:
            if isinstance(resource, np.ndarray):
                self._host.pop(resource.ctypes.data).free()
            elif isinstance(resource, int):
                self._device.pop(resource).free()
            else:  # an event: pycuda destroys it with its last reference
                self._events = [event for event in self._events if event is not resource]

    def record(self, event) -> None:
        event.record(self._stream)

    def wait(self, event) -> None:
        event.synchronize()

    def close(self) -> None:
        with self.active():  # pycuda frees while the context is current; popped after, so nothing stays current
            self._stream.synchronize()
            for allocation in [*self._device.values(), *self._host.values()]:
                allocation.free()
            self._host, self._device, self._events, self._stream = {}, {}, [], None


@functools.cache
def _primary_context(drv):
    """GPU 0's primary context (the CUDA runtime's, hence TensorRT's), retained once for the process and only
    ever pushed and popped, as pycuda documents for primary contexts: the runtime keeps it until exit anyway, and
    pycuda's detach() releases a primary context without popping it, which would leave it current."""
    return drv.Device(0).retain_primary_context()


class _RuntimeMemory(CudaMemory):
    binding = "cuda-python"

    def __init__(self) -> None:
        self._rt = rt = _cudart()
        self._host: list[int] = []
        self._device: list[int] = []
        self._events: list = []
        with self.active():
            self.name = _device_name(rt)
            self._stream = _ok(rt.cudaStreamCreateWithFlags(rt.cudaStreamNonBlocking), "cudaStreamCreateWithFlags")
        self.stream_handle = int(self._stream)  # int() of a cuda-python handle is the handle's value

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        # The runtime API's device is per thread and TensorRT runs on it: make it 0, then restore the caller's.
        previous = _ok(self._rt.cudaGetDevice(), "cudaGetDevice")
        _ok(self._rt.cudaSetDevice(0), "cudaSetDevice")
        try:
            yield
        finally:
            if previous != 0:
                _ok(self._rt.cudaSetDevice(previous), "cudaSetDevice")

    def pinned(self, shape, dtype) -> np.ndarray:
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape)) * dtype.itemsize
        address = int(_ok(self._rt.cudaMallocHost(nbytes), "cudaMallocHost"))
        self._host.append(address)
        return np.frombuffer((ctypes.c_ubyte * nbytes).from_address(address), dtype).reshape(shape)

    def device(self, nbytes: int) -> int:
        address = int(_ok(self._rt.cudaMalloc(nbytes), "cudaMalloc"))
        self._device.append(address)
        return address

    def to_device(self, dst: int, src: np.ndarray) -> None:
        kind = self._rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        _ok(self._rt.cudaMemcpyAsync(dst, src.ctypes.data, src.nbytes, kind, self._stream), "cudaMemcpyAsync")

    def to_host(self, dst: np.ndarray, src: int) -> None:
        kind = self._rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        _ok(self._rt.cudaMemcpyAsync(dst.ctypes.data, src, dst.nbytes, kind, self._stream), "cudaMemcpyAsync")

    def event(self):
        flags = self._rt.cudaEventDisableTiming | self._rt.cudaEventBlockingSync  # the waiting thread sleeps
        event = _ok(self._rt.cudaEventCreateWithFlags(flags), "cudaEventCreateWithFlags")
        self._events.append(event)
        return event

    def free(self, *resources) -> None:
        rt = self._rt
        for resource in resources:
            if isinstance(resource, np.ndarray):
                self._host.remove(resource.ctypes.data)
                _ok(rt.cudaFreeHost(resource.ctypes.data), "cudaFreeHost")
            elif isinstance(resource, int):
                self._device.remove(resource)
                _ok(rt.cudaFree(resource), "cudaFree")
            else:
                self._events = [event for event in self._events if event is not resource]
                _ok(rt.cudaEventDestroy(resource), "cudaEventDestroy")

    def record(self, event) -> None:
        _ok(self._rt.cudaEventRecord(event, self._stream), "cudaEventRecord")

    def wait(self, event) -> None:
        _ok(self._rt.cudaEventSynchronize(event), "cudaEventSynchronize")

    def close(self) -> None:
        rt = self._rt
        with self.active():
            _ok(rt.cudaStreamSynchronize(self._stream), "cudaStreamSynchronize")
            for address in self._device:
                _ok(rt.cudaFree(address), "cudaFree")
            for address in self._host:
                _ok(rt.cudaFreeHost(address), "cudaFreeHost")
            for event in self._events:
                _ok(rt.cudaEventDestroy(event), "cudaEventDestroy")
            _ok(rt.cudaStreamDestroy(self._stream), "cudaStreamDestroy")
        self._device, self._host, self._events = [], [], []


def _ok(result: tuple, what: str):
    """The value of a cuda-python call (which returns (error, values...)); RuntimeError naming the call on an error."""
    error, *values = result
    if getattr(error, "value", error) != 0:  # an enum in every cuda-python release, an IntEnum only in some
        raise RuntimeError(f"CUDA {what} failed: {getattr(error, 'name', error)}")
    return values[0] if values else None


def _device_name(rt) -> str:
    name = _ok(rt.cudaGetDeviceProperties(0), "cudaGetDeviceProperties").name
    return (name.decode(errors="replace") if isinstance(name, bytes) else str(name)).strip("\x00").strip()
