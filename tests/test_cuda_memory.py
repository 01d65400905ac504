"""GPU memory through cuda-python and through pycuda, each on a small fake of its CUDA calls (no GPU here)."""

import ctypes
import types

import numpy as np
import pytest

from blur2blur.runtime import cuda_memory
from blur2blur.runtime.cuda_memory import gpu_name, open_cuda_memory


def round_trip(memory) -> tuple[np.ndarray, np.ndarray]:
    """Frames to the device and back through pinned buffers, waiting on an event; then spare buffers freed at once.
    Returns (sent, received)."""
    with memory.active():
        host_in, host_out = memory.pinned((2, 3, 4), np.uint8), memory.pinned((2, 3, 4), np.uint8)
        host_in[:] = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
        device = memory.device(host_in.nbytes)
        memory.to_device(device, host_in)
        memory.to_host(host_out, device)
        event = memory.event()
        memory.record(event)
        memory.wait(event)
    return host_in, host_out


def fake_pycuda_driver():
    """pycuda.driver on the CPU. `current` is this thread's context stack as the CUDA driver keeps it; detach() of a
    primary context does what pycuda's does: pushes it where it is not current, releases it, and never pops it."""
    drv = types.ModuleType("pycuda.driver")
    drv.current, drv.retained, drv.freed, drv.memory = [], 0, [], {}

    class Context:
        def push(self):
            drv.current.append(self)

        @staticmethod
        def pop():
            drv.current.pop()

        def detach(self):
            if not drv.current or drv.current[-1] is not self:
                drv.current.append(self)
            drv.retained -= 1

    class Device:
        def __init__(self, ordinal):
            self.ordinal = ordinal

        @staticmethod
        def count():
            return 1

        def name(self):
            return "Fake Orin"

        def retain_primary_context(self):
            drv.retained += 1
            return Context()

    class HostAllocation(bytearray):
        def free(self):
            assert drv.current, "pycuda frees in the current context"
            drv.freed.append(self)

    class DeviceAllocation:
        def __init__(self, nbytes):
            assert drv.current, "pycuda allocates in the current context"
            self.bytes = np.zeros(nbytes, np.uint8)
            drv.memory[int(self)] = self.bytes

        def __int__(self):
            return id(self)

        def free(self):
            assert drv.current, "pycuda frees in the current context"
            drv.freed.append(drv.memory.pop(int(self)))

    def pagelocked_empty(shape, dtype):
        return np.ndarray(shape, dtype, buffer=HostAllocation(int(np.prod(shape)) * np.dtype(dtype).itemsize))

    def memcpy_htod_async(dst, src, stream):
        drv.memory[dst][:] = src.reshape(-1).view(np.uint8)

    def memcpy_dtoh_async(dst, src, stream):
        dst.reshape(-1).view(np.uint8)[:] = drv.memory[src]

    event = types.SimpleNamespace(record=lambda stream: None, synchronize=lambda: None)
    drv.__dict__.update(
        init=lambda: None, Device=Device, Context=Context, pagelocked_empty=pagelocked_empty,
        mem_alloc=DeviceAllocation, memcpy_htod_async=memcpy_htod_async, memcpy_dtoh_async=memcpy_dtoh_async,
        Stream=lambda: types.SimpleNamespace(handle=7, synchronize=lambda: None),
        event_flags=types.SimpleNamespace(DISABLE_TIMING=2, BLOCKING_SYNC=1), Event=lambda flags: event)
    return drv


def test_pycuda_memory_round_trips_frees_and_leaves_no_context_current(monkeypatch):
    drv = fake_pycuda_driver()
    monkeypatch.setattr(cuda_memory, "_pycuda", lambda: drv)
    monkeypatch.setattr(cuda_memory, "_cudart", lambda: (_ for _ in ()).throw(ImportError("no cuda-python")))
    assert cuda_memory.binding() == "pycuda" and gpu_name() == "Fake Orin"
    memory = open_cuda_memory()
    assert memory.name == "Fake Orin" and memory.stream_handle == 7 and drv.current == []
    host_in, host_out = round_trip(memory)
    np.testing.assert_array_equal(host_out, host_in)
    with memory.active():
        memory.free(memory.pinned((4,), np.uint8), memory.device(16), memory.event())
    assert len(drv.freed) == 2  # the spare pinned array and device buffer, at once
    assert drv.current == []
    memory.close()
    assert drv.current == []  # the primary context is popped, not left current in this thread
    assert len(drv.freed) == 5  # and each buffer freed once: two device buffers, three pinned arrays
    open_cuda_memory().close()
    assert drv.current == [] and drv.retained == 1  # one reference for the process, as the CUDA runtime keeps


class FakeCudart:
    """cuda.bindings.runtime's calls as cuda_memory makes them: (error, values...) tuples, host memory for the GPU."""

    cudaStreamNonBlocking, cudaEventDisableTiming, cudaEventBlockingSync = 1, 2, 1
    cudaMemcpyKind = types.SimpleNamespace(cudaMemcpyHostToDevice=1, cudaMemcpyDeviceToHost=2)

    def __init__(self):
        self.memory, self.freed = {}, []

    def _alloc(self, nbytes):
        buffer = (ctypes.c_ubyte * nbytes)()
        self.memory[ctypes.addressof(buffer)] = buffer
        return 0, ctypes.addressof(buffer)

    cudaMallocHost = cudaMalloc = _alloc

    def cudaGetDeviceCount(self):
        return 0, 1

    def cudaGetDeviceProperties(self, device):
        return 0, types.SimpleNamespace(name=b"Fake Orin\x00\x00")

    def cudaGetDevice(self):
        return (0, 0)

    def cudaSetDevice(self, device):
        return (0,)

    def cudaStreamCreateWithFlags(self, flags):
        return 0, 42

    def cudaMemcpyAsync(self, dst, src, nbytes, kind, stream):
        ctypes.memmove(dst, src, nbytes)
        return (0,)

    def cudaEventCreateWithFlags(self, flags):
        return 0, object()

    def cudaEventRecord(self, event, stream):
        return (0,)

    cudaEventSynchronize = cudaStreamSynchronize = cudaEventDestroy = cudaStreamDestroy = lambda self, *a: (0,)

    def cudaFree(self, address):
        self.freed.append(address)
        return (0,)

    cudaFreeHost = cudaFree


def test_cuda_python_memory_round_trips_through_pinned_and_device_buffers(monkeypatch):
    rt = FakeCudart()
    monkeypatch.setattr(cuda_memory, "_cudart", lambda: rt)
    monkeypatch.setattr(cuda_memory, "_pycuda", lambda: (_ for _ in ()).throw(ImportError("no pycuda")))
    assert cuda_memory.binding() == "cuda-python" and gpu_name() == "Fake Orin"
    memory = open_cuda_memory()
    assert memory.name == "Fake Orin" and memory.stream_handle == 42
    host_in, host_out = round_trip(memory)
    np.testing.assert_array_equal(host_out, host_in)
    with memory.active():
        spare_host, spare_device = memory.pinned((4,), np.uint8), memory.device(16)
        memory.free(spare_host, spare_device, memory.event())
    assert sorted(rt.freed) == sorted([spare_host.ctypes.data, spare_device])
    memory.close()
    assert len(rt.freed) == len(set(rt.freed)) == 5  # each buffer once: two device buffers, three pinned arrays
    with pytest.raises(RuntimeError, match="CUDA cudaMalloc failed: cudaErrorMemoryAllocation"):
        cuda_memory._ok((types.SimpleNamespace(value=2, name="cudaErrorMemoryAllocation"), 0), "cudaMalloc")
