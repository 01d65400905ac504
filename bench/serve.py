"""What `b2b-run --serve` costs, and how late the browser shows a frame.

1. Throughput: `b2b-run` on the same file (the starter's bundle, a 320x240 clip) without --serve, and with it and
   0, 1 and 4 viewers reading /stream.mjpg (one of the four connects and never reads): frames/s from --stats and
   the peak resident memory of the run.
2. Glass-to-browser latency at 640x360: a live MJPEG source served here stamps each frame with the time it was
   made (a 32-bit barcode of milliseconds); `b2b-run --url` restores it with --serve, and a headless Chromium
   (selenium, Debian's chromium-driver) decodes the stamp from the live page's image and compares it with its
   clock. The run's own capture-to-written latency is shown beside it; the rest is the view's (encode, send,
   decode, paint).

    python bench/serve.py [--frames 60] [--latency-seconds 30] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
from soak import B2B, prepare, resident_mb  # bench/soak.py

BITS, BLOCK = 32, 20  # the stamp: 32 blocks of 20 x 20 px in a band below the page's labels
TOP = 2 * BLOCK


def start_run(command: list, serve: bool) -> tuple[subprocess.Popen, str | None]:
    """Start b2b-run; with --serve, wait for the URL it prints."""
    run = subprocess.Popen([str(c) for c in command], stderr=subprocess.PIPE if serve else subprocess.DEVNULL,
                           text=True)
    if not serve:
        return run, None
    for line in run.stderr:
        found = re.search(r"live view: open (\S+)", line)
        if found:
            threading.Thread(target=run.stderr.read, daemon=True).start()  # keep the pipe drained
            return run, found.group(1)
    raise SystemExit("b2b-run printed no live view URL")


def viewer(url: str, stop: threading.Event) -> None:
    """A browser-like viewer: reads the MJPEG stream as fast as it comes."""
    try:
        with urllib.request.urlopen(url + "stream.mjpg", timeout=30) as stream:
            while not stop.is_set() and stream.read1(1 << 16):
                pass
    except OSError:
        pass


def throughput(bundle: Path, clip: Path, work: Path, viewers: int | None, frames: int) -> tuple[float, float]:
    """(frames/s, peak resident MB) of one run: without --serve (viewers None), or with that many viewers."""
    stats = work / "stats.json"
    command = [B2B / "b2b-run", "--bundle", bundle, "--video", clip, "--headless", "--max-frames", frames,
               "--stats", stats] + (["--serve", "0"] if viewers is not None else [])
    run, url = start_run(command, viewers is not None)
    stop, sockets, threads = threading.Event(), [], []
    if url:
        for k in range(viewers):
            if k == 3:  # the fourth connects and never reads
                host, port = re.match(r"http://([^:/]+):(\d+)/", url).groups()
                stalled = socket.create_connection((host, int(port)))
                stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                stalled.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: x\r\n\r\n")
                sockets.append(stalled)
            else:
                threads.append(threading.Thread(target=viewer, args=(url, stop), daemon=True))
                threads[-1].start()
    peak = 0.0
    while run.poll() is None:
        peak = max(peak, resident_mb(run.pid) or 0.0)
        time.sleep(0.2)
    stop.set()
    for s in sockets:
        s.close()
    if run.returncode:
        raise SystemExit(f"b2b-run failed with exit status {run.returncode}: {' '.join(map(str, command))}")
    return json.loads(stats.read_text())["fps"], peak


def stamped_source(width: int, height: int, fps: float) -> tuple[ThreadingHTTPServer, str]:
    """A live MJPEG stream at `fps`, each frame stamped with the milliseconds (mod 2**32) when it was made."""
    rng = np.random.default_rng(0)
    background = cv2.GaussianBlur(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), (0, 0), 3)

    class Source(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=f")
            self.end_headers()
            try:
                while True:
                    frame = background.copy()
                    stamp = int(time.time() * 1000) % 2**BITS
                    for bit in range(BITS):
                        frame[TOP:TOP + BLOCK, bit * BLOCK:(bit + 1) * BLOCK] = 255 if stamp >> bit & 1 else 0
                    data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
                    self.wfile.write(b"--f\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(data)
                                     + data + b"\r\n")
                    time.sleep(1 / fps)
            except OSError:
                pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Source)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/source.mjpg"


# In the page: decode each new frame's stamp from the image (left half: the input) and keep Date.now() - stamp.
COLLECT = """
window.lags = []; let last = -1;
const canvas = document.createElement('canvas'), g = canvas.getContext('2d', {willReadFrequently: true});
function look() {
  const img = document.getElementById('video');
  if (img.naturalWidth) {
    canvas.width = img.naturalWidth; canvas.height = img.naturalHeight; g.drawImage(img, 0, 0);
    const w = canvas.width, row = g.getImageData(0, %(top)d + %(block)d / 2, w, 1).data, y = 0;
    let stamp = 0;
    for (let bit = 0; bit < %(bits)d; bit++) {
      const x = bit * %(block)d + %(block)d / 2;
      if (row[4 * (y * w + x)] > 128) stamp += 2 ** bit;
    }
    if (stamp !== last) { last = stamp; window.lags.push((Date.now() %% 2 ** %(bits)d) - stamp); }
  }
  requestAnimationFrame(look);
}
look();
""" % {"block": BLOCK, "bits": BITS, "top": TOP}


def latency(bundle: Path, work: Path, seconds: float) -> dict | str:
    """Glass-to-browser lag of the live view at 640x360, or why it cannot be measured here."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        return "selenium is not installed"
    source, source_url = stamped_source(640, 360, 25.0)
    stats = work / "latency-stats.json"
    run, url = start_run([B2B / "b2b-run", "--bundle", bundle, "--url", source_url, "--headless", "--serve", "0",
                          "--stats", stats], True)
    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.binary_location = "/usr/bin/chromium"
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.get(url)
        time.sleep(3.0)  # the engine warms up
        driver.execute_script(COLLECT)
        time.sleep(seconds)
        lags = [lag for lag in driver.execute_script("return window.lags") if 0 <= lag < 60_000]
    finally:
        driver.quit()
        run.send_signal(signal.SIGINT)
        run.wait(timeout=60)
        source.shutdown()
    report = json.loads(stats.read_text())
    if not lags:
        return "no stamped frame reached the page"
    return {"frames_seen": len(lags), "p50_ms": float(np.percentile(lags, 50)),
            "p95_ms": float(np.percentile(lags, 95)),
            "run_latency_p50_ms": report["stages"]["latency"]["p50_ms"], "run_fps": report["fps"],
            "dropped": report["dropped"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=60, help="frames per throughput run")
    parser.add_argument("--repeats", type=int, default=2, help="runs per configuration (the mean is shown)")
    parser.add_argument("--latency-seconds", type=float, default=30.0)
    parser.add_argument("--work", help="keep the bundle, clip and figures here")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="b2b-serve-"))
    work.mkdir(parents=True, exist_ok=True)
    bundle, clip = prepare(work, argparse.Namespace(bundle=None, clip=None))

    rows = []
    for label, viewers in (("without --serve", None), ("--serve, 0 viewers", 0), ("--serve, 1 viewer", 1),
                           ("--serve, 4 viewers (1 stalled)", 4)):
        measured = [throughput(bundle, clip, work, viewers, args.frames) for _ in range(args.repeats)]
        rows.append((label, float(np.mean([m[0] for m in measured])), max(m[1] for m in measured)))
        print(f"{label}: {rows[-1][1]:.2f} frames/s, {rows[-1][2]:.0f} MB", file=sys.stderr, flush=True)
    base = rows[0][1]
    print(f"\nb2b-run --serve on {clip.name} (320x240, the starter's bundle, ONNX Runtime CPU), {args.frames} frames, "
          f"mean of {args.repeats} runs\n")
    print("| run | frames/s | vs without --serve | peak resident MB |\n|---|---|---|---|")
    for label, fps, peak in rows:
        print(f"| {label} | {fps:.2f} | {fps / base - 1:+.1%} | {peak:.0f} |")

    lag = latency(bundle, work, args.latency_seconds)
    print("\nglass-to-browser at 640x360 (live MJPEG source at 25 frames/s, the starter's bundle):")
    if isinstance(lag, str):
        print(f"not measured: {lag}")
    else:
        print(f"{lag['frames_seen']} frames seen in the page over {args.latency_seconds:.0f} s: "
              f"p50 {lag['p50_ms']:.0f} ms, "
              f"p95 {lag['p95_ms']:.0f} ms; the run's own capture-to-written p50 {lag['run_latency_p50_ms']:.0f} ms "
              f"at {lag['run_fps']:.2f} frames/s ({lag['dropped']} source frames dropped, as a live source should)")


if __name__ == "__main__":
    main()
