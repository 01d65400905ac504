import numpy as np

from blur2blur.runtime.bundle import ShapeBounds
from blur2blur.runtime.fit import BoundsFit

BOUNDS = ShapeBounds(min=(32, 32), opt=(48, 96), max=(64, 128), batch=2)


def test_frames_inside_the_bounds_pass_untouched():
    fit = BoundsFit(BOUNDS)
    frames = np.zeros((2, 40, 100, 3), np.uint8)
    prepared, restore = fit.prepare(frames)
    assert prepared is frames and restore(frames) is frames and fit.resized == fit.padded == 0


def test_a_wide_frame_is_shrunk_then_padded_and_comes_back_at_its_size():
    fit = BoundsFit(BOUNDS)
    frames = np.full((1, 40, 400, 3), 77, np.uint8)  # too wide: scale 128/400 gives 13 x 128, below the min height
    prepared, restore = fit.prepare(frames)
    assert prepared.shape == (1, 32, 128, 3) and prepared.flags.c_contiguous
    assert fit.resized == fit.padded == 1
    restored = restore(prepared)
    assert restored.shape == frames.shape and np.abs(restored.astype(int) - 77).max() <= 1


def test_a_small_frame_is_edge_padded_and_cropped_back_exactly():
    fit = BoundsFit(BOUNDS)
    frames = np.random.default_rng(0).integers(0, 256, (2, 10, 20, 3), dtype=np.uint8)
    prepared, restore = fit.prepare(frames)
    assert prepared.shape == (2, 32, 32, 3) and fit.padded == 2 and fit.resized == 0
    np.testing.assert_array_equal(prepared[:, 31, :20], frames[:, 9])  # the last row repeated
    np.testing.assert_array_equal(restore(prepared), frames)


def test_without_bounds_any_size_passes():
    frames = np.zeros((1, 5000, 7, 3), np.uint8)
    prepared, _ = BoundsFit(None).prepare(frames)
    assert prepared is frames
