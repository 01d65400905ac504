"""Dataset readers: blur/sharp pairs and unpaired images from the layouts users already have.

Everything here lists files cheaply and decodes lazily. `validate()` decodes a set once, drops what
cannot be read and logs one summary line; `load(i)` never raises on a bad file, it returns None.
Images come back as H x W x 3 uint8 BGR (gray, RGBA and 16-bit files are converted).
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import cv2
import numpy as np
from tqdm import tqdm

from blur2blur.errors import UserError
from blur2blur.images import IMAGE_SUFFIXES, VIDEO_SUFFIXES, is_image, is_video, natural_key, read_bgr, to_bgr8

log = logging.getLogger(__name__)

# Folder names accepted for the two halves of a pair folder, in order of preference.
BLUR_DIRS = ("blur", "blurry", "input")
SHARP_DIRS = ("sharp", "gt", "target")
# File-name tags for pairs kept side by side in one folder: `x_blur.png` with `x_gt.png`.
BLUR_TAGS = ("blur", "blurry")
SHARP_TAGS = ("gt", "sharp")

LOOKED_FOR = ", ".join(IMAGE_SUFFIXES)
_WORKERS = min(8, os.cpu_count() or 1)
_PROGRESS_FROM = 200  # show a progress bar when checking at least this many files


# --------------------------------------------------------------------------- small helpers


def _summary(names: Sequence[str], limit: int = 10) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... (+{len(names) - limit} more)" if len(names) > limit else "")


def _walk_files(root: Path) -> list[Path]:
    """Every non-hidden file under root (following links, once each), in natural order."""
    found: list[Path] = []
    seen: set[str] = set()
    for folder, dirs, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:  # a symlink loop or a folder linked twice
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found.extend(Path(folder) / f for f in files if not f.startswith("."))
    return sorted(found, key=lambda p: natural_key(p.relative_to(root).as_posix()))


def _rel_key(path: Path, root: Path) -> str:
    """`seq/000001` for root/seq/000001.png: the relative path without its suffix."""
    return path.relative_to(root).with_suffix("").as_posix()


def _images_by_key(folder: Path) -> dict[str, Path]:
    """Images under folder keyed by relative path without suffix; the first of `a.png`/`a.jpg` wins."""
    keyed: dict[str, Path] = {}
    doubles: list[str] = []
    for path in _walk_files(folder):
        if not is_image(path):
            continue
        key = _rel_key(path, folder)
        if key in keyed:
            doubles.append(path.relative_to(folder).as_posix())
        else:
            keyed[key] = path
    if doubles:
        log.warning(
            "%s: %d files share a name with another suffix, using the first: %s", folder, len(doubles), _summary(doubles)
        )
    return keyed


def _existing_dir(root: str | Path) -> Path:
    path = Path(root).expanduser()
    if not path.exists():
        raise UserError(f"{root}: no such folder")
    if not path.is_dir():
        raise UserError(f"{root}: is a file, not a folder")
    return path


def _first_dir(parent: Path, names: Iterable[str]) -> Path | None:
    for name in names:
        if (parent / name).is_dir():
            return parent / name
    return None


def _subdirs(folder: Path) -> list[Path]:
    try:
        children = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
    except OSError:
        return []
    return sorted(children, key=lambda p: natural_key(p.name))


def _holds_images(folder: Path) -> bool:
    return any(is_image(p) or is_video(p) for p in _walk_files(folder))


# --------------------------------------------------------------------------- pairs


@dataclass(frozen=True)
class Pair:
    """One blurry image and its aligned sharp ground truth."""

    name: str
    blur_path: Path
    sharp_path: Path


class PairedSet:
    """Aligned blur/sharp pairs; `load(i)` decodes one pair, `validate()` checks them all once."""

    def __init__(self, pairs: Sequence[Pair], source: str = "") -> None:
        self.pairs: list[Pair] = list(pairs)
        self.source = source
        self.skipped: list[str] = []  # names of pairs found unreadable or of mismatched sizes

    def __len__(self) -> int:
        return len(self.pairs)

    def __repr__(self) -> str:
        return f"PairedSet({self.source!r}, {len(self.pairs)} pairs, {len(self.skipped)} skipped)"

    @property
    def names(self) -> list[str]:
        return [pair.name for pair in self.pairs]

    def load(self, i: int) -> tuple[np.ndarray, np.ndarray] | None:
        """(blur, sharp) as uint8 BGR; None (and the name noted in `skipped`) when unreadable or sizes differ."""
        pair = self.pairs[i]
        images = _read_pair(pair)
        if images is None and pair.name not in self.skipped:
            log.debug("unreadable or mismatched pair %s (%s, %s)", pair.name, pair.blur_path, pair.sharp_path)
            self.skipped.append(pair.name)
        return images

    def validate(self) -> PairedSet:
        """Decode every pair once, drop the bad ones and log one line naming them; returns self."""
        ok = _check_all(self.pairs, lambda pair: _read_pair(pair) is not None, "checking pairs")
        bad = [pair.name for pair, good in zip(self.pairs, ok) if not good]
        self.pairs = [pair for pair, good in zip(self.pairs, ok) if good]
        self.skipped.extend(name for name in bad if name not in self.skipped)
        if bad:
            log.warning("%s: skipped %d unreadable/mismatched pairs: %s", self.source, len(bad), _summary(bad))
        return self


def _read_pair(pair: Pair) -> tuple[np.ndarray, np.ndarray] | None:
    blur = read_bgr(pair.blur_path)
    sharp = read_bgr(pair.sharp_path) if blur is not None else None
    if blur is None or sharp is None or blur.shape != sharp.shape:
        return None
    return blur, sharp


def _check_all(items: Sequence, check: Callable[[object], bool], what: str) -> list[bool]:
    """check(item) for every item on a few threads (OpenCV decodes without the GIL), in order."""
    bar = tqdm(total=len(items), desc=what, unit="file", leave=False, disable=True if len(items) < _PROGRESS_FROM else None)
    with ThreadPoolExecutor(_WORKERS) as pool:
        results = []
        for good in pool.map(check, items):
            results.append(good)
            bar.update()
    bar.close()
    return results


def _match(blur: dict[str, Path], sharp: dict[str, Path], prefix: str = "") -> tuple[list[Pair], list[str], list[str]]:
    """Pairs for the keys both sides have, plus the keys only one side has."""
    pairs = [Pair(prefix + key, blur[key], sharp[key]) for key in blur if key in sharp]
    only_blur = [prefix + key for key in blur if key not in sharp]
    only_sharp = [prefix + key for key in sharp if key not in blur]
    return pairs, only_blur, only_sharp


def _pair_set(source: str, pairs: list[Pair], only_blur: list[str], only_sharp: list[str], hint: str) -> PairedSet:
    """One warning for names found on one side only; no pair at all is a UserError."""
    if not pairs:
        if not only_blur and not only_sharp:
            raise UserError(f"{source}: holds no images (looked for {LOOKED_FOR}); {hint}")
        raise UserError(
            f"{source}: no blurry image has a sharp partner of the same name "
            f"({len(only_blur)} blurry like {_summary(only_blur, 3)}; "
            f"{len(only_sharp)} sharp like {_summary(only_sharp, 3)}); {hint}"
        )
    if only_blur or only_sharp:
        log.warning(
            "%s: %d blurry without a sharp partner (%s), %d sharp without a blurry partner (%s); using the %d pairs",
            source, len(only_blur), _summary(only_blur, 5), len(only_sharp), _summary(only_sharp, 5), len(pairs),
        )
    pairs.sort(key=lambda pair: natural_key(pair.name))
    return PairedSet(pairs, source)


# --------------------------------------------------------------------------- pair readers


def paired_folder(root: str | Path) -> PairedSet:
    """`root/blur/*` with `root/sharp/*` matched by name (sub-folders too); falls back to suffix pairs."""
    path = _existing_dir(root)
    blur_dir, sharp_dir = _first_dir(path, BLUR_DIRS), _first_dir(path, SHARP_DIRS)
    if blur_dir is None or sharp_dir is None:
        if _has_suffix_pairs(path):
            return suffix_pairs(path)
        raise UserError(
            f"{root}: expected a blur/ and a sharp/ folder (or files named x_blur.png with x_gt.png); "
            f"it holds {_summary([p.name for p in _subdirs(path)] or ['no folders'], 5)}"
        )
    pairs, only_blur, only_sharp = _match(_images_by_key(blur_dir), _images_by_key(sharp_dir))
    hint = f"name each pair the same in {blur_dir.name}/ and {sharp_dir.name}/"
    return _pair_set(str(root), pairs, only_blur, only_sharp, hint)


def _split_tag(stem: str, tags: Sequence[str]) -> str | None:
    for tag in tags:
        for sep in ("_", "-", "."):
            if stem.lower().endswith(sep + tag):
                return stem[: -len(tag) - 1]
    return None


def _has_suffix_pairs(folder: Path) -> bool:
    stems = [p.stem for p in folder.iterdir() if p.is_file() and is_image(p)]
    return any(_split_tag(s, BLUR_TAGS) for s in stems) and any(_split_tag(s, SHARP_TAGS) for s in stems)


def suffix_pairs(root: str | Path) -> PairedSet:
    """Pairs side by side in one folder: `x_blur.*` (or `_blurry`) with `x_gt.*` (or `_sharp`), named `x`."""
    path = _existing_dir(root)
    blur: dict[str, Path] = {}
    sharp: dict[str, Path] = {}
    for file in _walk_files(path):
        if not is_image(file):
            continue
        rel = file.relative_to(path).with_suffix("")
        base = _split_tag(rel.name, BLUR_TAGS)
        side = blur
        if base is None:
            base, side = _split_tag(rel.name, SHARP_TAGS), sharp
        if base is not None:
            side.setdefault((rel.parent / base).as_posix(), file)
    pairs, only_blur, only_sharp = _match(blur, sharp)
    return _pair_set(str(root), pairs, only_blur, only_sharp, "name pairs x_blur.png and x_gt.png (or x_sharp.png)")


def _gopro_split_dir(root: Path, split: str) -> Path:
    for candidate in (root / split, root / "GOPRO_Large" / split):
        if candidate.is_dir():
            return candidate
    dataset_root = _first_dir(root, ("train", "test", "GOPRO_Large")) is not None
    holds_pairs = _first_dir(root, ("blur", "blur_gamma")) or any((d / "sharp").is_dir() for d in _subdirs(root))
    if holds_pairs and not dataset_root:
        return root  # the user pointed at the split folder itself
    others = [d.name for d in _subdirs(root / "GOPRO_Large" if (root / "GOPRO_Large").is_dir() else root)]
    hint = f"; it holds {_summary(others, 5)} (choose one with ?split=NAME)" if others else ""
    raise UserError(
        f"{root}: no {split}/ folder "
        f"(expected GOPRO_Large/{split}/<sequence>/{{blur,sharp}}/ or {split}/{{blur,sharp}}/){hint}"
    )


def gopro(root: str | Path, split: str = "train", gamma: bool = False) -> PairedSet:
    """GoPro: `{split}/<seq>/{blur,blur_gamma,sharp}/*.png` named `<seq>/<frame>`, or flattened `{split}/{blur,sharp}/`."""
    path = _existing_dir(root)
    split_dir = _gopro_split_dir(path, split)
    blur_name = "blur_gamma" if gamma else "blur"
    source = f"{root} ({split_dir.name})"
    if (split_dir / "sharp").is_dir() and _first_dir(split_dir, ("blur", "blur_gamma")):
        sequences = [("", split_dir)]  # flattened form
    else:
        sequences = [(d.name + "/", d) for d in _subdirs(split_dir) if (d / "sharp").is_dir()]
    if not sequences:
        raise UserError(f"{split_dir}: no <sequence>/sharp/ folders (is this the GoPro dataset?)")
    pairs: list[Pair] = []
    only_blur: list[str] = []
    only_sharp: list[str] = []
    for prefix, folder in sequences:
        if not (folder / blur_name).is_dir():
            hint = "drop gamma=1 to use blur/" if gamma else "pass gamma=1 to use blur_gamma/"
            raise UserError(f"{folder}: has no {blur_name}/ folder; {hint}")
        found, blur_only, sharp_only = _match(_images_by_key(folder / blur_name), _images_by_key(folder / "sharp"), prefix)
        pairs += found
        only_blur += blur_only
        only_sharp += sharp_only
    return _pair_set(source, pairs, only_blur, only_sharp, f"GoPro names frames the same in {blur_name}/ and sharp/")


def _find_dir(root: Path, name: str, depth: int = 2) -> Path | None:
    """root/name, or the first such folder up to `depth` levels down (REDS zips nest one level)."""
    level = [root]
    for _ in range(depth + 1):
        for folder in level:
            if (folder / name).is_dir():
                return folder / name
        level = [child for folder in level for child in _subdirs(folder)]
    return None


def reds(root: str | Path, split: str = "train") -> PairedSet:
    """REDS: `{split}_blur/<seq>/<frame>.png` with `{split}_sharp/<seq>/<frame>.png`, named `<seq>/<frame>`."""
    path = _existing_dir(root)
    blur_dir, sharp_dir = _find_dir(path, f"{split}_blur"), _find_dir(path, f"{split}_sharp")
    if blur_dir is None or sharp_dir is None:
        missing = " and ".join(n for n, d in ((f"{split}_blur/", blur_dir), (f"{split}_sharp/", sharp_dir)) if d is None)
        raise UserError(
            f"{root}: no {missing} folder (REDS layout: {split}_blur/<seq>/<frame>.png; other splits: ?split=val)"
        )
    pairs, only_blur, only_sharp = _match(_images_by_key(blur_dir), _images_by_key(sharp_dir))
    hint = f"name frames the same in {blur_dir.name}/ and {sharp_dir.name}/"
    return _pair_set(f"{root} ({split})", pairs, only_blur, only_sharp, hint)


def _rsblur_frames(root: Path) -> dict[str, Path]:
    """`<scene>/<frame>` -> frame folder, for every folder holding real_blur/real_blur.png."""
    frames: dict[str, Path] = {}
    for pattern in ("*/*/real_blur/real_blur.png", "*/*/*/real_blur/real_blur.png"):
        for blur in sorted(root.glob(pattern)):
            frame = blur.parent.parent
            frames.setdefault(f"{frame.parent.name}/{frame.name}", frame)
        if frames:
            break
    return frames


def _split_entries(split_file: Path) -> list[str]:
    """First token of every non-empty, non-comment line."""
    try:
        lines = split_file.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as err:
        raise UserError(f"{split_file}: cannot read the split list ({err.strerror})") from None
    return [line.split()[0] for line in lines if line.strip() and not line.lstrip().startswith("#")]


def rsblur(root: str | Path, split_file: str | Path | None = None) -> PairedSet:
    """RSBlur: `<scene>/<frame>/real_blur/real_blur.png` with `gt/gt_sharp.png`, named `<scene>/<frame>`.

    split_file: optional list (e.g. RSBlur_real_train.txt); each line's first token is a path that
    contains `<scene>/<frame>` somewhere; other tokens and lines that match nothing are ignored (counted).
    """
    path = _existing_dir(root)
    frames = _rsblur_frames(path)
    if not frames:
        raise UserError(f"{root}: no <scene>/<frame>/real_blur/real_blur.png files (is this the RSBlur dataset?)")
    keys = list(frames)
    source = str(root)
    if split_file is not None:
        listed = Path(split_file).expanduser()
        if not listed.is_file():
            raise UserError(f"{split_file}: no such split list")
        source = f"{root} ({listed.name})"
        keys, unknown = [], []
        for entry in _split_entries(listed):
            parts = [p for p in re.split(r"[\\/]+", entry) if p]
            key = next((f"{a}/{b}" for a, b in zip(parts, parts[1:]) if f"{a}/{b}" in frames), None)
            if key is None:
                unknown.append(entry)
            elif key not in keys:
                keys.append(key)
        if unknown:
            log.warning("%s: %d entries name no frame under %s: %s", listed, len(unknown), root, _summary(unknown, 3))
        if not keys:
            raise UserError(f"{split_file}: none of its entries names a <scene>/<frame> folder under {root}")
    pairs = [Pair(k, frames[k] / "real_blur" / "real_blur.png", frames[k] / "gt" / "gt_sharp.png") for k in keys]
    no_gt = [pair.name for pair in pairs if not pair.sharp_path.is_file()]
    pairs = [pair for pair in pairs if pair.sharp_path.is_file()]
    return _pair_set(source, pairs, no_gt, [], "each frame folder needs gt/gt_sharp.png")


# --------------------------------------------------------------------------- unpaired images


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
        path = _existing_dir(root)
        items: list[_Item] = []
        skipped: list[str] = []
        for file in _walk_files(path):
            if is_image(file):
                items.append(_Item(file.relative_to(path).as_posix(), file))
            elif is_video(file):
                frames = _video_items(file, _rel_key(file, path), frame_step)
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
        readable = _check_all([self.items[i].path for i in files], lambda p: read_bgr(p) is not None, "checking images")
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
            log.warning("%s: skipped %d unreadable images/videos: %s", self.source, len(new), _summary(new))
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


# --------------------------------------------------------------------------- Blur2Blur's own layout


@dataclass
class Blur2BlurLayout:
    """Blur2Blur's `<name>/{trainA, trainB, trainC, trainD, testA}`; absent or empty parts are None."""

    root: Path
    unknown_blurry: ImageSet  # trainA: the target camera's blur
    unknown_sharp: ImageSet | None = None  # trainB
    known_pairs: PairedSet | None = None  # trainC (blurry) + trainD (sharp), matched by name
    test: ImageSet | None = None  # testA


