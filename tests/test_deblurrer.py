"""b2b-train deblurrer end to end: folders with bad files, official checkpoints as --init, held-out figures."""

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from helpers import pair_folder, randomized

from blur2blur.models import create_model
from blur2blur.models.checkpoint import load_checkpoint, read_checkpoint
from blur2blur.train.config import DeblurrerConfig
from blur2blur.train.deblurrer import train_deblurrer

BIN = Path(sys.executable).parent


def test_trains_end_to_end_on_a_folder_with_bad_files(tmp_path):
    pairs = pair_folder(tmp_path / "pairs")
    out = tmp_path / "run"
    result = subprocess.run([str(BIN / "b2b-train"), "deblurrer", "--pairs", str(pairs), "--out", str(out),
                             "--steps", "40", "--batch", "4", "--crop", "32", "--eval-every", "20",
                             "--val-count", "2", "--val-size", "48"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "skipped 2 unreadable/mismatched pairs: 000, 001" in result.stderr
    assert "8 pairs for training (2 unreadable skipped), 2 held out" in result.stderr
    assert result.stdout.strip() == f"wrote {out / 'last.pt'}, best {out / 'best.pt'}"
    evaluations = [line for line in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())
                   if "val_psnr" in line]
    assert [line["step"] for line in evaluations] == [0, 20, 40]
    assert evaluations[-1]["val_psnr"] > evaluations[0]["val_psnr"]  # it learned something
    assert {"val_psnr_input", "val_ssim", "val_ssim_input"} <= set(evaluations[-1])
    assert json.loads((out / "config.json").read_text())["pairs"] == str(pairs)
    grid = cv2.imread(str(out / "samples" / "step_000040.png"))
    assert grid.shape == (2 * 48 + 4, 3 * 48 + 8, 3)  # two rows of blurry | deblurred | sharp
    assert cv2.imread(str(out / "curves.png")) is not None
    best = read_checkpoint(out / "best.pt")["meta"]
    assert best["metrics"]["val_psnr"] == max(line["val_psnr"] for line in evaluations)


def test_fine_tunes_from_an_official_nafnet_checkpoint(tmp_path):
    official = randomized(create_model("nafnet-tiny"), seed=3)
    torch.save({"params": official.state_dict()}, tmp_path / "NAFNet-official.pth")
    config = DeblurrerConfig(pairs="synthetic:known?sharp=deadleaves:2&size=48", out=str(tmp_path / "run"),
                             init=str(tmp_path / "NAFNet-official.pth"), steps=1, batch=1, crop=32, lr=1e-12,
                             val_count=1, val_size=32)
    result = train_deblurrer(config)
    tuned = load_checkpoint(result.last, "deblurrer")[0].state_dict()
    for key, value in official.state_dict().items():
        torch.testing.assert_close(tuned[key], value, atol=1e-8, rtol=0)


def test_validates_on_the_pairs_it_is_given(tmp_path):
    pairs = pair_folder(tmp_path / "pairs")
    config = DeblurrerConfig(pairs="synthetic:known?sharp=deadleaves:2&size=48", val_pairs=str(pairs),
                             out=str(tmp_path / "run"), steps=1, batch=1, crop=32, val_count=3, val_size=0)
    metrics = train_deblurrer(config).metrics

    def psnr(name: str) -> float:
        blurry, sharp = (cv2.imread(str(pairs / sub / f"{name}.png")).astype(float) for sub in ("blur", "sharp"))
        return 10 * np.log10(255**2 / np.mean((blurry - sharp) ** 2))

    # three of its ten readable pairs (002-011), whole, spread over the set: the first, the middle, the last
    assert metrics["val_psnr_input"] == pytest.approx(np.mean([psnr("002"), psnr("006"), psnr("011")]), abs=1e-3)
    assert set(metrics) == {"val_psnr_input", "val_psnr", "val_ssim_input", "val_ssim"}
