"""b2b-eval deblur as a user runs it: real pairs on disk, real checkpoints and bundles, real ONNX Runtime."""

import json
import subprocess

import cv2
import numpy as np
import pytest
from helpers import B2B_EVAL, assert_one_line_error, pair_folder, randomized, write_frame_bundle

from blur2blur.export.onnx_export import export_bundle
from blur2blur.models import create_model
from blur2blur.models.checkpoint import save_checkpoint
from blur2blur.quality import psnr, ssim
from blur2blur.runtime.bundle import ShapeBounds


def b2b_eval(*args) -> subprocess.CompletedProcess:
    return subprocess.run([B2B_EVAL, *map(str, args)], capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """A deblurrer and a converter with random weights everywhere, so each changes the image its own way."""
    folder = tmp_path_factory.mktemp("ckpt")
    save_checkpoint(folder / "deblurrer.pt", randomized(create_model("nafnet-tiny"), 0, 0.02), "deblurrer")
    save_checkpoint(folder / "converter.pt", randomized(create_model("mimo-unet-tiny"), 1, 0.02), "converter")
    return folder


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    return pair_folder(tmp_path_factory.mktemp("pairs") / "pairs", count=5, size=40, bad_files=False)


def test_each_column_per_pair_and_the_mean_with_grids_and_json(checkpoints, pairs, tmp_path):
    result = b2b_eval("deblur", "--deblurrer", checkpoints / "deblurrer.pt",
                      "--converter", checkpoints / "converter.pt",
                      "--pairs", pairs, "--json", tmp_path / "eval.json", "--grid", tmp_path / "grids")
    assert result.returncode == 0, result.stderr
    assert "| image | blurry input | deblurrer alone | with converter |" in result.stdout
    assert "**mean of 5**" in result.stdout
    figures = json.loads((tmp_path / "eval.json").read_text())
    assert [row["name"] for row in figures["images"]] == [f"{i:03d}" for i in range(5)]
    for row in figures["images"]:
        blurry = cv2.imread(str(pairs / "blur" / f"{row['name']}.png"))
        sharp = cv2.imread(str(pairs / "sharp" / f"{row['name']}.png"))
        assert row["blurry"]["psnr"] == pytest.approx(psnr(blurry, sharp))
        assert row["blurry"]["ssim"] == pytest.approx(ssim(blurry, sharp))
        assert row["deblurrer"]["psnr"] != row["converter"]["psnr"]  # G changed what the deblurrer saw
        grid = cv2.imread(str(tmp_path / "grids" / f"{row['name']}.png"))
        assert grid.shape == (40, 4 * 40 + 3 * 4, 3)  # blurry | alone | with converter | sharp
        assert np.array_equal(grid[20:, -40:], sharp[20:])  # the sharp tile, below its label
    for key in ("blurry", "deblurrer", "converter"):
        assert figures["mean"][key]["psnr"] == pytest.approx(np.mean([r[key]["psnr"] for r in figures["images"]]))


def test_a_bundle_is_measured_through_its_engine_and_its_source_deblurrer(checkpoints, pairs, tmp_path):
    bundle = tmp_path / "bundle"
    export_bundle(checkpoints / "deblurrer.pt", bundle, converter=str(checkpoints / "converter.pt"),
                  bounds=ShapeBounds(min=(16, 16), opt=(40, 40), max=(64, 64)))
    eager = b2b_eval("deblur", "--deblurrer", checkpoints / "deblurrer.pt", "--converter",
                     checkpoints / "converter.pt", "--pairs", pairs, "--json", tmp_path / "eager.json")
    graph = b2b_eval("deblur", "--bundle", bundle, "--pairs", pairs, "--json", tmp_path / "graph.json")
    assert eager.returncode == 0 and graph.returncode == 0, graph.stderr
    eager, graph = (json.loads((tmp_path / f"{n}.json").read_text())["mean"] for n in ("eager", "graph"))
    assert graph["deblurrer"] == eager["deblurrer"]  # the same checkpoint in PyTorch
    assert graph["converter"]["psnr"] == pytest.approx(eager["converter"]["psnr"], abs=0.05)  # ONNX Runtime

    (checkpoints / "moved.pt").write_bytes((checkpoints / "deblurrer.pt").read_bytes() + b"changed")
    meta = json.loads((bundle / "meta.json").read_text())
    meta["sources"]["deblurrer"]["path"] = str(checkpoints / "moved.pt")
    (bundle / "meta.json").write_text(json.dumps(meta))
    alone = b2b_eval("deblur", "--bundle", bundle, "--pairs", pairs, "--mean-only")
    assert alone.returncode == 0, alone.stderr
    assert "no 'deblurrer alone' column" in alone.stderr
    assert "| image | blurry input | with converter |" in alone.stdout and "| 000 |" not in alone.stdout


def test_an_identity_bundle_gives_the_blurry_figures_and_synthetic_pairs_work(tmp_path):
    bundle = write_frame_bundle(tmp_path / "identity", invert=False)  # torch-free, ONNX Runtime only
    result = b2b_eval("deblur", "--bundle", bundle, "--pairs", "synthetic:vertical?sharp=deadleaves:2&size=48&count=3",
                      "--json", tmp_path / "eval.json")
    assert result.returncode == 0, result.stderr
    figures = json.loads((tmp_path / "eval.json").read_text())
    assert figures["evaluated"] == 3 and figures["mean"]["bundle"] == figures["mean"]["blurry"]
    assert figures["harm_warning"] is None and "WARNING" not in result.stdout  # no worse than the input


def test_a_restoration_worse_than_the_blurry_input_is_said_plainly(tmp_path):
    bundle = write_frame_bundle(tmp_path / "negative", invert=True)  # 255 - x: far worse than doing nothing
    result = b2b_eval("deblur", "--bundle", bundle, "--pairs", "synthetic:defocus?sharp=deadleaves:2&size=48&count=3",
                      "--mean-only", "--json", tmp_path / "eval.json")
    assert result.returncode == 0, result.stderr  # a measurement, not a failure
    figures = json.loads((tmp_path / "eval.json").read_text())
    drop = figures["mean"]["bundle"]["psnr"] - figures["mean"]["blurry"]["psnr"]
    warning = next(line for line in result.stdout.splitlines() if line.startswith("WARNING"))
    assert f"{drop:+.2f} dB" in warning and "worse than the blurry input" in warning and "bundle" in warning
    assert "do not deploy" in warning and figures["harm_warning"] == warning


def test_limit_spreads_the_pairs_evaluated(pairs, tmp_path):
    bundle = write_frame_bundle(tmp_path / "identity", invert=False)
    result = b2b_eval("deblur", "--bundle", bundle, "--pairs", pairs, "--limit", 2, "--json", tmp_path / "e.json")
    assert result.returncode == 0, result.stderr
    assert [row["name"] for row in json.loads((tmp_path / "e.json").read_text())["images"]] == ["000", "004"]


def test_bad_input_is_one_line(checkpoints, pairs, tmp_path):
    bundle = write_frame_bundle(tmp_path / "identity", invert=False)
    for sub in ("blur", "sharp"):
        (tmp_path / "mismatched" / sub).mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "mismatched" / "blur" / "a.png"), np.zeros((20, 20, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "mismatched" / "sharp" / "b.png"), np.zeros((20, 20, 3), np.uint8))
    (tmp_path / "empty").mkdir()
    assert_one_line_error(b2b_eval("deblur", "--bundle", bundle, "--pairs", tmp_path / "mismatched"),
                          "no blurry image has a sharp partner of the same name")
    assert_one_line_error(b2b_eval("deblur", "--bundle", bundle, "--pairs", tmp_path / "empty"), "holds no images")
    assert_one_line_error(b2b_eval("deblur", "--bundle", bundle, "--pairs", tmp_path / "nowhere"), "nowhere")
    assert_one_line_error(b2b_eval("deblur", "--bundle", bundle, "--deblurrer", checkpoints / "deblurrer.pt",
                                   "--pairs", pairs), "either --bundle")
    assert_one_line_error(b2b_eval("deblur", "--deblurrer", checkpoints / "converter.pt", "--pairs", pairs),
                          "--deblurrer needs a deblurrer")
    assert_one_line_error(b2b_eval("deblur", "--bundle", tmp_path / "none", "--pairs", pairs), "--bundle")
    small = write_frame_bundle(tmp_path / "small", invert=False, shapes={
        "min": [1, 16, 16, 3], "opt": [1, 32, 32, 3], "max": [1, 32, 32, 3]})
    assert_one_line_error(b2b_eval("deblur", "--bundle", small, "--pairs", pairs, "--grid", tmp_path / "grids"),
                          "an image of 40x40 is larger than the bundle's largest frame (32x32)")
    assert list(tmp_path.glob("*grids*")) == []  # a failed run leaves no grids
