import json
import os
import signal
import subprocess
import time

import cv2
import numpy as np
import pytest
from helpers import B2B_RUN, read_video, serve_folder, write_frame_bundle, write_video

from blur2blur.apps import load_app
from blur2blur.runtime.bundle import open_bundle
from blur2blur.runtime.engines import open_engine
from blur2blur.runtime.pipeline import run
from blur2blur.runtime.sinks import open_output
from blur2blur.runtime.sources import CaptureSource, open_source


def test_a_run_without_sinks_or_a_stats_callback_restores_and_reports(tmp_path):
    write_video(tmp_path / "in.mp4", frames=3)
    engine = open_engine(open_bundle(write_frame_bundle(tmp_path / "bundle")), "onnxruntime")
    report = run(open_source(str(tmp_path / "in.mp4")), engine, load_app("none"), [], progress=False,
                 stats_every=1e-9)  # due at every frame, with no on_stats to hand the figures to
    assert report["frames"] == 3


def test_pipeline_restores_every_frame_of_a_file_and_reports_timing(tmp_path):
    written = write_video(tmp_path / "in.mp4", frames=6)
    engine = open_engine(open_bundle(write_frame_bundle(tmp_path / "bundle")), "onnxruntime")
    source = open_source(str(tmp_path / "in.mp4"))
    originals = list(open_source(str(tmp_path / "in.mp4")))
    report = run(source, engine, load_app("none"), [open_output(str(tmp_path / "out"), source.fps)], progress=False)
    assert report["frames"] == 6 and report["dropped"] == 0 and report["skipped_corrupt"] == 0
    assert set(report["stages"]) == {"capture", "infer", "app", "write", "latency"}
    assert all(stage["p95_ms"] >= stage["p50_ms"] >= 0 for stage in report["stages"].values())
    out = sorted((tmp_path / "out").iterdir())
    assert len(out) == len(written)
    for path, original in zip(out, originals):
        np.testing.assert_array_equal(cv2.imread(str(path)), 255 - original)  # PNG output is exact


def test_b2b_run_cli_deblurs_a_video_and_writes_stats(tmp_path):
    write_video(tmp_path / "in.mp4", frames=5)
    write_frame_bundle(tmp_path / "bundle")
    result = subprocess.run(
        [B2B_RUN, "--bundle", str(tmp_path / "bundle"), "--video", str(tmp_path / "in.mp4"),
         "--output", str(tmp_path / "out.mp4"), "--stats", str(tmp_path / "stats.json"), "--headless"],
        capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert len(read_video(tmp_path / "out.mp4")) == 5
    assert json.loads((tmp_path / "stats.json").read_text())["frames"] == 5
    assert "frames/s" in result.stdout


def test_b2b_run_cli_bad_input_is_one_line_and_nonzero(tmp_path):
    write_frame_bundle(tmp_path / "bundle")
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
        ([*bundle, "--camera", "/dev/video-none"], "--camera /dev/video-none: no such device"),
        ([*bundle, "--camera", "7"], "--camera 7: cannot open the camera"),
        ([*bundle, "--url", "rtsp://127.0.0.1:9/none"], "--url rtsp://127.0.0.1:9/none: cannot open"),
        ([*bundle, "--camera", "7", "--loop"], "--camera 7: is live; loop applies to a video file"),
    ]:
        result = subprocess.run([B2B_RUN, *args], capture_output=True, text=True)
        assert result.returncode != 0
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
        if text:
            assert text in lines[0]


