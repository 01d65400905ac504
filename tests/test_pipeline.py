import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from blur2blur.apps import load_app
from blur2blur.runtime.bundle import open_bundle
from blur2blur.runtime.engines import open_engine
from blur2blur.runtime.pipeline import run
from blur2blur.runtime.sinks import open_output
from blur2blur.runtime.sources import open_source
from helpers import read_video, write_invert_bundle, write_video

B2B_RUN = str(Path(sys.executable).parent / "b2b-run")  # the installed console script, as a user runs it


def test_pipeline_restores_every_frame_of_a_file_and_reports_timing(tmp_path):
    written = write_video(tmp_path / "in.mp4", frames=6)
    engine = open_engine(open_bundle(write_invert_bundle(tmp_path / "bundle")), "onnxruntime")
    source = open_source(video=str(tmp_path / "in.mp4"))
    originals = list(open_source(video=str(tmp_path / "in.mp4")))
    report = run(source, engine, load_app("none"), [open_output(str(tmp_path / "out"), source.fps)], progress=False)
    assert report["frames"] == 6 and report["dropped"] == 0 and report["skipped_corrupt"] == 0
    assert set(report["stages"]) == {"capture", "infer", "app", "write", "latency"}
    assert all(stage["p95_ms"] >= stage["p50_ms"] >= 0 for stage in report["stages"].values())
    out = sorted((tmp_path / "out").iterdir())
    assert len(out) == len(written)
    import cv2
    for path, original in zip(out, originals):
        np.testing.assert_array_equal(cv2.imread(str(path)), 255 - original)  # PNG output is exact


def test_b2b_run_cli_deblurs_a_video_and_writes_stats(tmp_path):
    write_video(tmp_path / "in.mp4", frames=5)
    write_invert_bundle(tmp_path / "bundle")
    result = subprocess.run(
        [B2B_RUN, "--bundle", str(tmp_path / "bundle"), "--video", str(tmp_path / "in.mp4"),
         "--output", str(tmp_path / "out.mp4"), "--stats", str(tmp_path / "stats.json"), "--headless"],
        capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert len(read_video(tmp_path / "out.mp4")) == 5
    assert json.loads((tmp_path / "stats.json").read_text())["frames"] == 5
    assert "frames/s" in result.stdout


def test_b2b_run_cli_bad_input_is_one_line_and_nonzero(tmp_path):
    write_invert_bundle(tmp_path / "bundle")
    video = str(tmp_path / "in.mp4")
    write_video(tmp_path / "in.mp4", frames=2)
    bundle = ["--bundle", str(tmp_path / "bundle")]
    for args, text in [
        (["--bundle", str(tmp_path / "nobundle"), "--video", video], "no such folder"),
        ([*bundle, "--video", str(tmp_path / "missing.mp4")], "no such file"),
        ([*bundle, "--video", video, "--camera", "0"], "exactly one source"),
        ([*bundle, "--video", video, "--app", "nope"], "unknown app"),
        ([*bundle, "--video", video, "--backend", "tensorrt"], "--backend tensorrt"),
        ([*bundle, "--video", video, "--output", str(tmp_path / "out.txt")], "--output"),
    ]:
        result = subprocess.run([B2B_RUN, *args], capture_output=True, text=True)
        assert result.returncode != 0
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
        if text:
            assert text in lines[0]


def test_b2b_run_failing_mid_run_is_one_line_and_leaves_no_output(tmp_path):
    import cv2

    write_invert_bundle(tmp_path / "bundle", shape=[1, 8, 8, 3])  # an engine that takes only 8 x 8 frames
    (tmp_path / "frames").mkdir()
    for name, size in (("a.png", 8), ("b.png", 8), ("c.png", 12)):
        cv2.imwrite(str(tmp_path / "frames" / name), np.zeros((size, size, 3), np.uint8))
    result = subprocess.run([B2B_RUN, "--bundle", str(tmp_path / "bundle"), "--images", str(tmp_path / "frames"),
                             "--output", str(tmp_path / "out.mp4"), "--headless"], capture_output=True, text=True)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and errors[0].startswith("error:") and "12" in errors[0], result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle", "frames"]


def test_b2b_run_checks_the_stats_path_before_the_first_frame(tmp_path):
    write_video(tmp_path / "in.mp4", frames=2)
    write_invert_bundle(tmp_path / "bundle")
    (tmp_path / "file").write_text("x")
    result = subprocess.run([B2B_RUN, "--bundle", str(tmp_path / "bundle"), "--video", str(tmp_path / "in.mp4"),
                             "--output", str(tmp_path / "out.mp4"), "--stats", str(tmp_path / "file" / "s.json"),
                             "--headless"], capture_output=True, text=True)
    assert result.returncode == 2 and "--stats" in result.stderr
    assert not (tmp_path / "out.mp4").exists()
