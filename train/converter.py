"""`b2b-train converter`: Blur2Blur's blur converter G for one camera, from unpaired images.

G (MIMO-UNet) turns the camera's blurry frames into frames of the same content with the *known* blur,
which the frozen known-blur deblurrer then restores. Its objective (method.md):

- adversarial: a PatchGAN judges G's three outputs (1/4, 1/2, full size) against the camera's own sharp
  images carrying the known blur (exactly drawn for `synthetic:` known blur, or put there by the kernel
  extractor); hinge loss, plus a gradient penalty on D at interpolates of real and fake. By default D sees
  only the detail band of each image (the image minus its blur: where blur and noise live), so it judges
  the blur and the noise, not the content's colours or layout, which differ between unpaired sets;
- reconstruction: a perceptual L1 between each output and the input at that size keeps the content.

Two recipes (`--recipe`, config.RECIPES): `cpu`, the default, small networks and high rates measured on
this CPU; `paper`, the reference's networks and settings (the critic judging the images themselves).

Stability: G starts as the identity (its output convs are zero), the rates warm up, and validation and
export use an exponential moving average of G's weights. With paired data of the camera (`--val-pairs`)
each evaluation reports PSNR/SSIM of the deblurrer alone and after G, and best.pt keeps the best PSNR.
Without, best.pt keeps the best no-reference score (`noref_score`, reported with pairs too): in the
deblurred output of G on held-out crops of the camera's blurry frames, detail and noise should fall from scale
to scale as they do in the deblurred "real" samples (the camera's sharp images with the known blur), which the
deblurrer restores as well as it can; the identity (step 0) is always a candidate and wins unless a G does
better (`quality.no_pairs_score`; chosen on random cameras with bench/selection.py, README).
"""

from __future__ import annotations

import logging
from itertools import islice
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from blur2blur.data.sources import PairSide, open_pairs, open_side
from blur2blur.data.splits import Pairs, spread
from blur2blur.errors import UserError
from blur2blur.models import create_model
from blur2blur.models.checkpoint import load_checkpoint, read_checkpoint
from blur2blur.models.nafnet import padding_to_multiple
from blur2blur.quality import harm_warning, no_pairs_score
from blur2blur.train.config import ConverterConfig
from blur2blur.train.core import RunResult, run
from blur2blur.train.crops import augment, bgr_to_tensor, pick, random_window, tensor_to_bgr
from blur2blur.train.metrics import psnr, ssim
from blur2blur.train.paired import held_out_tensors
from blur2blur.train.perceptual import DEFAULT_LAMBDA_REC, binomial_low_pass, perceptual_loss
from blur2blur.train.transfer import open_transfer

log = logging.getLogger(__name__)
SAMPLE_ROWS = 4
PROBE_COUNT = 32  # held-out crops of the camera for the no-reference score
PROBE_START = 2**40  # far beyond any step x batch a run reaches
TRANSFER_MARGIN = 16  # context around a crop for the known blur (the largest known kernel radius and more)


