"""The OpenVINO runtime engine on real OpenVINO (skipped, with the reason, where it does not install): frames
restored exactly, two in flight, the accuracy check against ONNX Runtime and its cache, and `auto`'s choice."""

import json
import subprocess
import sys

import numpy as np
import pytest
from helpers import B2B_RUN, assert_one_line_error, write_frame_bundle, write_graph_bundle, write_video

from blur2blur.errors import UserError
from blur2blur.runtime.bundle import open_bundle
from blur2blur.runtime.engines import infer, open_engine
from blur2blur.runtime.openvino_engine import OpenVinoEngine, check_frames, check_size, unavailable_reason

REASON = unavailable_reason()
needs_openvino = pytest.mark.skipif(REASON is not None, reason=f"OpenVINO cannot run here: {REASON}")


def bf16_cpu() -> bool:
    import openvino as ov

    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def write_fragile_bundle(folder):
    """A graph exact in FP32 that bf16 breaks: frames + 4096 through an identity 1x1 conv, minus 4096 (bf16 keeps
    8 bits of mantissa, so grey levels near 4096 come back rounded to 32)."""
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("Cast", ["frames"], ["f"], to=TensorProto.FLOAT),
             helper.make_node("Transpose", ["f"], ["nchw"], perm=[0, 3, 1, 2]),
             helper.make_node("Add", ["nchw", "big"], ["shifted"]),
             helper.make_node("Conv", ["shifted", "identity"], ["conv"]),
             helper.make_node("Sub", ["conv", "big"], ["back"]),
             helper.make_node("Transpose", ["back"], ["nhwc"], perm=[0, 2, 3, 1]),
             helper.make_node("Cast", ["nhwc"], ["restored"], to=TensorProto.UINT8)]
    weights = [numpy_helper.from_array(np.array(4096.0, np.float32), "big"),
               numpy_helper.from_array(np.eye(3, dtype=np.float32).reshape(3, 3, 1, 1), "identity")]
    return write_graph_bundle(folder, nodes, weights)


@needs_openvino
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_frames_restored_exactly_with_two_in_flight(tmp_path, precision):
    if precision == "bf16" and not bf16_cpu():
        pytest.skip("this CPU has no bf16 units (AMX or AVX512-BF16)")
    engine = OpenVinoEngine(open_bundle(write_frame_bundle(tmp_path / "bundle")), precision, tmp_path / "cache")
    rng = np.random.default_rng(0)
    batches = [rng.integers(0, 256, shape, dtype=np.uint8) for shape in ((1, 48, 64, 3), (2, 48, 64, 3),
                                                                        (1, 37, 53, 3), (1, 48, 64, 3))]
    expected = [255 - frames for frames in batches]
    pending = [engine.submit(frames) for frames in batches]  # more than `depth` in flight: none is lost
    for frames in batches:
        frames[:] = 0  # the engine copied its input
    for want, submitted in zip(expected, pending):
        np.testing.assert_array_equal(submitted.result(), want)
    assert engine.verification["psnr_db"] == 100.0 and engine.verification["cached"] is False
    assert engine.name.startswith("openvino") and precision in engine.name
    engine.close()
    np.testing.assert_array_equal(pending[0].result(), expected[0])  # results stay readable after close()


@needs_openvino
def test_accuracy_check_refuses_a_graph_bf16_breaks_and_keeps_what_passed(tmp_path):
    if not bf16_cpu():
        pytest.skip("this CPU has no bf16 units (AMX or AVX512-BF16)")
    bundle = open_bundle(write_fragile_bundle(tmp_path / "bundle"))
    with pytest.raises(UserError, match=r"OpenVINO bf16 output is [0-9.]+ dB from ONNX Runtime FP32.*"
                                        r"--backend onnxruntime or --precision fp32"):
        OpenVinoEngine(bundle, "bf16", tmp_path / "cache")
    assert not list((tmp_path / "cache").glob("checks/*.json"))  # a refusal is not kept: it is checked again
    engine = OpenVinoEngine(bundle, "fp32", tmp_path / "cache")
    assert engine.verification["psnr_db"] >= 40 and not engine.verification["cached"]
    frames = check_frames(*check_size(bundle.profile, engine.graph_shape))["content"]
    np.testing.assert_array_equal(infer(engine, frames), frames)
    engine.close()
    records = list((tmp_path / "cache").glob("checks/*-fp32-*.json"))
    assert len(records) == 1 and json.loads(records[0].read_text())["psnr_db"] >= 40
    assert list((tmp_path / "cache" / "blobs").iterdir())  # OpenVINO's compiled blobs, reused by later runs
    again = OpenVinoEngine(bundle, "fp32", tmp_path / "cache")
    assert again.verification["cached"] is True
    again.close()
    records[0].write_text("{not json")  # a damaged record means: check again
    assert OpenVinoEngine(bundle, "fp32", tmp_path / "cache").verification["cached"] is False


def test_check_frames_fit_the_bundle_bounds_and_a_fixed_graph():
    from blur2blur.runtime.bundle import Profile

    bounds = Profile(min=(32, 32), max=(200, 300), batch=1)
    assert check_size(bounds, [None, None, None, 3]) == (200, 300)
    assert check_size(None, [None, None, None, 3]) == (256, 384)
    assert check_size(None, [1, 8, 12, 3]) == (8, 12)
    frames = check_frames(200, 300)
    assert {f.shape for f in frames.values()} == {(1, 200, 300, 3)}
    content = frames["content"]
    assert content.dtype == np.uint8 and content.std() > 30  # edges and texture, not a flat frame


