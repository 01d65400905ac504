"""The TensorRT runtime engine. Its GPU tests need TensorRT, a CUDA binding and a GPU, and skip with the reason
where one is missing; the rest run everywhere."""

import contextlib
import enum
import logging
import subprocess
import sys
import threading
import types

import cv2
import numpy as np
import pytest
from helpers import randomized

from blur2blur.errors import UserError
from blur2blur.runtime import tensorrt_engine
from blur2blur.runtime.bundle import Bundle, open_bundle
from blur2blur.runtime.cuda_memory import gpu_name
from blur2blur.runtime.tensorrt_build import EngineBuild
from blur2blur.runtime.tensorrt_engine import TensorRTEngine, unavailable_reason

BOUNDS = dict(min=(16, 16), opt=(64, 96), max=(160, 256), batch=2)
SHAPES = [(2, 64, 96), (1, 45, 77)]  # the opt shape and an odd one inside the bounds
NO_TORCH = """
import sys
class NoTorch:  # an edge device with only blur2blur[runtime] and TensorRT: importing torch fails
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test")
sys.meta_path.insert(0, NoTorch())
"""


def astronaut(batch: int, height: int, width: int) -> np.ndarray:
    """A real photo (scikit-image's astronaut) as a C-contiguous uint8 BGR batch; the second frame mirrored."""
    from skimage import data

    frame = cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), (width, height), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(np.stack([frame, frame[:, ::-1]][:batch]))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 100.0 if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def assert_same(a: np.ndarray, b: np.ndarray) -> None:
    """Equal up to 1 (the same engine on the same frames; a buffer mix-up differs by far more)."""
    assert a.shape == b.shape and np.abs(a.astype(np.int16) - b.astype(np.int16)).max() <= 1


def onnx_runtime(path, frames: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"frames": frames})[0]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """A real FP16 bundle of a random nafnet-tiny within BOUNDS; skips (saying why) where TensorRT cannot run."""
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    from blur2blur.export.onnx_export import export_bundle
    from blur2blur.models import create_model
    from blur2blur.models.checkpoint import save_checkpoint
    from blur2blur.runtime.bundle import ShapeBounds

    folder = tmp_path_factory.mktemp("trt-engine")
    save_checkpoint(folder / "deblurrer.pt", randomized(create_model("nafnet-tiny")), "deblurrer")
    export_bundle(folder / "deblurrer.pt", folder / "bundle", fp16=True, bounds=ShapeBounds(**BOUNDS))
    return folder / "bundle"


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("trt-cache")


def test_unavailable_reason_says_what_is_missing_here():
    reason = unavailable_reason()
    if reason is None:
        pytest.skip("TensorRT, a CUDA binding and a GPU are all present here")
    assert isinstance(reason, str) and reason.strip() and "\n" not in reason
    assert "tensorrt" in reason.lower() or "cuda" in reason.lower()


def test_gpu_name_never_raises_and_agrees_with_the_reason():
    name = gpu_name()
    assert name is None or (isinstance(name, str) and name)
    if name is None:
        assert unavailable_reason() is not None


def test_engine_without_tensorrt_is_a_one_line_user_error(tmp_path):
    reason = unavailable_reason()
    if reason is None:
        pytest.skip("TensorRT can run here")
    with pytest.raises(UserError) as err:
        TensorRTEngine(Bundle(tmp_path, {}))
    assert reason in str(err.value) and "\n" not in str(err.value)