def _b2b_root(root: Path) -> Path | None:
    """root, or its only sub-folder, when it holds trainA/ or trainC/ + trainD/."""
    def looks(p: Path) -> bool:
        return (p / "trainA").is_dir() or ((p / "trainC").is_dir() and (p / "trainD").is_dir())

    if looks(root):
        return root
    inside = [d for d in _subdirs(root) if looks(d)]
    return inside[0] if len(inside) == 1 else None


def blur2blur_layout(root: str | Path) -> Blur2BlurLayout:
    """Open a Blur2Blur data folder: trainA is required, the other parts are optional."""
    path = _existing_dir(root)
    base = _b2b_root(path)
    if base is None:
        raise UserError(
            f"{root}: expected Blur2Blur folders trainA/ (unknown blurry), trainB/, trainC/ + trainD/ (known pairs), testA/"
        )

    def images(name: str) -> ImageSet | None:
        folder = base / name
        if not folder.is_dir():
            return None
        if not _holds_images(folder):
            log.warning("%s: holds no images, ignoring it", folder)
            return None
        return ImageSet.from_folder(folder)

    unknown_blurry = images("trainA")
    if unknown_blurry is None:
        raise UserError(
            f"{base / 'trainA'}: missing or holds no images (looked for {LOOKED_FOR}); "
            "put the target camera's blurry frames there"
        )
    known = None
    if (base / "trainC").is_dir() and (base / "trainD").is_dir():
        pairs, only_blur, only_sharp = _match(_images_by_key(base / "trainC"), _images_by_key(base / "trainD"))
        hint = "name each pair the same in trainC/ and trainD/"
        known = _pair_set(f"{base} (trainC/trainD)", pairs, only_blur, only_sharp, hint)
    return Blur2BlurLayout(base, unknown_blurry, images("trainB"), known, images("testA"))