@pytest.mark.parametrize("output", ["out.mp4", "out"])
def test_b2b_run_failing_mid_run_is_one_line_and_leaves_no_output(tmp_path, output):
    write_frame_bundle(tmp_path / "bundle", shape=[1, 8, 8, 3])  # an engine that takes only 8 x 8 frames
    (tmp_path / "frames").mkdir()
    for name, size in (("a.png", 8), ("b.png", 8), ("c.png", 12)):
        cv2.imwrite(str(tmp_path / "frames" / name), np.zeros((size, size, 3), np.uint8))
    result = subprocess.run([B2B_RUN, "--bundle", str(tmp_path / "bundle"), "--images", str(tmp_path / "frames"),
                             "--output", str(tmp_path / output), "--headless"], capture_output=True, text=True)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and errors[0].startswith("error:") and "12" in errors[0], result.stderr
    kept = ["bundle", "frames"] + (["out"] if output == "out" else [])  # a PNG folder stays, emptied
    assert sorted(p.name for p in tmp_path.iterdir()) == kept
    assert output == "out.mp4" or list((tmp_path / output).iterdir()) == []


def test_b2b_run_checks_the_stats_path_before_the_first_frame(tmp_path):
    write_video(tmp_path / "in.mp4", frames=2)
    write_frame_bundle(tmp_path / "bundle")
    (tmp_path / "file").write_text("x")
    result = subprocess.run([B2B_RUN, "--bundle", str(tmp_path / "bundle"), "--video", str(tmp_path / "in.mp4"),
                             "--output", str(tmp_path / "out.mp4"), "--stats", str(tmp_path / "file" / "s.json"),
                             "--headless"], capture_output=True, text=True)
    assert result.returncode == 2 and "--stats" in result.stderr
    assert not (tmp_path / "out.mp4").exists()


class SlowApp:
    """A real app that takes 30 ms a frame: slower than capture and inference."""

    def process(self, original, restored, timestamp_ms):
        time.sleep(0.03)
        return restored, None

    def close(self):
        pass


def test_batches_give_the_same_frames_as_one_at_a_time(tmp_path):
    write_video(tmp_path / "in.mp4", frames=7)
    engine = open_engine(open_bundle(write_frame_bundle(tmp_path / "bundle")), "onnxruntime")
    outputs = {}
    for batch in (1, 3):
        source = open_source(str(tmp_path / "in.mp4"))
        report = run(source, engine, load_app("none"), [open_output(str(tmp_path / f"out{batch}"), source.fps)],
                     progress=False, batch=batch)
        assert report["frames"] == 7 and report["batch"] == batch
        outputs[batch] = [cv2.imread(str(p)) for p in sorted((tmp_path / f"out{batch}").iterdir())]
    assert len(outputs[3]) == 7  # two batches of 3 and a last one of 1
    for one, three in zip(outputs[1], outputs[3]):
        np.testing.assert_array_equal(one, three)


def test_a_live_source_drops_its_oldest_frames_under_a_slow_app_and_a_file_drops_none(tmp_path):
    path = str(tmp_path / "in.mp4")
    write_video(tmp_path / "in.mp4", frames=30)
    decoded = read_video(tmp_path / "in.mp4")
    engine = open_engine(open_bundle(write_frame_bundle(tmp_path / "bundle")), "onnxruntime")
    live = CaptureSource("camera", path, lambda: cv2.VideoCapture(path), live=True)  # a file read as fast as a camera
    report = run(live, engine, SlowApp(), [open_output(str(tmp_path / "live"), live.fps)], progress=False)
    written = sorted((tmp_path / "live").iterdir())
    assert report["dropped"] > 0 and report["frames"] + report["dropped"] == 30
    assert len(written) == report["frames"]
    np.testing.assert_array_equal(cv2.imread(str(written[-1])), 255 - decoded[-1])  # the newest frame is never dropped
    assert report["stages"]["latency"]["p95_ms"] < 500  # a frame waits behind at most a few others

    source = open_source(path)
    report = run(source, engine, SlowApp(), [open_output(str(tmp_path / "file"), source.fps)], progress=False)
    assert report["dropped"] == 0 and report["frames"] == 30
    for png, frame in zip(sorted((tmp_path / "file").iterdir()), decoded):
        np.testing.assert_array_equal(cv2.imread(str(png)), 255 - frame)


