"""The fused deploy module: camera frames in, restored frames out, every per-pixel step in the graph."""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from blur2blur.errors import UserError
from blur2blur.models import ARCHS, arch_kind
from blur2blur.models.nafnet import padding_to_multiple

_SWAP_RB = [2, 1, 0]  # BGR <-> RGB


def _describe(model: nn.Module) -> str:
    return getattr(model, "arch", type(model).__name__)


def check_compatible(deblurrer: nn.Module, converter: nn.Module | None = None) -> None:
    """Raise UserError unless each network maps 3-channel images to 3-channel images."""
    for role, model in (("deblurrer", deblurrer), ("converter", converter)):
        if model is None:
            continue
        arch = getattr(model, "arch", None)
        if arch in ARCHS and arch_kind(arch) != role:
            raise UserError(f"{arch} is a {arch_kind(arch)}, not a {role}: pass a {role} checkpoint")
        channels = (getattr(model, "in_channels", None), getattr(model, "out_channels", None))
        if channels != (3, 3):
            raise UserError(
                f"the {role} {_describe(model)} maps {channels[0]} to {channels[1]} channels; "
                "deploy needs RGB in and RGB out: pass a 3-channel image-to-image checkpoint"
            )
        if not isinstance(getattr(model, "size_multiple", None), int):
            raise UserError(
                f"the {role} {_describe(model)} is not an image restoration network: pass a {role} checkpoint"
            )


class DeployModel(nn.Module):
    """uint8 N x H x W x 3 BGR frames -> restored frames of the same shape, type and colour order.

    Optional converter G first (its full-scale output), then the deblurrer. Frames of any size are
    edge-padded to the networks' common multiple and cropped back; sizes stay dynamic in ONNX.
    """

    def __init__(self, deblurrer: nn.Module, converter: nn.Module | None = None) -> None:
        super().__init__()
        check_compatible(deblurrer, converter)
        self.deblurrer = deblurrer
        self.converter = converter
        multiples = [deblurrer.size_multiple] + ([converter.size_multiple] if converter is not None else [])
        self.size_multiple = math.lcm(*multiples)

    def to_fp16(self) -> DeployModel:
        """A half-precision copy for FP16 export: convs in FP16, LayerNorm statistics still in FP32,
        uint8 frames in and out as before. This module is left unchanged."""
        return copy.deepcopy(self).half().eval()

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_tracing() and (frames.dtype != torch.uint8 or frames.ndim != 4 or frames.shape[-1] != 3):
            raise UserError(
                f"DeployModel takes uint8 N x H x W x 3 BGR frames, got {frames.dtype} {tuple(frames.shape)}: "
                "pass frames as the camera gives them"
            )
        dtype = next(self.deblurrer.parameters()).dtype  # follows .half()
        # uint8 is touched only by the first and the last op, both casts: TensorRT takes uint8 tensors
        # only at the network's edges and converts them with a cast, nothing else.
        x = frames.to(dtype)
        h, w = x.shape[1], x.shape[2]
        m = self.size_multiple
        x = x.permute(0, 3, 1, 2)[:, _SWAP_RB] / 255.0
        # Edge padding, not zeros: a black border would bleed blur into the frame's edges.
        x = F.pad(x, (0, padding_to_multiple(w, m), 0, padding_to_multiple(h, m)), mode="replicate")
        if self.converter is not None:
            x = self.converter(x)[-1]
        x = self.deblurrer(x)[:, :, :h, :w]
        x = torch.round(x.clamp(0.0, 1.0) * 255.0)
        return x[:, _SWAP_RB].permute(0, 2, 3, 1).to(torch.uint8)