# --------------------------------------------------------------------------- user source strings

# `kind:PATH?key=value&...`; these are the kinds open_pairs/open_images understand.
PAIR_KINDS = ("folder", "suffix", "gopro", "reds", "rsblur", "b2b", "synthetic")
IMAGE_KINDS = ("folder", "video")
_OPTIONS = {
    "folder": (),
    "suffix": (),
    "gopro": ("split", "gamma"),
    "reds": ("split",),
    "rsblur": ("split_file",),
    "b2b": (),
    "video": ("every",),
    "images": ("every",),
}


@dataclass(frozen=True)
class SourceSpec:
    """A parsed source string: kind (None to detect), path and `?key=value` options."""

    kind: str | None
    path: str
    options: dict[str, str]


def parse_spec(spec: str, kinds: Sequence[str] = PAIR_KINDS) -> SourceSpec:
    """Split `kind:PATH?key=value&key=value`; a bare PATH leaves kind None. Windows drives are not kinds."""
    kind, rest = None, spec.strip()
    match = re.match(r"^([A-Za-z][\w+-]*):(.*)$", rest)
    if match and len(match.group(1)) > 1 and not Path(rest).exists():
        kind, rest = match.group(1).lower(), match.group(2)
        if kind not in kinds:
            known = ", ".join(k + ":" for k in kinds)
            raise UserError(f"{spec}: unknown source kind '{kind}'; use one of {known} or a plain path")
    options: dict[str, str] = {}
    if "?" in rest and not Path(rest).exists():
        rest, query = rest.rsplit("?", 1)
        for part in filter(None, query.split("&")):
            key, sep, value = part.partition("=")
            if not sep or not key:
                raise UserError(f"{spec}: option '{part}' should read key=value")
            options[key.strip().replace("-", "_")] = value.strip()
    return SourceSpec(kind, rest, options)


