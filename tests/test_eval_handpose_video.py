"""b2b-eval handpose --video: hands per frame and landmark jitter on real footage with real MediaPipe."""

import json
import subprocess

import numpy as np
import pytest
from helpers import B2B_EVAL, assert_one_line_error, write_frame_bundle

from blur2blur.evaluate.handpose_video import landmark_jitter

CLIP = "video/mediapipe_samples_hand_landmarker_test_video.mp4"


def b2b_eval(*args) -> subprocess.CompletedProcess:
    return subprocess.run([B2B_EVAL, "handpose", *map(str, args)], capture_output=True, text=True, check=False)


def _hand(offset_x: float, wobble: float = 0.0) -> dict:
    points = np.stack([np.linspace(0, 100, 21), np.linspace(0, 60, 21)], 1)
    points[:, 1] += wobble * np.sin(np.arange(21))
    return {"landmarks": [[x + offset_x, y, 0.0] for x, y in points]}


def test_steady_motion_has_no_jitter_and_shaking_landmarks_do():
    steady = [[_hand(5.0 * t)] for t in range(6)]  # the hand moves 5 px a frame, all landmarks together
    shaking = [[_hand(5.0 * t, wobble=4.0 * (-1) ** t)] for t in range(6)]  # landmarks shake frame to frame
    assert landmark_jitter(steady) == pytest.approx([0.0] * 4, abs=1e-9)
    values = landmark_jitter(shaking)
    assert len(values) == 4 and min(values) > 0.05
    # a frame without the hand breaks the track: no value needs it
    assert len(landmark_jitter([[_hand(0)], [], [_hand(10)], [_hand(15)], [_hand(20)]])) == 1
    # another hand far away is not followed
    assert landmark_jitter([[_hand(0)], [_hand(400)], [_hand(800)]]) == []


def test_footage_as_it_is_and_restored(shared_data, tmp_path):
    identity = write_frame_bundle(tmp_path / "identity", invert=False)
    result = b2b_eval("--video", shared_data / CLIP, "--bundle", identity, "--max-frames", 12,
                      "--json", tmp_path / "video.json")
    assert result.returncode == 0, result.stderr
    figures = json.loads((tmp_path / "video.json").read_text())
    blurry, bundle = figures["summary"]["blurry"], figures["summary"]["bundle"]
    assert figures["frames"] == blurry["frames"] == 12
    assert blurry["with_hand"] >= 10 and blurry["jitter"] is not None and blurry["jitter"] < 0.05
    assert bundle == blurry  # restores nothing: the same hands, tracked the same way
    assert "| blurry input | " in result.stdout and "landmark jitter" in result.stdout

    negative = write_frame_bundle(tmp_path / "negative", invert=True)
    lost = b2b_eval("--video", shared_data / CLIP, "--bundle", negative, "--max-frames", 6, "--json",
                    tmp_path / "neg.json")
    assert lost.returncode == 0, lost.stderr
    summary = json.loads((tmp_path / "neg.json").read_text())["summary"]["bundle"]
    assert summary["with_hand"] < 6 and summary["frames"] == 6


def test_video_bad_input_is_one_line(tmp_path):
    identity = write_frame_bundle(tmp_path / "identity", invert=False)
    assert_one_line_error(b2b_eval("--video", tmp_path / "none.mp4", "--bundle", identity), "--video")
    (tmp_path / "text.mp4").write_text("not a video")
    assert_one_line_error(b2b_eval("--video", tmp_path / "text.mp4", "--bundle", identity), "cannot decode")
    assert_one_line_error(b2b_eval("--video", tmp_path / "text.mp4", "--domain", "shake", "--bundle", identity),
                          "--domain")
    assert_one_line_error(b2b_eval("--images", tmp_path, "--bundle", identity), "--domain")
