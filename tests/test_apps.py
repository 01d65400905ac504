import numpy as np
import pytest

from blur2blur.apps import app_names, load_app
from blur2blur.errors import UserError


def test_builtin_apps_are_registered():
    assert {"none", "side-by-side"} <= set(app_names())


def test_none_returns_the_restored_frame_and_side_by_side_shows_both():
    original, restored = np.zeros((10, 12, 3), np.uint8), np.full((10, 12, 3), 200, np.uint8)
    frame, records = load_app("none").process(original, restored, 0)
    assert frame is restored and records is None
    frame, _ = load_app("side-by-side").process(original, restored, 0)
    assert frame.shape == (10, 24, 3)
    assert frame[:, 12:].mean() > frame[:, :12].mean()


def test_unknown_app_lists_the_known_ones():
    with pytest.raises(UserError, match="choose one of .*none"):
        load_app("nope")
