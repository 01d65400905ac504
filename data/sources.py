"""Pair sources as users name them (`--pairs`, `--known`): one table of readers, and either side of a source
read as unpaired images (`--blurry`, `--sharp`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from blur2blur.data.blur.synthetic_pairs import synthetic_pairs
from blur2blur.data.files import LOOKED_FOR, existing_dir, holds_images
from blur2blur.data.imagesets import ImageSet, open_images
from blur2blur.data.layouts import blur2blur_layout, detect_pair_layout, gopro, reds, reds_splits, rsblur
from blur2blur.data.pairs import PairedSet, paired_folder, suffix_pairs
from blur2blur.data.spec import check_options, flag, parse_spec
from blur2blur.data.splits import Pairs
from blur2blur.errors import UserError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PairReader:
    """How a kind of folder is read: the `?key=value` options it takes, and open(path, options, spec)."""

    options: tuple[str, ...]
    open: Callable[[Path, dict[str, str], str], PairedSet]


def _reds(path: Path, options: dict[str, str], spec: str) -> PairedSet:
    splits = reds_splits(path)
    return reds(path, options.get("split", "train" if "train" in splits or not splits else splits[0]))


def _b2b_known(path: Path, options: dict[str, str], spec: str) -> PairedSet:
    layout = blur2blur_layout(path)
    if layout.known_pairs is None:
        raise UserError(f"{path}: has no trainC/ + trainD/ known pairs")
    return layout.known_pairs


PAIR_READERS: dict[str, PairReader] = {
    "folder": PairReader((), lambda path, options, spec: paired_folder(path)),
    "suffix": PairReader((), lambda path, options, spec: suffix_pairs(path)),
    "gopro": PairReader(
        ("split", "gamma"),
        lambda path, options, spec: gopro(path, options.get("split", "train"), flag(spec, options.get("gamma", "0"))),
    ),
    "reds": PairReader(("split",), _reds),
    "rsblur": PairReader(("split_file",), lambda path, options, spec: rsblur(path, options.get("split_file"))),
    "b2b": PairReader((), _b2b_known),
}
# `synthetic:DOMAIN` pairs are made on the fly, not read from a folder (data/blur/synthetic_pairs.py).
PAIR_KINDS = (*PAIR_READERS, "synthetic")


def open_pairs(spec: str, *, option: str = "--pairs", validate: bool = True) -> Pairs:
    """Resolve a user's pair source: `[kind:]PATH[?key=value&...]`, the layout detected when no kind is given.

    Kinds and options: folder:, suffix:, gopro:(split=train|test, gamma=0|1), reds:(split=train|val),
    rsblur:(split_file=LIST), b2b: (its trainC/trainD known pairs), synthetic:DOMAIN(sharp=SPEC, size=N,
    count=N, seed=N: pairs made on the fly). By default every pair read from files is decoded once
    (`validate()`), so `load(i)` of the result returns a pair; validate=False only lists the files.
    """
    try:
        parsed = parse_spec(spec, PAIR_KINDS)
        if parsed.kind == "synthetic":
            return synthetic_pairs(spec, parsed.path, parsed.options)
        path = existing_dir(parsed.path)
        kind = parsed.kind or detect_pair_layout(path)
        if kind is None:
            if not holds_images(path):
                raise UserError(f"{parsed.path}: holds no images (looked for {LOOKED_FOR})")
            raise UserError(
                f"{parsed.path}: no pair layout found; expected blur/ + sharp/, x_blur.png + x_gt.png, GoPro, REDS, "
                f"RSBlur or Blur2Blur trainC/ + trainD/ (or name it: folder:, gopro:, reds:, rsblur:, b2b:)"
            )
        reader = PAIR_READERS[kind]
        check_options(spec, kind, parsed.options, reader.options)
        pairs = reader.open(path, parsed.options, spec)
        log.debug("%s: %d pairs (%s)", spec, len(pairs), kind)
        if validate and not pairs.validate().pairs:
            raise UserError(f"{parsed.path}: none of its {len(pairs.skipped)} pairs can be read (see the line above)")
    except UserError as err:
        raise UserError(f"{option} {err}" if option else str(err)) from None
    return pairs


class PairSide:
    """One side (0: blurry, 1: sharp) of a pair source, read as unpaired images."""

    def __init__(self, pairs: Pairs, side: int) -> None:
        self.pairs, self.side = pairs, side
        self.source = f"{getattr(pairs, 'source', '')} ({'blurry' if side == 0 else 'sharp'} side)"

    @property
    def skipped(self) -> list[str]:
        return getattr(self.pairs, "skipped", [])

    def __len__(self) -> int:
        return len(self.pairs)

    def load(self, i: int) -> np.ndarray | None:
        images = self.pairs.load(i)
        return None if images is None else images[self.side]


def open_side(spec: str, side: int, option: str) -> ImageSet | PairSide:
    """Images of `spec`: a folder or video of images, a Blur2Blur folder (trainA blurry, trainB sharp), or a
    pair source (a dataset reader, `synthetic:DOMAIN`, a blur/ + sharp/ folder) of which `side` is used."""
    parsed = parse_spec(spec, PAIR_KINDS + ("video",))
    kind = parsed.kind
    path = Path(parsed.path).expanduser()
    if kind is None and path.is_dir():
        kind = detect_pair_layout(path)
    if kind == "b2b":
        try:
            layout = blur2blur_layout(path)
        except UserError as err:
            raise UserError(f"{option} {err}") from None
        images = layout.unknown_blurry if side == 0 else layout.unknown_sharp
        if images is None:
            raise UserError(f"{option} {spec}: has no trainB/ (the camera's sharp images)")
        return images.validate()
    if kind in PAIR_KINDS:
        return PairSide(open_pairs(spec, option=option), side)
    return open_images(spec, option=option)
