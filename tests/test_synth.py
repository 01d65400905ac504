"""Pair and video synthesis: matching names, reproducibility, resuming, refusals; dead-leaves content."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from helpers import read_video

from blur2blur.data.blur.deadleaves import dead_leaves
from blur2blur.data.blur.write import synthesize, synthesize_video
from blur2blur.errors import UserError
from blur2blur.images import read_bgr


@pytest.fixture(scope="module")
def sources() -> list[np.ndarray]:
    # one source smaller than a crop with the shake margin (32 + 2 * 33), so it must be upscaled
    return [dead_leaves(112, np.random.default_rng(1)), dead_leaves(48, np.random.default_rng(2))]


def _files(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_writes_matching_blur_and_sharp_names_and_a_summary(tmp_path, sources):
    summary = synthesize("shake", sources, tmp_path, count=3, size=32, seed=4)
    names = sorted(p.name for p in (tmp_path / "blur").iterdir())
    assert names == ["00000.png", "00001.png", "00002.png"]
    assert sorted(p.name for p in (tmp_path / "sharp").iterdir()) == names
    for name in names:
        blurry, sharp = read_bgr(tmp_path / "blur" / name), read_bgr(tmp_path / "sharp" / name)
        assert blurry.shape == sharp.shape == (32, 32, 3)
    on_disk = json.loads((tmp_path / "synth.json").read_text())
    assert on_disk == summary
    expected = dict(count=3, domain="shake", seed=4, size=32)
    assert {k: summary[k] for k in expected} == expected
    assert not list(tmp_path.rglob(".*tmp"))


def test_same_seed_gives_identical_bytes_and_each_pair_stands_alone(tmp_path, sources):
    synthesize("known", sources, tmp_path / "a", count=4, size=24, seed=9)
    synthesize("known", sources, tmp_path / "b", count=4, size=24, seed=9)
    synthesize("known", sources, tmp_path / "c", count=2, size=24, seed=9)
    synthesize("known", sources, tmp_path / "d", count=4, size=24, seed=10)
    a = _files(tmp_path / "a" / "blur")
    assert a == _files(tmp_path / "b" / "blur")
    assert _files(tmp_path / "c" / "blur") == {k: a[k] for k in ("00000.png", "00001.png")}
    d = _files(tmp_path / "d" / "blur")
    assert all(a[k] != d[k] for k in a)


def test_rerun_of_the_same_synthesis_resumes_and_trims(tmp_path, sources):
    synthesize("defocus", sources, tmp_path, count=3, size=24, seed=1)
    first = _files(tmp_path / "blur")
    (tmp_path / "blur" / "00001.png").unlink()  # as if interrupted
    synthesize("defocus", sources, tmp_path, count=3, size=24, seed=1)
    assert _files(tmp_path / "blur") == first
    synthesize("defocus", sources, tmp_path, count=2, size=24, seed=1)
    assert sorted(_files(tmp_path / "sharp")) == ["00000.png", "00001.png"]


def test_refuses_to_mix_with_another_synthesis_unless_overwrite(tmp_path, sources):
    synthesize("known", sources, tmp_path, count=3, size=24, seed=0)
    with pytest.raises(UserError, match="overwrite"):
        synthesize("phone", sources, tmp_path, count=2, size=24, seed=0)
    with pytest.raises(UserError, match="overwrite"):
        synthesize("known", sources, tmp_path, count=2, size=24, seed=1)
    summary = synthesize("phone", sources, tmp_path, count=2, size=24, seed=0, overwrite=True)
    assert summary["domain"] == "phone"
    assert sorted(_files(tmp_path / "blur")) == ["00000.png", "00001.png"]


def test_refuses_unlabelled_pairs_already_in_the_folder(tmp_path, sources):
    (tmp_path / "blur").mkdir()
    cv2.imwrite(str(tmp_path / "blur" / "00000.png"), sources[0])
    with pytest.raises(UserError, match="synth.json"):
        synthesize("known", sources, tmp_path, count=1, size=24)


@pytest.mark.parametrize("overwrite", [False, True])
def test_refuses_a_folder_of_the_users_own_pairs_and_touches_nothing(tmp_path, sources, overwrite):
    for sub in ("blur", "sharp"):  # the user's own names: none looks like ours
        (tmp_path / sub).mkdir()
        cv2.imwrite(str(tmp_path / sub / "IMG_0001.jpg"), sources[1])
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    with pytest.raises(UserError) as caught:
        synthesize("known", sources, tmp_path, count=1, size=24, overwrite=overwrite)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"--out {tmp_path}: ")
    assert "choose another --out" in message
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("kwargs, message", [
    (dict(count=0), "count"),
    (dict(size=8), "size"),
    (dict(domain="gopro"), "known"),
    (dict(seed=-1), "seed"),
])
def test_bad_arguments_are_user_errors(tmp_path, sources, kwargs, message):
    args = dict(domain="known", sharp_images=sources, out_dir=tmp_path, count=1, size=24) | kwargs
    with pytest.raises(UserError, match=message):
        synthesize(**args)


def test_no_sharp_images_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no sharp images"):
        synthesize("known", [], tmp_path, count=1, size=24)


def test_video_has_the_requested_frames_and_a_matching_sharp_video(tmp_path, sources):
    out, sharp_out = tmp_path / "blurry.mp4", tmp_path / "sharp.mp4"
    summary = synthesize_video("known", sources, out, frames=5, width=64, height=48, fps=10, seed=2,
                               sharp_out=sharp_out)
    assert summary["frames"] == 5
    for path in (out, sharp_out):
        frames = read_video(path)
        assert len(frames) == 5 and frames[0].shape == (48, 64, 3), path
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blurry.mp4", "sharp.mp4"]  # no temp files left


def test_video_rejects_bad_sizes(tmp_path, sources):
    with pytest.raises(UserError):
        synthesize_video("known", sources, tmp_path / "v.mp4", frames=0)
    with pytest.raises(UserError):
        synthesize_video("known", sources, tmp_path / "v.mp4", width=8)


def test_dead_leaves_is_reproducible_sharp_content(tmp_path):
    a = dead_leaves(64, np.random.default_rng(3))
    assert a.shape == (64, 64, 3) and a.dtype == np.uint8
    assert np.array_equal(a, dead_leaves(64, np.random.default_rng(3)))
    assert not np.array_equal(a, dead_leaves(64, np.random.default_rng(4)))
    clean = dead_leaves(128, np.random.default_rng(5), texture=0.0)
    # many distinct leaves of many sizes: lots of colours, mostly flat with sharp edges
    assert len(np.unique(clean.reshape(-1, 3), axis=0)) > 100
    gray = cv2.cvtColor(clean, cv2.COLOR_BGR2GRAY).astype(np.float64)
    steps = np.abs(np.diff(gray, axis=1))
    assert np.mean(steps == 0) > 0.5 and steps.max() > 100
