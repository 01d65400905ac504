"""What the trainers that learn from known (blurry, sharp) pairs share: the starting network, the
train/validation split, training crops and held-out tensors."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator

import torch
from torch import nn

from blur2blur.data.sources import open_pairs
from blur2blur.data.splits import Pairs, holdout, spread
from blur2blur.models import create_model
from blur2blur.models.checkpoint import load_checkpoint
from blur2blur.train.config import PairConfig
from blur2blur.train.crops import PairedCrops, bgr_to_tensor

log = logging.getLogger(__name__)


def train_and_val(config: PairConfig) -> tuple[Pairs, Pairs]:
    """The training pairs and the validation pairs of a run; unreadable files are skipped and counted."""
    pairs = open_pairs(config.pairs)
    if config.val_pairs:
        train, val = pairs, spread(open_pairs(config.val_pairs, option="--val-pairs"), config.val_count)
    else:
        train, val = holdout(pairs, config.val_count, config.seed)
    skipped = len(pairs.skipped)
    log.info("%s: %d pairs for training%s, %d held out%s", config.pairs, len(train),
             f" ({skipped} unreadable skipped)" if skipped else "", len(val),
             f" from {config.val_pairs}" if config.val_pairs else "")
    if not len(val):
        log.warning("too few pairs to hold any out: no validation figures, and no best.pt")
    return train, val


def centre_crop(tensor: torch.Tensor, size: int) -> torch.Tensor:
    """The central `size` x `size` window (the whole image when `size` is 0 or larger than it)."""
    if size <= 0:
        return tensor
    height, width = tensor.shape[-2:]
    top, left = max(0, (height - size) // 2), max(0, (width - size) // 2)
    return tensor[..., top:top + size, left:left + size]


def held_out_tensors(pairs: Pairs, size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(blurry, sharp) 1 x 3 x H x W tensors of each readable pair, centre-cropped to `size`."""
    for i in range(len(pairs)):
        images = pairs.load(i)
        if images is not None:
            yield tuple(centre_crop(bgr_to_tensor(image), size)[None] for image in images)


def initial_model(config: PairConfig) -> nn.Module:
    """The network a run starts from: the run's own last.pt when resuming (whatever its architecture), else
    the checkpoint --init (fine-tuning; official NAFNet files too), else a fresh --arch."""
    if config.resume:
        return load_checkpoint(Path(config.out) / "last.pt", config.kind)[0]
    if config.init:
        model, _ = load_checkpoint(config.init, config.kind, option="--init")
        log.info("starting from %s (%s)", config.init, model.arch)
        return model
    return create_model(config.arch)


class PairTask:
    """A training task on known pairs: random crops of the training pairs, held-out pairs to evaluate on.
    Subclasses add the loss, the evaluation and the sample grid (see core.Task). `config.arch` becomes the
    architecture the run really trains (that of --init when given)."""

    def __init__(self, config: PairConfig) -> None:
        train, self.val = train_and_val(config)
        self.val_size = config.val_size
        self.kind = config.kind
        self.model = initial_model(config)
        config.arch = self.model.arch
        self.dataset = PairedCrops(train, config.crop, config.seed, config.rotate)
        first = train.load(0)
        if first is not None and min(first[0].shape[:2]) < config.crop:
            log.warning("--crop %d is larger than the pairs (the first is %dx%d): crops are padded by reflection; "
                        "use --crop %d or less to train on real pixels only", config.crop, first[0].shape[1],
                        first[0].shape[0], min(first[0].shape[:2]))
