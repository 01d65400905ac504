"""Files of a dataset: walking folders, keying images by relative name, checking many files at once."""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterable, Sequence

from tqdm import tqdm

from blur2blur.errors import UserError
from blur2blur.images import IMAGE_SUFFIXES, is_image, is_video, natural_key

log = logging.getLogger(__name__)

LOOKED_FOR = ", ".join(IMAGE_SUFFIXES)
_WORKERS = min(8, os.cpu_count() or 1)
_PROGRESS_FROM = 200  # show a progress bar when checking at least this many files


def summary(names: Sequence[str], limit: int = 10) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... (+{len(names) - limit} more)" if len(names) > limit else "")


def walk_files(root: Path) -> list[Path]:
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


def rel_key(path: Path, root: Path) -> str:
    """`seq/000001` for root/seq/000001.png: the relative path without its suffix."""
    return path.relative_to(root).with_suffix("").as_posix()


def images_by_key(folder: Path) -> dict[str, Path]:
    """Images under folder keyed by relative path without suffix; the first of `a.png`/`a.jpg` wins."""
    keyed: dict[str, Path] = {}
    doubles: list[str] = []
    for path in walk_files(folder):
        if not is_image(path):
            continue
        key = rel_key(path, folder)
        if key in keyed:
            doubles.append(path.relative_to(folder).as_posix())
        else:
            keyed[key] = path
    if doubles:
        log.warning(
            "%s: %d files share a name with another suffix, using the first: %s", folder, len(doubles), summary(doubles)
        )
    return keyed


def existing_dir(root: str | Path) -> Path:
    path = Path(root).expanduser()
    if not path.exists():
        raise UserError(f"{root}: no such folder")
    if not path.is_dir():
        raise UserError(f"{root}: is a file, not a folder")
    return path


def first_dir(parent: Path, names: Iterable[str]) -> Path | None:
    for name in names:
        if (parent / name).is_dir():
            return parent / name
    return None


def subdirs(folder: Path) -> list[Path]:
    try:
        children = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
    except OSError:
        return []
    return sorted(children, key=lambda p: natural_key(p.name))


def holds_images(folder: Path) -> bool:
    return any(is_image(p) or is_video(p) for p in walk_files(folder))


def check_all(items: Sequence, check: Callable[[object], bool], what: str) -> list[bool]:
    """check(item) for every item on a few threads (OpenCV decodes without the GIL), in order."""
    bar = tqdm(total=len(items), desc=what, unit="file", leave=False,
               disable=True if len(items) < _PROGRESS_FROM else None)
    with ThreadPoolExecutor(_WORKERS) as pool:
        results = []
        for good in pool.map(check, items):
            results.append(good)
            bar.update()
    bar.close()
    return results
