"""Where commands write: one rule for every output of every command (README, "Nothing lost").

- An output that resolves to an input (the same file, a path inside a folder being read such as a bundle or a
  folder of pairs, or a folder that holds an input) is refused in one line before anything runs.
- An existing file is replaced only with `--force`.
- A folder output (an HTML report, comparison grids) belongs to its command: it must be new, empty, or marked as
  written by an earlier run of the same kind (a `.blur2blur` file naming the kind). It is built beside its place
  and swapped in whole, so nothing inside it, a symbolic link included, is ever followed, merged or left stale.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import parse_qsl

from blur2blur.errors import UserError

MARKER = ".blur2blur"  # in a folder output: the kind of output it holds ("report", "grids")
OWNED = {"report": ("index.html", "files"), "grids": ("*.png",)}  # what each kind writes into its folder


def _resolved(value: str | Path) -> Path:
    return Path(os.path.realpath(str(value)))


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_dev, found.st_ino


def named_paths(value: str | Path | None) -> list[Path]:
    """The files and folders that exist among what a command-line value names, resolved: a path, or the path and
    query values of a spec (`gopro:PATH?split=test`, `synthetic:known?sharp=photos/`). A camera index, a URL or a
    packaged name names none."""
    if value is None:
        return []
    text = str(value)
    candidates = [text]
    if ":" in text and "://" not in text:
        rest = text.split(":", 1)[1]
        path, _, query = rest.partition("?")
        candidates += [path] + [v for _, v in parse_qsl(query)]
    return list(dict.fromkeys(_resolved(c) for c in candidates if c and os.path.exists(c)))


def _relation(output: Path, source: Path) -> str | None:
    """How an output path stands to an input: by name, and by file identity (a hard link, a bind mount)."""
    if output == source:
        return "is"
    if output.is_relative_to(source):
        return "is inside"
    if source.is_relative_to(output):
        return "holds"
    source_id = _identity(source)
    if source_id is not None:
        if _identity(output) == source_id:
            return "is"
        if any(_identity(parent) == source_id for parent in output.parents):
            return "is inside"
    return None


Paths = dict[str, str | Path | None]


def check_outputs(inputs: dict[str, str | Path | list | tuple | None], files: Paths | None = None,
                  folders: Paths | None = None, force: bool = False, force_option: str = "--force") -> None:
    """Refuse, before anything runs, outputs (option -> path) that would destroy an input, another output or a file
    the command did not write: see the module's rule. `files` are single files (an existing regular file replaced
    only with `force`, named `force_option` in the message); `folders` are folder outputs (their ownership is
    checked by `owned_folder` where they are written). An input option may name several values (a list)."""
    files = {option: value for option, value in (files or {}).items() if value is not None}
    folders = {option: value for option, value in (folders or {}).items() if value is not None}
    sources = [(option, value, path) for option, values in inputs.items()
               for value in (values if isinstance(values, (list, tuple)) else [values]) for path in named_paths(value)]
    outputs = [(option, value, _resolved(value)) for option, value in [*files.items(), *folders.items()]]
    for option, value, target in outputs:
        for in_option, in_value, source in sources:
            relation = _relation(target, source)
            if relation:
                what = "" if source == _resolved(in_value) else f" ({source})"
                raise UserError(f"{option} {value}: {relation} {in_option} {in_value}{what}, which this command "
                                f"reads: write the output somewhere else")
        for other_option, other_value, other in outputs:
            if other_option == option:
                continue
            if other == target:
                raise UserError(f"{option} {value}: is also {other_option} {other_value}: give each output its own "
                                "path")
            if other_option in folders and target.is_relative_to(other):
                raise UserError(f"{option} {value}: is inside {other_option} {other_value}, another output of this "
                                "command: write it elsewhere")
    for option, value in files.items():
        path = Path(value)
        if path.is_dir():
            raise UserError(f"{option} {value}: is a folder; give a file")
        if path.exists() and not path.is_file():
            raise UserError(f"{option} {value}: is not a regular file (a device, a pipe); give a file")
        if (path.exists() or path.is_symlink()) and not force:
            raise UserError(f"{option} {value}: exists; pass {force_option} to replace it")


def owned_folder(folder: str | Path, option: str, kind: str) -> Path:
    """`folder`, checked to be one this kind of output may replace: missing, empty, or marked as `kind`'s and holding
    only what `kind` writes; never the current folder or one that holds it."""
    path = Path(folder)
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise UserError(f"{option} {folder}: is {'a link' if path.is_symlink() else 'a file'}; give a folder "
                        "(made if needed)")
    if Path.cwd().resolve().is_relative_to(path.resolve()):
        raise UserError(f"{option} {folder}: holds the current folder, and it is replaced as a whole: run from "
                        "elsewhere or give another folder")
    if path.is_dir() and any(path.iterdir()):
        marker = path / MARKER
        mine = marker.is_file() and not marker.is_symlink() and marker.read_text(errors="replace").strip() == kind
        if not mine:
            raise UserError(f"{option} {folder}: holds files that a blur2blur {kind} did not write; give a new or "
                            f"empty folder (a {kind} folder is replaced as a whole)")
        foreign = [p.name for p in path.iterdir() if p.name != MARKER
                   and not any(p.match(pattern) for pattern in OWNED[kind])]
        if foreign:
            raise UserError(f"{option} {folder}: holds {', '.join(sorted(foreign)[:3])}, which a blur2blur {kind} "
                            f"does not write; move it out first (a {kind} folder is replaced as a whole)")
    return path


def staging_folder(folder: Path) -> Path:
    """A new, empty folder beside `folder` to build its replacement in (one per process)."""
    staging = folder.parent / f".{folder.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return staging


def publish_folder(staging: Path, folder: Path, option: str, kind: str) -> None:
    """Swap the complete `staging` folder in as `folder`, marked as `kind`'s; the previous one (checked by
    `owned_folder`) goes only once the new one is in place."""
    (staging / MARKER).write_text(kind + "\n")
    owned_folder(folder, option, kind)  # still replaceable: nothing was put there meanwhile
    old = folder.parent / f".{folder.name}.old-{os.getpid()}"
    shutil.rmtree(old, ignore_errors=True)  # what a killed run left
    if folder.exists():
        os.replace(folder, old)
    os.replace(staging, folder)
    shutil.rmtree(old, ignore_errors=True)