def test_runtime_modules_import_and_answer_without_torch():
    code = NO_TORCH + (
        "from blur2blur.runtime import cuda_memory, tensorrt_engine\n"
        "print(repr(tensorrt_engine.unavailable_reason()), repr(cuda_memory.gpu_name()))\n"
        "assert 'torch' not in sys.modules\n"
        "try:\n    import torch\nexcept ImportError:\n    pass\nelse:\n    raise SystemExit('torch was not blocked')\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_engine_matches_onnx_runtime_on_two_shapes_with_two_in_flight(bundle, cache, precision):
    engine = TensorRTEngine(open_bundle(bundle), precision, cache)
    try:
        assert engine.name.startswith("tensorrt ") and f"model.{precision}.engine" in engine.name
        assert engine.depth == 2
        inputs = [astronaut(*shape) for shape in SHAPES]
        first, second = (engine.submit(frames) for frames in inputs)  # both in flight before either result
        outputs = [first.result(), second.result()]
        reference = bundle / ("model.onnx" if precision == "fp32" else "model.fp16.onnx")
        for frames, got in zip(inputs, outputs):
            assert got.dtype == np.uint8 and got.shape == frames.shape
            assert psnr(got, onnx_runtime(reference, frames)) >= 40
        # Three before any result, so a slot is reused while its earlier output is still uncollected.
        pendings = [engine.submit(inputs[i % 2]) for i in range(3)]
        for i, pending in enumerate(pendings):
            assert_same(pending.result(), outputs[i % 2])
        outputs[0][:] = 0  # the caller owns its copy: later results do not change with it
        assert_same(engine.submit(inputs[0]).result(), pendings[0].result())
    finally:
        engine.close()


def test_engine_made_in_one_thread_runs_in_another(bundle, cache):
    engine = TensorRTEngine(open_bundle(bundle), "fp32", cache)
    frames, results, errors = astronaut(*SHAPES[1]), [], []

    def infer():
        try:
            results.append(engine.submit(frames).result())
        except Exception as err:  # reported in the main thread
            errors.append(err)

    try:
        worker = threading.Thread(target=infer)
        worker.start()
        worker.join()
        assert not errors, errors
        assert_same(results[0], engine.submit(frames).result())
    finally:
        engine.close()
    assert results[0].shape == frames.shape  # results outlive close()


def test_second_engine_reuses_the_cached_engine(bundle, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="blur2blur"):
        TensorRTEngine(open_bundle(bundle), "fp32", tmp_path).close()
    built = sorted(tmp_path.glob("*.engine"))
    assert len(built) == 1 and any("building" in r.getMessage() for r in caplog.records)
    assert any("later runs reuse it" in r.getMessage() and str(tmp_path) in r.getMessage() for r in caplog.records)
    mtime = built[0].stat().st_mtime_ns
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="blur2blur"):
        again = TensorRTEngine(open_bundle(bundle), "fp32", tmp_path)
    try:
        messages = [r.getMessage() for r in caplog.records]
        assert any("from the cache" in m for m in messages) and not any(m.startswith("building") for m in messages)
        assert sorted(tmp_path.glob("*.engine")) == built and built[0].stat().st_mtime_ns == mtime
        assert again.submit(astronaut(*SHAPES[0])).result().shape == (*SHAPES[0], 3)
    finally:
        again.close()


def test_frames_outside_the_profile_are_a_user_error(bundle, cache):
    engine = TensorRTEngine(open_bundle(bundle), "fp32", cache)
    try:
        with pytest.raises(UserError, match="outside this bundle's TensorRT profile"):
            engine.submit(astronaut(1, 200, 300))
    finally:
        engine.close()


class FakeCuda:
    """CudaMemory on the CPU whose stream runs only as far as an event waited on, so reading a buffer before its
    event gives stale data, as on a GPU."""

    name, stream_handle, binding = "Fake GPU", 7, "fake"

    def __init__(self):
        self.buffers, self.stream, self.done, self.allocated = {}, [], 0, []
        self.runs, self.freed, self.device_budget = [], [], None  # device_budget: buffers left before out of memory

    def active(self):
        return contextlib.nullcontext()

    def pinned(self, shape, dtype):
        return np.full(shape, 1, dtype)

    def device(self, nbytes):
        if self.device_budget is not None:
            if self.device_budget == 0:
                raise RuntimeError("CUDA cudaMalloc failed: cudaErrorMemoryAllocation")
            self.device_budget -= 1
        self.allocated.append(nbytes)
        self.buffers[len(self.allocated)] = np.zeros(nbytes, np.uint8)
        return len(self.allocated)

    def enqueue(self, operation):
        self.stream.append(operation)

    def to_device(self, dst, src):
        self.enqueue(lambda: np.copyto(self.buffers[dst], src.reshape(-1)))

    def to_host(self, dst, src):
        self.enqueue(lambda: np.copyto(dst, self.buffers[src].reshape(dst.shape)))

    def event(self):
        return [0]

    def free(self, *resources):
        self.freed.extend(resources)

    def record(self, event):
        event[0] = len(self.stream)  # fires once the stream's work so far has run

    def wait(self, event):
        while self.done < event[0]:
            self.stream[self.done]()
            self.done += 1

    def close(self):
        self.buffers = None


