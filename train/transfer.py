"""Known blur on the target camera's sharp images: the "real" samples of Blur2Blur's discriminator.

Content, colour, resolution and noise come from the target camera; only the blur is the known one. Two
ways to get it:

- `LearnedTransfer`: the kernel extractor encodes the blur of a random known pair and applies that code to
  the sharp image (the paper's way, for real known data such as GoPro);
- `ExactTransfer`: where the known domain is synthetic, draw a kernel from that domain's own sampler and
  convolve the sharp image with it in linear light (exact, no network).
"""

from __future__ import annotations

import numpy as np
import torch

from blur2blur.data.blur import kernels
from blur2blur.data.blur.camera import bgr8_to_linear, linear_to_srgb, quantize_8bit
from blur2blur.data.blur.domains import get_domain
from blur2blur.data.sources import PAIR_KINDS, open_pairs
from blur2blur.data.spec import parse_spec
from blur2blur.data.splits import Pairs
from blur2blur.errors import UserError
from blur2blur.models.checkpoint import load_checkpoint
from blur2blur.train.crops import PairedCrops, bgr_to_tensor, tensor_to_bgr


class ExactTransfer:
    """A kernel of the synthetic known domain, convolved with the sharp image in linear light."""

    def __init__(self, domain: str) -> None:
        self.domain = get_domain(domain)

    def apply(self, sharp_bgr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """`sharp_bgr` (uint8 BGR) with a known blur drawn from `rng`."""
        kernel = self.domain.sample(rng)["kernel"]
        return quantize_8bit(linear_to_srgb(kernels.convolve(bgr8_to_linear(sharp_bgr), kernel)))


class LearnedTransfer:
    """The kernel code of a random known pair (a `crop` x `crop` window of it), applied to the sharp image."""

    def __init__(self, kernel_checkpoint: str, known: Pairs, crop: int = 128) -> None:
        self.model = load_checkpoint(kernel_checkpoint, "kernel", option="--kernel")[0]
        self.known = PairedCrops(known, crop, seed=0)

    @torch.no_grad()
    def apply(self, sharp_bgr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """`sharp_bgr` (uint8 BGR) with the blur of the known pair that `rng` picks."""
        known_blurry, known_sharp = (t[None] for t in self.known[int(rng.integers(2**62))])
        code = self.model.encode(known_sharp, known_blurry)
        return tensor_to_bgr(self.model.reblur(bgr_to_tensor(sharp_bgr)[None], code)[0])


def open_transfer(known: str, kernel: str | None) -> ExactTransfer | LearnedTransfer | None:
    """The transfer for a known-blur source: learned when a kernel checkpoint is given, exact for
    `synthetic:DOMAIN`, else None (no transfer: the known blurry images themselves must serve)."""
    if kernel:
        return LearnedTransfer(kernel, open_pairs(known, option="--known"))
    spec = parse_spec(known, PAIR_KINDS)
    if spec.kind == "synthetic":
        try:
            return ExactTransfer(spec.path)
        except UserError as err:
            raise UserError(f"--known {err}") from None
    return None
