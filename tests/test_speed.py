"""b2b-bench as a user runs it: real ONNX Runtime sessions, PyTorch eager and the FLOP count of real networks."""

import json
import subprocess

import pytest
import torch
from helpers import B2B_BENCH, assert_one_line_error, randomized, write_frame_bundle

from blur2blur.evaluate.speed import gflop_per_frame
from blur2blur.models import create_model
from blur2blur.models.checkpoint import save_checkpoint
from blur2blur.models.deploy import DeployModel
from blur2blur.runtime import openvino_engine
from blur2blur.runtime.tensorrt_engine import unavailable_reason


def b2b_bench(*args) -> subprocess.CompletedProcess:
    return subprocess.run([B2B_BENCH, *map(str, args)], capture_output=True, text=True, check=False)


def test_a_bundle_without_checkpoints_times_onnx_runtime_and_says_what_it_cannot_run(tmp_path):
    bundle = write_frame_bundle(tmp_path / "bundle")
    result = b2b_bench("--bundle", bundle, "--sizes", "64x48,32x32", "--frames", 3, "--json", tmp_path / "speed.json")
    assert result.returncode == 0, result.stderr
    figures = json.loads((tmp_path / "speed.json").read_text())
    openvino = [] if openvino_engine.unavailable_reason() else [
        ("openvino", precision, size) for precision in ("fp32", "bf16") for size in ("64x48", "32x32")]
    assert [(r["backend"], r["precision"], r["size"]) for r in figures["rows"]] == [
        ("onnxruntime", "fp32", "64x48"), ("onnxruntime", "fp32", "32x32"), *openvino]
    for row in figures["rows"]:
        assert row["fps"] > 0 and 0 < row["p50_ms"] <= row["p95_ms"] and row["gflop_per_frame"] is None
        assert row["of_peak"] is None  # no GFLOP count without the PyTorch model
    reasons = {(s["backend"], s["precision"]): s["reason"] for s in figures["skipped"]}
    assert reasons[("pytorch", "fp32")] == "the bundle records no checkpoints"
    assert "no fp16 graph" in reasons[("onnxruntime", "fp16")] and "no fp16 graph" in reasons[("tensorrt", "fp16")]
    assert "bf16 runs on --backend openvino" in reasons[("onnxruntime", "bf16")]
    if openvino:
        assert reasons[("openvino", "fp16")] == "--precision fp16: OpenVINO runs fp32 or bf16"
    if unavailable_reason():
        assert unavailable_reason() in reasons[("tensorrt", "fp32")]
    assert "| onnxruntime (CPUExecutionProvider, model.onnx) |" in result.stdout
    assert "not run: pytorch fp32" in result.stdout


def test_checkpoints_are_exported_and_timed_in_pytorch_and_both_graphs(tmp_path):
    save_checkpoint(tmp_path / "deblurrer.pt", randomized(create_model("nafnet-tiny")), "deblurrer")
    result = b2b_bench("--deblurrer", tmp_path / "deblurrer.pt", "--sizes", "48x32", "--frames", 2, "--warmup", 1,
                       "--backends", "pytorch,onnxruntime", "--json", tmp_path / "speed.json")
    assert result.returncode == 0, result.stderr
    figures = json.loads((tmp_path / "speed.json").read_text())
    assert [(r["backend"], r["precision"]) for r in figures["rows"]] == [
        ("pytorch", "fp32"), ("onnxruntime", "fp32"), ("onnxruntime", "fp16")]
    gflop = figures["rows"][0]["gflop_per_frame"]
    assert gflop > 0 and all(r["gflop_per_frame"] == gflop for r in figures["rows"])
    assert all(r["gflop_per_s"] == pytest.approx(gflop * r["fps"]) for r in figures["rows"])
    if not torch.cuda.is_available():
        # the roofline: ONNX Runtime's CPU computes both graphs in FP32, against one measured FP32 peak
        assert {(r["device"], r["math"]) for r in figures["rows"]} == {("cpu", "fp32")}
        assert [p["math"] for p in figures["peaks"]] == ["fp32"] and figures["peaks"][0]["gflop_per_s"] > 1
        assert all(r["of_peak"] == pytest.approx(r["gflop_per_s"] / figures["peaks"][0]["gflop_per_s"])
                   for r in figures["rows"])
        assert "| matmul peak | of peak |" in result.stdout and "(CPU fp32) |" in result.stdout
        assert [(s["backend"], s["precision"]) for s in figures["skipped"]] == [
            ("pytorch", "fp16"), ("pytorch", "bf16"), ("onnxruntime", "bf16")]
        assert figures["skipped"][0]["reason"] == "PyTorch computes FP16 convolutions only on a GPU"


def test_flops_grow_with_the_frame_and_the_converter():
    deblurrer = DeployModel(create_model("nafnet-tiny")).eval()
    both = DeployModel(create_model("nafnet-tiny"), create_model("mimo-unet-tiny")).eval()
    small, large = gflop_per_frame(deblurrer, 64, 64), gflop_per_frame(deblurrer, 128, 128)
    assert large == pytest.approx(4 * small, rel=0.02)  # convolutions: proportional to the pixels
    assert gflop_per_frame(both, 64, 64) > small


def test_bad_options_are_one_line(tmp_path):
    bundle = write_frame_bundle(tmp_path / "bundle")
    assert_one_line_error(b2b_bench("--bundle", bundle, "--backends", "tflite"), "--backends tflite")
    assert_one_line_error(b2b_bench("--bundle", bundle, "--sizes", "720p"), "--sizes 720p")
    assert_one_line_error(b2b_bench("--bundle", bundle, "--precisions", ","), "--precisions")
    assert_one_line_error(b2b_bench("--sizes", "64x64"), "either --bundle")
    bounded = write_frame_bundle(tmp_path / "bounded", shapes={"min": [1, 16, 16, 3], "opt": [1, 32, 32, 3],
                                                               "max": [1, 64, 64, 3]})
    assert_one_line_error(b2b_bench("--bundle", bounded, "--sizes", "32x32,96x64"), "--sizes 96x64: outside")
