import pytest

from blur2blur.errors import UserError
from blur2blur.export.shapes import parse_hw, shape_bounds
from blur2blur.export.verify import extreme_frames, photo_batches, verification_shapes
from blur2blur.runtime.bundle import ShapeBounds, bounds_from_meta


def test_defaults_cover_thumbnails_to_full_hd():
    assert shape_bounds() == ShapeBounds((32, 32), (720, 1280), (1080, 1920), 1)
    assert shape_bounds().nhwc() == {"min": [1, 32, 32, 3], "opt": [1, 720, 1280, 3], "max": [1, 1080, 1920, 3]}


def test_height_and_width_fix_one_shape_and_batch_sets_opt_and_max():
    bounds = shape_bounds(height=481, width=641, batch=4)
    assert bounds.nhwc() == {"min": [1, 481, 641, 3], "opt": [4, 481, 641, 3], "max": [4, 481, 641, 3]}
    assert bounds_from_meta(bounds.nhwc()) == bounds


def test_missing_range_ends_widen_to_hold_the_shapes_given():
    assert shape_bounds(max_shape="360x640") == ShapeBounds((32, 32), (360, 640), (360, 640))
    assert shape_bounds(min_shape="1200x2000") == ShapeBounds((1200, 2000), (1200, 2000), (1200, 2000))
    assert shape_bounds(opt_shape="16x2160") == ShapeBounds((16, 32), (16, 2160), (1080, 2160))
    assert parse_hw("720X1280", "--opt-shape") == (720, 1280)


@pytest.mark.parametrize("kwargs", [
    {"height": 0, "width": 10}, {"height": 10}, {"width": 10}, {"min_shape": "0x10"}, {"max_shape": "10x9000"},
    {"min_shape": "20x20", "max_shape": "10x10"}, {"opt_shape": "5x5", "min_shape": "10x10"}, {"batch": 0},
    {"batch": 65}, {"height": 10, "width": 10, "opt_shape": "10x10"}, {"max_shape": "10"}, {"max_shape": "10x10x3"},
])
def test_bad_bounds_are_user_errors(kwargs):
    with pytest.raises(UserError):
        shape_bounds(**kwargs)


def test_verification_shapes_stay_inside_and_are_odd_where_they_can_be():
    for bounds in (ShapeBounds(), ShapeBounds((16, 16), (64, 96), (160, 256), 2),
                   ShapeBounds((200, 300), (400, 500), (720, 1280), 3), ShapeBounds((45, 67), (45, 67), (45, 67)),
                   ShapeBounds((40, 40), (40, 40), (41, 41))):
        shapes = verification_shapes(bounds)
        assert all(1 <= n <= bounds.batch and bounds.min[0] <= h <= bounds.max[0]
                   and bounds.min[1] <= w <= bounds.max[1]
                   for n, h, w in shapes), (bounds, shapes)
        assert len({(h, w) for _, h, w in shapes}) >= min(2, len({bounds.min, bounds.max}))
        if bounds.min != bounds.max:
            assert any(h % 2 and w % 2 for _, h, w in shapes), (bounds, shapes)
        assert any(n == min(2, bounds.batch) for n, _, _ in shapes)
        assert [batch.shape for batch in photo_batches(bounds)] == [(n, h, w, 3) for n, h, w in shapes]


def test_extreme_frames_are_full_hd_unless_the_bounds_are_smaller():
    frames = extreme_frames(ShapeBounds())
    assert {name: f.shape for name, f in frames.items()} == {k: (1, 1080, 1920, 3) for k in ("white", "black", "noise")}
    assert frames["white"].min() == 255 and frames["black"].max() == 0 and set(frames["noise"].ravel()) == {0, 255}
    assert extreme_frames(ShapeBounds((16, 16), (64, 96), (160, 256)))["noise"].shape == (1, 160, 256, 3)
