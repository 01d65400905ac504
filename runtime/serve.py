"""`b2b-run --serve`: the live view of a run in a browser, for edge boxes without a monitor.

An HTTP server on its own threads serves `/` (a page with the video and the figures), `/stream.mjpg`
(multipart MJPEG, which every browser and VLC plays), `/snapshot.jpg`, `/stats.json` and `/events` (the figures
as server-sent events). The pipeline only hands over references to its newest frames (`publish`); a frame is
composed (input | restored) and JPEG-encoded on a viewer's thread, once per frame however many watch, and only
while someone watches. Every viewer gets the newest frame: a slow or stalled one skips frames, it never queues
them (a frame not followed soon is sent again: browsers show a part only when the next one begins).

Off loopback, requests need the token (`?token=` or an `X-B2B-Token` header), compared in constant time; a
tokenless loopback server answers only requests addressed to its own loopback name and port (no DNS rebinding).
A connection must send its request within a timeout, connections beyond a cap are closed at once, and a peer's
misbehaviour is a debug line in the log, never a traceback.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import sys
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from urllib.parse import parse_qs, quote, urlsplit

import cv2

from blur2blur.errors import UserError
from blur2blur.runtime.sinks import Shown, Sink

log = logging.getLogger(__name__)
JPEG_QUALITY = 80
EVENT_SECONDS = 0.5  # how often the page's figures update
STALL_SECONDS = 60.0  # a viewer that takes nothing for this long is disconnected
REPEAT_SECONDS = 0.02  # a frame not followed by another within this is sent again (see LiveHandler.stream)
REQUEST_SECONDS = 10.0  # a connection that sends no whole request within this is closed
MAX_CONNECTIONS = 32  # connections beyond this many at once are closed at once
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>blur2blur live</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body { font: 15px system-ui, sans-serif; margin: 1em; background: #111; color: #eee; }
img { max-width: 100%; background: #222; display: block; }
table { border-collapse: collapse; margin-top: 0.8em; }
td { padding: 0.15em 0.8em 0.15em 0; vertical-align: top; }
td:first-child { color: #999; }
</style></head>
<body>
<h1>blur2blur live</h1>
<img id="video" alt="input | restored" src="">
<table id="figures">
<tr><td>frames/s</td><td id="fps">-</td></tr>
<tr><td>latency p50 / p95</td><td id="latency">-</td></tr>
<tr><td>frames</td><td id="frames">-</td></tr>
<tr><td>dropped</td><td id="dropped">-</td></tr>
<tr><td>app</td><td id="app">-</td></tr>
<tr><td>latest record</td><td id="record">-</td></tr>
<tr><td>source</td><td id="source">-</td></tr>
<tr><td>backend</td><td id="backend">-</td></tr>
<tr><td>bundle</td><td id="bundle">-</td></tr>
<tr><td>state</td><td id="state">connecting</td></tr>
</table>
<script>
const query = location.search;  // carries ?token= to every request
document.getElementById("video").src = "stream.mjpg" + query;
const show = (id, text) => { document.getElementById(id).textContent = text; };
function record(r) {
  if (!r) return "none";
  if (Array.isArray(r.hands)) {
    if (!r.hands.length) return "no hand";
    return r.hands.length + " hand(s): " + r.hands.map(h => h.handedness + " " + h.score.toFixed(2)).join(", ");
  }
  return JSON.stringify(r).slice(0, 200);
}
const events = new EventSource("events" + query);
events.onmessage = (message) => {
  const s = JSON.parse(message.data);
  show("fps", s.fps_recent.toFixed(2));
  show("latency", s.latency_p50_ms.toFixed(1) + " / " + s.latency_p95_ms.toFixed(1) + " ms");
  show("frames", s.frames);
  show("dropped", s.dropped);
  show("app", s.app);
  show("record", record(s.record));
  show("source", s.source);
  show("backend", s.backend);
  show("bundle", s.bundle);
  show("state", s.running ? "running" : "ended");
};
events.onerror = () => show("state", "disconnected");
</script>
</body></html>
"""


def _inline_hash(page: str, tag: str) -> str:
    """The CSP source that allows `page`'s one inline `<tag>` element, by its sha256."""
    inline = page.split(f"<{tag}>", 1)[1].split(f"</{tag}>", 1)[0]
    return f"'sha256-{base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()}'"


