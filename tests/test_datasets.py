"""Dataset readers: every layout, the bad files users have, and the spec strings that pick a reader."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest

from blur2blur.data.imagesets import ImageSet, open_images
from blur2blur.data.layouts import blur2blur_layout, detect_pair_layout, gopro, reds, rsblur
from blur2blur.data.pairs import PairedSet, paired_folder, suffix_pairs
from blur2blur.data.sources import PAIR_KINDS, open_pairs
from blur2blur.data.spec import SourceSpec, parse_spec
from blur2blur.errors import UserError


def _image(seed: int, h: int = 24, w: int = 32) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _write(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)
    return path


def _pair(root: Path, blur_rel: str, sharp_rel: str, seed: int) -> None:
    sharp = _image(seed)
    _write(root / sharp_rel, sharp)
    _write(root / blur_rel, cv2.GaussianBlur(sharp, (5, 5), 0))


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _video(path: Path, frames: int = 12, size: tuple[int, int] = (64, 48)) -> Path:
    """mp4v video whose frame i is flat grey 10*i, so a decoded frame tells its own index."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, size)
    assert writer.isOpened()
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), 10 * i, np.uint8))
    writer.release()
    return path


# --------------------------------------------------------------------------- paired folder


def test_paired_folder_matches_by_stem_and_warns_once_about_names_on_one_side(tmp_path, caplog):
    for i in range(3):
        _pair(tmp_path, f"blur/{i:03d}.png", f"sharp/{i:03d}.png", i)
    _write(tmp_path / "blur/extra.png", _image(9))
    _write(tmp_path / "sharp/lonely1.png", _image(10))
    _write(tmp_path / "sharp/lonely2.png", _image(11))
    with caplog.at_level(logging.WARNING):
        pairs = paired_folder(tmp_path)
    assert pairs.names == ["000", "001", "002"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "1 blurry without a sharp partner (extra)" in warnings[0].getMessage()
    assert "2 sharp without a blurry partner" in warnings[0].getMessage()
    blur, sharp = pairs.load(0)
    assert blur.dtype == np.uint8 and blur.shape == sharp.shape == (24, 32, 3)


def test_paired_folder_matches_across_suffixes_and_subfolders(tmp_path):
    sharp = _image(1)
    _write(tmp_path / "blur/seq1/a.jpg", sharp)
    _write(tmp_path / "sharp/seq1/a.png", sharp)
    _write(tmp_path / "sharp/seq2/a.png", sharp)
    pairs = paired_folder(tmp_path)
    assert pairs.names == ["seq1/a"]


def test_paired_folder_with_no_common_names_is_a_user_error(tmp_path):
    _write(tmp_path / "blur/a.png", _image(1))
    _write(tmp_path / "sharp/b.png", _image(2))
    with pytest.raises(UserError, match="no blurry image has a sharp partner"):
        paired_folder(tmp_path)


def test_paired_folder_with_empty_halves_says_it_holds_no_images(tmp_path):
    (tmp_path / "blur").mkdir()
    (tmp_path / "sharp").mkdir()
    with pytest.raises(UserError, match=r"holds no images \(looked for .png, .jpg"):
        paired_folder(tmp_path)


def test_validate_drops_unreadable_and_mismatched_pairs_with_one_summary_line(tmp_path, caplog):
    for name in ("good1", "good2", "truncated", "empty", "text", "small"):
        _pair(tmp_path, f"blur/{name}.png", f"sharp/{name}.png", len(name))
    _truncate(tmp_path / "blur/truncated.png")
    (tmp_path / "sharp/empty.png").write_bytes(b"")
    (tmp_path / "blur/text.png").write_text("this is not a picture\n")
    _write(tmp_path / "sharp/small.png", _image(3, 12, 16))
    pairs = paired_folder(tmp_path)
    assert len(pairs) == 6
    assert pairs.load(pairs.names.index("small")) is None  # load never raises, it reports
    with caplog.at_level(logging.WARNING):
        pairs.validate()
    assert pairs.names == ["good1", "good2"]
    assert sorted(pairs.skipped) == ["empty", "small", "text", "truncated"]
    lines = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(lines) == 1 and "skipped 4 unreadable/mismatched pairs: " in lines[0]
    assert all(pairs.load(i) is not None for i in range(len(pairs)))


def test_gray_rgba_and_16bit_pairs_load_as_bgr8(tmp_path):
    base = _image(5)
    _write(tmp_path / "blur/gray.png", cv2.cvtColor(base, cv2.COLOR_BGR2GRAY))
    _write(tmp_path / "sharp/gray.png", base)
    _write(tmp_path / "blur/rgba.png", cv2.cvtColor(base, cv2.COLOR_BGR2BGRA))
    _write(tmp_path / "sharp/rgba.png", base)
    _write(tmp_path / "blur/deep.png", base.astype(np.uint16) * 257)
    _write(tmp_path / "sharp/deep.png", base)
    pairs = paired_folder(tmp_path).validate()
    assert len(pairs) == 3 and not pairs.skipped
    for i, name in enumerate(pairs.names):
        blur, sharp = pairs.load(i)
        assert blur.dtype == np.uint8 and blur.shape == (24, 32, 3), name
    deep = pairs.load(pairs.names.index("deep"))[0]
    assert np.array_equal(deep, base)


# --------------------------------------------------------------------------- suffix pairs and real data


def test_suffix_pairs_in_one_folder(tmp_path):
    _pair(tmp_path, "x_blur.jpeg", "x_gt.jpeg", 1)
    _pair(tmp_path, "y_blurry.png", "y_sharp.png", 2)
    _write(tmp_path / "z_blur.png", _image(3))  # no partner
    _write(tmp_path / "notes_other.png", _image(4))  # no tag: ignored
    pairs = suffix_pairs(tmp_path)
    assert pairs.names == ["x", "y"]
    assert pairs.pairs[0].blur_path.name == "x_blur.jpeg" and pairs.pairs[0].sharp_path.name == "x_gt.jpeg"
    assert detect_pair_layout(tmp_path) == "suffix"
    assert open_pairs(str(tmp_path)).names == ["x", "y"]
    assert paired_folder(tmp_path).names == ["x", "y"]  # folder: falls back to the suffix rule


def test_real_rsblur_crops_open_as_suffix_pairs_with_the_published_psnr(shared_data):
    pairs = open_pairs(str(shared_data / "blurry_real" / "rsblur_pairs_via_blur2blur")).validate()
    assert pairs.names == ["rsblur_crop1", "rsblur_crop2", "rsblur_crop3"] and not pairs.skipped
    psnrs = []
    for i in range(len(pairs)):
        blur, gt = pairs.load(i)
        # The MANIFEST's figures are PSNR on luma (8-bit gray), peak 255.
        a = cv2.cvtColor(blur, cv2.COLOR_BGR2GRAY).astype(np.float64)
        b = cv2.cvtColor(gt, cv2.COLOR_BGR2GRAY).astype(np.float64)
        psnrs.append(round(10 * np.log10(255.0**2 / np.mean((a - b) ** 2)), 1))
    assert psnrs == [23.9, 28.1, 22.6]


# --------------------------------------------------------------------------- GoPro, REDS, RSBlur


def _gopro_tree(root: Path) -> None:
    for split, seqs in (("train", ("GOPR0372_07_00", "GOPR0374_11_00")), ("test", ("GOPR0384_11_00",))):
        for s, seq in enumerate(seqs):
            for f in range(2):
                frame = f"{f + 1:06d}.png"
                base = root / "GOPRO_Large" / split / seq
                _pair(base, f"blur/{frame}", f"sharp/{frame}", 10 * s + f)
                _write(base / "blur_gamma" / frame, _image(99))


def test_gopro_reads_sequences_with_blur_not_blur_gamma_by_default(tmp_path):
    _gopro_tree(tmp_path)
    train = gopro(tmp_path)
    assert train.names == ["GOPR0372_07_00/000001", "GOPR0372_07_00/000002",
                           "GOPR0374_11_00/000001", "GOPR0374_11_00/000002"]
    assert all(p.blur_path.parent.name == "blur" for p in train.pairs)
    gamma = gopro(tmp_path / "GOPRO_Large", "test", gamma=True)
    assert gamma.names == ["GOPR0384_11_00/000001", "GOPR0384_11_00/000002"]
    assert all(p.blur_path.parent.name == "blur_gamma" for p in gamma.pairs)
    assert len(gopro(tmp_path / "GOPRO_Large" / "test")) == 2  # pointing at the split folder works too


def test_gopro_flattened_form_and_spec_options(tmp_path):
    for split in ("train", "test"):
        for i in range(2):
            _pair(tmp_path / split, f"blur/GOPR0001_{i}.png", f"sharp/GOPR0001_{i}.png", i)
    assert gopro(tmp_path, "test").names == ["GOPR0001_0", "GOPR0001_1"]
    assert detect_pair_layout(tmp_path) == "gopro"
    assert len(open_pairs(f"gopro:{tmp_path}?split=test")) == 2
    with pytest.raises(UserError, match="has no blur_gamma/ folder"):
        open_pairs(f"gopro:{tmp_path}?gamma=1")
    with pytest.raises(UserError, match="no nope/ folder.*choose one with \\?split=NAME"):
        open_pairs(f"gopro:{tmp_path}?split=nope")


def test_reds_pairs_by_sequence_and_frame_including_the_zip_nesting(tmp_path):
    for seq in ("000", "001"):
        for f in ("00000000", "00000001"):
            _pair(tmp_path / "train", f"train_blur/{seq}/{f}.png", f"train_sharp/{seq}/{f}.png", int(seq) + int(f))
    pairs = reds(tmp_path)
    assert pairs.names == ["000/00000000", "000/00000001", "001/00000000", "001/00000001"]
    assert detect_pair_layout(tmp_path) == "reds"
    assert open_pairs(str(tmp_path)).names == pairs.names
    with pytest.raises(UserError, match="no val_blur/ and val_sharp/ folder"):
        reds(tmp_path, "val")


def test_reds_detection_picks_the_only_split_present(tmp_path):
    _pair(tmp_path, "val_blur/000/00000000.png", "val_sharp/000/00000000.png", 1)
    assert open_pairs(f"reds:{tmp_path}").names == ["000/00000000"]


def test_rsblur_frames_and_a_lenient_split_list(tmp_path):
    root = tmp_path / "RSBlur"
    for scene, frame in (("0001", "000022"), ("0001", "000023"), ("0019", "003082")):
        _pair(root / scene / frame, "real_blur/real_blur.png", "gt/gt_sharp.png", int(frame))
    _write(root / "0002/000001/real_blur/real_blur.png", _image(1))  # no gt: counted, left out
    everything = rsblur(root)
    assert everything.names == ["0001/000022", "0001/000023", "0019/003082"]
    split = tmp_path / "RSBlur_real_test.txt"
    split.write_text(
        "RSBlur/0019/003082/gt/gt_sharp.png RSBlur/0019/003082/real_blur/real_blur.png\n"
        "# a comment\n\n"
        "  C:\\data\\RSBlur\\0001\\000022\\real_blur\\real_blur.png\n"
        "RSBlur/9999/000001/gt/gt_sharp.png\n"
    )
    listed = rsblur(tmp_path, split)  # the parent of RSBlur/ works as root
    assert listed.names == ["0001/000022", "0019/003082"]
    assert open_pairs(f"rsblur:{root}?split_file={split}").names == listed.names
    assert detect_pair_layout(root) == "rsblur"
    nothing = tmp_path / "none.txt"
    nothing.write_text("elsewhere/a.png\n")
    with pytest.raises(UserError, match="none of its entries"):
        rsblur(root, nothing)


# --------------------------------------------------------------------------- unpaired images and videos


def test_image_set_from_folder_converts_and_skips_bad_files_with_one_line(tmp_path, caplog):
    base = _image(7)
    _write(tmp_path / "a/color.png", base)
    _write(tmp_path / "a/gray.png", cv2.cvtColor(base, cv2.COLOR_BGR2GRAY))
    _write(tmp_path / "rgba.png", cv2.cvtColor(base, cv2.COLOR_BGR2BGRA))
    _write(tmp_path / "deep.tif", base.astype(np.uint16) * 257)
    _write(tmp_path / "cut.png", base)
    _truncate(tmp_path / "cut.png")
    (tmp_path / "zero.jpg").write_bytes(b"")
    (tmp_path / "fake.png").write_text("not an image")
    (tmp_path / "readme.txt").write_text("ignored: not an image suffix")
    _write(tmp_path / ".hidden.png", base)
    images = ImageSet.from_folder(tmp_path)
    assert images.names == ["a/color.png", "a/gray.png", "cut.png", "deep.tif", "fake.png", "rgba.png", "zero.jpg"]
    with caplog.at_level(logging.WARNING):
        images.validate()
    assert images.names == ["a/color.png", "a/gray.png", "deep.tif", "rgba.png"]
    assert sorted(images.skipped) == ["cut.png", "fake.png", "zero.jpg"]
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "skipped 3 unreadable" in lines[0]
    for i in range(len(images)):
        image = images.load(i)
        assert image.dtype == np.uint8 and image.shape == (24, 32, 3)


def test_image_set_sorts_frame_numbers_naturally(tmp_path):
    for n in (10, 2, 1):
        _write(tmp_path / f"frame{n}.png", _image(n))
    assert ImageSet.from_folder(tmp_path).names == ["frame1.png", "frame2.png", "frame10.png"]


def test_video_every_kth_frame_named_by_stem_and_index_reads_the_right_frames(tmp_path):
    video = _video(tmp_path / "clip.mp4", frames=12)
    images = ImageSet.from_video(video, frame_step=3)
    assert images.names == ["clip/000000", "clip/000003", "clip/000006", "clip/000009"]
    for i in [2, 0, 3, 1]:  # out of order: seeks must land on the right frame
        frame = images.load(i)
        assert frame.shape == (48, 64, 3)
        assert abs(float(frame.mean()) - 10 * 3 * i) < 4
    clone = pickle.loads(pickle.dumps(images))  # DataLoader workers get their own captures
    assert abs(float(clone.load(3).mean()) - 90) < 4
    assert len(images.validate()) == 4 and not images.skipped


def test_folder_mixing_images_and_videos_skips_a_broken_video(tmp_path, caplog):
    _write(tmp_path / "still.png", _image(1))
    _video(tmp_path / "clips/walk.mp4", frames=4)
    broken = _video(tmp_path / "broken.mp4", frames=4)
    _truncate(broken)  # mp4v writes its index last: half a file does not open
    with caplog.at_level(logging.WARNING):
        images = open_images(f"{tmp_path}?every=2")
    assert images.names == ["clips/walk/000000", "clips/walk/000002", "still.png"]
    assert images.skipped == ["broken.mp4"]
    assert sum("skipped 1 unreadable" in r.getMessage() for r in caplog.records) == 1
    assert all(images.load(i) is not None for i in range(len(images)))


def test_open_images_video_file_single_image_and_errors(tmp_path):
    video = _video(tmp_path / "v.mp4", frames=5)
    assert len(open_images(str(video))) == 5
    assert len(open_images(f"video:{video}?every=2")) == 3
    one = _write(tmp_path / "one.png", _image(1))
    assert open_images(str(one)).names == ["one.png"]
    with pytest.raises(UserError, match=r"^--images .*missing: no such file or folder"):
        open_images(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=r"holds no images \(looked for .png"):
        open_images(str(tmp_path / "empty"))
    with pytest.raises(UserError, match="unknown option size"):
        open_images(f"{video}?size=3")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"")
    with pytest.raises(UserError, match="OpenCV cannot decode it"):
        open_images(str(bad))


