"""Blur/sharp pairs: the set type, and the two generic layouts (blur/ + sharp/ folders, x_blur + x_gt files).

A set lists files cheaply and decodes lazily: `validate()` decodes it once, drops what cannot be read and
logs one summary line; `load(i)` never raises on a bad file, it returns None. Images come back as
H x W x 3 uint8 BGR (gray, RGBA and 16-bit files are converted).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from blur2blur.data.files import (
    LOOKED_FOR,
    check_all,
    existing_dir,
    first_dir,
    images_by_key,
    subdirs,
    summary,
    walk_files,
)
from blur2blur.errors import UserError
from blur2blur.images import is_image, natural_key, read_bgr

log = logging.getLogger(__name__)

# Folder names accepted for the two halves of a pair folder, in order of preference.
BLUR_DIRS = ("blur", "blurry", "input")
SHARP_DIRS = ("sharp", "gt", "target")
# File-name tags for pairs kept side by side in one folder: `x_blur.png` with `x_gt.png`.
BLUR_TAGS = ("blur", "blurry")
SHARP_TAGS = ("gt", "sharp")


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
        ok = check_all(self.pairs, lambda pair: _read_pair(pair) is not None, "checking pairs")
        bad = [pair.name for pair, good in zip(self.pairs, ok) if not good]
        self.pairs = [pair for pair, good in zip(self.pairs, ok) if good]
        self.skipped.extend(name for name in bad if name not in self.skipped)
        if bad:
            log.warning("%s: skipped %d unreadable/mismatched pairs: %s", self.source, len(bad), summary(bad))
        return self


def _read_pair(pair: Pair) -> tuple[np.ndarray, np.ndarray] | None:
    blur = read_bgr(pair.blur_path)
    sharp = read_bgr(pair.sharp_path) if blur is not None else None
    if blur is None or sharp is None or blur.shape != sharp.shape:
        return None
    return blur, sharp


def match(blur: dict[str, Path], sharp: dict[str, Path], prefix: str = "") -> tuple[list[Pair], list[str], list[str]]:
    """Pairs for the keys both sides have, plus the keys only one side has."""
    pairs = [Pair(prefix + key, blur[key], sharp[key]) for key in blur if key in sharp]
    only_blur = [prefix + key for key in blur if key not in sharp]
    only_sharp = [prefix + key for key in sharp if key not in blur]
    return pairs, only_blur, only_sharp


def pair_set(source: str, pairs: list[Pair], only_blur: list[str], only_sharp: list[str], hint: str) -> PairedSet:
    """One warning for names found on one side only; no pair at all is a UserError."""
    if not pairs:
        if not only_blur and not only_sharp:
            raise UserError(f"{source}: holds no images (looked for {LOOKED_FOR}); {hint}")
        raise UserError(
            f"{source}: no blurry image has a sharp partner of the same name "
            f"({len(only_blur)} blurry like {summary(only_blur, 3)}; "
            f"{len(only_sharp)} sharp like {summary(only_sharp, 3)}); {hint}"
        )
    if only_blur or only_sharp:
        log.warning(
            "%s: %d blurry without a sharp partner (%s), %d sharp without a blurry partner (%s); using the %d pairs",
            source, len(only_blur), summary(only_blur, 5), len(only_sharp), summary(only_sharp, 5), len(pairs),
        )
    pairs.sort(key=lambda pair: natural_key(pair.name))
    return PairedSet(pairs, source)



def paired_folder(root: str | Path) -> PairedSet:
    """`root/blur/*` with `root/sharp/*` matched by name (sub-folders too); falls back to suffix pairs."""
    path = existing_dir(root)
    blur_dir, sharp_dir = first_dir(path, BLUR_DIRS), first_dir(path, SHARP_DIRS)
    if blur_dir is None or sharp_dir is None:
        if has_suffix_pairs(path):
            return suffix_pairs(path)
        raise UserError(
            f"{root}: expected a blur/ and a sharp/ folder (or files named x_blur.png with x_gt.png); "
            f"it holds {summary([p.name for p in subdirs(path)] or ['no folders'], 5)}"
        )
    pairs, only_blur, only_sharp = match(images_by_key(blur_dir), images_by_key(sharp_dir))
    hint = f"name each pair the same in {blur_dir.name}/ and {sharp_dir.name}/"
    return pair_set(str(root), pairs, only_blur, only_sharp, hint)


def _split_tag(stem: str, tags: Sequence[str]) -> str | None:
    for tag in tags:
        for sep in ("_", "-", "."):
            if stem.lower().endswith(sep + tag):
                return stem[: -len(tag) - 1]
    return None


def has_suffix_pairs(folder: Path) -> bool:
    stems = [p.stem for p in folder.iterdir() if p.is_file() and is_image(p)]
    return any(_split_tag(s, BLUR_TAGS) for s in stems) and any(_split_tag(s, SHARP_TAGS) for s in stems)


def suffix_pairs(root: str | Path) -> PairedSet:
    """Pairs side by side in one folder: `x_blur.*` (or `_blurry`) with `x_gt.*` (or `_sharp`), named `x`."""
    path = existing_dir(root)
    blur: dict[str, Path] = {}
    sharp: dict[str, Path] = {}
    for file in walk_files(path):
        if not is_image(file):
            continue
        rel = file.relative_to(path).with_suffix("")
        base = _split_tag(rel.name, BLUR_TAGS)
        side = blur
        if base is None:
            base, side = _split_tag(rel.name, SHARP_TAGS), sharp
        if base is not None:
            side.setdefault((rel.parent / base).as_posix(), file)
    pairs, only_blur, only_sharp = match(blur, sharp)
    return pair_set(str(root), pairs, only_blur, only_sharp, "name pairs x_blur.png and x_gt.png (or x_sharp.png)")