# The page runs only its own inline script and style, loads the stream and the events from here, and may be
# framed by no one.
POLICY = (f"default-src 'none'; script-src {_inline_hash(PAGE, 'script')}; style-src {_inline_hash(PAGE, 'style')}; "
          "img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def parse_address(text: str) -> tuple[str, int]:
    """`[HOST:]PORT` -> (host, port); the host defaults to loopback. One-line errors naming --serve."""
    host, _, port = text.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    try:
        number = int(port)
    except ValueError:
        raise UserError(f"--serve {text}: write it as [HOST:]PORT, e.g. 8080 or 0.0.0.0:8080") from None
    if not 0 <= number <= 65535:
        raise UserError(f"--serve {text}: the port must be 0 to 65535 (0: any free port)")
    return host, number


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def names_loopback(host: str, port: int) -> bool:
    """Whether `host` (a Host header: NAME[:PORT]) is a loopback name or address with the port `port`."""
    if any(c in host for c in "@/?#\\ "):
        return False
    try:
        parts = urlsplit("//" + host)
        return (parts.port or 80) == port and is_loopback(parts.hostname or "")
    except ValueError:  # a port that is not a number
        return False


def check_access(address: str, token: str | None, no_token: bool) -> None:
    """Off loopback a token is needed, unless the user says plainly that anyone may watch."""
    host, _ = parse_address(address)
    if token and no_token:
        raise UserError("--serve-token and --serve-no-token: give one of them")
    if not is_loopback(host) and not token and not no_token:
        raise UserError(f"--serve {address}: other machines can reach it, so give --serve-token TOKEN "
                        "(or --serve-no-token to let anyone who reaches it watch)")


class LiveView(Sink):
    """A sink that serves the newest frame (input | the app's frame) and the run's figures over HTTP at `address`
    while the run goes on."""

    def __init__(self, address: str, token: str | None = None, info: dict | None = None,
                 request_timeout: float = REQUEST_SECONDS, max_connections: int = MAX_CONNECTIONS) -> None:
        host, port = parse_address(address)
        self.token, self.info = token, dict(info or {})
        self.loopback_only = token is None and is_loopback(host)  # then Host and Origin must name loopback
        # the run's report so far (given by `start`)
        self.figures: Callable[[], dict] = lambda: {"frames": 0, "fps": 0.0, "dropped": 0, "stages": {}}
        self._lock = threading.Lock()
        self._new = threading.Condition(self._lock)
        self._encoding = threading.Lock()
        self._shown: Shown | None = None
        self._record: dict | None = None
        self._seq = 0
        self._encoded: tuple[int, bytes] = (0, b"")
        self._times: deque = deque(maxlen=60)  # publish times, for the recent frame rate
        self.encodes = 0  # frames encoded: none while nobody watches
        self.running = True
        view = self

        class Handler(LiveHandler):
            live = view
            timeout = request_timeout

        try:
            self.server = LiveServer((host, port), Handler, max_connections)
        except OSError as err:
            raise UserError(f"--serve {address}: cannot listen there ({err.strerror})") from None
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2},
                                       name="serve", daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}/" + (f"?token={quote(self.token, safe='')}" if self.token else "")

    # -- the pipeline's side: cheap, never blocks on a viewer
    def start(self, figures: Callable[[], dict]) -> None:
        self.figures = figures

    def write(self, shown: Shown) -> None:
        """The newest frame and its record; only a reference is kept (the viewers' threads compose and encode)."""
        with self._new:
            self._shown, self._seq = shown, self._seq + 1
            if shown.record is not None:
                self._record = shown.record
            self._times.append(time.perf_counter())
            self._new.notify_all()

    def close(self, complete: bool = True) -> None:
        """End the streams (viewers see the run end) and stop serving."""
        with self._new:
            self.running = False
            self._new.notify_all()
        self.server.shutdown()
        self.server.server_close()

    # -- the viewers' side, on the server's threads
    def jpeg(self, after: int, timeout: float) -> tuple[int, bytes] | None:
        """The newest frame once it is newer than `after`, JPEG-encoded (once per frame for all viewers); None
        when none came within `timeout` or the run ended."""
        with self._new:
            if not self._new.wait_for(lambda: self._seq > after or not self.running, timeout) or self._seq <= after:
                return None
        with self._encoding:  # one viewer encodes, the others take its result
            with self._lock:
                seq, shown = self._seq, self._shown
                if self._encoded[0] == seq:
                    return self._encoded
            ok, data = cv2.imencode(".jpg", shown.paired, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            with self._lock:
                self.encodes += 1
                self._encoded = (seq, data.tobytes())
                return self._encoded

    def snapshot(self, timeout: float) -> tuple[int, bytes] | None:
        """The newest frame, waiting up to `timeout` for the first."""
        with self._lock:
            after = max(self._seq - 1, 0)
        return self.jpeg(after, timeout)

    def stats(self) -> dict:
        """The figures the page shows, and more: the run's report so far with the app's latest record."""
        report = self.figures()
        with self._lock:
            times, record = list(self._times), self._record
        recent = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0
        latency = report.get("stages", {}).get("latency", {})
        return {**report, **self.info, "fps_recent": round(recent, 2), "latency_p50_ms": latency.get("p50_ms", 0.0),
                "latency_p95_ms": latency.get("p95_ms", 0.0), "record": record, "running": self.running,
                "viewers_encoded_frames": self.encodes}


class LiveServer(ThreadingHTTPServer):
    """A threaded HTTP server on the host's address family, with at most `max_connections` at once (more are
    closed at once), that logs a failed request in one line instead of printing a traceback."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], max_connections: int) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.max_connections = max_connections
        self.slots = threading.BoundedSemaphore(max_connections)
        super().__init__(address, handler)

    def process_request(self, request, client_address) -> None:
        if not self.slots.acquire(blocking=False):
            log.debug("serve: %s: over %d connections: closed", client_address[0], self.max_connections)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:  # no thread for it
            self.slots.release()
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.slots.release()  # before the peer sees the close: it may connect again at once
            self.shutdown_request(request)

    def handle_error(self, request, client_address) -> None:
        err = sys.exc_info()[1]
        if isinstance(err, OSError):  # the peer's doing: a reset, a stall
            log.debug("serve: %s: %s: %s", client_address[0], type(err).__name__, err)
        else:  # ours: one line, the traceback with --debug
            log.error("serve: a request from %s failed: %s: %s", client_address[0], type(err).__name__, err,
                      exc_info=log.isEnabledFor(logging.DEBUG))


class LiveHandler(BaseHTTPRequestHandler):
    live: LiveView
    protocol_version = "HTTP/1.1"
    server_version = "blur2blur"

    def version_string(self) -> str:
        return self.server_version  # no versions of Python or http.server for a scanner to match

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        log.debug("serve: " + format, *args)

    def end_headers(self) -> None:
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", POLICY)
        super().end_headers()

    def addressed_here(self) -> bool:
        """On a tokenless loopback server, whether Host and Origin (where given) name it: a web page elsewhere
        whose name was rebound to 127.0.0.1 is refused."""
        if not self.live.loopback_only:
            return True
        port = self.server.server_address[1]
        host, origin = self.headers.get("Host"), self.headers.get("Origin")
        if host is not None and not names_loopback(host, port):
            return False
        return origin is None or (origin.startswith("http://") and names_loopback(origin.removeprefix("http://"), port))

    def authorised(self) -> bool:
        token = self.live.token
        if token is None:
            return True
        given = parse_qs(urlsplit(self.path).query).get("token", [""])[0] or self.headers.get("X-B2B-Token", "")
        return hmac.compare_digest(given.encode(), token.encode())

    def do_GET(self) -> None:  # noqa: N802 - the base class's name
        self.connection.settimeout(STALL_SECONDS)
        route = urlsplit(self.path).path
        try:
            if not self.addressed_here():
                port = self.server.server_address[1]
                self.reply(403, "text/plain", b"open the live view at http://127.0.0.1:%d/ (or localhost)\n" % port)
            elif not self.authorised():
                self.reply(401, "text/plain", b"a token is needed: open the URL that b2b-run printed\n")
            elif route in ("/", "/index.html"):
                self.reply(200, "text/html; charset=utf-8", PAGE.encode())
            elif route == "/stats.json":
                self.reply(200, "application/json", json.dumps(self.live.stats()).encode())
            elif route == "/snapshot.jpg":
                frame = self.live.snapshot(timeout=10.0)
                if frame is None:
                    self.reply(503, "text/plain", b"no frame yet\n")
                else:
                    self.reply(200, "image/jpeg", frame[1])
            elif route == "/stream.mjpg":
                self.stream()
            elif route == "/events":
                self.events()
            else:
                self.reply(404, "text/plain", b"not found: try /, /stream.mjpg, /snapshot.jpg, /stats.json\n")
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass  # the viewer went away or stalled
        self.connection.settimeout(self.timeout)  # for the next request on this connection

    def reply(self, status: int, kind: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def open_stream(self, kind: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    def stream(self) -> None:
        self.open_stream("multipart/x-mixed-replace; boundary=frame")
        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\n")
        seq, unshown = 0, None
        while self.live.running:
            # A browser shows a part only once the next part's body begins: when no new frame follows soon, the
            # last one is sent again, so that it shows now rather than a frame later.
            frame = self.live.jpeg(seq, timeout=REPEAT_SECONDS if unshown else 1.0)
            if frame is None:
                if unshown:
                    self.wfile.write(unshown)
                    self.wfile.flush()
                    unshown = None
                continue
            seq, data = frame
            unshown = (b"Content-Length: %d\r\n\r\n" % len(data) + data
                       + b"\r\n--frame\r\nContent-Type: image/jpeg\r\n")
            self.wfile.write(unshown)
            self.wfile.flush()

    def events(self) -> None:
        self.open_stream("text/event-stream")
        while True:
            running = self.live.running
            self.wfile.write(b"data: " + json.dumps(self.live.stats()).encode() + b"\n\n")
            self.wfile.flush()
            if not running:
                return
            time.sleep(EVENT_SECONDS)