# --------------------------------------------------------------------------- Blur2Blur layout


def test_blur2blur_layout_parts(tmp_path):
    root = tmp_path / "mycam"
    _write(root / "trainA/a1.png", _image(1))
    _video(root / "trainA/shaky.mp4", frames=2)
    _write(root / "trainB/b1.png", _image(2))
    _pair(root, "trainC/k1.png", "trainD/k1.png", 3)
    _pair(root, "trainC/k2.png", "trainD/k2.png", 4)
    (root / "testA").mkdir()
    layout = blur2blur_layout(tmp_path)  # the parent holding one dataset works too
    assert layout.root == root
    assert layout.unknown_blurry.names == ["a1.png", "shaky/000000", "shaky/000001"]
    assert layout.unknown_sharp.names == ["b1.png"]
    assert isinstance(layout.known_pairs, PairedSet) and layout.known_pairs.names == ["k1", "k2"]
    assert layout.test is None  # empty testA
    assert open_pairs(f"b2b:{root}").names == ["k1", "k2"]
    assert detect_pair_layout(root) == "b2b"


def test_blur2blur_layout_needs_train_a(tmp_path):
    (tmp_path / "trainA").mkdir()
    _pair(tmp_path, "trainC/k.png", "trainD/k.png", 1)
    with pytest.raises(UserError, match="trainA: missing or holds no images"):
        blur2blur_layout(tmp_path)
    _write(tmp_path / "trainA/a.png", _image(1))
    (tmp_path / "trainC/k.png").unlink()
    (tmp_path / "trainD/k.png").unlink()
    with pytest.raises(UserError, match="holds no images"):
        open_pairs(f"b2b:{tmp_path}")


