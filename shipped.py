"""Models by name, wherever a checkpoint path is taken: `starter`, the deblurrer shipped in the package, and
NAFNet's official weights (`nafnet-gopro-w32`, `nafnet-gopro-w64`, `nafnet-reds-w64`) once fetched.

One resolver turns a name or a path into a file, so every command that takes a deblurrer checkpoint takes
these names too. Official files live in the cache folder under their authors' names (`b2b-train
fetch-weights` puts them there: see fetch_weights.py); a missing one is a one-line error saying how to get
it. The shipped file is a blur2blur checkpoint with an FP16 state dict (loading casts it back
to FP32); `make starter` reproduces it, and `pack_checkpoint` writes it from a training run. No torch
here at import time: configs and CLIs resolve names before a run starts.
"""

from __future__ import annotations

from pathlib import Path

import click

from blur2blur.errors import UserError
from blur2blur.fetch_weights import OFFICIAL, missing_message, official_path

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
SHIPPED = {
    "starter": ("starter.pt", "nafnet-w16 trained by the project on its broad `known` motion blur (CPU default)"),
}


def resolve_checkpoint(spec: str | Path, option: str = "checkpoint") -> Path:
    """The checkpoint file `spec` names: a shipped model's name (`starter`), an official one
    (`nafnet-gopro-w32`, ...) or a path, as given."""
    name = str(spec)
    if name in OFFICIAL:
        path = official_path(OFFICIAL[name])
        if not path.is_file():
            raise UserError(missing_message(OFFICIAL[name], option))
        return path
    if name in SHIPPED:
        path = WEIGHTS_DIR / SHIPPED[name][0]
        if not path.is_file():
            raise UserError(f"{option} {name}: the shipped weights {path} are missing from this install; "
                            "reinstall blur2blur or run `make starter`")
        return path
    return Path(spec)


class CheckpointParam(click.ParamType):
    """A click option that takes a checkpoint path or a model's name (shipped or official), and gives the file's
    path."""

    name = "checkpoint"

    def convert(self, value, param, ctx):
        if value in (None, ""):
            return value
        option = param.opts[0] if param is not None else "checkpoint"
        return str(resolve_checkpoint(value, option))


CHECKPOINT = CheckpointParam()


def pack_checkpoint(source: str | Path, target: str | Path, meta: dict | None = None) -> Path:
    """Write `source`'s model as a shippable checkpoint: FP16 state dict, no optimizer state, `meta` added."""
    from blur2blur.models.checkpoint import load_checkpoint, save_checkpoint

    model, data = load_checkpoint(source)
    model = model.half()
    keep = {k: data["meta"][k] for k in ("step", "config", "metrics") if k in data.get("meta", {})}
    save_checkpoint(target, model, data["kind"], {**keep, **(meta or {})})
    return Path(target)
