import numpy as np
import pytest

from blur2blur.apps import app_names, load_app
from blur2blur.errors import UserError
from blur2blur.runtime.sinks import Shown


def test_builtin_apps_are_registered():
    assert {"none", "side-by-side"} <= set(app_names())


def test_none_returns_the_restored_frame_and_side_by_side_shows_both():
    original, restored = np.zeros((10, 12, 3), np.uint8), np.full((10, 12, 3), 200, np.uint8)
    frame, records = load_app("none").process(original, restored, 0)
    assert frame is restored and records is None
    app = load_app("side-by-side")
    frame, _ = app.process(original, restored, 0)
    assert frame is restored and app.beside_input  # the run composes input | restored, once, for every sink
    paired = Shown(0, 0, original, frame).paired
    assert paired.shape == (10, 24, 3) and paired[:, 12:].mean() > paired[:, :12].mean()


def test_unknown_app_lists_the_known_ones():
    with pytest.raises(UserError, match="choose one of .*none"):
        load_app("nope")