class FakeContext:
    """An inverting network (255 - x) on FakeCuda, for frames up to 64 x 64."""

    def __init__(self, cuda):
        self.cuda, self.shape, self.addresses = cuda, None, {}

    def set_input_shape(self, name, shape):
        self.shape = shape
        return name == "frames" and shape[1] <= 64 and shape[2] <= 64

    def get_tensor_shape(self, name):
        return self.shape

    def set_tensor_address(self, name, address):
        self.addresses[name] = address
        return True

    def execute_async_v3(self, stream):
        assert stream == self.cuda.stream_handle
        buffers, src, dst = self.cuda.buffers, self.addresses["frames"], self.addresses["restored"]  # bound now
        self.cuda.runs.append((tuple(self.shape), src))
        self.cuda.enqueue(lambda: np.copyto(buffers[dst], 255 - buffers[src]))
        return True


TensorIOMode = enum.Enum("TensorIOMode", "NONE INPUT OUTPUT")


def fake_tensorrt(cuda, modes=None):
    """The few tensorrt names the engine uses, running FakeContext; `modes` overrides the tensors' I/O modes."""
    modes = modes or {"frames": TensorIOMode.INPUT, "restored": TensorIOMode.OUTPUT}
    engine = types.SimpleNamespace(num_io_tensors=2, get_tensor_name=["frames", "restored"].__getitem__,
                                   get_tensor_dtype=lambda name: "uint8", get_tensor_mode=modes.__getitem__,
                                   create_execution_context=lambda: FakeContext(cuda))
    runtime = types.SimpleNamespace(deserialize_cuda_engine=lambda plan: engine if plan == b"plan" else None)

    class Logger:
        WARNING = 2

        def __init__(self, severity):
            self.severity = severity

    return types.SimpleNamespace(__version__="10.3.0", Logger=Logger, Runtime=lambda logger: runtime,
                                 nptype=lambda dtype: np.uint8, TensorIOMode=TensorIOMode)


FAKE_META = {"precision": "fp32", "input": {"name": "frames"}, "output": {"name": "restored"},
             "shapes": {"min": [1, 16, 16, 3], "opt": [2, 32, 32, 3], "max": [2, 64, 64, 3]}}


@pytest.fixture
def fake_gpu(tmp_path, monkeypatch):
    """FakeCuda behind the engine, with a fake tensorrt and a cached 'engine' file holding b"plan"."""
    cuda = FakeCuda()
    (tmp_path / "model.fp32.key.engine").write_bytes(b"plan")
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt(cuda))
    monkeypatch.setattr(tensorrt_engine, "unavailable_reason", lambda: None)
    monkeypatch.setattr(tensorrt_engine, "open_cuda_memory", lambda: cuda)
    monkeypatch.setattr(tensorrt_engine, "build_for_bundle", lambda *args: EngineBuild(
        tmp_path / "model.fp32.key.engine", "key", "10.3.0", cached=True))
    return cuda


def test_slots_alternate_per_shape_and_results_wait_for_their_event(fake_gpu, tmp_path):
    cuda = fake_gpu
    engine = TensorRTEngine(Bundle(tmp_path, FAKE_META), cache_dir=tmp_path)
    assert engine.name == "tensorrt 10.3 (Fake GPU, model.fp32.engine)" and engine.depth == 2
    big, small = (2, 32, 32, 3), (1, 17, 23, 3)
    frames = [np.random.default_rng(i).integers(0, 256, shape, dtype=np.uint8)
              for i, shape in enumerate([big, small, big, small])]
    pendings = [engine.submit(f) for f in frames]  # the shapes alternate
    assert cuda.done == 0  # each shape took both its slots: four in flight, none waited for an earlier one
    for shape in (big, small):
        assert len({address for run, address in cuda.runs if run == shape}) == 2
    pendings += [engine.submit(frames[0]), engine.submit(frames[1])]  # slots reused while still uncollected
    for pending, f in zip(pendings, frames + frames[:2]):
        np.testing.assert_array_equal(pending.result(), 255 - f)
    assert len(cuda.allocated) == 8  # two slots of input and output buffers for each of the two shapes
    engine.submit(frames[0]).result()[:] = 0  # the caller's copy
    np.testing.assert_array_equal(pendings[0].result(), 255 - frames[0])
    with pytest.raises(UserError, match="outside this bundle's TensorRT profile"):
        engine.submit(np.zeros((1, 65, 65, 3), np.uint8))
    late = engine.submit(frames[1])
    engine.close()
    np.testing.assert_array_equal(late.result(), 255 - frames[1])  # collected by close()
    assert cuda.buffers is None
    with pytest.raises(RuntimeError, match="after close"):
        engine.submit(frames[0])


