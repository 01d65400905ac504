"""The `photos` content source: Debian's photographs, listed with sha256 and licence, cut into sharp tiles."""

from __future__ import annotations

import hashlib
import logging

import cv2
import numpy as np
import pytest

from blur2blur.data.blur.content import load_sharp_images
from blur2blur.data.blur.deadleaves import dead_leaves
from blur2blur.data.blur.photos import PHOTO_LIST, TILE, photo_tiles, read_photo_list, sharp_share
from blur2blur.errors import UserError
from blur2blur.images import to_bgr8

HEADER = "# a fixture\npath,package,version,sha256,licence\n"


def _photo(path, image) -> str:
    cv2.imwrite(str(path), image)
    return f"{path},pkg-{path.stem},1.0,{hashlib.sha256(path.read_bytes()).hexdigest()},CC0-1.0\n"


@pytest.fixture
def fixture_list(tmp_path):
    """Three photographs: sharp dead leaves, the same leaves defocused (bokeh), and a flat sky gradient."""
    leaves = to_bgr8(dead_leaves(700, np.random.default_rng([7, 0])))
    soft = cv2.GaussianBlur(leaves, (0, 0), 4.0)
    sky = np.repeat(np.linspace(90, 200, 700, dtype=np.float32)[:, None, None], 700, axis=1).repeat(3, axis=2)
    rows = [_photo(tmp_path / "sharp.png", leaves), _photo(tmp_path / "soft.png", soft),
            _photo(tmp_path / "sky.png", sky.astype(np.uint8))]
    listing = tmp_path / "photos.csv"
    listing.write_text(HEADER + "".join(rows))
    return listing


def test_only_sharp_textured_tiles_are_kept(fixture_list):
    tiles = list(photo_tiles(fixture_list))
    names = {name.split("@")[0].rsplit("/", 1)[-1] for name, _ in tiles}
    assert names == {"sharp"}  # the defocused copy and the flat sky give no tile
    assert len(tiles) == 4  # 700 px holds 2 x 2 tiles of 320 (the only scale: never enlarged)
    assert all(tile.shape == (TILE, TILE, 3) and tile.dtype == np.uint8 for _, tile in tiles)


def test_sharp_share_separates_focus_from_blur():
    leaves = to_bgr8(dead_leaves(256, np.random.default_rng([7, 1])))
    assert sharp_share(leaves) > 0.8
    assert sharp_share(cv2.GaussianBlur(leaves, (0, 0), 3.0)) < 0.1
    assert sharp_share(np.full((256, 256, 3), 128, np.uint8)) == 0.0


def test_changed_or_missing_photographs_are_left_out_with_a_warning(fixture_list, tmp_path, caplog):
    (tmp_path / "soft.png").unlink()
    sharp = tmp_path / "sharp.png"
    sharp.write_bytes(sharp.read_bytes() + b"\0")  # another version of the package: not the listed file
    with caplog.at_level(logging.WARNING):
        assert list(photo_tiles(fixture_list)) == []  # the sky is still read: flat, it gives no tile
    text = caplog.text
    assert "1 of 3 photographs are not installed" in text and "apt-get install -y pkg-soft" in text
    assert "sharp.png differs from the listed one" in text


def test_no_photograph_installed_names_the_apt_get_command(tmp_path):
    listing = tmp_path / "photos.csv"
    listing.write_text(HEADER + f"{tmp_path}/gone.jpg,mate-backgrounds,1.26.0-1,{'0' * 64},GPL-2+\n")
    with pytest.raises(UserError) as err:
        list(photo_tiles(listing))
    message = str(err.value)
    assert "\n" not in message and "sudo apt-get install -y mate-backgrounds" in message


def test_a_broken_list_is_a_user_error(tmp_path):
    listing = tmp_path / "photos.csv"
    listing.write_text(HEADER + "/x.jpg,pkg,,\n")
    with pytest.raises(UserError, match="every row needs path, package, version, sha256, licence"):
        read_photo_list(listing)


def test_the_shipped_list_names_package_licence_and_checksum():
    photos = read_photo_list(PHOTO_LIST)
    assert len(photos) >= 30
    assert all(len(p.sha256) == 64 and p.licence and p.path.is_absolute() for p in photos)
    assert {p.package for p in photos} >= {"mate-backgrounds", "plasma-workspace-wallpapers"}


@pytest.mark.skipif(not any(p.path.is_file() for p in read_photo_list(PHOTO_LIST)),
                    reason="Debian's wallpaper packages are not installed (make starter installs them as root)")
def test_the_installed_photographs_give_hundreds_of_sharp_tiles():
    tiles = load_sharp_images("photos")
    assert len(tiles) >= 300
    assert all(tile.shape == (TILE, TILE, 3) for tile in tiles)
    assert np.median([sharp_share(tile) for tile in tiles[::10]]) >= 0.7
