"""The export bundle as the runtime sees it: a folder with model.onnx, maybe model.fp16.onnx, and meta.json."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from blur2blur.errors import UserError

META_NAME = "meta.json"
ONNX_NAMES = {"fp32": "model.onnx", "fp16": "model.fp16.onnx"}
BUNDLE_FORMAT = "blur2blur-bundle/1"


class DamagedGraph(UserError):
    """A bundle's graph that does not parse: no other backend can run it either."""


MAX_SIDE = 8192  # beyond 8K frames a single-GPU deblurrer makes no sense; also bounds the TensorRT profile
MAX_BATCH = 64
DEFAULT_MIN, DEFAULT_OPT, DEFAULT_MAX = (32, 32), (720, 1280), (1080, 1920)


@dataclass(frozen=True)
class ShapeBounds:
    """Height x width bounds (min <= opt <= max) and the batch the graph is built and tuned for.

    Batches run from 1 to `batch`; TensorRT tunes for `batch` frames of `opt` size.
    """

    min: tuple[int, int] = DEFAULT_MIN
    opt: tuple[int, int] = DEFAULT_OPT
    max: tuple[int, int] = DEFAULT_MAX
    batch: int = 1

    def nhwc(self) -> dict[str, list[int]]:
        """{"min": [1, H, W, 3], "opt": [batch, H, W, 3], "max": [batch, H, W, 3]}, as meta.json records them."""
        return {"min": [1, *self.min, 3], "opt": [self.batch, *self.opt, 3], "max": [self.batch, *self.max, 3]}

    def fit(self, height: int, width: int, odd: bool = False) -> tuple[int, int]:
        """(height, width) clamped into the bounds; with `odd`, moved to odd values where the bounds allow."""
        fitted = []
        for value, low, high in zip((height, width), self.min, self.max):
            value = min(max(value, low), high)
            if odd and value % 2 == 0:
                value = value + 1 if value + 1 <= high else value - 1 if value - 1 >= low else value
            fitted.append(value)
        return fitted[0], fitted[1]


def bounds_from_meta(shapes: dict) -> ShapeBounds:
    """The bounds recorded in a bundle's meta.json (the inverse of `ShapeBounds.nhwc`)."""
    return ShapeBounds(tuple(shapes["min"][1:3]), tuple(shapes["opt"][1:3]), tuple(shapes["max"][1:3]),
                       shapes["max"][0])


@dataclass(frozen=True)
class Bundle:
    path: Path
    meta: dict

    def onnx_path(self, precision: str = "fp32") -> Path:
        """The graph of a precision; a one-line error when the bundle was exported without it."""
        path = self.path / ONNX_NAMES[precision]
        if not path.is_file():
            hint = " (export with --fp16)" if precision == "fp16" else ""
            raise UserError(f"bundle {self.path} has no {path.name}{hint}")
        return path

    @property
    def precisions(self) -> list[str]:
        return [p for p, name in ONNX_NAMES.items() if (self.path / name).is_file()]

    @property
    def bounds(self) -> ShapeBounds | None:
        """The frame sizes and batch the bundle was exported and verified for; None when it records none."""
        shapes = self.meta.get("shapes")
        return bounds_from_meta(shapes) if shapes else None


def sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _schema_problem(meta: object) -> str | None:
    """What in a meta.json does not have the structure b2b-export writes, or None."""
    if not isinstance(meta, dict):
        return f"holds a {type(meta).__name__}, not an object"
    if meta.get("format") != BUNDLE_FORMAT:
        return f"has format {meta.get('format')!r}, not {BUNDLE_FORMAT!r}"
    artefacts = meta.get("artefacts")
    if not isinstance(artefacts, dict) or not artefacts:
        return "lists no artefacts"
    for name, info in artefacts.items():
        if not (isinstance(info, dict) and isinstance(info.get("sha256"), str) and len(info["sha256"]) == 64):
            return f"artefacts.{name} has no sha256"
    for role in ("input", "output"):
        if not (isinstance(meta.get(role), dict) and isinstance(meta[role].get("name"), str)):
            return f"{role}.name is missing"
    shapes = meta.get("shapes")
    if shapes is not None:
        if not isinstance(shapes, dict):
            return "shapes is not an object"
        for key in ("min", "opt", "max"):
            shape = shapes.get(key)
            if not (isinstance(shape, list) and len(shape) == 4
                    and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape)):
                return f"shapes.{key} is not four positive integers (N, H, W, 3)"
    for key in ("sources", "verification", "tensorrt"):
        if key in meta and not isinstance(meta[key], dict):
            return f"{key} is not an object"
    if not isinstance(meta.get("precision", "fp32"), str):
        return "precision is not a string"
    return None


def read_meta(path: Path, option: str = "--bundle") -> dict:
    """A bundle's meta.json, checked against the structure b2b-export writes; one-line errors naming `option`."""
    if not path.is_dir():
        raise UserError(f"{option} {path}: no such folder (make one with b2b-export)")
    try:
        meta = json.loads((path / META_NAME).read_text())
    except FileNotFoundError:
        raise UserError(f"{option} {path}: no {META_NAME}; is this a b2b-export bundle?") from None
    except (OSError, ValueError) as err:
        raise UserError(f"{option} {path}: unreadable {META_NAME} ({err}); export it again") from None
    problem = _schema_problem(meta)
    if problem:
        raise UserError(f"{option} {path}: {META_NAME} {problem}; export the bundle again with this version")
    return meta


def check_artefacts(folder: Path, meta: dict) -> dict[str, str]:
    """Each artefact's state: "ok" (sha256 matches), "modified" or "missing"."""
    states = {}
    for name, info in meta["artefacts"].items():
        path = folder / name
        if not path.is_file():
            states[name] = "missing"
        else:
            states[name] = "ok" if sha256(path) == info["sha256"] else "modified"
    return states


def open_bundle(path: str | Path, verify: bool = True, option: str = "--bundle") -> Bundle:
    """Read a bundle's meta.json and, with `verify`, check every file it lists against its sha256 (a few
    milliseconds per 10 MB); errors name the folder and what to do."""
    path = Path(path)
    meta = read_meta(path, option)
    bundle = Bundle(path, meta)
    if not bundle.precisions:
        raise UserError(f"{option} {path}: holds no model.onnx; export it again")
    if verify:
        unlisted = [ONNX_NAMES[p] for p in bundle.precisions if ONNX_NAMES[p] not in meta["artefacts"]]
        problems = [f"{name} is {state}" for name, state in check_artefacts(path, meta).items() if state != "ok"]
        problems += [f"{name} is not listed in {META_NAME}" for name in unlisted]
        if problems:
            raise UserError(f"{option} {path}: {', '.join(problems)} (changed after export): export it again, "
                            "or pass --no-verify to use it as it is")
    return bundle