def test_frames_outside_the_bundle_shapes_are_padded_or_resized_and_come_out_at_their_size(tmp_path):
    shapes = {"min": [1, 16, 16, 3], "opt": [1, 24, 24, 3], "max": [1, 32, 32, 3]}
    bundle = open_bundle(write_frame_bundle(tmp_path / "bundle", shape=["batch", "height", "width", 3], shapes=shapes))
    (tmp_path / "frames").mkdir()
    rng = np.random.default_rng(0)
    frames = {"a.png": rng.integers(0, 256, (8, 12, 3), dtype=np.uint8),  # smaller: padded
              "b.png": np.full((48, 64, 3), 90, np.uint8),  # larger: resized
              "c.png": rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)}  # inside: untouched
    for name, frame in frames.items():
        cv2.imwrite(str(tmp_path / "frames" / name), frame)
    source = open_source(str(tmp_path / "frames"))
    report = run(source, open_engine(bundle, "onnxruntime"), load_app("none"), [open_output(str(tmp_path / "out"), 25)],
                 progress=False)
    assert report["padded"] == 1 and report["resized"] == 1
    out = [cv2.imread(str(p)) for p in sorted((tmp_path / "out").iterdir())]
    np.testing.assert_array_equal(out[0], 255 - frames["a.png"])
    assert out[1].shape == (48, 64, 3) and np.abs(out[1].astype(int) - 165).max() <= 1
    np.testing.assert_array_equal(out[2], 255 - frames["c.png"])


