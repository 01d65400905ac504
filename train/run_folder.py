"""A run's folder: a new run never lands on another's files, and a resumed one continues with its own settings."""

from __future__ import annotations

import shutil
from dataclasses import fields, replace
from pathlib import Path
from typing import Iterable

from blur2blur.errors import UserError
from blur2blur.models.checkpoint import read_checkpoint
from blur2blur.train.config import RunConfig

# Settings a resumed run may take anew: where it runs and how fast, never what it computes.
RESUME_MAY_CHANGE = ("out", "resume", "workers", "device")


def resume_config(config: RunConfig, given: Iterable[str] = ()) -> tuple[RunConfig, dict | None]:
    """With `config.resume`, the settings saved in OUT/last.pt (but RESUME_MAY_CHANGE taken from `config`) and
    the state it holds, read once; without, `config` and None.

    `given` names the settings the user set explicitly: one that differs from the saved run is an error,
    since a resumed run continues the same computation.
    """
    if not config.resume:
        return config, None
    if not config.out:
        raise UserError("--resume: give the run folder to continue with --out")
    last = Path(config.out) / "last.pt"
    if not last.is_file():
        raise UserError(f"--resume: {config.out} holds no last.pt to continue; start without --resume")
    state = read_last(last)
    saved = state.get("meta", {}).get("config")
    names = {f.name for f in fields(config)}
    if not isinstance(saved, dict) or not set(saved) <= names:
        raise UserError(f"--resume: {last} was not written by this trainer; choose its own command or another --out")
    if state.get("kind") != config.kind:
        raise UserError(f"--resume: {last} holds a {state.get('kind')} run; continue it with b2b-train "
                        f"{state.get('kind')}")
    if not all(key in state for key in ("optimizer", "schedule", "rng")):
        raise UserError(f"--resume: {last} holds weights without their training state; start a new run from them "
                        f"with --init {last} and another --out")
    for name in given:
        if name not in RESUME_MAY_CHANGE and name in saved and saved[name] != getattr(config, name):
            option = "--" + name.replace("_", "-")
            raise UserError(
                f"--resume continues the run in {config.out} with its own settings, and {option} "
                f"{getattr(config, name)} differs from its {saved[name]}: drop {option} or start a new run elsewhere"
            )
    return replace(config, **{k: v for k, v in saved.items() if k not in RESUME_MAY_CHANGE}), state


def read_last(last: Path) -> dict:
    """A run's last.pt; when it is unreadable (a crash mid-copy, a full disk), what to do instead."""
    try:
        return read_checkpoint(last)
    except UserError as err:
        best = last.with_name("best.pt")
        instead = f"start a new run from its best weights with --init {best} and another --out" if best.exists() \
            else "start the run afresh there"
        raise UserError(f"{err}; move it aside (mv {last} {last}.bad) and resume is no longer possible: "
                        f"{instead}") from None


RUN_FILES = ("config.json", "metrics.jsonl", "curves.png", "samples")  # what a run writes before its first last.pt


def prepare_out(config: RunConfig) -> tuple[Path, bool]:
    """The run folder, created (and whether it was created now); a new run never overwrites another one."""
    out = Path(config.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a folder for the run")
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"--out {out}: cannot create the run folder ({err.strerror})") from None
    return out, created


def check_new_run(out: Path) -> None:
    """Refuse to start a new run where one is (checked holding the folder's lock)."""
    last = out / "last.pt"
    if last.exists():
        step = read_last(last).get("meta", {}).get("step", "?")
        raise UserError(f"--out {out} already holds a run (step {step}): add --resume to continue it, "
                        "or choose another --out")
    found = [name for name in RUN_FILES if (out / name).exists()]
    if found:
        raise UserError(f"--out {out} holds {', '.join(found)} but no last.pt (files of your own, or a run killed "
                        "before its first checkpoint): remove them or choose another --out")


def remove_failed_start(out: Path) -> None:
    """What a new run that failed before its first checkpoint wrote."""
    if (out / "last.pt").exists():
        return
    for name in RUN_FILES:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