class UnpairedCrops(Dataset):
    """Item n: (a crop of the camera's blurry images, a "real" crop for D, the weight of the real crop in the
    gradient penalty's interpolate), the crops flipped at random.

    The real crop is a crop of the camera's sharp images with the known blur put on it by `transfer`
    (cut from a larger window, so the blur sees real context), or, without a transfer, a crop of the
    known blurry images themselves. A pure function of n, the interpolation weight too: so the processes of
    a distributed run draw together what one process with their whole batch would.
    """

    def __init__(self, blurry, real, crop: int, seed: int, transfer=None) -> None:
        for images, what in ((blurry, "blurry"), (real, "real")):
            if len(images) == 0:
                raise ValueError(f"UnpairedCrops needs {what} images")
        self.blurry, self.real, self.crop, self.seed, self.transfer = blurry, real, crop, seed, transfer

    def __len__(self) -> int:
        return 2**62

    def __getitem__(self, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        blurry, real, _, rng = self.draw(n)
        return blurry, real, torch.tensor(rng.random(), dtype=torch.float32)

    def draw(self, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, np.random.Generator]:
        """Item n's (blurry crop, real crop, the sharp crop the real one was blurred from (None without a
        transfer), the item's generator for what else it draws)."""
        rng = np.random.default_rng([self.seed, n, 2])
        (blurry,) = random_window([pick(self.blurry, n, self.seed, 0)], self.crop, rng)
        if self.transfer is None:
            (real,) = random_window([pick(self.real, n, self.seed, 1)], self.crop, rng)
            sharp = None
        else:
            m = TRANSFER_MARGIN
            (window,) = random_window([pick(self.real, n, self.seed, 1)], self.crop + 2 * m, rng)
            real, sharp = self.transfer.apply(np.ascontiguousarray(window), rng)[m:-m, m:-m], window[m:-m, m:-m]
        (blurry,) = augment([blurry], rng, False)
        real, *sharp = augment([real] if sharp is None else [real, sharp], rng, False)  # the same flips
        sharp = sharp[0] if sharp else None
        tensors = [bgr_to_tensor(blurry), bgr_to_tensor(real), None if sharp is None else bgr_to_tensor(sharp)]
        return (*tensors, rng)


def detail_band(image: torch.Tensor) -> torch.Tensor:
    """The image minus its blur by a 9-tap binomial (sigma about 1.4), times 4: the band where blur and noise
    live, without the colours, tone and layout of the content."""
    return 4 * (image - binomial_low_pass(binomial_low_pass(image)))


CRITIC_INPUTS = {"detail": detail_band, "image": lambda image: image}


def scales(image: torch.Tensor) -> list[torch.Tensor]:
    """[1/4, 1/2, full] size, bilinear: the sizes of G's outputs."""
    return [F.interpolate(image, scale_factor=s, mode="bilinear", align_corners=False) for s in (0.25, 0.5)] + [image]


def convert(converter: nn.Module, image: torch.Tensor) -> torch.Tensor:
    """G's full-size output for an image of any size (edge-padded to G's multiple and cropped back)."""
    m = converter.size_multiple
    h, w = image.shape[-2:]
    padded = F.pad(image, (0, padding_to_multiple(w, m), 0, padding_to_multiple(h, m)), mode="replicate")
    return converter(padded)[-1][..., :h, :w]


def detail_profile(image: torch.Tensor) -> torch.Tensor:
    """log mean |Laplacian| of the luminance at full, 1/2 and 1/4 size: the detail (and noise) an image
    holds at each scale."""
    grey = image.clamp(0, 1).mean(dim=1, keepdim=True)
    laplace = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]], device=image.device)[None, None]
    levels = []
    for _ in range(3):
        levels.append(torch.log(F.conv2d(grey, laplace).abs().mean() + 1e-4))
        grey = F.avg_pool2d(grey, 2)
    return torch.stack(levels)


def mean_profile(images: list[torch.Tensor]) -> torch.Tensor:
    """The detail profile averaged over a set of images."""
    return torch.stack([detail_profile(i) for i in images]).mean(dim=0)


def detail_gap(restored: list[torch.Tensor], reference: list[torch.Tensor]) -> float:
    """How far the restored frames' detail profile is from the reference's, both averaged over their set:
    0 when they hold as much detail and noise at every scale."""
    return float((mean_profile(restored) - mean_profile(reference)).abs().mean())


def slope_gap(restored: list[torch.Tensor], reference: list[torch.Tensor]) -> float:
    """How far the fall of detail from scale to scale differs between two sets: like `detail_gap`, but blind to
    how much detail the content holds overall (a busier scene raises every scale alike)."""
    a, b = mean_profile(restored), mean_profile(reference)
    return float(((a[:-1] - a[1:]) - (b[:-1] - b[1:])).abs().mean())


