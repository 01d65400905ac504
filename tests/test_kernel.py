"""b2b-train kernel: the extractor learns to tell blurs apart, and trains end to end with bad files present."""

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from blur2blur.train.config import KernelConfig
from blur2blur.train.kernel import train_kernel
from test_deblurrer import pair_folder

BIN = Path(sys.executable).parent


def two_blurs(root: Path, count: int = 16, size: int = 48, seed: int = 1) -> Path:
    """Pairs whose blur is either a horizontal or a vertical 9-pixel box (by turns): a code must say which."""
    rng = np.random.default_rng(seed)
    for sub in ("blur", "sharp"):
        (root / sub).mkdir(parents=True)
    for i in range(count):
        sharp = cv2.GaussianBlur(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), (3, 3), 0)
        cv2.imwrite(str(root / "sharp" / f"{i:03d}.png"), sharp)
        cv2.imwrite(str(root / "blur" / f"{i:03d}.png"), cv2.blur(sharp, (9, 1) if i % 2 else (1, 9)))
    return root


def test_own_code_beats_no_blur_and_another_pairs_code(tmp_path):
    # held-out pairs alternate the direction, so "another pair's code" is always the other blur
    config = KernelConfig(pairs=str(two_blurs(tmp_path / "pairs")), val_pairs=str(two_blurs(tmp_path / "val", 4, seed=2)),
                          out=str(tmp_path / "run"), steps=150, batch=4, crop=32, lr=2e-3, val_size=48, eval_every=150)
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


def test_a_deblurrer_checkpoint_is_not_a_kernel_extractor(tmp_path):
    result = subprocess.run([str(BIN / "b2b-train"), "kernel", "--pairs", "synthetic:known?sharp=deadleaves:1",
                             "--out", str(tmp_path / "run"), "--arch", "nafnet-tiny"], capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr == "error: --arch nafnet-tiny is a deblurrer, not a kernel\n"
