import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from blur2blur.errors import UserError
from blur2blur.export.onnx_export import export_bundle
from blur2blur.models import create_model
from blur2blur.models.checkpoint import save_checkpoint
from blur2blur.runtime.bundle import open_bundle
from blur2blur.runtime.engines import open_engine

B2B_EXPORT = str(Path(sys.executable).parent / "b2b-export")


def trained_like(arch: str, seed: int = 0) -> torch.nn.Module:
    """A network with random (not zero) weights everywhere, so the export is checked on real arithmetic."""
    torch.manual_seed(seed)
    model = create_model(arch)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.02)
    return model


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ckpt")
    save_checkpoint(folder / "deblurrer.pt", trained_like("nafnet-tiny"), "deblurrer")
    save_checkpoint(folder / "converter.pt", trained_like("mimo-unet-tiny", 1), "converter")
    return folder


def test_export_fuses_converter_and_deblurrer_and_verifies(checkpoints, tmp_path):
    meta = export_bundle(checkpoints / "deblurrer.pt", tmp_path / "bundle", converter=str(checkpoints / "converter.pt"), fp16=True)
    bundle = tmp_path / "bundle"
    assert sorted(p.name for p in bundle.iterdir()) == ["meta.json", "model.fp16.onnx", "model.onnx"]
    assert json.loads((bundle / "meta.json").read_text()) == json.loads(json.dumps(meta))
    assert meta["verification"]["fp32"]["max_abs_error"] <= 1 and meta["verification"]["fp32"]["psnr_db"] >= 50
    assert meta["verification"]["fp16"]["psnr_vs_fp32_db"] >= 40
    assert set(meta["sources"]) == {"deblurrer", "converter"}
    graph = onnx.load(str(bundle / "model.onnx")).graph
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert [d.dim_param for d in graph.input[0].type.tensor_type.shape.dim[:3]] == ["batch", "height", "width"]
    assert "LayerNormalization" in {node.op_type for node in graph.node}
    # the runtime runs it on any size, batch included
    engine = open_engine(open_bundle(bundle), "onnxruntime")
    frames = np.random.default_rng(0).integers(0, 256, (2, 29, 41, 3), dtype=np.uint8)
    assert engine.infer(frames).shape == (2, 29, 41, 3)


def test_fp16_graph_keeps_normalisation_in_fp32(checkpoints, tmp_path):
    export_bundle(checkpoints / "deblurrer.pt", tmp_path / "bundle", fp16=True)
    graph = onnx.load(str(tmp_path / "bundle" / "model.fp16.onnx")).graph
    half = {init.name for init in graph.initializer if init.data_type == onnx.TensorProto.FLOAT16}
    conv_weights = [node.input[1] for node in graph.node if node.op_type == "Conv"]
    assert conv_weights and all(name in half for name in conv_weights)
    types = {vi.name: vi.type.tensor_type.elem_type for vi in onnx.shape_inference.infer_shapes(onnx.load(str(tmp_path / "bundle" / "model.fp16.onnx"))).graph.value_info}
    norms = [node for node in graph.node if node.op_type == "LayerNormalization"]
    assert norms and all(types.get(node.output[0]) == onnx.TensorProto.FLOAT for node in norms)


def test_existing_bundle_needs_force_and_failures_leave_nothing(checkpoints, tmp_path):
    export_bundle(checkpoints / "deblurrer.pt", tmp_path / "bundle")
    with pytest.raises(UserError, match="exists; pass --force"):
        export_bundle(checkpoints / "deblurrer.pt", tmp_path / "bundle")
    with pytest.raises(UserError, match="converter"):  # a converter checkpoint given as the deblurrer
        export_bundle(checkpoints / "converter.pt", tmp_path / "other")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]
    export_bundle(checkpoints / "deblurrer.pt", tmp_path / "bundle", force=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


def test_force_replaces_only_a_bundle(checkpoints, tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("keep me")
    (tmp_path / "afile").write_text("keep me too")
    for target in ("run", "afile"):
        with pytest.raises(UserError, match="not a b2b-export bundle"):
            export_bundle(checkpoints / "deblurrer.pt", tmp_path / target, force=True)
    assert (tmp_path / "run" / "notes.txt").read_text() == "keep me"
    assert (tmp_path / "afile").read_text() == "keep me too"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "run"]


def test_official_nafnet_checkpoint_exports(tmp_path):
    net = trained_like("nafnet-tiny")
    torch.save({"params": net.state_dict()}, tmp_path / "official.pth")
    meta = export_bundle(tmp_path / "official.pth", tmp_path / "bundle")
    assert meta["verification"]["fp32"]["max_abs_error"] <= 1


def test_b2b_export_cli_errors_are_one_line(tmp_path):
    (tmp_path / "corrupt.pt").write_bytes(b"garbage")
    for args in (["--deblurrer", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "b")],
                 ["--deblurrer", str(tmp_path / "corrupt.pt"), "--out", str(tmp_path / "b")]):
        result = subprocess.run([B2B_EXPORT, *args], capture_output=True, text=True)
        assert result.returncode != 0
        assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("error:"), result.stderr
    assert not (tmp_path / "b").exists()
