"""`b2b-run --serve`: the live view over HTTP and in a real browser."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import logging
import os
import re
import signal
import socket
import struct
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import B2B_RUN, assert_one_line_error, write_frame_bundle

from blur2blur.errors import UserError
from blur2blur.runtime.serve import LiveView, check_access, parse_address
from blur2blur.runtime.sinks import Shown


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
                                         "--headless", "--backend", "onnxruntime", *extra],
                                        stderr=subprocess.PIPE, text=True)
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
            live.write(Shown(i, i, np.full((8, 8, 3), i, np.uint8), np.full((8, 8, 3), 255 - i, np.uint8), {"n": i}))
        assert live.encodes == 0
        seq, data = live.snapshot(timeout=1)
        shown = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        assert seq == 20 and shown.shape == (8, 16, 3) and live.encodes == 1  # input | restored, the newest
        assert live.snapshot(timeout=1)[0] == 20 and live.encodes == 1  # the same frame is encoded once
    finally:
        live.close()


@pytest.fixture
def live():
    """LiveViews made in the test (`live(address, ...)`), closed after it."""
    views = []

    def start(address: str = "127.0.0.1:0", *args, **kwargs) -> LiveView:
        views.append(LiveView(address, *args, **kwargs))
        return views[-1]

    yield start
    for view in views:
        view.close()


def status_of(port: int, headers: dict, path: str = "/stats.json") -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path, headers=headers)  # a Host header given replaces http.client's own
        reply = connection.getresponse()
        reply.read()
        return reply.status
    finally:
        connection.close()


def test_a_peer_that_resets_its_connection_leaves_no_traceback(live, capfd, caplog):
    caplog.set_level(logging.DEBUG, logger="blur2blur.runtime.serve")
    host, port = live().server.server_address[:2]
    peer = socket.create_connection((host, port))
    peer.sendall(b"GET /nothing HTTP/1.1\r\nHost: %s:%d\r\n\r\n" % (host.encode(), port))
    assert peer.recv(4096).startswith(b"HTTP/1.1 404")  # kept alive: the server waits for the next request
    peer.sendall(b"GET / HT")
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    peer.close()  # a TCP reset
    waited = time.monotonic()
    while not any("reset" in record.getMessage().lower() for record in caplog.records):
        if time.monotonic() - waited > 2:
            break
        time.sleep(0.05)
    assert "Traceback" not in capfd.readouterr().err
    lines = [r for r in caplog.records if "reset" in r.getMessage().lower()]  # none where the server saw no reset
    assert len(lines) <= 1 and all(r.levelno == logging.DEBUG and "\n" not in r.getMessage() for r in lines)


def test_a_tokenless_server_answers_only_its_own_loopback_names(live):
    port = live().server.server_address[1]
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LocalHost:{port}", f"[::1]:{port}"):
        assert status_of(port, {"Host": host}) == 200, host
    for host in ("evil.example", f"evil.example:{port}", f"127.0.0.1.evil.example:{port}", "127.0.0.1",
                 f"127.0.0.1:{port + 1}", f"evil@127.0.0.1:{port}"):  # a rebinding site's name, another port
        assert status_of(port, {"Host": host}) == 403, host
    here = {"Host": f"127.0.0.1:{port}"}
    assert status_of(port, here | {"Origin": f"http://localhost:{port}"}) == 200
    for origin in ("http://evil.example", f"http://evil.example:{port}", "null", f"https://127.0.0.1:{port}"):
        assert status_of(port, here | {"Origin": origin}) == 403, origin
    guarded = live(token="s3cret").server.server_address[1]  # the token guards it instead
    assert status_of(guarded, {"Host": f"evil.example:{guarded}", "X-B2B-Token": "s3cret"}) == 200


def test_the_printed_url_carries_any_token(live):
    view = live(token="a+b&c#d é")
    assert view.url.endswith("/?token=a%2Bb%26c%23d%20%C3%A9")
    with urllib.request.urlopen(view.url, timeout=5) as page:
        assert page.status == 200
    base, _, query = view.url.partition("?")
    with urllib.request.urlopen(f"{base}stats.json?{query}", timeout=5) as stats:
        assert json.loads(stats.read())["running"] is True


def test_idle_connections_time_out_and_their_number_is_capped(live):
    view = live(request_timeout=1.5, max_connections=2)
    address = view.server.server_address[:2]
    idle = [socket.create_connection(address) for _ in range(2)]  # connected, and never a request
    over = socket.create_connection(address, timeout=5)
    assert over.recv(1) == b""  # closed at once
    idle[0].setblocking(False)
    with pytest.raises(BlockingIOError):  # while the first two still hold theirs
        idle[0].recv(1)
    for peer in idle:
        peer.settimeout(5)
        assert peer.recv(1) == b""  # closed after the request timeout
    assert status_of(address[1], {}) == 200  # their places are free again
    over.close()
    for peer in idle:
        peer.close()


def test_an_ipv6_address_is_served(live):
    try:
        socket.socket(socket.AF_INET6).bind(("::1", 0))
    except OSError as err:
        pytest.skip(f"no IPv6 loopback here: {err}")
    view = live("[::1]:0")
    assert view.url.startswith("http://[::1]:")
    with urllib.request.urlopen(view.url + "stats.json", timeout=5) as stats:
        assert json.loads(stats.read())["running"] is True


def test_replies_forbid_sniffing_and_framing_and_name_no_versions(live):
    view = live()
    with urllib.request.urlopen(view.url, timeout=5) as reply:
        headers, page = reply.headers, reply.read().decode()
    assert headers["Server"] == "blur2blur" and headers["X-Content-Type-Options"] == "nosniff"
    policy = headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy and "default-src 'none'" in policy
    assert "img-src 'self'" in policy and "connect-src 'self'" in policy  # the stream and the events
    for tag in ("script", "style"):  # the page's own inline script and style, and no other
        inline = page.split(f"<{tag}>")[1].split(f"</{tag}>")[0]
        assert f"'sha256-{base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()}'" in policy
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(view.url + "nothing", timeout=5)
    assert missing.value.headers["Server"] == "blur2blur"
    assert missing.value.headers["X-Content-Type-Options"] == "nosniff"
    assert status_of(view.server.server_address[1], {"Host": "evil.example"}, "/") == 403


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


def test_the_side_by_side_app_is_served_as_it_draws_itself(served):
    run = served("--serve", "0", "--app", "side-by-side")
    snapshot = cv2.imdecode(np.frombuffer(run.get("snapshot.jpg"), np.uint8), cv2.IMREAD_COLOR)
    assert snapshot.shape == (96, 320, 3)  # input | restored, not input | input | restored
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
    stalled.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: %s:%s\r\n\r\n" % (host.encode(), port.encode()))  # never reads
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