@needs_openvino
def test_auto_picks_openvino_on_this_cpu_and_says_why(tmp_path):
    video = tmp_path / "in.mp4"
    write_video(video, frames=4)
    bundle = write_frame_bundle(tmp_path / "bundle")
    run = subprocess.run([B2B_RUN, "--bundle", str(bundle), "--video", str(video), "--headless"],
                         capture_output=True, text=True, env={"XDG_CACHE_HOME": str(tmp_path / "cache"),
                                                              "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr
    first = run.stderr.splitlines()[0]
    assert first.startswith("backend: openvino") and "auto: no TensorRT" in first and "ONNX Runtime FP32" in first
    assert "4 frames" in run.stdout


@needs_openvino
def test_runtime_with_openvino_never_imports_torch(tmp_path):
    bundle = write_frame_bundle(tmp_path / "bundle")
    code = f"""
import sys
class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test")
sys.meta_path.insert(0, NoTorch())
import numpy as np
from blur2blur.runtime.bundle import open_bundle
from blur2blur.runtime.engines import infer, open_engine
engine = open_engine(open_bundle({str(bundle)!r}), "openvino")
print(int(infer(engine, np.zeros((1, 8, 8, 3), np.uint8)).min()))
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"XDG_CACHE_HOME": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0 and run.stdout.strip() == "255", run.stderr


def test_bf16_elsewhere_is_a_one_line_error(tmp_path):
    bundle = open_bundle(write_frame_bundle(tmp_path / "bundle"))
    with pytest.raises(UserError, match="--precision bf16 runs on --backend openvino"):
        open_engine(bundle, "onnxruntime", "bf16")
    video = tmp_path / "in.mp4"
    write_video(video, frames=2)
    run = subprocess.run([B2B_RUN, "--bundle", str(bundle.path), "--video", str(video), "--headless",
                          "--backend", "tensorrt", "--precision", "bf16"], capture_output=True, text=True)
    assert_one_line_error(run, "--precision bf16")


STARTER_CHECK = """
import json, sys
import onnx, openvino as ov
from blur2blur.runtime.bundle import open_bundle
from blur2blur.runtime.openvino_engine import OpenVinoEngine, cpu_precision, fold_transposed_norms
folder, cache = sys.argv[1:3]
norms = sum(node.op_type == "LayerNormalization" for node in onnx.load(folder + "/model.onnx").graph.node)
model = ov.Core().read_model(folder + "/model.onnx")
model.reshape({model.inputs[0]: [1, 64, 96, 3]})
before = sum(op.get_type_name() == "Transpose" for op in model.get_ordered_ops())
folded = fold_transposed_norms(model)
after = sum(op.get_type_name() == "Transpose" for op in model.get_ordered_ops())
bundle = open_bundle(folder)
psnr = {p: OpenVinoEngine(bundle, p, cache).verification["psnr_db"]
        for p in ("fp32", "bf16") if p == "fp32" or cpu_precision(ov.Core()) == "bf16"}
print(json.dumps({"norms": norms, "folded": folded, "before": before, "after": after, "psnr": psnr}))
"""


@needs_openvino
def test_shipped_starter_runs_with_its_layer_norms_over_channels_as_accurately(tmp_path):
    from blur2blur.export.onnx_export import export_bundle
    from blur2blur.export.shapes import ShapeBounds
    from blur2blur.shipped import resolve_checkpoint

    export_bundle(resolve_checkpoint("starter"), tmp_path / "bundle",
                  bounds=ShapeBounds(min=(16, 16), opt=(64, 96), max=(96, 128)))
    # OpenVINO in a process of its own, as b2b-run runs it (no torch there)
    run = subprocess.run([sys.executable, "-c", STARTER_CHECK, str(tmp_path / "bundle"), str(tmp_path / "cache")],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    found = json.loads(run.stdout.strip().splitlines()[-1])
    assert found["norms"] > 0 and found["folded"] == found["norms"]
    assert found["after"] <= found["before"] - 2 * found["norms"]
    assert found["psnr"]["fp32"] >= 50 and found["psnr"].get("bf16", 40) >= 40


CACHE_CHECK = """
import logging, sys
import numpy as np
from blur2blur.runtime.bundle import open_bundle
from blur2blur.runtime.engines import infer
from blur2blur.runtime.openvino_engine import OpenVinoEngine
logging.basicConfig(level=logging.WARNING, format="%(message)s")
engine = OpenVinoEngine(open_bundle(sys.argv[1]), "fp32", sys.argv[2])
frames = np.arange(2 * 20 * 30 * 3, dtype=np.uint32).astype(np.uint8).reshape(2, 20, 30, 3)
assert (infer(engine, frames) == 255 - frames).all() and engine.verification["cached"] is False
print("restored")
"""


@needs_openvino
def test_a_full_or_unwritable_cache_costs_only_the_caching(small_disk, tmp_path):
    from helpers import fill

    fill(small_disk)
    bundle = write_frame_bundle(tmp_path / "bundle")
    for cache, warned in ((small_disk / "cache", "could not keep the accuracy check"),  # a full disk
                          (bundle / "meta.json" / "cache", "cannot keep compiled models")):  # not a folder
        run = subprocess.run([sys.executable, "-c", CACHE_CHECK, str(bundle), str(cache)], capture_output=True,
                             text=True)
        assert run.returncode == 0 and run.stdout.strip() == "restored", run.stderr
        assert warned in run.stderr
