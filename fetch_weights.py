"""NAFNet's official deblurring weights by name (`nafnet-gopro-w32`, ...): the catalog, and their download.

`b2b-train fetch-weights NAME` puts a file into the cache folder (`user_cache_dir("weights")`), under its
official name, from the first mirror that delivers it whole: downloaded into `FILE.part` (resumed with an
HTTP Range request after an interruption), checked by size and sha256, then renamed into place. The
resolver in `shipped.py` finds the files there by name. Downloads with urllib; no torch.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from blur2blur.cache import user_cache_dir
from blur2blur.errors import UserError
from blur2blur.locks import Lock, beside

log = logging.getLogger(__name__)

CHUNK = 1 << 20
TIMEOUT_S = 60


@dataclass(frozen=True)
class OfficialWeights:
    """One official checkpoint: its name here, the authors' file name, its size and sha256, the preset it
    loads as, a line about it, the authors' Google Drive id, and the mirrors to fetch it from, in order."""

    name: str
    file: str
    size: int
    sha256: str
    arch: str
    about: str
    drive_id: str
    mirrors: tuple[str, ...]

    @property
    def drive_url(self) -> str:
        return f"https://drive.google.com/file/d/{self.drive_id}/view"


def _hugging_face(file: str, *repos: str) -> tuple[str, ...]:
    return tuple(f"https://huggingface.co/{repo}/resolve/main/{file}" for repo in repos)


# Sizes and GoPro hashes: docs/method.md (the authors publish no hashes). Two Hugging Face model repos mirror
# all three files; the authors' Space (co-author Xiaojie Chu's demo) holds the REDS file. The REDS sha256 is
# the one that projects pinning these files record: a restoration-model catalog on GitHub (this hash and
# 271,756,689 bytes for nyanko7/nafnet-models' NAFNet-REDS-width64.pth, beside GoPro-w32 figures equal to
# ours) and an MLX port's weight notes (that mirror "byte-identical to the official checkpoints, sha256
# verified against both"); a third project found mikestealth's REDS file byte-identical to the Space's.
MIRRORS = ("nyanko7/nafnet-models", "mikestealth/nafnet-models")
OFFICIAL: dict[str, OfficialWeights] = {w.name: w for w in (
    OfficialWeights("nafnet-gopro-w32", "NAFNet-GoPro-width32.pth", 68_671_121,
                    "19394e6155d12ef6371d1d57496f87f0ec88f92bdffa27c0792690722d5d1a5c", "nafnet-w32",
                    "official NAFNet width 32 trained on GoPro (32.87 dB)", "1Fr2QadtDCEXg6iwWX8OzeZLbHOx2t5Bj",
                    _hugging_face("NAFNet-GoPro-width32.pth", *MIRRORS)),
    OfficialWeights("nafnet-gopro-w64", "NAFNet-GoPro-width64.pth", 271_778_961,
                    "329d3ab4077b8d6b7ff61de376e483714667960bf85be027bf4335cda701196f", "nafnet-w64",
                    "official NAFNet width 64 trained on GoPro (33.71 dB)", "1S0PVRbyTakYY9a82kujgZLbMihfNBLfC",
                    _hugging_face("NAFNet-GoPro-width64.pth", *MIRRORS)),
    # The REDS test options (options/test/REDS/NAFNet-width64.yml) give the GoPro width-64 shape.
    OfficialWeights("nafnet-reds-w64", "NAFNet-REDS-width64.pth", 271_756_689,
                    "175fe8b3cdf3abedfbc87769779c3d9f491e05bb2e73ea9d627883f90a4b2df3", "nafnet-w64",
                    "official NAFNet width 64 trained on REDS: blur with JPEG artefacts (29.09 dB)",
                    "14D4V4raNYIOhETfcuuLI3bGLB-OYIv6X",
                    _hugging_face("NAFNet-REDS-width64.pth", "spaces/chuxiaojie/NAFNet", *MIRRORS)),
)}


def official_path(weights: OfficialWeights) -> Path:
    """Where `weights` lives once fetched: the cache folder, under the authors' file name."""
    return user_cache_dir("weights") / weights.file


def offline_advice(weights: OfficialWeights) -> str:
    """How to install `weights` by hand: which file, from where, to which path."""
    return f"place {weights.file} ({weights.size:,} bytes, from {weights.drive_url}) at {official_path(weights)}"


def missing_message(weights: OfficialWeights, option: str = "checkpoint") -> str:
    """What to do when `weights` is not in the cache folder: fetch it, or place it there by hand."""
    return (f"{option} {weights.name}: the official weights are not in the cache yet: run `b2b-train "
            f"fetch-weights {weights.name}`, or offline {offline_advice(weights)}")


class _MirrorFailed(Exception):
    """One mirror did not deliver the file; the message says why."""


def _download(url: str, part: Path, size: int, progress: bool) -> None:
    """Complete `part` from `url`: resumed where it ends if the server honours Range, else from the start."""
    from tqdm import tqdm

    start = part.stat().st_size if part.exists() else 0
    if start >= size:
        return
    request = urllib.request.Request(url, headers={"User-Agent": "blur2blur"})
    if start:
        request.add_header("Range", f"bytes={start}-")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            if response.status != 206 or not response.headers.get("Content-Range", "").startswith(f"bytes {start}-"):
                start = 0  # the server sent the whole file
            length = response.headers.get("Content-Length")
            if length is not None and start + int(length) != size:
                raise _MirrorFailed(f"serves {start + int(length):,} bytes, expected {size:,}")
            with open(part, "r+b" if start else "wb") as f, \
                    tqdm(total=size, initial=start, unit="B", unit_scale=True, unit_divisor=1024,
                         desc=part.name.removesuffix(".part"), disable=not progress, leave=False) as bar:
                f.seek(start)
                f.truncate()
                while chunk := response.read(CHUNK):
                    f.write(chunk)
                    bar.update(len(chunk))
                f.flush()
                os.fsync(f.fileno())  # on disk before it is renamed into place
    except urllib.error.HTTPError as err:
        raise _MirrorFailed(f"HTTP {err.code} {err.reason}") from None
    except urllib.error.URLError as err:
        raise _MirrorFailed(str(err.reason)) from None
    except (http.client.HTTPException, ConnectionError, TimeoutError) as err:  # cut off mid-file
        raise _MirrorFailed(f"{type(err).__name__}: {err}".rstrip(": ")) from None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _verified(path: Path, weights: OfficialWeights) -> bool:
    return path.stat().st_size == weights.size and _sha256(path) == weights.sha256


def fetch_weights(weights: OfficialWeights, progress: bool = True) -> Path:
    """Put `weights` at `official_path(weights)`, verified by size and sha256, and return that path.

    A file already there that verifies is kept. Mirrors are tried in order; a partial `.part` left by an
    interrupted run is resumed, and one that turns out wrong is downloaded again from the start.
    """
    target = official_path(weights)
    if target.is_file():
        if _verified(target, weights):
            log.info("%s: %s is in place", weights.name, target)
            return target
        log.warning("%s: %s is not the official file (size or sha256 differ): fetching it again", weights.name, target)
    part = target.with_name(target.name + ".part")
    failures = []
    with Lock(beside(target), f"fetch-weights {weights.name}"):
        for url in weights.mirrors:
            while True:
                resumed = part.exists() and part.stat().st_size > 0
                try:
                    _download(url, part, weights.size, progress)
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
    raise UserError(f"fetch-weights {weights.name}: no mirror delivered {weights.file} ({'; '.join(failures)}): "
                    f"check the network, or offline {offline_advice(weights)}")

