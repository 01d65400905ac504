"""The download of NAFNet's official deblurring weights (the catalog: weights/__init__.py).

`b2b-train fetch-weights NAME` puts a file into the cache folder (`user_cache_dir("weights")`), under its
official name, from the first mirror that delivers it whole: downloaded into `FILE.part` (resumed with an
HTTP Range request after an interruption), checked by size and sha256, then renamed into place. The
resolver in `blur2blur.weights` finds the files there by name. Downloads with urllib; no torch.

A mirror is trusted for nothing but bytes: no more than the file's size is read whatever the headers say, a
transfer that ends early or fails leaves its part to be resumed from the next mirror (or the next run), and a
mirror gets a deadline for the whole file. A local failure (a full disk) stops the fetch: no mirror would help.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import socket
import ssl
import threading
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from blur2blur.errors import UserError, os_error_line
from blur2blur.files.locks import Lock, beside
from blur2blur.weights import OfficialWeights, official_path, offline_advice

log = logging.getLogger(__name__)

CHUNK = 1 << 20
TIMEOUT_S = 60  # for any one read
SLOWEST_BYTES_PER_S = 100_000  # a mirror slower than this over the whole file is left for the next one
DEADLINE_FLOOR_S = 300.0


class _MirrorFailed(Exception):
    """One mirror did not deliver the file; the message says why."""


def default_deadline(size: int) -> float:
    """How long one mirror may take over a file of `size` bytes: at least DEADLINE_FLOOR_S."""
    return max(DEADLINE_FLOOR_S, size / SLOWEST_BYTES_PER_S)


class _Deadline(urllib.request.HTTPHandler, urllib.request.HTTPSHandler):
    """urllib's HTTP(S) connections, all cut off `seconds` after `timer` starts: a read that blocks, a body or
    headers that drip in, end then."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds, self.expired = seconds, False
        self.context = ssl.create_default_context()
        self.sockets: list[socket.socket] = []
        self.timer = threading.Timer(seconds, self.cut)
        self.timer.daemon = True

    def http_open(self, req):
        return self.do_open(self._kept(http.client.HTTPConnection), req)

    def https_open(self, req):
        return self.do_open(self._kept(http.client.HTTPSConnection), req, context=self.context)

    def _kept(self, kind: type[http.client.HTTPConnection]) -> type[http.client.HTTPConnection]:
        deadline = self

        class Kept(kind):  # the socket outlives the connection (urllib hands it to the response)
            def connect(self) -> None:
                if deadline.expired:  # a redirect after the deadline
                    raise TimeoutError("past the deadline")
                super().connect()
                deadline.sockets.append(self.sock)
                if deadline.expired:
                    deadline.cut()

        return Kept

    def cut(self) -> None:
        self.expired = True
        for sock in self.sockets:
            try:  # the plain socket's shutdown, under TLS too: it wakes a blocked read
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass

    @property
    def late(self) -> str:
        return f"not done within the deadline ({self.seconds:g} s)"


@contextmanager
def _network(deadline: _Deadline) -> Iterator[None]:
    """Any failure of the server or the network in the block as a _MirrorFailed."""
    try:
        yield
    except urllib.error.HTTPError as err:
        raise _MirrorFailed(f"HTTP {err.code} {err.reason}") from None
    except (OSError, http.client.HTTPException) as err:
        if deadline.expired:
            raise _MirrorFailed(deadline.late) from None
        if isinstance(err, urllib.error.URLError):
            raise _MirrorFailed(str(err.reason)) from None
        raise _MirrorFailed(f"{type(err).__name__}: {err}".rstrip(": ")) from None


def _content_length(response: http.client.HTTPResponse) -> int | None:
    """The Content-Length header as a number, or None where it is missing or not one."""
    try:
        length = int(response.headers.get("Content-Length", ""))
    except ValueError:
        return None
    return length if length >= 0 else None


