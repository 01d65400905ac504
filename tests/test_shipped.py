"""Models by name: the shipped starter loads wherever a deblurrer checkpoint is taken, and `b2b-train pack`."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import B2B_EVAL, assert_one_line_error

from blur2blur import weights
from blur2blur.errors import UserError
from blur2blur.models import create_model
from blur2blur.models.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from blur2blur.weights import SHIPPED, resolve_checkpoint

B2B_TRAIN = str(Path(sys.executable).parent / "b2b-train")


def test_the_starter_ships_as_a_small_fp16_deblurrer():
    path = resolve_checkpoint("starter")
    assert path.parent == weights.WEIGHTS_DIR and path.is_file()
    assert path.stat().st_size <= 12 * 2**20
    data = read_checkpoint("starter")
    assert data["kind"] == "deblurrer" and data["arch"] == "nafnet-w16"
    assert all(v.dtype == torch.float16 for v in data["state_dict"].values() if v.is_floating_point())
    assert "optimizer" not in data and data["meta"]["config"]["pairs"]  # how it was trained travels with it
    model, _ = load_checkpoint("starter", "deblurrer")
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_a_name_resolves_and_a_path_stays_a_path(tmp_path, monkeypatch):
    assert resolve_checkpoint(tmp_path / "x.pt") == tmp_path / "x.pt"
    assert resolve_checkpoint("runs/starter/last.pt") == Path("runs/starter/last.pt")
    monkeypatch.setattr(weights, "WEIGHTS_DIR", tmp_path)  # an install that lost its weights
    with pytest.raises(UserError, match="--deblurrer starter: the shipped weights .* are missing"):
        resolve_checkpoint("starter", "--deblurrer")
    assert set(SHIPPED) == {"starter"}


def test_the_starter_by_name_restores_known_blur_in_b2b_eval(tmp_path):
    pairs = "synthetic:known?sharp=deadleaves:3&size=96&count=6&seed=11"
    result = subprocess.run([B2B_EVAL, "deblur", "--deblurrer", "starter", "--pairs", pairs, "--mean-only"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    gain = next(line for line in result.stdout.splitlines() if line.startswith("deblurrer alone vs blurry input"))
    assert float(gain.split(":")[1].split()[0]) > 0.5, result.stdout  # content it never saw, its own blur
    assert "WARNING" not in result.stdout


def test_pack_keeps_the_model_in_fp16_without_its_training_state(tmp_path):
    model = create_model("nafnet-tiny")
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    save_checkpoint(tmp_path / "last.pt", model, "deblurrer", {"step": 7, "config": {"pairs": "p"}},
                    optimizer={"state": {}, "param_groups": []})
    result = subprocess.run([B2B_TRAIN, "pack", str(tmp_path / "last.pt"), "--out", str(tmp_path / "small.pt")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    packed = read_checkpoint(tmp_path / "small.pt")
    assert "optimizer" not in packed and packed["meta"]["step"] == 7
    assert (tmp_path / "small.pt").stat().st_size < 0.6 * (tmp_path / "last.pt").stat().st_size
    loaded, _ = load_checkpoint(tmp_path / "small.pt", "deblurrer")
    image = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(loaded(image), model.eval()(image), atol=2e-3)
    assert_one_line_error(subprocess.run([B2B_TRAIN, "pack", str(tmp_path / "none.pt"), "--out",
                                          str(tmp_path / "o.pt")], capture_output=True, text=True), "none.pt")
