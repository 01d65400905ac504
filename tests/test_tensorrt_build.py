"""The TensorRT builder. The engine tests need TensorRT and a CUDA GPU and skip where either is missing; the build
settings and the timing cache are checked everywhere, against a small fake of TensorRT's builder."""

import enum
import json
import logging
import subprocess
import sys
import types

import pytest
from helpers import randomized

from blur2blur.errors import UserError
from blur2blur.export.onnx_export import export_bundle
from blur2blur.export.verify import photo_batches, run, run_engine, session
from blur2blur.models import create_model
from blur2blur.models.checkpoint import save_checkpoint
from blur2blur.quality import psnr
from blur2blur.runtime.bundle import ShapeBounds
from blur2blur.runtime.tensorrt_build import build_engine, build_for_bundle, cache_key

BOUNDS = ShapeBounds((16, 16), (64, 96), (160, 256), 2)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    folder = tmp_path_factory.mktemp("trt")
    save_checkpoint(folder / "deblurrer.pt", randomized(create_model("nafnet-tiny")), "deblurrer")
    export_bundle(folder / "deblurrer.pt", folder / "bundle", fp16=True, bounds=BOUNDS)
    return folder / "bundle"


@pytest.fixture
def gpu():
    """The GPU's name where TensorRT and a CUDA GPU are present; skips otherwise."""
    pytest.importorskip("tensorrt",
                        reason="TensorRT is not installed here (pip install 'blur2blur[trt]' on a GPU machine)")
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU here: TensorRT engines are built on the GPU they run on")
    return torch.cuda.get_device_name()