def _download(url: str, part: Path, size: int, progress: bool, deadline_s: float) -> None:
    """Complete `part` from `url`: resumed where it ends if the server honours Range, else from the start.

    Never more than `size` bytes, nor longer than `deadline_s`. A failure of the mirror is a _MirrorFailed that
    leaves what arrived in `part`; a local one (a full disk) is an OSError naming `part`.
    """
    from tqdm import tqdm

    start = part.stat().st_size if part.exists() else 0
    if start >= size:
        return
    request = urllib.request.Request(url, headers={"User-Agent": "blur2blur"})
    if start:
        request.add_header("Range", f"bytes={start}-")
    deadline = _Deadline(deadline_s)
    deadline.timer.start()
    try:
        with _network(deadline):
            response = urllib.request.build_opener(deadline).open(request, timeout=min(TIMEOUT_S, deadline_s))
        with response:
            if response.status != 206 or not response.headers.get("Content-Range", "").startswith(f"bytes {start}-"):
                start = 0  # the server sent the whole file
            length = _content_length(response)
            if length is not None and start + length != size:
                raise _MirrorFailed(f"serves {start + length:,} bytes, expected {size:,}")
            got = start
            try:
                with open(part, "r+b" if start else "wb") as f, \
                        tqdm(total=size, initial=start, unit="B", unit_scale=True, unit_divisor=1024,
                             desc=part.name.removesuffix(".part"), disable=not progress, leave=False) as bar:
                    f.seek(start)
                    f.truncate()
                    while got < size:
                        with _network(deadline):
                            chunk = response.read1(min(CHUNK, size - got))  # capped at the file's size
                        if not chunk:
                            break
                        f.write(chunk)
                        got += len(chunk)
                        bar.update(len(chunk))
                    f.flush()
                    os.fsync(f.fileno())  # on disk before it is renamed into place
            except OSError as err:  # the disk, not the mirror: the network's failures are _MirrorFailed here
                raise OSError(err.errno, err.strerror, str(part)) from None
            if got < size:  # a clean close mid-file: what arrived is kept and resumed
                raise _MirrorFailed(deadline.late if deadline.expired else
                                    f"the transfer ended after {got:,} of {size:,} bytes")
    finally:
        deadline.timer.cancel()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _verified(path: Path, weights: OfficialWeights) -> bool:
    return path.stat().st_size == weights.size and _sha256(path) == weights.sha256


def fetch_weights(weights: OfficialWeights, progress: bool = True, deadline_s: float | None = None) -> Path:
    """Put `weights` at `official_path(weights)`, verified by size and sha256, and return that path.

    A file already there that verifies is kept. Mirrors are tried in order, each for at most `deadline_s`
    (default: `default_deadline`); a partial `.part` left by an interrupted transfer or run is resumed, and one
    that turns out wrong is downloaded again from the start. A local failure (a full disk) is a UserError at once.
    """
    deadline_s = default_deadline(weights.size) if deadline_s is None else deadline_s
    target = official_path(weights)
    if target.is_file():
        if _verified(target, weights):
            log.info("%s: %s is in place", weights.name, target)
            return target
        log.warning("%s: %s is not the official file (size or sha256 differ): fetching it again", weights.name, target)
    part = target.with_name(target.name + ".part")
    failures = []
    with Lock(beside(target), f"fetch-weights {weights.name}"):
        try:
            for url in weights.mirrors:
                while True:
                    resumed = part.exists() and part.stat().st_size > 0
                    try:
                        _download(url, part, weights.size, progress, deadline_s)
                    except _MirrorFailed as err:
                        failures.append(f"{url}: {err}")
                        break
                    if _verified(part, weights):
                        os.replace(part, target)
                        log.info("%s: fetched %s from %s", weights.name, target, url)
                        return target
                    part.unlink()
                    if not resumed:  # a whole download that does not match: this mirror holds another file
                        failures.append(f"{url}: wrong size or sha256")
                        break
        except OSError as err:
            raise UserError(f"fetch-weights {weights.name}: {os_error_line(err)}; stopped there, as another mirror "
                            "would not help") from None
    raise UserError(f"fetch-weights {weights.name}: no mirror delivered {weights.file} ({'; '.join(failures)}): "
                    f"check the network, or offline {offline_advice(weights)}")

