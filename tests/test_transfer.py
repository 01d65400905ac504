"""Known blur put on other sharp images: exactly from a synthetic domain, or through a trained kernel extractor."""

import cv2
import numpy as np
import pytest
from helpers import pair_folder

from blur2blur.errors import UserError
from blur2blur.train.config import KernelConfig
from blur2blur.train.kernel import train_kernel
from blur2blur.train.transfer import ExactTransfer, LearnedTransfer, open_transfer


def texture(seed: int = 5, size: int = 64) -> np.ndarray:
    return cv2.GaussianBlur(np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8), (3, 3), 0)


def smoothing(before: np.ndarray, after: np.ndarray) -> tuple[float, float]:
    """How much of the horizontal and of the vertical detail the blur removed (inner pixels)."""
    def detail(image: np.ndarray, axis: int) -> float:
        return float(np.abs(np.diff(image[8:-8, 8:-8].astype(float), axis=axis)).mean())
    return 1 - detail(after, 1) / detail(before, 1), 1 - detail(after, 0) / detail(before, 0)


def test_exact_transfer_draws_the_domains_blur():
    sharp = texture()
    for domain, horizontal in (("horizontal", True), ("vertical", False)):
        blurred = ExactTransfer(domain).apply(sharp, np.random.default_rng(0))
        along_x, along_y = smoothing(sharp, blurred)
        along, across = (along_x, along_y) if horizontal else (along_y, along_x)
        assert along > across + 0.2, (domain, along_x, along_y)
        assert np.array_equal(blurred, ExactTransfer(domain).apply(sharp, np.random.default_rng(0)))


def test_learned_transfer_puts_the_known_pairs_blur_on_new_content(tmp_path):
    pairs = pair_folder(tmp_path / "pairs")  # blurred along x by 7 pixels
    run = train_kernel(KernelConfig(pairs=str(pairs), out=str(tmp_path / "kernel"), steps=150, batch=4, crop=32,
                                    lr=2e-3, val_count=2, val_size=32, eval_every=150))
    transfer = open_transfer(str(pairs), str(run.last))
    assert isinstance(transfer, LearnedTransfer)
    sharp = texture(seed=9)
    along_x, along_y = smoothing(sharp, transfer.apply(sharp, np.random.default_rng(1)))
    assert along_x > 0.3 and along_x > along_y + 0.2, (along_x, along_y)


def test_open_transfer_picks_exact_for_synthetic_and_none_for_plain_pairs(tmp_path):
    assert isinstance(open_transfer("synthetic:known", None), ExactTransfer)
    assert open_transfer(str(pair_folder(tmp_path / "pairs")), None) is None
    with pytest.raises(UserError, match="--known unknown blur domain 'nope'"):
        open_transfer("synthetic:nope", None)