# --------------------------------------------------------------------------- spec strings


def test_open_pairs_errors_name_the_option_and_the_fix(tmp_path):
    with pytest.raises(UserError, match=r"^--pairs .*nowhere: no such folder$"):
        open_pairs(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=r"^--pairs .*empty: holds no images \(looked for .png, .jpg"):
        open_pairs(str(tmp_path / "empty"))
    _write(tmp_path / "loose/a.png", _image(1))
    with pytest.raises(UserError, match="no pair layout found"):
        open_pairs(str(tmp_path / "loose"))
    with pytest.raises(UserError, match="unknown source kind 'gropo'"):
        open_pairs(f"gropo:{tmp_path}")
    with pytest.raises(UserError, match="unknown option split for folder"):
        open_pairs(f"folder:{tmp_path}?split=test")
    with pytest.raises(UserError, match=r"^--blurry-pairs "):
        open_pairs(str(tmp_path / "nowhere"), option="--blurry-pairs")


def test_open_pairs_validates_by_default_and_takes_an_explicit_folder_kind(tmp_path):
    _pair(tmp_path, "blur/a.png", "sharp/a.png", 1)
    _pair(tmp_path, "blur/b.png", "sharp/b.png", 2)
    (tmp_path / "blur/b.png").write_bytes(b"")
    assert len(open_pairs(f"folder:{tmp_path}", validate=False)) == 2
    checked = open_pairs(str(tmp_path))
    assert checked.names == ["a"] and checked.skipped == ["b"]
    (tmp_path / "sharp/a.png").write_text("not a picture")
    with pytest.raises(UserError, match="none of its 2 pairs can be read"):
        open_pairs(str(tmp_path))


def test_parse_spec_keeps_windows_drives_and_existing_paths(tmp_path):
    assert parse_spec("C:\\data\\gopro", PAIR_KINDS) == SourceSpec(None, "C:\\data\\gopro", {})
    assert parse_spec("gopro:/d/GOPRO_Large?split=test&gamma=1", PAIR_KINDS) == SourceSpec(
        "gopro", "/d/GOPRO_Large", {"split": "test", "gamma": "1"}
    )
    odd = tmp_path / "what?yes=1"
    odd.mkdir()
    assert parse_spec(str(odd), PAIR_KINDS).path == str(odd)
