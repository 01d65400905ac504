"""Checkpoint files: the contract between training and export.

A checkpoint is a plain dict, loadable with ``torch.load(weights_only=True)``::

    {"format": "blur2blur-checkpoint/1", "kind": "deblurrer", "arch": "nafnet-w32",
     "arch_args": {...}, "state_dict": {...}, "meta": {...}, **extra}

``extra`` holds whatever else the trainer keeps (optimizer state, ...). Official NAFNet
checkpoints (``{"params": state_dict}`` or a bare state dict) load as deblurrers.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
from pathlib import Path

import torch
from torch import nn

from blur2blur.errors import UserError
from blur2blur.files.atomic import temporary
from blur2blur.models import ARCHS, arch_kind, create_model
from blur2blur.models.nafnet import PRESETS as NAFNET_PRESETS
from blur2blur.weights import resolve_checkpoint

log = logging.getLogger(__name__)

FORMAT = "blur2blur-checkpoint/1"
_RESERVED = ("format", "kind", "arch", "arch_args", "state_dict", "meta")


def _plain(value, where: str):
    """``value`` as built-in types only, which ``weights_only`` loading accepts (numpy scalars become numbers)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    if not isinstance(value, torch.Tensor) and getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        return value.item()  # numpy scalars
    raise TypeError(f"checkpoint {where} holds a {type(value).__name__}; use numbers, strings, lists and dicts")


