"""The hand-pose app with real MediaPipe on real hand photos and the hand clip in ../shared/data."""

import json
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import B2B_RUN, read_video, write_frame_bundle, write_video

from blur2blur.apps import load_app
from blur2blur.apps.hand_model import resolve_hand_model
from blur2blur.errors import UserError

HAND_CLIP = "video/mediapipe_samples_hand_landmarker_test_video.mp4"


@pytest.fixture(scope="module")
def hand_model() -> Path:
    """The model `make setup` provisions (b2b-run fetch-hand-model)."""
    return resolve_hand_model()


def test_handpose_finds_the_hand_of_a_photo_and_draws_it(shared_data, hand_model):
    photo = cv2.imread(str(shared_data / "hands/mediapipe_samples_pixabay/hand_thumb_up.jpg"))
    app = load_app("handpose")
    try:
        shown, record = app.process(photo, photo, 0)
    finally:
        app.close()
    assert len(record["hands"]) == 1
    hand = record["hands"][0]
    assert hand["handedness"] in ("Left", "Right") and hand["score"] > 0.5 and len(hand["landmarks"]) == 21
    xs, ys = [p[0] for p in hand["landmarks"]], [p[1] for p in hand["landmarks"]]
    assert 0 <= min(xs) < max(xs) <= photo.shape[1] and 0 <= min(ys) < max(ys) <= photo.shape[0]
    assert shown.shape == photo.shape and not np.array_equal(shown, photo)  # landmarks drawn on a copy
    assert np.array_equal(photo, cv2.imread(str(shared_data / "hands/mediapipe_samples_pixabay/hand_thumb_up.jpg")))


def test_b2b_run_handpose_on_the_hand_clip_finds_hands_in_most_frames(tmp_path, shared_data, hand_model):
    clip = shared_data / HAND_CLIP
    write_frame_bundle(tmp_path / "bundle", invert=False)  # frames pass through: the app sees the clip itself
    result = subprocess.run(
        [B2B_RUN, "--bundle", str(tmp_path / "bundle"), "--video", str(clip), "--app", "handpose",
         "--records", str(tmp_path / "hands.jsonl"), "--output", str(tmp_path / "out.mp4"),
         "--stats", str(tmp_path / "stats.json"), "--side-by-side", "--headless"],
        capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in (tmp_path / "hands.jsonl").read_text().splitlines()]
    assert [r["frame"] for r in records] == list(range(202))
    stamps = [r["timestamp_ms"] for r in records]
    assert stamps == sorted(set(stamps)) and stamps[1] == 40  # 25 frames/s
    with_hands = sum(bool(r["hands"]) for r in records)
    assert with_hands >= 0.8 * len(records), with_hands
    frames = read_video(tmp_path / "out.mp4")
    assert len(frames) == 202 and frames[0].shape == (360, 1280, 3)  # input | restored with landmarks
    assert json.loads((tmp_path / "stats.json").read_text())["stages"]["app"]["p50_ms"] > 0
    assert "INFO: [" not in result.stderr  # MediaPipe's native start-up lines stay out of the user's way


def test_bad_hand_models_are_one_line_errors(tmp_path, monkeypatch):
    monkeypatch.delenv("B2B_HAND_MODEL", raising=False)
    with pytest.raises(UserError, match="--hand-model .*missing.task: no such file"):
        load_app("handpose", hand_model=str(tmp_path / "missing.task"))
    monkeypatch.setenv("B2B_HAND_MODEL", str(tmp_path / "gone.task"))
    with pytest.raises(UserError, match=r"\$B2B_HAND_MODEL .*gone.task: no such file"):
        load_app("handpose")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("B2B_HAND_MODEL")
    with pytest.raises(UserError, match="b2b-run fetch-hand-model"):
        load_app("handpose")
    (tmp_path / "junk.task").write_bytes(b"junk")
    with pytest.raises(UserError, match="junk.task: MediaPipe cannot load it"):
        load_app("handpose", hand_model=str(tmp_path / "junk.task"))


def test_b2b_run_hand_model_errors_come_before_any_frame(tmp_path):
    write_video(tmp_path / "in.mp4", frames=2)
    write_frame_bundle(tmp_path / "bundle")
    for args, text in [(["--app", "handpose", "--hand-model", str(tmp_path / "none.task")], "no such file"),
                       (["--app", "none", "--hand-model", str(tmp_path / "none.task")],
                        "--hand-model: the none app takes no such option")]:
        result = subprocess.run([B2B_RUN, "--bundle", str(tmp_path / "bundle"), "--video", str(tmp_path / "in.mp4"),
                                 "--output", str(tmp_path / "out.mp4"), "--headless", *args],
                                capture_output=True, text=True)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and text in lines[0], result.stderr
        assert not (tmp_path / "out.mp4").exists()


def test_frames_reach_mediapipe_in_aligned_rgb_buffers():
    from blur2blur.apps.handpose import ALIGNMENT, aligned_rgb

    frame = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    for _ in range(8):  # numpy's own buffers land on varying boundaries
        rgb = aligned_rgb(frame)
        assert rgb.ctypes.data % ALIGNMENT == 0 and np.array_equal(rgb, frame[..., ::-1])
