"""OpenVINO engine cases run in a pytest process of their own by test_openvino_engine.py (not collected with the
suite: in its process, after hundreds of torch tests, OpenVINO crashed): frames restored exactly with more than
`depth` in flight, and the accuracy check against ONNX Runtime with its cache."""

import json

import numpy as np
import pytest
from helpers import write_frame_bundle, write_graph_bundle

from blur2blur.errors import UserError
from blur2blur.runtime.bundle import open_bundle
from blur2blur.runtime.engines import infer
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
    frames = check_frames(*check_size(bundle.bounds, engine.graph_shape))["content"]
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
