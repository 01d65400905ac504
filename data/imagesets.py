"""Unpaired images: image files, and frames of video files, read lazily (`--images`, a camera's frames)."""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np

from blur2blur.data.files import LOOKED_FOR, check_all, existing_dir, rel_key, summary, walk_files
from blur2blur.data.spec import check_options, parse_spec
from blur2blur.errors import UserError
from blur2blur.images import VIDEO_SUFFIXES, is_image, is_video, read_bgr, to_bgr8

log = logging.getLogger(__name__)

IMAGE_KINDS = ("folder", "video")  # the kinds of `open_images`' source strings

@dataclass(frozen=True)
class _Item:
    name: str
    path: Path
    frame: int | None = None  # frame index for a video, None for an image file


class _VideoFrames:
    """A few open captures, kept so that frames read in order never seek; safe across fork and pickle."""

    def __init__(self, keep: int = 4) -> None:
        self.keep = keep
        self.lock = threading.Lock()
        self.open: OrderedDict[Path, tuple[cv2.VideoCapture, int]] = OrderedDict()
        self.pid = os.getpid()

    def read(self, path: Path, index: int) -> np.ndarray | None:
        with self.lock:
            if self.pid != os.getpid():  # a DataLoader worker must not share the parent's file offsets
                self.open.clear()
                self.pid = os.getpid()
            cap, pos = self.open.pop(path, (None, 0))
            if cap is None:
                cap = cv2.VideoCapture(str(path))
                if not cap.isOpened():
                    return None
            if index < pos or index - pos > 32:
                cap.set(cv2.CAP_PROP_POS_FRAMES, index)
                pos = index
            while pos < index and cap.grab():
                pos += 1
            ok, frame = cap.read() if pos == index else (False, None)
            self.open[path] = (cap, index + 1 if ok else 1 << 62)  # a failed read forces a seek next time
            while len(self.open) > self.keep:
                self.open.popitem(last=False)[1][0].release()
        return to_bgr8(frame) if ok and frame is not None and frame.size else None


def _count_frames(cap: cv2.VideoCapture) -> int:
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    if count > 0:
        return count
    count = 0  # some containers do not say: count by decoding
    while cap.grab():
        count += 1
    return count


class ImageSet:
    """Unpaired images: files, and every k-th frame of video files (named `<video stem>/<index>`)."""

    def __init__(self, items: Sequence[_Item], source: str = "", skipped: Sequence[str] = ()) -> None:
        self.items: list[_Item] = list(items)
        self.source = source
        self.skipped: list[str] = list(skipped)  # names of unreadable files or frames
        self._reported = 0
        self._videos = _VideoFrames()

    @classmethod
    def from_folder(cls, root: str | Path, frame_step: int = 1) -> ImageSet:
        """Images and videos under root (recursive, natural order); videos give every frame_step-th frame."""
        path = existing_dir(root)
        items: list[_Item] = []
        skipped: list[str] = []
        for file in walk_files(path):
            if is_image(file):
                items.append(_Item(file.relative_to(path).as_posix(), file))
            elif is_video(file):
                frames = _video_items(file, rel_key(file, path), frame_step)
                items += frames or []
                if not frames:
                    skipped.append(file.relative_to(path).as_posix())
        images = cls(items, str(root), skipped)
        images._report()
        return images

    @classmethod
    def from_video(cls, path: str | Path, frame_step: int = 1) -> ImageSet:
        """Every frame_step-th frame of one video file."""
        file = Path(path).expanduser()
        if not file.is_file():
            raise UserError(f"{path}: no such video file")
        frames = _video_items(file, file.stem, frame_step)
        if not frames:
            raise UserError(f"{path}: OpenCV cannot decode it (truncated, or not a video it knows)")
        return cls(frames, str(path))

    @classmethod
    def from_files(cls, paths: Iterable[str | Path], source: str = "") -> ImageSet:
        """Image files given one by one, named by file name."""
        return cls([_Item(Path(p).name, Path(p)) for p in paths], source)

    def __len__(self) -> int:
        return len(self.items)

    def __repr__(self) -> str:
        return f"ImageSet({self.source!r}, {len(self.items)} images, {len(self.skipped)} skipped)"

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_videos"] = None  # open captures do not pickle; each process opens its own
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._videos = _VideoFrames()

    @property
    def names(self) -> list[str]:
        return [item.name for item in self.items]

    def load(self, i: int) -> np.ndarray | None:
        """Image or frame i as uint8 BGR; None (and the name noted in `skipped`) when it cannot be decoded."""
        item = self.items[i]
        image = read_bgr(item.path) if item.frame is None else self._videos.read(item.path, item.frame)
        if image is None and item.name not in self.skipped:
            self.skipped.append(item.name)
        return image

    def validate(self) -> ImageSet:
        """Decode everything once, drop what fails and log one line naming it; returns self."""
        ok = dict.fromkeys(range(len(self.items)), False)
        files = [i for i, item in enumerate(self.items) if item.frame is None]
        readable = check_all([self.items[i].path for i in files], lambda p: read_bgr(p) is not None, "checking images")
        ok.update(zip(files, readable))
        by_video: dict[Path, list[int]] = {}
        for i, item in enumerate(self.items):
            if item.frame is not None:
                by_video.setdefault(item.path, []).append(i)
        for path, indices in by_video.items():
            for i in _decodable_frames(path, {self.items[i].frame: i for i in indices}):
                ok[i] = True
        bad = [self.items[i].name for i in ok if not ok[i]]
        self.items = [self.items[i] for i in ok if ok[i]]
        self.skipped.extend(name for name in bad if name not in self.skipped)
        self._report()
        return self

    def _report(self) -> None:
        """One log line for the skips not yet reported."""
        new = self.skipped[self._reported :]
        if new:
            log.warning("%s: skipped %d unreadable images/videos: %s", self.source, len(new), summary(new))
        self._reported = len(self.skipped)


