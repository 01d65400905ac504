"""b2b-train kernel: the extractor learns to tell blurs apart, and trains end to end with bad files present."""

import json
import subprocess
import sys
from pathlib import Path

import cv2
from helpers import pair_folder

from blur2blur.train.config import KernelConfig
from blur2blur.train.kernel import train_kernel

BIN = Path(sys.executable).parent


def test_own_code_beats_no_blur_and_another_pairs_code(tmp_path):
    # blurs of 9 pixels, vertical or horizontal by turns: on the held-out pairs, "another pair's code" is
    # always the other direction
    boxes = ((1, 9), (9, 1))
    pairs = pair_folder(tmp_path / "pairs", count=16, bad_files=False, seed=1, boxes=boxes)
    val_pairs = pair_folder(tmp_path / "val", count=4, bad_files=False, seed=2, boxes=boxes)
    config = KernelConfig(pairs=str(pairs), val_pairs=str(val_pairs), out=str(tmp_path / "run"), steps=150, batch=4,
                          crop=32, lr=2e-3, val_size=48, eval_every=150)
    metrics = train_kernel(config).metrics
    assert metrics["val_psnr_own_code"] > metrics["val_psnr_no_blur"] + 3, metrics
    assert metrics["val_psnr_own_code"] > metrics["val_psnr_other_code"] + 1, metrics


def test_trains_end_to_end_on_a_folder_with_bad_files(tmp_path):
    out = tmp_path / "run"
    result = subprocess.run([str(BIN / "b2b-train"), "kernel", "--pairs", str(pair_folder(tmp_path / "pairs")),
                             "--out", str(out), "--steps", "4", "--batch", "2", "--crop", "32", "--eval-every", "2",
                             "--val-count", "2", "--val-size", "32"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "skipped 2 unreadable/mismatched pairs" in result.stderr
    assert result.stdout.strip() == f"wrote {out / 'last.pt'}, best {out / 'best.pt'}"
    last = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()][-1]
    assert set(last) == {"step", "val_psnr_no_blur", "val_psnr_own_code", "val_psnr_other_code"}
    grid = cv2.imread(str(out / "samples" / "step_000004.png"))
    assert grid.shape == (2 * 32 + 4, 4 * 32 + 12, 3)  # sharp | own code | other code | blurry


def test_another_kind_of_network_is_refused_before_any_work(tmp_path):
    for arch, message in (("nafnet-tiny", "--arch nafnet-tiny is a deblurrer, not a kernel"),
                          ("kernel-huge", "--arch kernel-huge: unknown; choose one of kernel-extractor, "
                                          "kernel-extractor-tiny")):
        result = subprocess.run([str(BIN / "b2b-train"), "kernel", "--pairs", "synthetic:known?sharp=deadleaves:1",
                                 "--out", str(tmp_path / "run"), "--arch", arch], capture_output=True, text=True)
        assert result.returncode == 2 and result.stderr == f"error: {message}\n"
        assert not (tmp_path / "run").exists()
