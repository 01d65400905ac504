"""The export bundle as the runtime sees it: a folder with model.onnx, maybe model.fp16.onnx, and meta.json."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from blur2blur.errors import UserError

META_NAME = "meta.json"
ONNX_NAMES = {"fp32": "model.onnx", "fp16": "model.fp16.onnx"}


@dataclass(frozen=True)
class Profile:
    """Height x width bounds and the largest batch (meta.json's min/max shapes)."""

    min: tuple[int, int]
    max: tuple[int, int]
    batch: int


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
    def profile(self) -> Profile | None:
        """The frame sizes and batch the bundle was exported and verified for; None when it records none."""
        shapes = self.meta.get("shapes")
        if not shapes:
            return None
        return Profile(tuple(shapes["min"][1:3]), tuple(shapes["max"][1:3]), int(shapes["max"][0]))


def open_bundle(path: str | Path) -> Bundle:
    """Read a bundle's meta.json; errors name the folder and what to do."""
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"--bundle {path}: no such folder (make one with b2b-export)")
    meta_path = path / META_NAME
    try:
        meta = json.loads(meta_path.read_text())
    except FileNotFoundError:
        raise UserError(f"--bundle {path}: no {META_NAME}; is this a b2b-export bundle?") from None
    except (OSError, ValueError) as err:
        raise UserError(f"--bundle {path}: unreadable {META_NAME} ({err}); export it again") from None
    bundle = Bundle(path, meta)
    if not bundle.precisions:
        raise UserError(f"--bundle {path}: holds no model.onnx; export it again")
    return bundle