def _video_items(file: Path, prefix: str, frame_step: int) -> list[_Item] | None:
    """Items for frames 0, k, 2k, ... of a video; None when it does not open or holds no frame."""
    if frame_step < 1:
        raise UserError(f"{file}: the frame step must be 1 or more, not {frame_step}")
    cap = cv2.VideoCapture(str(file))
    try:
        count = _count_frames(cap) if cap.isOpened() else 0
    finally:
        cap.release()
    if count <= 0:
        return None
    return [_Item(f"{prefix}/{index:06d}", file, index) for index in range(0, count, frame_step)]


def _decodable_frames(path: Path, wanted: dict[int, int]) -> list[int]:
    """Decode a video in order once; the item indices (values of wanted) whose frames decoded."""
    good: list[int] = []
    cap = cv2.VideoCapture(str(path))
    try:
        pos = 0
        for frame_index in sorted(wanted):
            while pos < frame_index and cap.grab():
                pos += 1
            if pos != frame_index:
                break
            ok, frame = cap.read()
            pos += 1
            if not ok or frame is None or frame.size == 0:
                break
            good.append(wanted[frame_index])
    finally:
        cap.release()
    return good


def open_images(spec: str, *, option: str = "--images", frame_step: int = 1, validate: bool = True) -> ImageSet:
    """Resolve unpaired images: a folder (images and videos, recursive), a video file or one image file.

    `[folder:|video:]PATH[?every=K]`; every=K (or frame_step) keeps every K-th video frame. By default
    everything is decoded once (`validate()`); validate=False only lists the files.
    """
    try:
        parsed = parse_spec(spec, IMAGE_KINDS)
        check_options(spec, "video" if parsed.kind == "video" else "images", parsed.options, ("every",))
        step = frame_step
        if "every" in parsed.options:
            try:
                step = int(parsed.options["every"])
            except ValueError:
                raise UserError(f"{spec}: every= takes a whole number of frames") from None
        path = Path(parsed.path).expanduser()
        if not path.exists():
            raise UserError(f"{parsed.path}: no such file or folder")
        if path.is_file():
            if is_video(path) or parsed.kind == "video":
                images = ImageSet.from_video(path, step)
            elif is_image(path):
                images = ImageSet.from_files([path], str(path))
            else:
                raise UserError(f"{parsed.path}: neither an image ({LOOKED_FOR}) "
                                f"nor a video ({', '.join(VIDEO_SUFFIXES)})")
        else:
            images = ImageSet.from_folder(path, step)
            if not images.items:
                raise UserError(f"{parsed.path}: holds no images (looked for {LOOKED_FOR}, and videos)")
        log.debug("%s: %d images", spec, len(images))
        if validate and not images.validate().items:
            raise UserError(f"{parsed.path}: none of its images can be read (see the line above)")
    except UserError as err:
        raise UserError(f"{option} {err}" if option else str(err)) from None
    return images
