import numpy as np
import pytest
from helpers import read_video

from blur2blur.errors import UserError
from blur2blur.runtime.sinks import (
    ImageFolderSink,
    RecordsFile,
    Shown,
    VideoFileSink,
    display_available,
    open_output,
)


def test_video_sink_writes_a_playable_file_and_no_partial(tmp_path):
    sink = open_output(str(tmp_path / "out" / "restored.mp4"), fps=25)
    assert isinstance(sink, VideoFileSink)
    for i in range(5):
        sink.write_frame(np.full((40, 56, 3), 30 * i, np.uint8))
    assert not (tmp_path / "out" / "restored.mp4").exists()  # only the partial file until closed
    sink.close()
    frames = read_video(tmp_path / "out" / "restored.mp4")
    assert len(frames) == 5 and frames[0].shape == (40, 56, 3)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["restored.mp4"]


def test_folder_sink_writes_numbered_pngs(tmp_path):
    sink = open_output(str(tmp_path / "frames"), fps=25)
    assert isinstance(sink, ImageFolderSink)
    for _ in range(3):
        sink.write_frame(np.zeros((4, 4, 3), np.uint8))
    assert sorted(p.name for p in (tmp_path / "frames").iterdir()) == ["000000.png", "000001.png", "000002.png"]


def test_unusable_outputs_fail_before_the_first_frame(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="cannot create"):
        open_output(str(tmp_path / "file" / "out.mp4"), fps=25)
    with pytest.raises(UserError, match="video file"):
        open_output(str(tmp_path / "out.png"), fps=25)


def test_video_sink_resizes_frames_of_another_size_instead_of_dropping_them(tmp_path):
    sink = open_output(str(tmp_path / "mixed.mp4"), fps=25)
    for size in ((40, 56), (20, 30), (40, 56), (64, 64)):
        sink.write_frame(np.full((*size, 3), 128, np.uint8))
    sink.close()
    frames = read_video(tmp_path / "mixed.mp4")
    assert len(frames) == 4 and all(frame.shape == (40, 56, 3) for frame in frames)


def test_an_incomplete_run_leaves_no_video(tmp_path):
    sink = open_output(str(tmp_path / "out.mp4"), fps=25)
    sink.write_frame(np.zeros((16, 16, 3), np.uint8))
    sink.close(complete=False)
    assert list(tmp_path.iterdir()) == []


def test_records_appear_only_when_the_run_ends_well(tmp_path):
    frame = np.zeros((4, 4, 3), np.uint8)
    records = RecordsFile(tmp_path / "r.jsonl")
    records.write(Shown(0, 40, frame, frame, {"hands": 1}))
    records.write(Shown(1, 80, frame, frame))  # a frame without a record writes no line
    assert not (tmp_path / "r.jsonl").exists()
    records.close()
    assert (tmp_path / "r.jsonl").read_text() == '{"frame": 0, "timestamp_ms": 40, "hands": 1}\n'
    failed = RecordsFile(tmp_path / "f.jsonl")
    failed.write(Shown(0, 0, frame, frame, {"hands": 0}))
    failed.close(complete=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.jsonl"]


def test_a_failed_run_removes_its_pngs_and_a_folder_of_earlier_pngs_is_refused(tmp_path):
    sink = open_output(str(tmp_path / "frames"), fps=25)
    for _ in range(3):
        sink.write_frame(np.zeros((4, 4, 3), np.uint8))
    sink.close(complete=False)
    assert list((tmp_path / "frames").iterdir()) == []
    sink = open_output(str(tmp_path / "frames"), fps=25)
    sink.write_frame(np.zeros((4, 4, 3), np.uint8))
    sink.close()
    with pytest.raises(UserError, match="already holds numbered PNGs"):
        open_output(str(tmp_path / "frames"), fps=25)


def test_an_unreachable_display_means_no_window(monkeypatch):
    monkeypatch.setenv("DISPLAY", ":97")  # no X server answers there
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert display_available() is False
    monkeypatch.delenv("DISPLAY")
    assert display_available() is False
