"""The layouts of public deblurring datasets (GoPro, REDS, RSBlur) and of Blur2Blur's own data folders, and
which of them a folder holds."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from blur2blur.data.files import LOOKED_FOR, existing_dir, first_dir, holds_images, images_by_key, subdirs, summary
from blur2blur.data.imagesets import ImageSet
from blur2blur.data.pairs import (
    BLUR_DIRS,
    SHARP_DIRS,
    Pair,
    PairedSet,
    has_suffix_pairs,
    match,
    pair_set,
)
from blur2blur.errors import UserError

log = logging.getLogger(__name__)


def _gopro_split_dir(root: Path, split: str) -> Path:
    for candidate in (root / split, root / "GOPRO_Large" / split):
        if candidate.is_dir():
            return candidate
    dataset_root = first_dir(root, ("train", "test", "GOPRO_Large")) is not None
    holds_pairs = first_dir(root, ("blur", "blur_gamma")) or any((d / "sharp").is_dir() for d in subdirs(root))
    if holds_pairs and not dataset_root:
        return root  # the user pointed at the split folder itself
    others = [d.name for d in subdirs(root / "GOPRO_Large" if (root / "GOPRO_Large").is_dir() else root)]
    hint = f"; it holds {summary(others, 5)} (choose one with ?split=NAME)" if others else ""
    raise UserError(
        f"{root}: no {split}/ folder "
        f"(expected GOPRO_Large/{split}/<sequence>/{{blur,sharp}}/ or {split}/{{blur,sharp}}/){hint}"
    )


def gopro(root: str | Path, split: str = "train", gamma: bool = False) -> PairedSet:
    """GoPro: `{split}/<seq>/{blur,blur_gamma,sharp}/*.png` named `<seq>/<frame>`,
    or flattened `{split}/{blur,sharp}/`."""
    path = existing_dir(root)
    split_dir = _gopro_split_dir(path, split)
    blur_name = "blur_gamma" if gamma else "blur"
    source = f"{root} ({split_dir.name})"
    if (split_dir / "sharp").is_dir() and first_dir(split_dir, ("blur", "blur_gamma")):
        sequences = [("", split_dir)]  # flattened form
    else:
        sequences = [(d.name + "/", d) for d in subdirs(split_dir) if (d / "sharp").is_dir()]
    if not sequences:
        raise UserError(f"{split_dir}: no <sequence>/sharp/ folders (is this the GoPro dataset?)")
    pairs: list[Pair] = []
    only_blur: list[str] = []
    only_sharp: list[str] = []
    for prefix, folder in sequences:
        if not (folder / blur_name).is_dir():
            hint = "drop gamma=1 to use blur/" if gamma else "pass gamma=1 to use blur_gamma/"
            raise UserError(f"{folder}: has no {blur_name}/ folder; {hint}")
        found, blur_only, sharp_only = match(images_by_key(folder / blur_name), images_by_key(folder / "sharp"), prefix)
        pairs += found
        only_blur += blur_only
        only_sharp += sharp_only
    return pair_set(source, pairs, only_blur, only_sharp, f"GoPro names frames the same in {blur_name}/ and sharp/")


def _find_dir(root: Path, name: str, depth: int = 2) -> Path | None:
    """root/name, or the first such folder up to `depth` levels down (REDS zips nest one level)."""
    level = [root]
    for _ in range(depth + 1):
        for folder in level:
            if (folder / name).is_dir():
                return folder / name
        level = [child for folder in level for child in subdirs(folder)]
    return None


def reds(root: str | Path, split: str = "train") -> PairedSet:
    """REDS: `{split}_blur/<seq>/<frame>.png` with `{split}_sharp/<seq>/<frame>.png`, named `<seq>/<frame>`."""
    path = existing_dir(root)
    blur_dir, sharp_dir = _find_dir(path, f"{split}_blur"), _find_dir(path, f"{split}_sharp")
    if blur_dir is None or sharp_dir is None:
        missing = " and ".join(n for n, d in ((f"{split}_blur/", blur_dir), (f"{split}_sharp/", sharp_dir))
                               if d is None)
        raise UserError(
            f"{root}: no {missing} folder (REDS layout: {split}_blur/<seq>/<frame>.png; other splits: ?split=val)"
        )
    pairs, only_blur, only_sharp = match(images_by_key(blur_dir), images_by_key(sharp_dir))
    hint = f"name frames the same in {blur_dir.name}/ and {sharp_dir.name}/"
    return pair_set(f"{root} ({split})", pairs, only_blur, only_sharp, hint)


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
    path = existing_dir(root)
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
            log.warning("%s: %d entries name no frame under %s: %s", listed, len(unknown), root, summary(unknown, 3))
        if not keys:
            raise UserError(f"{split_file}: none of its entries names a <scene>/<frame> folder under {root}")
    pairs = [Pair(k, frames[k] / "real_blur" / "real_blur.png", frames[k] / "gt" / "gt_sharp.png") for k in keys]
    no_gt = [pair.name for pair in pairs if not pair.sharp_path.is_file()]
    pairs = [pair for pair in pairs if pair.sharp_path.is_file()]
    return pair_set(source, pairs, no_gt, [], "each frame folder needs gt/gt_sharp.png")


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
    inside = [d for d in subdirs(root) if looks(d)]
    return inside[0] if len(inside) == 1 else None


def blur2blur_layout(root: str | Path) -> Blur2BlurLayout:
    """Open a Blur2Blur data folder: trainA is required, the other parts are optional."""
    path = existing_dir(root)
    base = _b2b_root(path)
    if base is None:
        raise UserError(
            f"{root}: expected Blur2Blur folders trainA/ (unknown blurry), trainB/, "
            f"trainC/ + trainD/ (known pairs), testA/"
        )

    def images(name: str) -> ImageSet | None:
        folder = base / name
        if not folder.is_dir():
            return None
        if not holds_images(folder):
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
        pairs, only_blur, only_sharp = match(images_by_key(base / "trainC"), images_by_key(base / "trainD"))
        hint = "name each pair the same in trainC/ and trainD/"
        known = pair_set(f"{base} (trainC/trainD)", pairs, only_blur, only_sharp, hint)
    return Blur2BlurLayout(base, unknown_blurry, images("trainB"), known, images("testA"))


def detect_pair_layout(root: str | Path) -> str | None:
    """Which pair reader fits the folder: one of PAIR_KINDS, or None when nothing fits."""
    path = Path(root)
    if _b2b_root(path) is not None:
        return "b2b"
    if first_dir(path, BLUR_DIRS) and first_dir(path, SHARP_DIRS):
        return "folder"
    if (path / "GOPRO_Large").is_dir():
        return "gopro"
    def gopro_split(folder: Path) -> bool:
        return any((d / "sharp").is_dir() and (d / "blur").is_dir() for d in [folder, *subdirs(folder)])

    if any(folder.is_dir() and gopro_split(folder) for folder in (path / "train", path / "test", path)):
        return "gopro"
    if reds_splits(path):
        return "reds"
    if _rsblur_frames_exist(path):
        return "rsblur"
    if has_suffix_pairs(path):
        return "suffix"
    return None


def reds_splits(root: Path) -> list[str]:
    """Split names with both `<split>_blur/` and `<split>_sharp/` at root or one level down."""
    found = []
    for folder in [root, *subdirs(root)]:
        for d in subdirs(folder):
            split = d.name[: -len("_blur")]
            if d.name.endswith("_blur") and (folder / f"{split}_sharp").is_dir() and split not in found:
                found.append(split)
    return found


def _rsblur_frames_exist(root: Path) -> bool:
    return any(next(root.glob(p), None) for p in ("*/*/real_blur/real_blur.png", "*/*/*/real_blur/real_blur.png"))

