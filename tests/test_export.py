import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from helpers import assert_one_line_error, randomized

from blur2blur.errors import UserError
from blur2blur.export.onnx_export import export_bundle
from blur2blur.export.verify import FP16_MAX, with_range_probes
from blur2blur.models import create_model
from blur2blur.models.checkpoint import save_checkpoint
from blur2blur.models.deploy import DeployModel
from blur2blur.quality import psnr
from blur2blur.runtime.bundle import ShapeBounds, open_bundle
from blur2blur.runtime.engines import infer, open_engine

B2B_EXPORT = str(Path(sys.executable).parent / "b2b-export")
SMALL = ShapeBounds(min=(16, 16), opt=(64, 96), max=(160, 256), batch=2)  # keeps the extreme frames small


def trained_like(arch: str, seed: int = 0) -> torch.nn.Module:
    """A network with random (not zero) weights everywhere, so the export is checked on real arithmetic."""
    torch.manual_seed(seed)
    model = create_model(arch)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.02)
    return model


def photo(height: int, width: int) -> np.ndarray:
    """A real photo (scikit-image's chelsea, not used by the verification itself) as a 1 x H x W x 3 BGR batch."""
    from skimage import data

    image = cv2.cvtColor(data.chelsea(), cv2.COLOR_RGB2BGR)
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)[None]


def ort_run(path: Path, frames: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {"frames": frames})[0]


