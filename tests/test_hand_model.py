"""b2b-run fetch-hand-model: the official download (served here from the loopback interface), the fallback that
builds the model from PyPI's mediapipe 0.10.21 wheel, and the checks on both."""

import hashlib
import io
import os
import subprocess
import zipfile
from pathlib import Path

import pytest
from helpers import B2B_RUN, serve_folder

from blur2blur.apps.hand_model import (
    TASK_ENTRIES,
    check_task,
    default_model_path,
    fetch_hand_model,
    resolve_hand_model,
    task_from_wheel,
)
from blur2blur.errors import UserError


def test_the_official_download_is_checked_and_cached(tmp_path, monkeypatch):
    served = tmp_path / "served"
    served.mkdir()
    (served / "hand_landmarker.task").write_bytes(resolve_hand_model().read_bytes())
    with serve_folder(served) as base:
        monkeypatch.setenv("B2B_HAND_MODEL_URL", f"{base}/hand_landmarker.task")
        path, origin = fetch_hand_model(tmp_path / "cache" / "hand_landmarker.task")
        assert origin == f"{base}/hand_landmarker.task"
        assert path.read_bytes() == (served / "hand_landmarker.task").read_bytes()
        assert fetch_hand_model(path)[1] == "already there"
        path.write_bytes(b"a broken model")  # a cut-off copy is fetched again, not kept
        assert fetch_hand_model(path)[1] == origin
        assert path.read_bytes() == (served / "hand_landmarker.task").read_bytes()


def test_the_cache_is_under_home_where_xdg_cache_home_is_empty(monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", "")
    assert default_model_path() == Path.home() / ".cache/blur2blur/mediapipe/hand_landmarker.task"


@pytest.mark.parametrize("answer", ["not a task file", "not a URL"])
def test_where_the_download_fails_the_model_is_built_from_the_mediapipe_wheel(tmp_path, answer):
    # The URL answers with something that is not a task file, or is no URL: the package index's wheel takes over.
    (tmp_path / "served").mkdir()
    (tmp_path / "served" / "hand_landmarker.task").write_text("<html>not here</html>")
    with serve_folder(tmp_path / "served") as base:
        url = f"{base}/hand_landmarker.task" if answer == "not a task file" else "nonsense"
        result = subprocess.run([B2B_RUN, "fetch-hand-model", "--out", str(tmp_path / "m.task")],
                                env={**os.environ, "B2B_HAND_MODEL_URL": url}, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "built from mediapipe==0.10.21" in result.stdout and "sha256 checked" in result.stdout
    built = (tmp_path / "m.task").read_bytes()
    check_task(built, "built")
    with zipfile.ZipFile(io.BytesIO(built)) as task:
        for entry, (_, expected) in TASK_ENTRIES.items():
            assert hashlib.sha256(task.read(entry)).hexdigest() == expected


def test_a_wheel_with_other_networks_is_refused(tmp_path):
    wheel = tmp_path / "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as fake:
        fake.writestr("mediapipe/modules/palm_detection/palm_detection_full.tflite", b"1234TFL3 other weights")
        fake.writestr("mediapipe/modules/hand_landmark/hand_landmark_full.tflite", b"1234TFL3 other weights")
    with pytest.raises(UserError, match="does not match its sha256"):
        task_from_wheel(wheel)
    (tmp_path / "empty.whl").write_bytes(b"")
    with pytest.raises(UserError, match="not the mediapipe==0.10.21 wheel"):
        task_from_wheel(tmp_path / "empty.whl")


def test_task_files_without_both_networks_are_refused():
    with pytest.raises(UserError, match="not a zip"):
        check_task(b"<html>", "x")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as task:
        task.writestr("hand_detector.tflite", b"1234TFL3")
    with pytest.raises(UserError, match="hand_landmarks_detector.tflite"):
        check_task(buffer.getvalue(), "x")
