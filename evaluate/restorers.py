"""The restorations an evaluation compares or times, from an export bundle or from checkpoints.

A `Restorer` maps one uint8 H x W x 3 BGR image to its restored image: the runtime's engine, or the fused module
in PyTorch eager (`eager`). `open_restorers` gives up to two, in
this order: `deblurrer` (the deblurrer alone) and `converter` (the deblurrer after the camera's converter G);
a bundle that does not record what it was exported from is just `bundle`.
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from blur2blur.errors import UserError

log = logging.getLogger(__name__)
LABELS = {"blurry": "blurry input", "deblurrer": "deblurrer alone", "converter": "with converter", "bundle": "bundle",
          "sharp": "sharp"}


@dataclass
class Restorer:
    """`restore(image) -> image` (uint8 BGR), with what it is (`description`) for tables and JSON, and where its
    arithmetic runs (`device` "cpu" or "gpu", `math` the precision the hardware multiplies in) for b2b-bench."""

    key: str
    description: str
    restore: Callable[[np.ndarray], np.ndarray]
    close: Callable[[], None] = lambda: None
    device: str = "cpu"
    math: str = "fp32"


def eager(model, device: str = "cpu") -> Callable[[np.ndarray], np.ndarray]:
    """`restore(image)` through a fused module (uint8 BGR in and out, blur2blur.models.deploy) already on `device`,
    in PyTorch eager."""
    import torch

    @torch.inference_mode()
    def restore(image: np.ndarray) -> np.ndarray:
        return model(torch.from_numpy(np.ascontiguousarray(image[None])).to(device))[0].cpu().numpy()

    return restore


def open_restorers(stack: ExitStack, bundle: str | None = None, deblurrer: str | None = None,
                   converter: str | None = None, backend: str = "auto", precision: str = "auto",
                   verify: bool = True) -> list[Restorer]:
    """The deblurrer alone and, when there is a converter, the deblurrer after it, each closed with `stack`.

    With a bundle, its own graph (in the runtime's engine) is the last of them; the deblurrer alone of a bundle
    with a converter comes from the deblurrer checkpoint the bundle was exported from, when it is still there.
    """
    check_model_options(bundle, deblurrer, converter)
    restorers = torch_restorers(deblurrer, converter) if deblurrer else bundle_restorers(bundle, backend, precision,
                                                                                         verify)
    for restorer in restorers:
        stack.callback(restorer.close)
    return restorers


def check_model_options(bundle: str | None, deblurrer: str | None, converter: str | None) -> None:
    """A bundle, or a deblurrer checkpoint with an optional converter: one of the two."""
    if bool(bundle) == bool(deblurrer):
        raise UserError("give either --bundle BUNDLE or --deblurrer CKPT (with --converter CKPT for a camera's G)")
    if converter and not deblurrer:
        raise UserError("--converter goes with --deblurrer (a bundle already holds its converter)")


def torch_restorers(deblurrer: str, converter: str | None = None) -> list[Restorer]:
    """The deblurrer alone and, with a converter, the deblurrer after it: checkpoints loaded once, run in PyTorch
    eager (FP32, on the CPU)."""
    from blur2blur.export.onnx_export import load_models
    from blur2blur.models.deploy import DeployModel

    fused, sources = load_models(deblurrer, converter)

    def restorer(key: str, model, roles: tuple[str, ...]) -> Restorer:
        parts = [f"{sources[role]['arch']} ({sources[role]['path']})" for role in roles]
        return Restorer(key, " then ".join(parts) + ", PyTorch", eager(model))

    if converter is None:
        return [restorer("deblurrer", fused, ("deblurrer",))]
    alone = DeployModel(fused.deblurrer).eval()
    return [restorer("deblurrer", alone, ("deblurrer",)), restorer("converter", fused, ("converter", "deblurrer"))]


def bundle_restorers(path: str, backend: str, precision: str, verify: bool = True) -> list[Restorer]:
    """The bundle's graph in the runtime's engine, after the deblurrer alone in PyTorch when the bundle fuses a
    converter and its deblurrer checkpoint can be had. A bundle that records no checkpoints is the `bundle`."""
    from blur2blur.runtime.bundle import open_bundle
    from blur2blur.runtime.engines import infer, open_engine

    bundle = open_bundle(path, verify)
    sources = bundle.meta.get("sources") or {}
    engine = open_engine(bundle, backend, precision)

    def restore(image: np.ndarray) -> np.ndarray:
        largest = bundle.bounds.max if bundle.bounds else image.shape[:2]
        if image.shape[0] > largest[0] or image.shape[1] > largest[1]:
            # b2b-run would shrink it: the figures would measure the resizing, not the restoration
            raise UserError(f"--bundle {path}: an image of {image.shape[1]}x{image.shape[0]} is larger than the "
                            f"bundle's largest frame ({largest[1]}x{largest[0]}); export it with a larger "
                            "--max-shape, or give --deblurrer and --converter checkpoints")
        return infer(engine, image[None])[0]  # a small image is padded, and the padding cropped off again

    key = "converter" if "converter" in sources else "deblurrer" if sources else "bundle"
    ours = Restorer(key, f"bundle {path}, {engine.name}", restore, engine.close, engine.device)
    if key != "converter":
        return [ours]
    checkpoint = bundle_checkpoints(bundle.meta, roles=("deblurrer",))
    try:
        if checkpoint:
            return [*torch_restorers(checkpoint["deblurrer"]), ours]
        reason = "its deblurrer checkpoint is not where it was exported from, or has changed"
    except ImportError:
        reason = "PyTorch is not installed here"
    except BaseException:
        engine.close()
        raise
    log.warning("bundle %s: %s, so there is no 'deblurrer alone' column (give --deblurrer and --converter "
                "checkpoints for both)", path, reason)
    return [ours]


def bundle_checkpoints(meta: dict, roles: tuple[str, ...] = ("deblurrer", "converter")) -> dict[str, str] | None:
    """The checkpoints of `roles` a bundle was exported from ({"deblurrer": path, maybe "converter": path}), when
    each is still where it was and unchanged (same sha256); else None."""
    from blur2blur.runtime.bundle import sha256

    found = {}
    for role, source in (meta.get("sources") or {}).items():
        if role not in roles:
            continue
        path = Path(source.get("path", ""))
        if not path.is_file() or sha256(path) != source.get("sha256"):
            return None
        found[role] = str(path)
    return found if "deblurrer" in found else None
