
import threading
import time

import cv2
import numpy as np
import pytest
from helpers import serve_folder, write_video

from blur2blur.errors import UserError
from blur2blur.runtime.sources import open_source, source_kind


def test_video_source_yields_every_frame_in_order(tmp_path):
    written = write_video(tmp_path / "in.mp4", frames=7)
    source = open_source(str(tmp_path / "in.mp4"))
    frames = list(source)
    source.close()
    assert len(frames) == 7 and not source.live
    assert frames[0].shape == (48, 64, 3) and frames[0].dtype == np.uint8
    # mp4v is lossy: compare loosely, but order must hold (blue channel steps by 20 per frame)
    assert ([round(float(f[:, :, 2].mean()) / 20) for f in frames]
            == [round(float(w[:, :, 2].mean()) / 20) for w in written])


def test_image_folder_source_skips_and_counts_unreadable_files(tmp_path):
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i:02d}.png"), np.full((8, 8, 3), i * 50, np.uint8))
    (tmp_path / "01b.png").write_bytes(b"not a png")
    source = open_source(str(tmp_path))
    frames = list(source)
    assert [int(f[0, 0, 0]) for f in frames] == [0, 50, 100]
    assert source.skipped == 1


@pytest.mark.parametrize("spec, kwargs, message", [
    ("missing.mp4", {}, "^video missing.mp4: no such file$"),
    ("missing.mp4", {"option": "--video"}, "^--video missing.mp4: no such file$"),
    ("missing_dir", {"kind": "images"}, "^images missing_dir: no such folder$"),
    ("/dev/video-does-not-exist", {}, "^camera /dev/video-does-not-exist: no such device"),
])
def test_bad_sources_are_one_line_errors(tmp_path, monkeypatch, spec, kwargs, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match=message) as err:
        open_source(spec, **kwargs)
    assert "\n" not in str(err.value)


def test_the_spec_says_what_it_is(tmp_path):
    write_video(tmp_path / "in.mp4", frames=2)
    cv2.imwrite(str(tmp_path / "0.png"), np.zeros((8, 8, 3), np.uint8))
    assert [source_kind(spec) for spec in ("0", "/dev/video2", "rtsp://host/stream", "http://host/a.mp4",
                                           str(tmp_path), str(tmp_path / "in.mp4"))] == \
        ["camera", "camera", "url", "url", "images", "video"]
    assert (open_source(str(tmp_path)).kind, open_source(str(tmp_path / "in.mp4")).kind) == ("images", "video")


def test_undecodable_video_and_empty_folder_are_errors(tmp_path):
    (tmp_path / "fake.mp4").write_bytes(b"\x00" * 100)
    with pytest.raises(UserError, match="cannot decode"):
        open_source(str(tmp_path / "fake.mp4"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="holds no images"):
        open_source(str(tmp_path / "empty"))


def test_image_folder_source_uses_natural_order(tmp_path):
    for i in (10, 2, 1):
        cv2.imwrite(str(tmp_path / f"frame{i}.png"), np.full((4, 4, 3), i, np.uint8))
    assert [int(f[0, 0, 0]) for f in open_source(str(tmp_path))] == [1, 2, 10]


def test_loop_starts_a_video_and_a_folder_again(tmp_path):
    write_video(tmp_path / "in.mp4", frames=4)
    source = open_source(str(tmp_path / "in.mp4"), loop=True)
    frames = [frame for _, frame in zip(range(10), source)]
    source.close()
    assert len(frames) == 10 and source.frame_count is None
    np.testing.assert_array_equal(frames[0], frames[4])
    (tmp_path / "frames").mkdir()
    for i in range(3):
        cv2.imwrite(str(tmp_path / "frames" / f"{i}.png"), np.full((4, 4, 3), i, np.uint8))
    looped = open_source(str(tmp_path / "frames"), loop=True)
    assert [int(f[0, 0, 0]) for _, f in zip(range(7), looped)] == [0, 1, 2, 0, 1, 2, 0]


def test_a_folder_of_only_unreadable_images_does_not_loop_forever(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"not a png")
    source = open_source(str(tmp_path), loop=True)
    assert list(source) == [] and source.skipped == 1


def test_url_source_reads_an_http_stream_and_is_live(tmp_path):
    write_video(tmp_path / "in.mp4", frames=8)
    with serve_folder(tmp_path) as base:
        source = open_source(f"{base}/in.mp4")
        frames = list(source)
        source.close()
    assert source.live and len(frames) == 8 and frames[0].shape == (48, 64, 3)


def test_a_stream_that_ends_is_reopened_with_reconnect(tmp_path):
    write_video(tmp_path / "in.mp4", frames=5)
    with serve_folder(tmp_path) as base:
        source = open_source(f"{base}/in.mp4", reconnect=True)
        frames = [frame for _, frame in zip(range(12), source)]
        source.stop()
        source.close()
    assert len(frames) == 12 and source.reopened >= 2


def test_a_stopped_source_ends_during_a_reconnect_wait(tmp_path):
    write_video(tmp_path / "in.mp4", frames=3)
    with serve_folder(tmp_path) as base:
        source = open_source(f"{base}/in.mp4", reconnect=True)
    # the server is gone: the source keeps trying until stopped
    stopper = threading.Timer(1.0, source.stop)
    stopper.start()
    started = time.monotonic()
    frames = list(source)
    assert len(frames) == 3 and time.monotonic() - started < 5


@pytest.mark.parametrize("spec, kwargs, message", [
    ("http://127.0.0.1:9/none.mp4", {}, "^url http://127.0.0.1:9/none.mp4: cannot open"),
    ("0", {"loop": True}, "^camera 0: is live; loop applies"),
    ("/dev/null", {"camera_format": "RGB3"}, "^camera format RGB3: choose one of MJPG, YUYV$"),
    ("v.mp4", {"reconnect": True}, "^video v.mp4: a file or folder cannot disconnect"),
    ("http://x", {"size": (640, 480)}, "^url http://x: a size applies to a camera only$"),
])
def test_bad_live_sources_are_one_line_errors(spec, kwargs, message):
    with pytest.raises(UserError, match=message):
        open_source(spec, **kwargs)


def test_a_corrupt_frame_in_a_video_is_skipped_and_counted_and_the_rest_is_read(tmp_path):
    writer = cv2.VideoWriter(str(tmp_path / "in.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
    for i in range(10):
        writer.write(np.full((48, 64, 3), 20 * i, np.uint8))
    writer.release()
    data = bytearray((tmp_path / "in.avi").read_bytes())
    starts = [i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] == 0xD8]  # each frame's JPEG
    assert len(starts) == 10
    data[starts[4]:starts[5] - 8] = bytes(starts[5] - 8 - starts[4])  # frame 4's JPEG zeroed, its chunk kept
    (tmp_path / "corrupt.avi").write_bytes(bytes(data))
    source = open_source(str(tmp_path / "corrupt.avi"))
    levels = [round(float(frame.mean()) / 20) for frame in source]
    assert levels == [0, 1, 2, 3, 5, 6, 7, 8, 9] and source.skipped == 1
