"""Train the known-blur deblurrer (NAFNet) on paired blurry/sharp images."""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from blur2blur.errors import UserError
from blur2blur.models import arch_kind, count_parameters, create_model
from blur2blur.models.checkpoint import save_checkpoint
from blur2blur.train.crops import PairedCrops, RangeSampler, bgr_to_tensor
from blur2blur.train.datasets import open_pairs
from blur2blur.train.metrics import psnr, psnr_loss

log = logging.getLogger(__name__)


@dataclass
class DeblurrerConfig:
    pairs: str
    out: str
    arch: str = "nafnet-tiny"
    steps: int = 2000
    batch: int = 8
    crop: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-3
    seed: int = 0
    workers: int = 0
    val_count: int = 8
    val_size: int = 128
    save_every: int = 500
    rotate: bool = False


def split(count: int, val_count: int, seed: int) -> tuple[list[int], list[int]]:
    """A seeded hold-out split: (train indices, validation indices), at most a fifth held out."""
    order = np.random.default_rng([seed, 7]).permutation(count).tolist()
    val_count = min(val_count, count // 5)  # never more than a fifth of the data
    return sorted(order[val_count:]), sorted(order[:val_count])


def centre_crop(tensor: torch.Tensor, size: int) -> torch.Tensor:
    height, width = tensor.shape[-2:]
    top, left = max(0, (height - size) // 2), max(0, (width - size) // 2)
    return tensor[..., top:top + size, left:left + size]


@torch.no_grad()
def evaluate(model: torch.nn.Module, pairs, indices: list[int], size: int) -> dict[str, float]:
    """PSNR of the blurry input and of the model's output against sharp, on centre crops of held-out pairs."""
    model.eval()
    before, after = [], []
    for index in indices:
        blur, sharp = (centre_crop(bgr_to_tensor(image), size)[None] for image in pairs.load(index))
        before.append(psnr(blur, sharp))
        after.append(psnr(model(blur), sharp))
    model.train()
    return {"val_psnr_input": float(np.mean(before)), "val_psnr": float(np.mean(after))} if indices else {}


def train_deblurrer(config: DeblurrerConfig) -> Path:
    """Train for `config.steps` steps; write `out/last.pt` (and every `save_every` steps); return its path."""
    if arch_kind(config.arch) != "deblurrer":
        raise UserError(f"--arch {config.arch} is a {arch_kind(config.arch)}, not a deblurrer (try nafnet-tiny)")
    if config.steps < 1 or config.batch < 1 or config.crop < 16:
        raise UserError("--steps and --batch must be at least 1 and --crop at least 16")
    out = Path(config.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"--out {out}: cannot create the run folder ({err.strerror})") from None
    torch.manual_seed(config.seed)
    pairs = open_pairs(config.pairs)
    train_idx, val_idx = split(len(pairs), config.val_count, config.seed)

    model = create_model(config.arch)
    log.info("training %s (%.2f M parameters) on %d pairs, %d held out", config.arch,
             count_parameters(model) / 1e6, len(train_idx), len(val_idx))
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay, betas=(0.9, 0.9))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, config.steps) / config.steps)))
    loader = DataLoader(PairedCrops(pairs, config.crop, config.seed, train_idx, config.rotate), batch_size=config.batch,
                        sampler=RangeSampler(0, config.steps * config.batch), num_workers=config.workers)

    def save(step: int, metrics: dict) -> Path:
        path = out / "last.pt"
        save_checkpoint(path, model, "deblurrer", meta={"step": step, "config": asdict(config), "metrics": metrics})
        return path

    metrics: dict[str, float] = {}
    model.train()
    bar = tqdm(loader, total=config.steps, desc="deblurrer", unit="step")
    step = 0
    try:
        for step, (blur, sharp) in enumerate(bar, start=1):
            loss = psnr_loss(model(blur), sharp)
            if not torch.isfinite(loss):
                saved = f"the last good checkpoint is {out / 'last.pt'}" if (out / "last.pt").exists() else "nothing was saved"
                raise UserError(f"training diverged at step {step} (loss {loss.item()}); lower --lr; {saved}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            bar.set_postfix(psnr=f"{-loss.item():.2f}", lr=f"{schedule.get_last_lr()[0]:.1e}")
            if step % config.save_every == 0 and step < config.steps:
                metrics = evaluate(model, pairs, val_idx, config.val_size)
                save(step, metrics)
    except KeyboardInterrupt:
        if step > 0:  # never replace a checkpoint with untrained weights
            log.info("interrupted at step %d; saving %s", step, out / "last.pt")
            save(step, metrics)
        raise
    finally:
        bar.close()
    metrics = evaluate(model, pairs, val_idx, config.val_size)
    if metrics:
        log.info("held-out PSNR: input %.2f dB -> deblurred %.2f dB (%+.2f dB)", metrics["val_psnr_input"],
                 metrics["val_psnr"], metrics["val_psnr"] - metrics["val_psnr_input"])
    return save(step, metrics)