def test_b2b_run_refuses_a_batch_beyond_the_bundle(tmp_path):
    write_video(tmp_path / "in.mp4", frames=2)
    shapes = {"min": [1, 16, 16, 3], "opt": [2, 48, 64, 3], "max": [2, 64, 64, 3]}
    write_frame_bundle(tmp_path / "bundle", shapes=shapes)
    result = subprocess.run([B2B_RUN, "--bundle", str(tmp_path / "bundle"), "--video", str(tmp_path / "in.mp4"),
                             "--batch", "3", "--headless"], capture_output=True, text=True)
    assert result.returncode == 2 and "--batch 3: the bundle takes at most 2" in result.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_mid_run_stops_cleanly_and_leaves_a_playable_video(tmp_path, sig):
    write_video(tmp_path / "in.mp4", frames=10)
    write_frame_bundle(tmp_path / "bundle")
    process = subprocess.Popen(
        [B2B_RUN, "--bundle", str(tmp_path / "bundle"), "--video", str(tmp_path / "in.mp4"), "--loop",
         "--output", str(tmp_path / "out.mp4"), "--stats", str(tmp_path / "stats.json"), "--headless"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not (tmp_path / ".out.partial.mp4").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)  # the loop keeps it running: only the signal ends it
    process.send_signal(sig)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["interrupted"] and stats["frames"] > 10
    assert len(read_video(tmp_path / "out.mp4")) == stats["frames"]
    assert not (tmp_path / ".out.partial.mp4").exists()


def test_b2b_run_skips_and_counts_corrupt_frames_and_reports_them(tmp_path):
    (tmp_path / "frames").mkdir()
    for i in range(4):
        cv2.imwrite(str(tmp_path / "frames" / f"{i}.png"), np.full((16, 16, 3), 40 * i, np.uint8))
    (tmp_path / "frames" / "2.png").write_bytes((tmp_path / "frames" / "2.png").read_bytes()[:20])  # truncated
    write_frame_bundle(tmp_path / "bundle")
    result = subprocess.run([B2B_RUN, "--bundle", str(tmp_path / "bundle"), "--images", str(tmp_path / "frames"),
                             "--output", str(tmp_path / "out"), "--stats", str(tmp_path / "stats.json"), "--headless"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["frames"] == 3 and stats["skipped_corrupt"] == 1 and "skipped corrupt 1" in result.stdout
    assert len(list((tmp_path / "out").iterdir())) == 3


def test_b2b_run_ends_cleanly_with_its_report_when_a_stream_stops(tmp_path):
    write_video(tmp_path / "in.mp4", frames=6)
    write_frame_bundle(tmp_path / "bundle")
    with serve_folder(tmp_path) as base:
        result = subprocess.run([B2B_RUN, "--bundle", str(tmp_path / "bundle"), "--url", f"{base}/in.mp4",
                                 "--output", str(tmp_path / "out.mp4"), "--stats", str(tmp_path / "stats.json"),
                                 "--headless"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "stopped delivering frames; ending (--reconnect keeps trying)" in result.stderr
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["frames"] + stats["dropped"] == 6 and len(read_video(tmp_path / "out.mp4")) == stats["frames"]


def test_b2b_run_reconnects_a_stream_that_stops(tmp_path):
    write_video(tmp_path / "in.mp4", frames=6)
    write_frame_bundle(tmp_path / "bundle")
    with serve_folder(tmp_path) as base:
        result = subprocess.run([B2B_RUN, "--bundle", str(tmp_path / "bundle"), "--url", f"{base}/in.mp4",
                                 "--reconnect", "--max-frames", "10", "--stats", str(tmp_path / "stats.json"),
                                 "--headless"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["frames"] == 10 and stats["reconnects"] >= 1 and "reconnected" in result.stdout


def test_b2b_run_checks_the_output_before_the_first_frame(tmp_path):
    write_video(tmp_path / "in.mp4", frames=2)
    write_frame_bundle(tmp_path / "bundle")
    (tmp_path / "file").write_text("x")
    for output, text in [(tmp_path / "file" / "out.mp4", "cannot create"), (tmp_path / "out.xyz", "--output")]:
        result = subprocess.run([B2B_RUN, "--bundle", str(tmp_path / "bundle"), "--video", str(tmp_path / "in.mp4"),
                                 "--output", str(output), "--stats", str(tmp_path / "stats.json"), "--headless"],
                                capture_output=True, text=True)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and text in lines[0], result.stderr
        assert not (tmp_path / "stats.json").exists()


class CloseFailsApp:
    """A real app whose close() fails, as a plug-in's might."""

    emits_records = False

    def process(self, original, restored, timestamp_ms):
        return restored, None

    def close(self):
        raise RuntimeError("app could not close")


def test_an_app_that_fails_to_close_still_leaves_every_output_closed(tmp_path):
    write_video(tmp_path / "in.mp4", frames=3)
    engine = open_engine(open_bundle(write_frame_bundle(tmp_path / "bundle")), "onnxruntime")
    source = open_source(str(tmp_path / "in.mp4"))
    with pytest.raises(RuntimeError, match="could not close"):
        run(source, engine, CloseFailsApp(), [open_output(str(tmp_path / "out.mp4"), source.fps)], progress=False)
    assert len(read_video(tmp_path / "out.mp4")) == 3 and not (tmp_path / ".out.partial.mp4").exists()


def test_b2b_run_refuses_records_from_an_app_that_has_none(tmp_path):
    write_video(tmp_path / "in.mp4", frames=2)
    write_frame_bundle(tmp_path / "bundle")
    result = subprocess.run([B2B_RUN, "--bundle", str(tmp_path / "bundle"), "--video", str(tmp_path / "in.mp4"),
                             "--records", str(tmp_path / "r.jsonl"), "--headless"], capture_output=True, text=True)
    assert result.returncode == 2 and "--records: the none app emits no records" in result.stderr


def test_b2b_run_without_a_reachable_display_runs_headless(tmp_path):
    write_video(tmp_path / "in.mp4", frames=3)
    write_frame_bundle(tmp_path / "bundle")
    result = subprocess.run([B2B_RUN, "--bundle", str(tmp_path / "bundle"), "--video", str(tmp_path / "in.mp4"),
                             "--output", str(tmp_path / "out.mp4")], capture_output=True, text=True,
                            env={**os.environ, "DISPLAY": ":97"})
    assert result.returncode == 0, result.stderr
    assert "cannot be reached; running headless" in result.stderr and len(read_video(tmp_path / "out.mp4")) == 3
