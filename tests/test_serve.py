"""`b2b-run --serve`: the live view over HTTP and in a real browser."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

from blur2blur.errors import UserError
from blur2blur.runtime.serve import LiveView, check_access, parse_address
from helpers import B2B_RUN, assert_one_line_error, write_frame_bundle

def counter_video(path: Path, frames: int = 50, width: int = 160, height: int = 96) -> None:
    """A clip whose every frame differs: a moving bar and the frame's number."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (width, height))
    for i in range(frames):
        frame = np.full((height, width, 3), 60, np.uint8)
        cv2.rectangle(frame, (3 * i % width, 0), (3 * i % width + 12, height), (40, 200, 240), -1)
        cv2.putText(frame, str(i), (8, height - 12), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (255, 255, 255), 2)
        writer.write(frame)
    writer.release()


class Served:
    """`b2b-run --serve 0 ...` looping a clip until closed; `url` is the page it printed."""

    def __init__(self, tmp_path: Path, *extra: str, clip: Path | None = None, invert: bool = True) -> None:
        bundle = write_frame_bundle(tmp_path / "bundle", invert=invert)
        if clip is None:
            clip = tmp_path / "clip.mp4"
            counter_video(clip)
        self.process = subprocess.Popen([B2B_RUN, "--bundle", str(bundle), "--video", str(clip), "--loop",
                                         "--headless", *extra], stderr=subprocess.PIPE, text=True)
        self.url = ""
        for line in self.process.stderr:
            found = re.search(r"live view: open (\S+)", line)
            if found:
                self.url = found.group(1)
                break
        assert self.url, "b2b-run printed no live view URL"

    def get(self, path: str, headers: dict | None = None, timeout: float = 10) -> bytes:
        base, _, query = self.url.partition("?")
        url = base + path + (("&" if "?" in path else "?") + query if query and "token" not in path else "")
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=timeout) as reply:
            return reply.read()

    def close(self) -> int:
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(timeout=30)
        self.process.stderr.close()
        return code


@pytest.fixture
def served(tmp_path):
    runs = []

    def start(*extra: str, **kwargs) -> Served:
        runs.append(Served(tmp_path, *extra, **kwargs))
        return runs[-1]

    yield start
    for run in runs:
        if run.process.poll() is None:
            run.close()


def mjpeg_frames(url: str, count: int, timeout: float = 20) -> list[np.ndarray]:
    """The first `count` JPEG parts of a multipart MJPEG stream, decoded."""
    frames, buffer = [], b""
    with urllib.request.urlopen(url, timeout=timeout) as reply:
        assert reply.headers["Content-Type"].startswith("multipart/x-mixed-replace")
        while len(frames) < count:
            buffer += reply.read1(65536)
            start, end = buffer.find(b"\xff\xd8"), buffer.find(b"\xff\xd9")
            if start >= 0 and end > start:
                frames.append(cv2.imdecode(np.frombuffer(buffer[start:end + 2], np.uint8), cv2.IMREAD_COLOR))
                buffer = buffer[end + 2:]
    return frames


def test_addresses_and_tokens():
    assert parse_address("8080") == ("127.0.0.1", 8080)
    assert parse_address("0.0.0.0:9000") == ("0.0.0.0", 9000)
    assert parse_address("[::1]:9000") == ("::1", 9000)
    with pytest.raises(UserError, match="--serve eighty: write it as"):
        parse_address("eighty")
    check_access("8080", None, False)  # loopback needs no token
    with pytest.raises(UserError, match="give --serve-token TOKEN"):
        check_access("0.0.0.0:8080", None, False)
    check_access("0.0.0.0:8080", "s3cret", False)
    check_access("0.0.0.0:8080", None, True)


def test_an_open_address_without_a_token_is_refused_before_the_first_frame(tmp_path):
    bundle = write_frame_bundle(tmp_path / "bundle")
    counter_video(tmp_path / "clip.mp4", frames=3)
    result = subprocess.run([B2B_RUN, "--bundle", bundle, "--video", tmp_path / "clip.mp4", "--serve", "0.0.0.0:0"],
                            capture_output=True, text=True)
    assert_one_line_error(result, "--serve 0.0.0.0:0: other machines can reach it, so give --serve-token")


def test_frames_are_encoded_only_while_someone_watches():
    live = LiveView("127.0.0.1:0")
    try:
        for i in range(20):
            live.publish(np.full((8, 8, 3), i, np.uint8), np.full((8, 8, 3), 255 - i, np.uint8), {"n": i})
        assert live.encodes == 0
        seq, data = live.snapshot(timeout=1)
        shown = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        assert seq == 20 and shown.shape == (8, 16, 3) and live.encodes == 1  # input | restored, the newest
        assert live.snapshot(timeout=1)[0] == 20 and live.encodes == 1  # the same frame is encoded once
    finally:
        live.close()