def _check_options(spec: str, kind: str, options: dict[str, str]) -> None:
    allowed = _OPTIONS.get(kind, ())
    unknown = [key for key in options if key not in allowed]
    if unknown:
        valid = ", ".join(allowed) if allowed else "none"
        raise UserError(f"{spec}: unknown option {', '.join(unknown)} for {kind} (valid: {valid})")


def _flag(spec: str, value: str) -> bool:
    low = value.lower()
    if low in ("1", "true", "yes", "on", ""):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise UserError(f"{spec}: '{value}' is not a yes/no value (use 1 or 0)")


def detect_pair_layout(root: str | Path) -> str | None:
    """Which pair reader fits the folder: one of PAIR_KINDS, or None when nothing fits."""
    path = Path(root)
    if _b2b_root(path) is not None:
        return "b2b"
    if _first_dir(path, BLUR_DIRS) and _first_dir(path, SHARP_DIRS):
        return "folder"
    if (path / "GOPRO_Large").is_dir():
        return "gopro"
    def gopro_split(folder: Path) -> bool:
        return any((d / "sharp").is_dir() and (d / "blur").is_dir() for d in [folder, *_subdirs(folder)])

    if any(folder.is_dir() and gopro_split(folder) for folder in (path / "train", path / "test", path)):
        return "gopro"
    if _reds_splits(path):
        return "reds"
    if _rsblur_frames_exist(path):
        return "rsblur"
    if _has_suffix_pairs(path):
        return "suffix"
    return None


