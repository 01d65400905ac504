"""Sharp content for synthesis: bundled photos offline, folders, videos, dead leaves and bad specs."""

from __future__ import annotations

import logging
import socket

import cv2
import numpy as np
import pytest

from blur2blur.data.blur.content import SKIMAGE_PHOTOS, load_sharp_images
from blur2blur.data.blur.deadleaves import dead_leaves
from blur2blur.errors import UserError
from blur2blur.images import to_bgr8


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a socket fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_skimage_photos_load_offline_as_bgr8(no_network):
    photos = load_sharp_images("skimage")
    assert len(photos) == len(SKIMAGE_PHOTOS) == 8
    for photo in photos:
        assert photo.dtype == np.uint8 and photo.ndim == 3 and photo.shape[2] == 3
    import skimage.data

    assert np.array_equal(photos[0], skimage.data.astronaut()[:, :, ::-1])  # BGR, not skimage's RGB


def test_folder_spec_skips_small_and_unreadable_images_with_one_line(tmp_path, caplog):
    rng = np.random.default_rng(0)
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"big{i}.png"), rng.integers(0, 256, (80, 96, 3), dtype=np.uint8))
    cv2.imwrite(str(tmp_path / "tiny.png"), rng.integers(0, 256, (20, 200), dtype=np.uint8))
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    with caplog.at_level(logging.WARNING):
        images = load_sharp_images(str(tmp_path), min_size=64)
    assert len(images) == 3 and all(im.shape == (80, 96, 3) for im in images)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "skipped 1 images smaller than 64 px and 1 unreadable" in lines[0]
    assert len(load_sharp_images(str(tmp_path), max_images=2)) == 2


def test_video_spec_and_comma_list(tmp_path, no_network):
    path = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (96, 80))
    for i in range(26):
        writer.write(np.full((80, 96, 3), 9 * i, np.uint8))
    writer.release()
    frames = load_sharp_images(str(path))  # near-duplicate neighbours are thinned: frames 0, 12, 24
    assert len(frames) == 3 and frames[0].shape == (80, 96, 3)
    assert abs(float(frames[1].mean()) - 9 * 12) < 6
    assert len(load_sharp_images(f"{path}?every=2")) == 13
    mixed = load_sharp_images(f"{path},skimage", max_images=5)
    assert len(mixed) == 5 and mixed[3].shape == (512, 512, 3)  # the video first, then the astronaut


def test_bad_specs_are_user_errors():
    with pytest.raises(UserError, match="neither a file, a folder nor a known source"):
        load_sharp_images("skimgae")
    with pytest.raises(UserError, match="no such file or folder"):
        load_sharp_images("/no/such/folder")
    with pytest.raises(UserError, match="deadleaves:N takes a positive whole number"):
        load_sharp_images("deadleaves:x")
    with pytest.raises(UserError, match="no usable images"):
        load_sharp_images("skimage", min_size=5000)
    with pytest.raises(UserError, match="empty"):
        load_sharp_images(" , ")


def test_deadleaves_are_reproducible_512px_bgr8():
    first = load_sharp_images("deadleaves:2")
    again = load_sharp_images("deadleaves:2")
    assert len(first) == 2 and first[0].shape == (512, 512, 3) and first[0].dtype == np.uint8
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[0], first[1])
    both = load_sharp_images("skimage+deadleaves", max_images=10)
    assert len(both) == 10


def test_textured_leaves_hold_photo_texture_inside_leaves_and_are_reproducible():
    first, again = load_sharp_images("texleaves:2"), load_sharp_images("texleaves:2")
    assert first[0].shape == (512, 512, 3) and all(np.array_equal(a, b) for a, b in zip(first, again))
    # The same leaves without grain, flat or textured: only the textured ones hold detail inside (median |Laplacian|).
    bank = load_sharp_images("skimage")
    textured, flat = (dead_leaves(256, np.random.default_rng(5), textures=t, alpha=2.5, r_min=3.0, texture=0.0)
                      for t in (bank, None))
    detail = [float(np.median(np.abs(cv2.Laplacian(cv2.cvtColor(to_bgr8(i), cv2.COLOR_BGR2GRAY), cv2.CV_32F))))
              for i in (textured, flat)]
    assert detail[0] > 2 and detail[1] == 0, detail
    with pytest.raises(UserError, match="texleaves:N takes a positive whole number"):
        load_sharp_images("texleaves:0")