def b2b_export(*args) -> subprocess.CompletedProcess:
    return subprocess.run([B2B_EXPORT, *map(str, args)], capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ckpt")
    save_checkpoint(folder / "deblurrer.pt", trained_like("nafnet-tiny"), "deblurrer")
    save_checkpoint(folder / "converter.pt", trained_like("mimo-unet-tiny", 1), "converter")
    return folder


@pytest.fixture(scope="module")
def small_bundle(checkpoints, tmp_path_factory):
    """An FP16 bundle of the tiny deblurrer within SMALL, shared by the tests that only read it."""
    out = tmp_path_factory.mktemp("small") / "bundle"
    export_bundle(checkpoints / "deblurrer.pt", out, fp16=True, bounds=SMALL)
    return out


def test_export_fuses_converter_and_deblurrer_and_verifies(checkpoints, tmp_path):
    meta = export_bundle(checkpoints / "deblurrer.pt", tmp_path / "bundle", converter=str(checkpoints / "converter.pt"),
                         fp16=True, bounds=SMALL)
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
    assert infer(engine, frames).shape == (2, 29, 41, 3)


def test_a_converter_that_kept_no_g_makes_a_bundle_without_g(checkpoints, tmp_path):
    save_checkpoint(tmp_path / "identity.pt", create_model("mimo-unet-tiny"), "converter")  # as a run starts
    result = b2b_export("--deblurrer", checkpoints / "deblurrer.pt", "--converter", tmp_path / "identity.pt",
                        "--out", tmp_path / "bundle", "--max-shape", "64x64")
    assert result.returncode == 0, result.stderr
    assert "is the identity" in result.stderr and "the bundle holds the deblurrer alone" in result.stderr
    meta = json.loads((tmp_path / "bundle" / "meta.json").read_text())
    assert set(meta["sources"]) == {"deblurrer"}
    export_bundle(checkpoints / "deblurrer.pt", tmp_path / "alone", bounds=SMALL)
    convs = [sum(node.op_type == "Conv" for node in onnx.load(str(tmp_path / name / "model.onnx")).graph.node)
             for name in ("bundle", "alone")]
    assert convs[0] == convs[1] > 0  # no G's convolutions in the graph


def test_meta_records_the_bundle_contract(small_bundle):
    meta = json.loads((small_bundle / "meta.json").read_text())
    assert meta["input"] == {"name": "frames", "layout": "NHWC", "dtype": "uint8", "color": "BGR",
                             "shape": ["batch", "height", "width", 3]}
    assert meta["output"]["name"] == "restored"
    assert meta["shapes"] == {"min": [1, 16, 16, 3], "opt": [2, 64, 96, 3], "max": [2, 160, 256, 3]}
    assert meta["precision"] == "fp16" and meta["precisions"] == ["fp32", "fp16"] and meta["opset"] >= 17
    assert meta["exporter"]["name"] == "b2b-export" and meta["exporter"]["version"] == meta["versions"]["blur2blur"]
    assert {"torch", "onnx", "onnxsim", "onnxruntime", "tensorrt"} <= set(meta["versions"])
    assert meta["simplified"] == {"model.onnx": True, "model.fp16.onnx": True}
    for name in ("model.onnx", "model.fp16.onnx"):
        assert meta["artefacts"][name]["bytes"] == (small_bundle / name).stat().st_size
        assert len(meta["artefacts"][name]["sha256"]) == 64
    assert len(meta["sources"]["deblurrer"]["sha256"]) == 64
    onnx.checker.check_model(onnx.load(str(small_bundle / "model.onnx")), full_check=True)


def test_verification_covers_odd_sizes_and_a_batch_inside_the_bounds(small_bundle):
    sizes = [s["shape"] for s in json.loads((small_bundle / "meta.json").read_text())["verification"]["fp32"]["sizes"]]
    assert len({tuple(s[1:3]) for s in sizes}) >= 2
    assert any(s[1] % 2 and s[2] % 2 for s in sizes)
    assert any(s[0] == 2 for s in sizes)
    assert all(16 <= s[1] <= 160 and 16 <= s[2] <= 256 for s in sizes)


def test_graph_matches_pytorch_on_a_photo_at_odd_sizes(checkpoints, small_bundle):
    model = DeployModel(trained_like("nafnet-tiny")).eval()
    for height, width in ((17, 31), (101, 157), (160, 255)):
        frames = photo(height, width)
        with torch.no_grad():
            expected = model(torch.from_numpy(frames)).numpy()
        got = ort_run(small_bundle / "model.onnx", frames)
        assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1 and psnr(got, expected) >= 50
        assert psnr(ort_run(small_bundle / "model.fp16.onnx", frames), got) >= 40


# The ops the fused graphs may use: each in onnx-tensorrt's operator matrix (LayerNormalization since TensorRT 8.6).
# Not Mod, which TensorRT's ONNX parser long lacked: padding sizes are computed with Div instead.
TENSORRT_OPS = {"Add", "Cast", "Clip", "Concat", "Constant", "Conv", "DepthToSpace", "Div", "Gather",
                "GlobalAveragePool", "LayerNormalization", "Mul", "Pad", "Reshape", "Round", "Shape", "Slice", "Sub",
                "Transpose", "Unsqueeze"}


def test_graphs_touch_uint8_only_through_casts_as_tensorrt_needs(small_bundle):
    for name in ("model.onnx", "model.fp16.onnx"):
        model = onnx.shape_inference.infer_shapes(onnx.load(str(small_bundle / name)))
        graph = model.graph
        uint8 = {v.name for v in [*graph.input, *graph.output, *graph.value_info]
                 if v.type.tensor_type.elem_type == onnx.TensorProto.UINT8}
        assert uint8 == {"frames", "restored"}
        assert [n.op_type for n in graph.node if set(n.input) & uint8 or set(n.output) & uint8] == ["Cast", "Cast"]
        assert {n.op_type for n in graph.node} <= TENSORRT_OPS


def test_fixed_shape_verifies_only_that_shape(checkpoints, tmp_path):
    meta = export_bundle(checkpoints / "deblurrer.pt", tmp_path / "bundle", fp16=True,
                         bounds=ShapeBounds((45, 67), (45, 67), (45, 67)))
    assert meta["shapes"] == {"min": [1, 45, 67, 3], "opt": [1, 45, 67, 3], "max": [1, 45, 67, 3]}
    assert {tuple(s["shape"]) for s in meta["verification"]["fp32"]["sizes"]} == {(1, 45, 67, 3)}
    assert meta["verification"]["fp16"]["extreme_shape"] == [1, 45, 67, 3]


def test_fp16_graph_is_accurate_and_finite_on_extreme_full_hd_frames(checkpoints, tmp_path):
    meta = export_bundle(checkpoints / "deblurrer.pt", tmp_path / "bundle", fp16=True)  # default bounds, to 1080p
    half = meta["verification"]["fp16"]
    assert half["psnr_vs_fp32_db"] >= 40 and all(s["psnr_vs_fp32_db"] >= 40 for s in half["sizes"])
    assert half["extreme_shape"] == [1, 1080, 1920, 3]
    assert set(half["extreme_frames"]) == {"white", "black", "noise"}
    for figures in half["extreme_frames"].values():
        assert figures["finite"] and figures["max_abs_activation"] <= FP16_MAX and figures["psnr_vs_fp32_db"] >= 30
    # FP16 weights and compute, normalisation statistics in FP32, uint8 in and out
    path = tmp_path / "bundle" / "model.fp16.onnx"
    graph = onnx.load(str(path)).graph
    half_weights = {init.name for init in graph.initializer if init.data_type == onnx.TensorProto.FLOAT16}
    conv_weights = [node.input[1] for node in graph.node if node.op_type == "Conv"]
    assert conv_weights and all(name in half_weights for name in conv_weights)
    types = {vi.name: vi.type.tensor_type.elem_type
             for vi in onnx.shape_inference.infer_shapes(onnx.load(str(path))).graph.value_info}
    assert all(types.get(node.output[0]) == onnx.TensorProto.FLOAT16 for node in graph.node if node.op_type == "Conv")
    norms = [node for node in graph.node if node.op_type == "LayerNormalization"]
    assert norms and all(types.get(node.output[0]) == onnx.TensorProto.FLOAT for node in norms)
    assert (graph.input[0].type.tensor_type.elem_type == graph.output[0].type.tensor_type.elem_type
            == onnx.TensorProto.UINT8)


def test_range_probes_see_an_fp16_overflow_that_onnx_runtime_hides(tmp_path):
    from onnx import TensorProto, helper

    # uint8 -> fp16, x 1000 x 1000 (beyond 65504 in FP16), x 1e-4: fine in FP32, Inf on an FP16 GPU.
    nodes = [helper.make_node("Cast", ["frames"], ["x"], to=TensorProto.FLOAT16),
             helper.make_node("Mul", ["x", "k"], ["y"]), helper.make_node("Mul", ["y", "k"], ["z"]),
             helper.make_node("Mul", ["z", "inv"], ["w"]), helper.make_node("Clip", ["w", "lo", "hi"], ["c"]),
             helper.make_node("Cast", ["c"], ["restored"], to=TensorProto.UINT8)]
    consts = [helper.make_tensor(n, TensorProto.FLOAT16, [], [v]) for n, v in
              (("k", 1000.0), ("inv", 1e-4), ("lo", 0.0), ("hi", 255.0))]
    graph = helper.make_graph(nodes, "overflow", [helper.make_tensor_value_info("frames", TensorProto.UINT8, ["n", 3])],
                              [helper.make_tensor_value_info("restored", TensorProto.UINT8, ["n", 3])], consts)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "m.onnx")
    sess = ort.InferenceSession(with_range_probes(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    _, _, *probes = sess.run(None, {"frames": np.full((1, 3), 200, np.uint8)})
    assert len(probes) >= 8 and not np.isfinite(np.array(probes, np.float32)).all()


def test_fp16_overflow_inside_the_network_refuses_the_bundle(tmp_path):
    net = trained_like("nafnet-tiny")
    with torch.no_grad():
        net.intro.weight.mul_(1e5)  # intro activations beyond the FP16 range
        net.ending.weight.mul_(1e-5)  # and the output back in range, so that FP32 still matches PyTorch
    save_checkpoint(tmp_path / "loud.pt", net, "deblurrer")
    with pytest.raises(UserError, match="beyond FP16 on: .*noise"):
        export_bundle(tmp_path / "loud.pt", tmp_path / "bundle", fp16=True, bounds=SMALL)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loud.pt"]


def test_official_nafnet_checkpoint_exports_and_matches_its_pytorch_output(tmp_path):
    from blur2blur.models.nafnet import NAFNet

    net = randomized(NAFNet(width=8, enc_blk_nums=(1, 2), middle_blk_num=1, dec_blk_nums=(1, 1)), seed=3)
    torch.save({"params": net.state_dict()}, tmp_path / "NAFNet-official.pth")
    meta = export_bundle(tmp_path / "NAFNet-official.pth", tmp_path / "bundle", bounds=SMALL)
    assert meta["sources"]["deblurrer"]["arch"] == "nafnet-custom"
    assert meta["verification"]["fp32"]["max_abs_error"] <= 1
    frames = photo(59, 83)
    with torch.no_grad():  # the network as built from the file, not through the checkpoint loader
        expected = DeployModel(net).eval()(torch.from_numpy(frames)).numpy()
    got = ort_run(tmp_path / "bundle" / "model.onnx", frames)
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1


def test_tlc_bundle_matches_its_pytorch_module_and_has_no_global_pooling(tmp_path):
    from blur2blur.models.nafnet import use_local_statistics

    net = randomized(create_model("nafnet-tiny"), seed=4, scale=0.15)  # blocks that matter, as trained
    save_checkpoint(tmp_path / "d.pt", net, "deblurrer", {"config": {"crop": 32}})
    meta = export_bundle(tmp_path / "d.pt", tmp_path / "bundle", fp16=True, bounds=SMALL, tlc=True)
    assert meta["sources"]["deblurrer"]["tlc_training_crop"] == 32
    assert meta["verification"]["fp32"]["max_abs_error"] <= 1
    assert meta["verification"]["fp16"]["psnr_vs_fp32_db"] > 40
    ops = {node.op_type for node in onnx.load(str(tmp_path / "bundle" / "model.fp16.onnx")).graph.node}
    assert "CumSum" in ops and not ops & {"GlobalAveragePool", "ReduceMean", "AveragePool"}
    frames = photo(150, 230)  # larger than the 48-pixel window: local statistics matter
    with torch.no_grad():
        expected = DeployModel(use_local_statistics(copy.deepcopy(net), 32)).eval()(torch.from_numpy(frames))
        plain = DeployModel(net).eval()(torch.from_numpy(frames)).numpy()
    got = ort_run(tmp_path / "bundle" / "model.onnx", frames)
    assert np.abs(got.astype(int) - expected.numpy().astype(int)).max() <= 1
    assert np.abs(got.astype(int) - plain.astype(int)).max() > 1


def test_tlc_needs_the_training_crop(checkpoints, tmp_path):
    with pytest.raises(UserError, match="--tlc: .*training crop"):
        export_bundle(checkpoints / "deblurrer.pt", tmp_path / "bundle", bounds=SMALL, tlc=True)
    assert not (tmp_path / "bundle").exists()


def test_no_tensorrt_here_is_one_line_and_the_bundle_is_finished(checkpoints, tmp_path):
    result = subprocess.run([B2B_EXPORT, "--deblurrer", str(checkpoints / "deblurrer.pt"), "--out", str(tmp_path / "b"),
                             "--max-shape", "96x128"], capture_output=True, text=True, check=False,
                            env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert result.returncode == 0, result.stderr
    meta = json.loads((tmp_path / "b" / "meta.json").read_text())
    if meta["tensorrt"]["built"]:
        pytest.skip("TensorRT and a GPU are present: tests/test_tensorrt_build.py covers the engine")
    assert [line for line in result.stderr.splitlines() if "TensorRT" in line] == [
        f"no TensorRT engine: {meta['tensorrt']['reason']}; it is built where it will run, from this bundle"]
    assert "wrote" in result.stdout and sorted(p.name for p in (tmp_path / "b").iterdir()) == ["meta.json",
                                                                                               "model.onnx"]
    assert not list((tmp_path / "cache").rglob("*.engine"))


# Bad input: one line on stderr, a non-zero exit, nothing left behind.


def test_existing_bundle_needs_force_and_failures_leave_nothing(checkpoints, tmp_path):
    export_bundle(checkpoints / "deblurrer.pt", tmp_path / "bundle", bounds=SMALL)
    assert_one_line_error(b2b_export("--deblurrer", checkpoints / "deblurrer.pt", "--out", tmp_path / "bundle"),
                          "is a bundle already; pass --force")
    with pytest.raises(UserError, match="converter"):  # a converter checkpoint given as the deblurrer
        export_bundle(checkpoints / "converter.pt", tmp_path / "other")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]
    export_bundle(checkpoints / "deblurrer.pt", tmp_path / "bundle", force=True, bounds=SMALL)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


def test_force_replaces_only_a_bundle(checkpoints, tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("keep me")
    (tmp_path / "afile").write_text("keep me too")
    for target in ("run", "afile"):
        for force in (False, True):  # never told to pass --force where --force would be refused
            with pytest.raises(UserError, match="not a b2b-export bundle"):
                export_bundle(checkpoints / "deblurrer.pt", tmp_path / target, force=force)
    assert (tmp_path / "run" / "notes.txt").read_text() == "keep me"
    assert (tmp_path / "afile").read_text() == "keep me too"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "run"]


def test_bad_checkpoints_are_one_line_errors(checkpoints, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "corrupt.pt").write_bytes(b"garbage")
    torch.save(torch.load(checkpoints / "deblurrer.pt", weights_only=True) | {"arch": "resnet-50"}, work / "alien.pt")
    misfit = torch.load(checkpoints / "deblurrer.pt", weights_only=True)
    misfit["state_dict"].pop("intro.weight")
    torch.save(misfit, work / "misfit.pt")
    # a grey-level deblurrer: a valid checkpoint that the RGB converter cannot feed
    save_checkpoint(work / "grey.pt", create_model("nafnet-custom", img_channel=1, width=8, enc_blk_nums=[1],
                                                   dec_blk_nums=[1], middle_blk_num=1), "deblurrer")
    onnx.save(onnx.helper.make_model(onnx.helper.make_graph([], "empty", [], [])), work / "model.onnx")
    deblurrer, converter = checkpoints / "deblurrer.pt", checkpoints / "converter.pt"
    (work / "truncated.pt").write_bytes(deblurrer.read_bytes()[:3000])
    cases = [
        (["--deblurrer", work / "missing.pt"], "does not exist"),
        (["--deblurrer", work / "corrupt.pt"], "is not a PyTorch file (it holds text)"),
        (["--deblurrer", work / "truncated.pt"], "is corrupt or truncated"),
        (["--deblurrer", work / "model.onnx"], "is an ONNX graph, not a checkpoint"),
        (["--deblurrer", converter], "holds a converter checkpoint; --deblurrer needs a deblurrer"),
        (["--deblurrer", deblurrer, "--converter", deblurrer], "--converter needs a converter"),
        (["--deblurrer", work / "alien.pt"], "architecture 'resnet-50', unknown"),
        (["--deblurrer", work / "misfit.pt"], "does not fit nafnet-tiny: missing keys"),
        (["--deblurrer", work / "grey.pt", "--converter", converter], "maps 1 to 1 channels"),
    ]
    for args, match in cases:
        assert_one_line_error(b2b_export(*args, "--out", tmp_path / "b"), match)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]


@pytest.mark.parametrize(("args", "match"), [
    (["--height", "0", "--width", "64"], "between 1 and 8192"),
    (["--height", "-5", "--width", "64"], "between 1 and 8192"),
    (["--height", "64"], "--height and --width go together"),
    (["--height", "64", "--width", "64", "--max-shape", "128x128"], "not both"),
    (["--max-shape", "99999x10"], "between 1 and 8192"),
    (["--min-shape", "200x200", "--max-shape", "100x100"], "min <= opt <= max"),
    (["--min-shape", "64x64", "--opt-shape", "2000x64", "--max-shape", "128x128"], "min <= opt <= max"),
    (["--max-shape", "1280"], "write it as HEIGHTxWIDTH"),
    (["--opt-shape", "axb"], "write it as HEIGHTxWIDTH"),
    (["--batch", "0"], "--batch 0: must be between 1 and 64"),
])
def test_bad_shapes_are_one_line_errors(checkpoints, tmp_path, args, match):
    assert_one_line_error(b2b_export("--deblurrer", checkpoints / "deblurrer.pt", "--out", tmp_path / "b", *args),
                          match)
    assert not list(tmp_path.iterdir())


def test_unwritable_out_is_one_line_error(checkpoints, tmp_path):
    (tmp_path / "afile").write_text("")
    targets = [tmp_path / "afile" / "bundle"]  # a file where a folder should be
    if os.geteuid() != 0:
        (tmp_path / "locked").mkdir(mode=0o500)
        targets.append(tmp_path / "locked" / "bundle")
    elif Path("/sys").is_dir():
        targets.append(Path("/sys/blur2blur-test/bundle"))  # read-only even for root
    for target in targets:
        assert_one_line_error(b2b_export("--deblurrer", checkpoints / "deblurrer.pt", "--out", target),
                              "cannot write there")
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("locked")) == ["afile"]
