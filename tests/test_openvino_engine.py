"""The OpenVINO runtime engine on real OpenVINO (skipped, with the reason, where it does not install): frames
restored exactly, two in flight, the accuracy check against ONNX Runtime and its cache, and `auto`'s choice."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import B2B_RUN, assert_one_line_error, write_frame_bundle, write_video

from blur2blur.errors import UserError
from blur2blur.runtime.bundle import open_bundle
from blur2blur.runtime.engines import open_engine
from blur2blur.runtime.openvino_engine import check_frames, check_size, unavailable_reason

REASON = unavailable_reason()
needs_openvino = pytest.mark.skipif(REASON is not None, reason=f"OpenVINO cannot run here: {REASON}")


@needs_openvino
def test_engine_cases_in_a_process_of_their_own():
    """openvino_cases.py (exact frames with two in flight, the accuracy check refusing a graph bf16 breaks, its
    cache) in a fresh pytest: in this suite's process, after hundreds of torch tests, OpenVINO segfaulted."""
    cases = Path(__file__).with_name("openvino_cases.py")
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(cases)],
                         capture_output=True, text=True, cwd=cases.parent)
    assert run.returncode == 0 and " passed" in run.stdout, run.stdout[-4000:] + run.stderr[-2000:]


def test_check_frames_fit_the_bundle_bounds_and_a_fixed_graph():
    from blur2blur.runtime.bundle import ShapeBounds

    bounds = ShapeBounds(min=(32, 32), opt=(100, 150), max=(200, 300), batch=1)
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
def test_a_backend_asked_for_never_runs_another_in_its_place(tmp_path):
    bundle = open_bundle(write_frame_bundle(tmp_path / "bundle"))
    with pytest.raises(UserError, match="^--precision fp16: OpenVINO runs fp32 or bf16$"):
        open_engine(bundle, "openvino", "fp16")  # was: ONNX Runtime, silently


def test_shipped_starter_runs_with_its_layer_norms_over_channels_as_accurately(tmp_path):
    from blur2blur.export.onnx_export import export_bundle
    from blur2blur.runtime.bundle import ShapeBounds
    from blur2blur.weights import resolve_checkpoint

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