class ConverterTask:
    """G against a PatchGAN on unpaired crops; the deblurrer judges G on held-out pairs when there are some."""

    kind = "converter"

    def __init__(self, config: ConverterConfig) -> None:
        self.deblurrer = load_checkpoint(config.deblurrer, "deblurrer", option="--deblurrer")[0].eval()
        self.deblurrer.requires_grad_(False)
        kernel = load_checkpoint(config.kernel, "kernel", option="--kernel")[0].eval() if config.kernel else None
        self.perceptual = perceptual_loss(config.perceptual, self.deblurrer, kernel, config.vgg_weights)
        self.lambda_rec = DEFAULT_LAMBDA_REC[config.perceptual] if config.lambda_rec is None else config.lambda_rec
        self.lambda_gp = config.lambda_gp
        if config.recipe == "paper" and config.perceptual != "vgg16":
            log.warning("--recipe paper without --vgg-weights: the reconstruction loss is the L1 of the %s features "
                        "(lambda_rec %g) instead of the paper's VGG16 perceptual; give --vgg-weights "
                        "vgg16-397923af.pth for the reference's", config.perceptual, self.lambda_rec)

        blurry = open_side(config.blurry, 0, "--blurry")
        sharp = open_side(config.sharp, 1, "--sharp")
        transfer = open_transfer(config.known, config.kernel)
        if transfer is None:
            log.warning("--known %s: no kernel extractor (--kernel) and not synthetic, so D's real samples are the "
                        "known blurry images themselves (the naive baseline: D may learn their colour and noise "
                        "instead of their blur)", config.known)
            real = PairSide(open_pairs(config.known, option="--known"), 0)
        else:
            real = sharp
        log.info("%s: %d blurry images; %s: %d sharp images; real samples for D: %s", config.blurry, len(blurry),
                 config.sharp, len(sharp), type(transfer).__name__ if transfer else "the known blurry images")
        self.dataset = UnpairedCrops(blurry, real, config.crop, config.seed, transfer)

        self.val = spread(open_pairs(config.val_pairs, option="--val-pairs"), config.val_count) \
            if config.val_pairs else None
        self.val_size = config.val_size
        # Fixed crops for the no-reference figures, drawn from items training never reaches.
        self.probe = [self.dataset.draw(PROBE_START + i)[:3] for i in range(PROBE_COUNT)]
        self.best_metric = "val_psnr" if self.val is not None else "noref_score"

        self.model = create_model(config.arch)  # the identity at first (see models/mimo_unet.py)
        self.critic = create_model(config.critic)
        smallest = 4 * self.critic.min_size  # the critic judges G's 1/4-size output too
        if config.crop < smallest:
            raise UserError(f"--crop {config.crop}: the critic {config.critic} needs crops of at least {smallest} px "
                            f"(it judges G's quarter-size output): use --crop {smallest} or more")
        self.critic_lr = config.critic_lr
        self.critic_input = CRITIC_INPUTS[config.critic_input]
        self._device = torch.device("cpu")  # where the frozen networks are

    def _frozen_to(self, device: torch.device) -> None:
        """The frozen deblurrer and features on the training device (moved on first use only)."""
        if self._device != device:
            self.deblurrer.to(device)
            self.perceptual.to(device)
            self._device = device

    def judge(self, critic: nn.Module, image: torch.Tensor) -> torch.Tensor:
        """The critic's score map of an image, as the critic sees images (`--critic-input`)."""
        return critic(self.critic_input(image))

    def critic_loss(self, critic: nn.Module, model: nn.Module, batch: list[torch.Tensor]):
        blurry, real, alpha = batch
        with torch.no_grad():
            fakes = model(blurry)
        reals = scales(real)
        scores_real = [self.judge(critic, r) for r in reals]
        scores_fake = [self.judge(critic, f) for f in fakes]
        hinge = sum(F.relu(1 - r).mean() + F.relu(1 + f).mean() for r, f in zip(scores_real, scores_fake))
        hinge = 0.5 * hinge / len(reals)
        # The reference's penalty: (|grad D| - 1)^2 at random interpolates of real and fake (full size). Its
        # gradient is taken in fp32, outside the run's autocast: a half-precision input gradient would underflow.
        with torch.autocast(real.device.type, enabled=False):
            alpha = alpha.view(-1, 1, 1, 1)
            mixed = alpha * self.critic_input(real) + (1 - alpha) * self.critic_input(fakes[-1].float())
            mixed.requires_grad_(True)
            grad, = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
            penalty = (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()
        figures = {"d_hinge": hinge.detach(), "d_penalty": penalty.detach(),
                   "d_real": torch.stack([s.mean() for s in scores_real]).mean().detach(),
                   "d_fake": torch.stack([s.mean() for s in scores_fake]).mean().detach()}
        return hinge + self.lambda_gp * penalty, figures

    def loss(self, model: nn.Module, batch: list[torch.Tensor]):
        blurry = batch[0]
        self._frozen_to(blurry.device)
        outputs = model(blurry)
        rec = sum(self.perceptual(o, t) for o, t in zip(outputs, scales(blurry)))
        self.critic.requires_grad_(False)  # judged, not trained, in G's step
        adversarial = -torch.stack([self.judge(self.critic, o).mean() for o in outputs]).mean()
        self.critic.requires_grad_(True)
        return adversarial + self.lambda_rec * rec, {"g_adv": adversarial.detach(), "g_rec": rec.detach()}

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        device = next(model.parameters()).device
        self._frozen_to(device)
        figures = self.no_reference(model)
        if self.val is not None:
            figures.update(evaluate_converter(model, self.deblurrer, self.val, self.val_size))
        return figures

    def no_reference(self, model: nn.Module) -> dict[str, float]:
        """Figures that need no pairs, on the probe crops: the critic's view of real and converted crops, how
        much G keeps of its input (`probe_psnr_converted`), the detail gaps (and their slopes) of the deblurrer
        alone and after G against the deblurred real samples and against the camera's sharp crops, what G does to
        the real samples (`known_psnr_*`), and `noref_score` (`no_pairs_score`), which picks best.pt without pairs."""
        device = next(model.parameters()).device
        sets: dict[str, list[torch.Tensor]] = {}
        figures: dict[str, list[float]] = {}
        for blurry, real_sample, sharp in self.probe:
            blurry, real_sample = blurry[None].to(device), real_sample[None].to(device)
            converted = convert(model, blurry)
            shown = {"blurry": blurry, "converted": converted, "real": real_sample,
                     "restored": self.deblurrer(converted), "alone": self.deblurrer(blurry),
                     "reference": self.deblurrer(real_sample)}
            measured = {"critic_real": float(self.judge(self.critic, real_sample).mean()),
                        "critic_converted": float(self.judge(self.critic, converted).mean()),
                        "probe_psnr_converted": psnr(converted.cpu(), blurry.cpu())}
            if sharp is not None:  # G on frames that already carry the known blur: it should leave them be
                real_converted = convert(model, real_sample)
                shown["sharp"] = sharp[None].to(device)
                measured.update(known_psnr_converted=psnr(real_converted.cpu(), real_sample.cpu()),
                                known_psnr_alone=psnr(shown["reference"].cpu(), sharp[None]),
                                known_psnr_after=psnr(self.deblurrer(real_converted).cpu(), sharp[None]))
            for key, value in shown.items():
                sets.setdefault(key, []).append(value)
            for key, value in measured.items():
                figures.setdefault(key, []).append(value)
        result = {key: float(np.mean(values)) for key, values in figures.items()}
        for name, (a, b) in {"": ("restored", "reference"), "_deblurred": ("alone", "reference"),
                             "_converted": ("converted", "real"), "_input": ("blurry", "real"),
                             "_sharp": ("restored", "sharp"), "_sharp_deblurred": ("alone", "sharp")}.items():
            if b in sets:
                result[f"detail_gap{name}"] = detail_gap(sets[a], sets[b])
                result[f"slope_gap{name}"] = slope_gap(sets[a], sets[b])
        result["noref_score"] = no_pairs_score(result)
        return result

    def samples(self, model: nn.Module) -> list[list[np.ndarray]]:
        """Rows of blurry | deblurrer alone | converted | deblurrer after G (| sharp, with pairs)."""
        device = next(model.parameters()).device
        if self.val is not None:
            inputs = islice(held_out_tensors(self.val, self.val_size), SAMPLE_ROWS)
        else:
            inputs = ((blurry[None], None) for blurry, _, _ in self.probe[:SAMPLE_ROWS])
        rows = []
        for blurry, sharp in inputs:
            blurry = blurry.to(device)
            converted = convert(model, blurry)
            row = [blurry, self.deblurrer(blurry), converted, self.deblurrer(converted)]
            rows.append([tensor_to_bgr(t[0]) for t in row + ([sharp] if sharp is not None else [])])
        return rows


@torch.no_grad()
def evaluate_converter(converter: nn.Module, deblurrer: nn.Module, pairs: Pairs, size: int) -> dict[str, float]:
    """Mean PSNR/SSIM (8-bit RGB) against sharp of: the blurry input, the deblurrer alone (`_deblurred`) and
    the deblurrer after G (`val_psnr`); and `val_psnr_converted`, how close G's output stays to its input."""
    device = next(converter.parameters()).device
    figures: dict[str, list[float]] = {k: [] for k in ("val_psnr_input", "val_psnr_deblurred", "val_psnr",
                                                       "val_ssim_input", "val_ssim_deblurred", "val_ssim",
                                                       "val_psnr_converted")}
    for blurry, sharp in held_out_tensors(pairs, size):
        blurry = blurry.to(device)
        converted = convert(converter, blurry)
        alone, after = deblurrer(blurry).cpu(), deblurrer(converted).cpu()
        figures["val_psnr_input"].append(psnr(blurry.cpu(), sharp))
        figures["val_psnr_deblurred"].append(psnr(alone, sharp))
        figures["val_psnr"].append(psnr(after, sharp))
        figures["val_ssim_input"].append(ssim(blurry.cpu(), sharp))
        figures["val_ssim_deblurred"].append(ssim(alone, sharp))
        figures["val_ssim"].append(ssim(after, sharp))
        figures["val_psnr_converted"].append(psnr(converted.cpu(), blurry.cpu()))
    return {key: float(np.mean(values)) for key, values in figures.items() if values}


def kept_no_converter(best: Path) -> bool:
    """Whether the run's best.pt is where G started, the identity: no G it tried did better."""
    return read_checkpoint(best)["meta"].get("step") == 0


def train_converter(config: ConverterConfig, given: Iterable[str] = ()) -> RunResult:
    """Train (or, with `config.resume`, continue) a converter run in `config.out`; with pairs of the camera, warn
    when the kept G still leaves the deblurred frames worse than the blurry input."""
    result = run(config, ConverterTask, given)
    if result.main and result.best is not None and not result.stopped_by:
        kept = read_checkpoint(result.best)["meta"].get("metrics", {})
        if "val_psnr" in kept:
            warning = harm_warning(kept["val_psnr"], kept["val_psnr_input"], f"{result.best} (after the deblurrer)")
            if warning:
                log.warning("%s", warning)
    return result