def _reds_splits(root: Path) -> list[str]:
    """Split names with both `<split>_blur/` and `<split>_sharp/` at root or one level down."""
    found = []
    for folder in [root, *_subdirs(root)]:
        for d in _subdirs(folder):
            split = d.name[: -len("_blur")]
            if d.name.endswith("_blur") and (folder / f"{split}_sharp").is_dir() and split not in found:
                found.append(split)
    return found


def _rsblur_frames_exist(root: Path) -> bool:
    return any(next(root.glob(p), None) for p in ("*/*/real_blur/real_blur.png", "*/*/*/real_blur/real_blur.png"))


def open_pairs(spec: str, *, option: str = "--pairs", validate: bool = True) -> PairedSet:
    """Resolve a user's pair source: `[kind:]PATH[?key=value&...]`, the layout detected when no kind is given.

    Kinds and options: folder:, suffix:, gopro:(split=train|test, gamma=0|1), reds:(split=train|val),
    rsblur:(split_file=LIST), b2b: (its trainC/trainD known pairs), synthetic:DOMAIN(sharp=SPEC, size=N,
    count=N, seed=N: pairs made on the fly, see train/synthetic.py). By default every pair is decoded once
    (`validate()`), so `load(i)` of the result returns a pair; validate=False only lists the files.
    """
    try:
        parsed = parse_spec(spec, PAIR_KINDS)
        kind = parsed.kind
        if kind == "synthetic":
            from blur2blur.train.synthetic import synthetic_pairs  # imports this module

            return synthetic_pairs(spec, parsed.path, parsed.options)
        path = _existing_dir(parsed.path)
        if kind is None:
            kind = detect_pair_layout(path)
        if kind is None:
            if not _holds_images(path):
                raise UserError(f"{parsed.path}: holds no images (looked for {LOOKED_FOR})")
            raise UserError(
                f"{parsed.path}: no pair layout found; expected blur/ + sharp/, x_blur.png + x_gt.png, GoPro, REDS, "
                f"RSBlur or Blur2Blur trainC/ + trainD/ (or name it: folder:, gopro:, reds:, rsblur:, b2b:)"
            )
        opts = parsed.options
        _check_options(spec, kind, opts)
        if kind == "folder":
            pairs = paired_folder(path)
        elif kind == "suffix":
            pairs = suffix_pairs(path)
        elif kind == "gopro":
            pairs = gopro(path, opts.get("split", "train"), _flag(spec, opts.get("gamma", "0")))
        elif kind == "reds":
            splits = _reds_splits(path)
            pairs = reds(path, opts.get("split", "train" if "train" in splits or not splits else splits[0]))
        elif kind == "rsblur":
            pairs = rsblur(path, opts.get("split_file"))
        else:  # b2b
            layout = blur2blur_layout(path)
            if layout.known_pairs is None:
                raise UserError(f"{parsed.path}: has no trainC/ + trainD/ known pairs")
            pairs = layout.known_pairs
        log.debug("%s: %d pairs (%s)", spec, len(pairs), kind)
        if validate and not pairs.validate().pairs:
            raise UserError(f"{parsed.path}: none of its {len(pairs.skipped)} pairs can be read (see the line above)")
    except UserError as err:
        raise UserError(f"{option} {err}" if option else str(err)) from None
    return pairs


def open_images(spec: str, *, option: str = "--images", frame_step: int = 1, validate: bool = True) -> ImageSet:
    """Resolve unpaired images: a folder (images and videos, recursive), a video file or one image file.

    `[folder:|video:]PATH[?every=K]`; every=K (or frame_step) keeps every K-th video frame. By default
    everything is decoded once (`validate()`); validate=False only lists the files.
    """
    try:
        parsed = parse_spec(spec, IMAGE_KINDS)
        _check_options(spec, "video" if parsed.kind == "video" else "images", parsed.options)
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
                raise UserError(f"{parsed.path}: neither an image ({LOOKED_FOR}) nor a video ({', '.join(VIDEO_SUFFIXES)})")
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