def save_checkpoint(path: str | Path, model: nn.Module, kind: str, meta: dict | None = None, **extra) -> None:
    """Write ``model`` (built by ``create_model``) and ``meta`` to ``path`` atomically.

    ``extra`` entries (e.g. ``optimizer=opt.state_dict()``) are stored at the top level.
    """
    path = Path(path)
    model = getattr(model, "_orig_mod", model)  # torch.compile wrapper: store the plain module's names
    arch = getattr(model, "arch", None)
    if arch not in ARCHS or not hasattr(model, "arch_args"):
        raise ValueError("save_checkpoint needs a model built by blur2blur.models.create_model")
    if arch_kind(arch) != kind:
        raise ValueError(f"{arch} is a {arch_kind(arch)}, not a {kind}")
    clash = sorted(set(extra) & set(_RESERVED))
    if clash:
        raise ValueError(f"extra checkpoint entries may not be named {', '.join(clash)}")
    checkpoint = {
        "format": FORMAT,
        "kind": kind,
        "arch": arch,
        "arch_args": _plain(model.arch_args, "arch_args"),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "meta": _plain(meta or {}, "meta"),
        **extra,
    }
    # Write beside the target and rename: a crash never leaves a half-written checkpoint. A plain
    # open (not mkstemp, which makes 0600 files) keeps the user's umask for the final file.
    tmp = temporary(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            torch.save(checkpoint, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, (OSError, RuntimeError)):  # torch's zip writer reports a full disk as a RuntimeError
            kept = "the previous one is kept" if path.exists() else "none was written"
            raise UserError(f"cannot write checkpoint {path} ({_write_failure(path.parent, err)}); {kept}: free some "
                            "space and run again (training continues with --resume)") from None
        raise
    log.debug("saved %s checkpoint %s (%s)", kind, path, arch)


def _write_failure(folder: Path, err: BaseException) -> str:
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        free = None
    if getattr(err, "errno", None) == errno.ENOSPC or free is not None and free < 1 << 20:
        return "no space left on the disk"
    return err.strerror if isinstance(err, OSError) and err.strerror else " ".join(str(err).split())[:200]


def read_checkpoint(path: str | Path) -> dict:
    """The raw dict in a checkpoint file (or a shipped model's, by name), loaded safely (tensors and plain
    values only)."""
    path = resolve_checkpoint(path)
    if not path.exists():
        raise UserError(f"checkpoint {path} does not exist: check the path")
    if path.is_dir():
        raise UserError(f"checkpoint {path} is a directory: pass the .pt file inside it")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for truncated, foreign or unsafe files
        raise UserError(f"checkpoint {path} {_unloadable(path, err)}") from None
    if not isinstance(data, dict):
        raise UserError(f"checkpoint {path} holds a {type(data).__name__}, not a checkpoint dict")
    return data


def _unloadable(path: Path, err: BaseException) -> str:
    """Why a file does not load as a checkpoint, in our words: torch's own advice for unsafe files is to load
    them unsafely (`weights_only=False`), which would run whatever they hold, so it is never passed on."""
    text = str(err)
    found = re.search(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) ([\w.]+)", text)
    if found:
        return (f"holds Python objects ({found.group(1)}) that cannot be loaded safely, and will not be: use a "
                "checkpoint written by b2b-train or an official NAFNet file (tensors and plain values only)")
    with open(path, "rb") as f:
        head = f.read(64)
    onnx_like = head.startswith(b"\x08") and (b"pytorch" in head or b"onnx" in head.lower())  # ir_version, producer
    if path.suffix.lower() == ".onnx" or onnx_like:
        return "is an ONNX graph, not a checkpoint: pass the .pt file that b2b-train wrote (bundles go to --bundle)"
    if not head.startswith((b"PK\x03\x04", b"\x80")):  # neither a zip (torch.save) nor a pickle (older files)
        text_like = bool(head) and all(32 <= b < 127 or b in b"\t\r\n" for b in head)
        return (f"is not a PyTorch file (it holds {'text' if text_like else 'other data' if head else 'nothing'}): "
                "pass a .pt file that b2b-train wrote or an official NAFNet .pth")
    lines = [line.strip() for line in text.splitlines()
             if line.strip() and "weights_only" not in line and "Weights only load failed" not in line
             and "torch.load" not in line]
    reason = lines[0] if lines else type(err).__name__
    return f"is corrupt or truncated ({reason}): write or download it again"


def _nafnet_state_dict(data: dict) -> dict | None:
    """The state dict of an official NAFNet checkpoint, or None if ``data`` is not one."""
    for key in ("params", "params_ema"):
        if isinstance(data.get(key), dict) and "intro.weight" in data[key]:
            return data[key]
    if "intro.weight" in data and all(isinstance(v, torch.Tensor) for v in data.values()):
        return data
    return None


def nafnet_args_from_state_dict(state_dict: dict) -> dict:
    """NAFNet constructor kwargs that produce exactly the modules named in ``state_dict``."""

    def count(pattern: str) -> int:
        found = {m.group(1) for k in state_dict if (m := re.match(pattern, k))}
        return len(found)

    def blocks(prefix: str, level: int) -> int:
        return count(rf"{prefix}\.{level}\.(\d+)\.")

    intro = state_dict["intro.weight"]
    n_enc = count(r"downs\.(\d+)\.")
    n_dec = count(r"ups\.(\d+)\.")
    return {
        "img_channel": int(intro.shape[1]),
        "width": int(intro.shape[0]),
        "middle_blk_num": count(r"middle_blks\.(\d+)\."),
        "enc_blk_nums": [blocks("encoders", i) for i in range(n_enc)],
        "dec_blk_nums": [blocks("decoders", i) for i in range(n_dec)],
    }


def _nafnet_arch(args: dict) -> str:
    """The preset whose shape ``args`` describe, else "nafnet-custom"."""
    for name in ("nafnet-w32", "nafnet-w64"):
        preset = {k: list(v) if isinstance(v, tuple) else v for k, v in NAFNET_PRESETS[name].items()}
        if args["img_channel"] == 3 and all(args[k] == v for k, v in preset.items()):
            return name
    return "nafnet-custom"


def _keys_summary(keys: list[str]) -> str:
    shown = ", ".join(keys[:3])
    return f"{len(keys)} ({shown}{', ...' if len(keys) > 3 else ''})"


def load_checkpoint(path: str | Path, kind: str | None = None, *, option: str | None = None) -> tuple[nn.Module, dict]:
    """Rebuild the model stored at ``path`` (strict weights, eval mode) and return it with the raw dict.

    ``kind`` ("deblurrer", "converter", ...) rejects a checkpoint of another kind; ``option`` names
    the command-line option in that message.
    """
    path = resolve_checkpoint(path, option or "checkpoint")
    data = read_checkpoint(path)
    official = None if "format" in data else _nafnet_state_dict(data)
    if official is not None:
        args = nafnet_args_from_state_dict(official)
        data = {"format": FORMAT, "kind": "deblurrer", "arch": _nafnet_arch(args), "arch_args": args,
                "state_dict": official, "meta": {"source": "official NAFNet checkpoint"}}
        log.info("%s: official NAFNet checkpoint, loading as %s", path, data["arch"])
    elif data.get("format") != FORMAT:
        found = data.get("format")
        what = f"format {found!r}" if found is not None else "no blur2blur format tag"
        raise UserError(
            f"checkpoint {path} has {what}, expected {FORMAT!r} or an official NAFNet checkpoint: "
            "pass a checkpoint written by b2b-train"
        )

    found_kind = data.get("kind")
    if kind is not None and found_kind != kind:
        needs = f"{option} needs a {kind}" if option else f"a {kind} is needed here"
        raise UserError(f"{path} holds a {found_kind} checkpoint; {needs}")
    arch = data.get("arch")
    if arch not in ARCHS:
        raise UserError(
            f"checkpoint {path} uses architecture {arch!r}, unknown to this version: known are {', '.join(ARCHS)}"
        )
    arch_args = data.get("arch_args") or {}
    if not isinstance(arch_args, dict):
        raise UserError(f"checkpoint {path} has malformed arch_args: re-save it with b2b-train")
    try:
        model = create_model(arch, **arch_args)
    except UserError as err:
        raise UserError(f"checkpoint {path}: {err}") from None

    state_dict = data.get("state_dict")
    if not isinstance(state_dict, dict):
        raise UserError(f"checkpoint {path} has no state_dict: re-save it with b2b-train")
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing keys {_keys_summary(missing)}")
        if unexpected:
            parts.append(f"unexpected keys {_keys_summary(unexpected)}")
        raise UserError(f"checkpoint {path} does not fit {arch}: {'; '.join(parts)}")
    wrong = [k for k, v in state_dict.items() if not isinstance(v, torch.Tensor) or v.shape != expected[k].shape]
    if wrong:
        k = wrong[0]
        got = tuple(state_dict[k].shape) if isinstance(state_dict[k], torch.Tensor) else type(state_dict[k]).__name__
        raise UserError(
            f"checkpoint {path} does not fit {arch}: {len(wrong)} tensors have the wrong shape "
            f"(first {k}: {got}, expected {tuple(expected[k].shape)})"
        )
    model.load_state_dict(state_dict, strict=True)
    model.eval()
    return model, data


def pack_checkpoint(source: str | Path, target: str | Path, meta: dict | None = None) -> Path:
    """Write `source`'s model as a shippable checkpoint: FP16 state dict, no optimizer state, `meta` added."""
    model, data = load_checkpoint(source)
    model = model.half()
    keep = {k: data["meta"][k] for k in ("step", "config", "metrics") if k in data.get("meta", {})}
    save_checkpoint(target, model, data["kind"], {**keep, **(meta or {})})
    return Path(target)
