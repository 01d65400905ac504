"""Aligned random crops of (blurry, sharp) pairs as tensors, a pure function of (seed, sample number).

Sample n of a run is always the same crop of the same pair, so a resumed run sees exactly the data that
an uninterrupted one would have seen, whatever the number of workers.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from blur2blur.data.splits import Pairs

log = logging.getLogger(__name__)


def bgr_to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 H x W x 3 BGR -> float32 3 x H x W RGB in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image[:, :, ::-1].transpose(2, 0, 1))).float().div_(255.0)


def tensor_to_bgr(tensor: torch.Tensor) -> np.ndarray:
    """float 3 x H x W RGB in [0, 1] -> uint8 H x W x 3 BGR."""
    array = tensor.detach().clamp(0, 1).mul(255).round().byte().cpu().numpy()
    return np.ascontiguousarray(array.transpose(1, 2, 0)[:, :, ::-1])


def augment(images: list[np.ndarray], rng: np.random.Generator, rotate: bool) -> list[np.ndarray]:
    """The same random flips (and, if `rotate`, 90-degree turns) for every image of a pair.

    Flips keep a blur's direction family (an angle within 15 degrees of horizontal stays so); turns do
    not, so they are only for data whose blur already goes every way (GoPro).
    """
    flip_x, flip_y, turns = rng.integers(0, 2), rng.integers(0, 2), rng.integers(0, 4) if rotate else 0
    return [np.rot90(image[::-1 if flip_y else 1, ::-1 if flip_x else 1], turns) for image in images]


def pick(items, n: int, seed: int, *stream: int):
    """Item n of an endless sequence over `items` (pairs or images: anything with `load(i)` and `source`):
    epoch n // len walks a seeded permutation (one per `stream`). An item that went unreadable since it was
    checked is passed over for the next one."""
    epoch, position = divmod(n, len(items))
    order = np.random.default_rng([seed, *stream, epoch]).permutation(len(items))
    for offset in range(len(items)):
        item = items.load(int(order[(position + offset) % len(items)]))
        if item is not None:
            return item
        log.warning("%s: an image can no longer be read; training on another", items.source)
    raise RuntimeError(f"{items.source}: nothing can be read any more")


def random_window(images: list[np.ndarray], size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """The same random `size` x `size` window of each (equally sized) image; images smaller than that are
    padded by reflection first, never rejected."""
    height, width = images[0].shape[:2]
    if height < size or width < size:
        pad = ((0, max(0, size - height)), (0, max(0, size - width)), (0, 0))
        images = [np.pad(image, pad, mode="reflect") for image in images]
        height, width = images[0].shape[:2]
    top, left = rng.integers(0, height - size + 1), rng.integers(0, width - size + 1)
    return [image[top:top + size, left:left + size] for image in images]


class PairedCrops(Dataset):
    """Item n: an augmented `crop` x `crop` patch of pair perm_epoch[n % len], epoch = n // len."""

    def __init__(self, pairs: Pairs, crop: int, seed: int, rotate: bool = False) -> None:
        if len(pairs) == 0:
            raise ValueError("PairedCrops needs at least one pair")
        self.pairs, self.crop, self.seed, self.rotate = pairs, crop, seed, rotate

    def __len__(self) -> int:  # the index space is unbounded; the sampler decides how far a run goes
        return 2**62

    def __getitem__(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, n, 1])
        blur, sharp = augment(random_window(list(pick(self.pairs, n, self.seed)), self.crop, rng), rng, self.rotate)
        return bgr_to_tensor(blur), bgr_to_tensor(sharp)


class StepSampler(Sampler[int]):
    """The sample numbers of training steps start+1 .. stop for one of `world` processes.

    Step s (from 1) of rank r takes samples ((s-1) w + r) b .. +b-1, so w processes with batch b see
    together exactly what one process with batch w b would, and a run resumed after step `start` sees
    exactly what it would have seen uninterrupted.
    """

    def __init__(self, start: int, stop: int, batch: int, rank: int = 0, world: int = 1) -> None:
        self.start, self.stop, self.batch, self.rank, self.world = start, stop, batch, rank, world

    def __iter__(self):
        for step in range(self.start, self.stop):
            first = (step * self.world + self.rank) * self.batch
            yield from range(first, first + self.batch)

    def __len__(self) -> int:
        return (self.stop - self.start) * self.batch