def test_the_stream_snapshot_and_figures_over_http(served):
    run = served("--serve", "0")
    frames = mjpeg_frames(run.url.split("?")[0] + "stream.mjpg", 3)
    assert all(frame.shape == (96, 320, 3) for frame in frames)  # input | restored
    assert max(float(np.abs(a.astype(int) - b).mean()) for a, b in zip(frames, frames[1:])) > 1  # frames change
    snapshot = cv2.imdecode(np.frombuffer(run.get("snapshot.jpg"), np.uint8), cv2.IMREAD_COLOR)
    left, right = snapshot[30:60, 100:150].astype(int), snapshot[30:60, 260:310].astype(int)
    assert abs((left + right).mean() - 255) < 25  # the restored half is the inverted input
    first = json.loads(run.get("stats.json"))
    time.sleep(1.0)
    second = json.loads(run.get("stats.json"))
    assert second["frames"] > first["frames"] and second["running"] is True and second["fps_recent"] > 0
    assert second["app"] == "none" and "bundle" in second and second["backend"].startswith("onnxruntime")
    with urllib.request.urlopen(run.url.split("?")[0] + "events", timeout=10) as events:
        assert events.headers["Content-Type"] == "text/event-stream"
        line = events.readline()
    assert line.startswith(b"data: {") and "frames" in json.loads(line[6:])
    assert run.close() == 0


def test_a_token_protected_server_refuses_requests_without_it(served):
    run = served("--serve", "127.0.0.1:0", "--serve-token", "s3cret")
    assert run.url.endswith("?token=s3cret")
    base = run.url.split("?")[0]
    for path in ("", "stats.json", "stream.mjpg", "snapshot.jpg", "events"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(base + path, timeout=10)
        assert refused.value.code == 401
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(base + "stats.json?token=s3cre", timeout=10)
    assert json.loads(run.get("stats.json?token=s3cret"))["running"] is True
    assert json.loads(run.get("stats.json", headers={"X-B2B-Token": "s3cret"}))["running"] is True


def test_a_stalled_viewer_neither_stops_the_others_nor_the_run(served):
    run = served("--serve", "0")
    host, port = re.match(r"http://([^:/]+):(\d+)/", run.url).groups()
    stalled = socket.create_connection((host, int(port)))
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: x\r\n\r\n")  # and never reads
    try:
        before = json.loads(run.get("stats.json"))["frames"]
        viewers = [mjpeg_frames(run.url.split("?")[0] + "stream.mjpg", 5) for _ in range(2)]
        time.sleep(1.0)
        after = json.loads(run.get("stats.json"))
        assert all(len(frames) == 5 for frames in viewers)
        assert after["frames"] > before and after["dropped"] == 0  # a file source loses nothing
    finally:
        stalled.close()
    assert run.close() == 0


def test_the_live_page_in_a_real_browser(served, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    run = served("--serve", "0")
    browser.get(run.url)
    wait = WebDriverWait(browser, 30)
    wait.until(lambda d: d.find_element(By.ID, "state").text == "running")
    image = browser.find_element(By.ID, "video")
    wait.until(lambda d: d.execute_script("return arguments[0].naturalWidth", image) == 320)
    grab = ("const c = document.createElement('canvas'); const i = arguments[0]; c.width = i.naturalWidth; "
            "c.height = i.naturalHeight; const g = c.getContext('2d'); g.drawImage(i, 0, 0); "
            "return Array.from(g.getImageData(0, 0, c.width, c.height).data.filter((v, k) => k % 97 == 0));")
    first = browser.execute_script(grab, image)
    wait.until(lambda d: d.execute_script(grab, image) != first)  # the video element receives new frames
    frames = int(browser.find_element(By.ID, "frames").text)
    wait.until(lambda d: int(d.find_element(By.ID, "frames").text) > frames)  # the figures update
    assert float(browser.find_element(By.ID, "fps").text) > 0
    assert browser.find_element(By.ID, "backend").text.startswith("onnxruntime")
    assert browser.find_element(By.ID, "app").text == "none"


def test_the_live_page_shows_the_hand_trackers_records(served, browser, shared_data, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    clip = shared_data / "video" / "mediapipe_samples_hand_landmarker_test_video.mp4"
    run = served("--serve", "0", "--app", "handpose", clip=clip, invert=False)
    browser.set_window_size(1300, 760)
    browser.get(run.url)
    wait = WebDriverWait(browser, 60)
    wait.until(lambda d: "hand(s):" in d.find_element(By.ID, "record").text)
    assert re.match(r"\d hand\(s\): (Left|Right) 0\.\d\d", browser.find_element(By.ID, "record").text)
    assert browser.find_element(By.ID, "app").text == "handpose"
    time.sleep(1.0)  # a few frames with their landmarks drawn
    screenshot = Path(os.environ.get("B2B_SCREENSHOT", tmp_path / "live.png"))  # the README's docs/live-view.png
    browser.save_screenshot(str(screenshot))
    assert cv2.imread(str(screenshot)).shape[1] == 1300