def test_builder_imports_without_torch():
    code = ("import sys; sys.modules['torch'] = None\n"
            "from blur2blur.runtime import tensorrt_build\n"
            "print(tensorrt_build.cache_key('0' * 64, '10.9', 'Orin', 'fp16', "
            "{'min': [1, 32, 32, 3], 'opt': [1, 720, 1280, 3], 'max': [1, 1080, 1920, 3]}))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.strip()) == 20


def test_cache_key_names_graph_version_gpu_precision_and_shapes():
    shapes = BOUNDS.nhwc()
    base = cache_key("a" * 64, "10.9.0", "NVIDIA H100", "fp16", shapes)
    assert base == cache_key("a" * 64, "10.9.0", "NVIDIA H100", "fp16", json.loads(json.dumps(shapes)))
    others = {cache_key("b" * 64, "10.9.0", "NVIDIA H100", "fp16", shapes),
              cache_key("a" * 64, "11.0.0", "NVIDIA H100", "fp16", shapes),
              cache_key("a" * 64, "10.9.0", "Orin", "fp16", shapes),
              cache_key("a" * 64, "10.9.0", "NVIDIA H100", "fp32", shapes),
              cache_key("a" * 64, "10.9.0", "NVIDIA H100", "fp16", ShapeBounds().nhwc())}
    assert len(others) == 5 and base not in others


def test_build_for_bundle_refuses_a_changed_graph_or_a_missing_precision(bundle, tmp_path):
    changed = tmp_path / "bundle"
    subprocess.run(["cp", "-r", str(bundle), str(changed)], check=True)
    with open(changed / "model.fp16.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(UserError, match="model.fp16.onnx does not match the sha256"):
        build_for_bundle(changed, "any GPU", cache_dir=tmp_path / "cache")
    (changed / "model.fp16.onnx").unlink()
    with pytest.raises(UserError, match="has no fp16 graph"):
        build_for_bundle(changed, "any GPU", cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_engine_builds_once_from_the_bundle_and_matches_onnx_runtime(bundle, gpu, tmp_path, precision):
    first = build_for_bundle(bundle, gpu, precision=precision, cache_dir=tmp_path)
    assert not first.cached and first.path.is_file() and first.key in first.path.name
    assert list(tmp_path.glob("timing-*.cache"))
    again = build_for_bundle(bundle, gpu, precision=precision, cache_dir=tmp_path)
    assert again.cached and again.path == first.path
    batches = photo_batches(BOUNDS)
    reference = session(bundle / ("model.onnx" if precision == "fp32" else "model.fp16.onnx"))
    for frames, got in zip(batches, run_engine(first.path, batches, "frames", "restored")):
        assert got.shape == frames.shape and psnr(got, run(reference, frames)) >= 40


def test_export_builds_and_verifies_the_engine_of_its_precision(gpu, tmp_path):
    save_checkpoint(tmp_path / "deblurrer.pt", randomized(create_model("nafnet-tiny")), "deblurrer")
    meta = export_bundle(tmp_path / "deblurrer.pt", tmp_path / "bundle", fp16=True, bounds=BOUNDS, engine=True,
                         engine_cache=tmp_path / "cache")
    assert meta["tensorrt"]["built"] and meta["tensorrt"]["precision"] == "fp16" and meta["tensorrt"]["gpu"] == gpu
    assert (tmp_path / "bundle" / meta["tensorrt"]["engine"]).is_file()
    assert meta["tensorrt"]["engine"] in meta["artefacts"]
    assert meta["verification"]["tensorrt"]["psnr_db"] >= 40


def test_engine_from_a_corrupt_graph_is_a_user_error(gpu, tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"not a graph")
    with pytest.raises(UserError, match="TensorRT cannot parse"):
        build_engine(tmp_path / "model.onnx", "frames", BOUNDS.nhwc(), "fp32", gpu, tmp_path / "cache")
    assert not list((tmp_path / "cache").glob("*.engine"))


def test_no_engine_leaves_the_graphs_and_says_why(bundle):
    meta = json.loads((bundle / "meta.json").read_text())
    assert meta["tensorrt"] == {"built": False, "reason": "not asked for: --no-engine"}
    assert sorted(p.name for p in bundle.iterdir()) == ["meta.json", "model.fp16.onnx", "model.onnx"]


class FakeTimingCache:
    def __init__(self, data: bytes):
        self.data = data

    def serialize(self) -> bytes:
        return self.data


class FakeBuilderConfig:
    """IBuilderConfig as the builder uses it: TF32 on by default; timing caches are b"timing:..." and other bytes are
    corrupt, for which create_timing_cache does what `trt.corrupt_cache` says (returns None or raises)."""

    def __init__(self, trt):
        self.trt, self.cache = trt, None
        self.flags = {trt.BuilderFlag.TF32}

    def set_memory_pool_limit(self, pool, size):
        self.workspace = size

    def set_flag(self, flag):
        self.flags.add(flag)

    def clear_flag(self, flag):
        self.flags.discard(flag)

    def add_optimization_profile(self, profile):
        self.profile = profile

    def create_timing_cache(self, data: bytes):
        if data and not data.startswith(b"timing:"):
            if self.trt.corrupt_cache == "raises":
                raise RuntimeError("[TRT] Error Code 1: Serialization (corrupt timing cache)")
            return None
        return FakeTimingCache(data or b"timing:")

    def set_timing_cache(self, cache, ignore_mismatch: bool) -> bool:
        if cache is None:
            raise TypeError("set_timing_cache(): incompatible function arguments")  # as pybind11 answers None
        self.cache = cache
        return True

    def get_timing_cache(self):
        return FakeTimingCache(self.cache.data + b"+layers")  # what this build timed, added


def fake_builder_tensorrt(version: str, corrupt_cache: str = "returns None"):
    """The tensorrt names the builder uses, for TensorRT 10 (STRONGLY_TYPED = 1, BuilderFlag.FP16 there) or 11
    (STRONGLY_TYPED = 0, no BuilderFlag.FP16); builds (network flags, config flags) are recorded in `builds`."""
    eleven = version.startswith("11.")
    flags = "TF32" if eleven else "FP16 TF32"
    trt = types.SimpleNamespace(__version__=version, corrupt_cache=corrupt_cache, builds=[],
                                BuilderFlag=enum.Enum("BuilderFlag", flags),
                                NetworkDefinitionCreationFlag=types.SimpleNamespace(STRONGLY_TYPED=0 if eleven else 1),
                                MemoryPoolType=types.SimpleNamespace(WORKSPACE=0))

    class Logger:
        WARNING = 2

        def __init__(self, severity):
            self.severity = severity

    class Builder:
        def __init__(self, logger):
            self.logger = logger

        def create_network(self, flags):
            return types.SimpleNamespace(flags=flags)

        def create_builder_config(self):
            return FakeBuilderConfig(trt)

        def create_optimization_profile(self):
            return types.SimpleNamespace(set_shape=lambda name, low, opt, high: None)

        def build_serialized_network(self, network, config):
            trt.builds.append((network.flags, set(config.flags)))
            return b"plan"

    class OnnxParser:
        num_errors = 0

        def __init__(self, network, logger):
            self.network = network

        def parse_from_file(self, path):
            return True

    trt.Logger, trt.Builder, trt.OnnxParser = Logger, Builder, OnnxParser
    return trt


@pytest.mark.parametrize("version", ["10.3.0", "11.0.0"])
def test_builds_are_strongly_typed_without_tf32_or_a_precision_flag(version, tmp_path, monkeypatch):
    trt = fake_builder_tensorrt(version)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    (tmp_path / "model.fp16.onnx").write_bytes(b"graph")
    build = build_engine(tmp_path / "model.fp16.onnx", "frames", BOUNDS.nhwc(), "fp16", "Fake GPU", tmp_path / "c")
    assert not build.cached and build.path.read_bytes() == b"plan"
    [(network_flags, config_flags)] = trt.builds
    assert network_flags == 1 << trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED
    assert config_flags == set()  # TF32 cleared; FP16 (where it exists) never set


@pytest.mark.parametrize("corrupt_cache", ["returns None", "raises"])
def test_a_corrupt_timing_cache_is_replaced_by_a_new_one(corrupt_cache, tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "tensorrt", fake_builder_tensorrt("10.3.0", corrupt_cache))
    cache = tmp_path / "cache"
    graphs = []
    for i in range(3):
        graphs.append(tmp_path / f"model{i}.onnx")
        graphs[-1].write_bytes(f"graph {i}".encode())
    build_engine(graphs[0], "frames", BOUNDS.nhwc(), "fp32", "Fake GPU", cache)
    [timing] = cache.glob("timing-*.cache")
    assert timing.read_bytes() == b"timing:+layers"
    timing.write_bytes(b"\x00garbage from a crash")
    with caplog.at_level(logging.WARNING, logger="blur2blur"):
        assert build_engine(graphs[1], "frames", BOUNDS.nhwc(), "fp32", "Fake GPU", cache).path.is_file()
    assert any("corrupt" in r.getMessage() and timing.name in r.getMessage() for r in caplog.records)
    assert timing.read_bytes() == b"timing:+layers"  # the new cache took the corrupt one's place
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="blur2blur"):
        build_engine(graphs[2], "frames", BOUNDS.nhwc(), "fp32", "Fake GPU", cache)
    assert not caplog.records and timing.read_bytes() == b"timing:+layers+layers"  # and is used from then on


def test_tensorrt_before_10_is_a_one_line_user_error_naming_its_version(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", fake_builder_tensorrt("8.6.1"))
    (tmp_path / "model.onnx").write_bytes(b"graph")
    with pytest.raises(UserError) as err:
        build_engine(tmp_path / "model.onnx", "frames", BOUNDS.nhwc(), "fp32", "Fake GPU", tmp_path / "cache")
    message = str(err.value)
    assert message.startswith("TensorRT 8.6.1 is too old") and "TensorRT 10 or later" in message
    assert "pip install 'blur2blur[trt]'" in message and "\n" not in message
    assert not (tmp_path / "cache").exists()
