"""The TensorRT builder. The engine tests need TensorRT and a CUDA GPU and skip where either is missing."""

import json
import subprocess
import sys

import pytest
from helpers import randomized

from blur2blur.errors import UserError
from blur2blur.export.onnx_export import export_bundle
from blur2blur.export.shapes import ShapeBounds
from blur2blur.export.tensorrt_build import build_engine, build_for_bundle, cache_key
from blur2blur.export.verify import photo_batches, run, run_engine, session
from blur2blur.quality import psnr
from blur2blur.models import create_model
from blur2blur.models.checkpoint import save_checkpoint

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
    pytest.importorskip("tensorrt", reason="TensorRT is not installed here (pip install 'blur2blur[trt]' on a GPU machine)")
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU here: TensorRT engines are built on the GPU they run on")
    return torch.cuda.get_device_name()


def test_builder_imports_without_torch():
    code = ("import sys; sys.modules['torch'] = None\n"
            "from blur2blur.export import tensorrt_build\n"
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