def test_out_of_memory_for_a_new_shape_frees_its_buffers_and_the_next_frame_retries(fake_gpu, tmp_path):
    cuda = fake_gpu
    engine = TensorRTEngine(Bundle(tmp_path, FAKE_META), cache_dir=tmp_path)
    frames = np.random.default_rng(0).integers(0, 256, (1, 17, 23, 3), dtype=np.uint8)
    cuda.device_budget = 3  # the second slot's output buffer does not fit
    with pytest.raises(RuntimeError, match="cudaErrorMemoryAllocation"):
        engine.submit(frames)
    assert len(cuda.freed) == 8  # four pinned arrays, three device buffers and the first slot's event
    assert sorted(r for r in cuda.freed if isinstance(r, int)) == [1, 2, 3]
    cuda.device_budget = None
    for _ in range(3):  # both slots, then the first again: all there
        np.testing.assert_array_equal(engine.submit(frames).result(), 255 - frames)
    engine.close()


def test_a_tensor_address_tensorrt_refuses_is_an_error(fake_gpu, tmp_path, monkeypatch):
    monkeypatch.setattr(FakeContext, "set_tensor_address", lambda self, name, address: False)
    engine = TensorRTEngine(Bundle(tmp_path, FAKE_META), cache_dir=tmp_path)
    with pytest.raises(RuntimeError, match="refused the address of tensor 'frames'"):
        engine.submit(np.zeros((1, 16, 16, 3), np.uint8))
    engine.close()


def test_tensors_of_the_wrong_mode_are_a_user_error_and_free_the_gpu(fake_gpu, tmp_path, monkeypatch):
    swapped = {"frames": TensorIOMode.OUTPUT, "restored": TensorIOMode.INPUT}
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt(fake_gpu, swapped))
    with pytest.raises(UserError, match="tensor 'frames' is not the input meta.json says") as err:
        TensorRTEngine(Bundle(tmp_path, FAKE_META), cache_dir=tmp_path)
    assert "\n" not in str(err.value) and fake_gpu.buffers is None


def test_an_output_shape_tensorrt_leaves_unresolved_is_a_user_error(fake_gpu, tmp_path, monkeypatch):
    monkeypatch.setattr(FakeContext, "get_tensor_shape", lambda self, name: (self.shape[0], -1, -1, 3))
    engine = TensorRTEngine(Bundle(tmp_path, FAKE_META), cache_dir=tmp_path)
    with pytest.raises(UserError, match="'restored' keeps unresolved dimensions \\[1, -1, -1, 3\\]") as err:
        engine.submit(np.zeros((1, 16, 16, 3), np.uint8))
    assert "\n" not in str(err.value) and fake_gpu.allocated == []
    engine.close()


def test_tensorrt_before_10_is_reported_with_its_version_and_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", types.SimpleNamespace(__version__="8.6.1"))
    reason = unavailable_reason()
    assert reason.startswith("TensorRT 8.6.1 is too old") and "TensorRT 10 or later" in reason
    assert "pip install 'blur2blur[trt]'" in reason and "\n" not in reason


def test_an_engine_file_tensorrt_cannot_load_is_a_user_error_and_frees_the_gpu(fake_gpu, tmp_path):
    (tmp_path / "model.fp32.key.engine").write_bytes(b"from another TensorRT")
    with pytest.raises(UserError, match="TensorRT cannot load .*delete it"):
        TensorRTEngine(Bundle(tmp_path, FAKE_META), cache_dir=tmp_path)
    assert fake_gpu.buffers is None
