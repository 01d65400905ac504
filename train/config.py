"""Training settings as plain values (no torch here: the CLI reads its defaults from these classes)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from blur2blur.errors import UserError
from blur2blur.files.outputs import check_outputs
from blur2blur.weights import resolve_checkpoint

OPTIMIZERS = ("adamw", "adam")
SCHEDULES = ("cosine", "linear", "constant")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("fp32", "bf16", "fp16")


@dataclass
class RunConfig:
    """Settings every trainer shares; each trainer's config adds its data and model.

    `batch` is per process (under torchrun the global batch is batch x processes). Schedules: `cosine`
    decays to `min_lr`; `linear` holds the rate for the first third, then decays linearly to `min_lr` (the
    shape of Blur2Blur's 100 + 200 epochs); `constant` holds it. `warmup` steps ramp the rate up linearly
    first, which lets a small network take a higher rate. `precision` bf16 or fp16 runs the forward passes
    under autocast (fp16 with a gradient scaler per optimizer, on CUDA only); the weights stay fp32.
    """

    kind: ClassVar[str] = ""  # the checkpoint kind the run trains
    out: str = ""
    steps: int = 2000
    batch: int = 8
    crop: int = 64
    lr: float = 2e-3
    optimizer: str = "adamw"
    beta1: float = 0.9
    beta2: float = 0.9
    weight_decay: float = 1e-3
    schedule: str = "cosine"
    min_lr: float = 1e-7
    warmup: int = 0
    seed: int = 0
    workers: int = 0
    eval_every: int = 500
    log_every: int = 20
    device: str = "auto"
    resume: bool = False
    ema: float = 0.0  # decay of an exponential moving average of the weights (0: none); see core.fit
    precision: str = "fp32"

    def check(self) -> None:
        """A one-line UserError naming the option for any setting out of range (trainers add theirs)."""
        positive = {"--steps": self.steps, "--batch": self.batch, "--eval-every": self.eval_every,
                    "--log-every": self.log_every}
        for option, value in positive.items():
            if value < 1:
                raise UserError(f"{option} {value}: must be at least 1")
        if self.crop < 16:
            raise UserError(f"--crop {self.crop}: must be at least 16 pixels")
        if not self.lr > 0 or not math.isfinite(self.lr):
            raise UserError(f"--lr {self.lr}: must be a positive number")
        if self.optimizer not in OPTIMIZERS:
            raise UserError(f"--optimizer {self.optimizer}: choose one of {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            raise UserError(f"--schedule {self.schedule}: choose one of {', '.join(SCHEDULES)}")
        if self.precision not in PRECISIONS:
            raise UserError(f"--precision {self.precision}: choose one of {', '.join(PRECISIONS)}")
        for option, value in {"--beta1": self.beta1, "--beta2": self.beta2}.items():
            if not 0 <= value < 1:
                raise UserError(f"{option} {value}: must be at least 0 and below 1")
        for option, value in {"--workers": self.workers, "--seed": self.seed, "--weight-decay": self.weight_decay,
                              "--min-lr": self.min_lr, "--warmup": self.warmup}.items():
            if not value >= 0:
                raise UserError(f"{option} {value}: must be 0 or more")
        if not 0 <= self.ema < 1:
            raise UserError(f"--ema {self.ema}: must be at least 0 (no average) and below 1")
        if not self.out:
            raise UserError("--out: give a run folder")
        inputs = {f"--{name.replace('_', '-')}": getattr(self, name) for name in INPUTS if getattr(self, name, None)}
        check_outputs(inputs, folders={"--out": self.out})


INPUTS = ("pairs", "val_pairs", "init", "blurry", "sharp", "known", "deblurrer", "kernel", "vgg_weights")  # read


def check_held_out(count: int, size: int) -> None:
    """--val-count and --val-size are counts and sizes: 0 or more."""
    if count < 0 or size < 0:
        raise UserError("--val-count and --val-size must be 0 or more")


@dataclass
class PairConfig(RunConfig):
    """A run that learns from pairs: `--pairs`, validated on `--val-pairs` or a held-out share of them."""

    pairs: str = ""
    val_pairs: str | None = None
    val_count: int = 8
    val_size: int = 128
    rotate: bool = False
    arch: str = ""
    init: str | None = None

    def check(self) -> None:
        super().check()
        if not self.pairs:
            raise UserError("--pairs: give the known-blur pairs to train on (or --resume a run)")
        check_held_out(self.val_count, self.val_size)
        if self.resume:
            return
        if self.init and not resolve_checkpoint(self.init, "--init").is_file():
            raise UserError(f"--init {self.init}: no such checkpoint file")
        if not self.init:
            from blur2blur.models import ARCHS, arch_kind  # imports torch: only when a run starts

            if self.arch not in ARCHS:
                known = ", ".join(name for name in ARCHS if arch_kind(name) == self.kind)
                raise UserError(f"--arch {self.arch}: unknown; choose one of {known}")
            if arch_kind(self.arch) != self.kind:
                raise UserError(f"--arch {self.arch} is a {arch_kind(self.arch)}, not a {self.kind}")


@dataclass
class DeblurrerConfig(PairConfig):
    """NAFNet with NAFNet's optimizer settings (AdamW, betas 0.9/0.9, cosine); a higher rate for tiny models."""

    kind: ClassVar[str] = "deblurrer"
    arch: str = "nafnet-tiny"


@dataclass
class KernelConfig(PairConfig):
    """The kernel extractor with Adam, as in its reference training."""

    kind: ClassVar[str] = "kernel"
    arch: str = "kernel-extractor-tiny"
    lr: float = 5e-4
    optimizer: str = "adam"
    beta2: float = 0.999
    weight_decay: float = 0.0


PERCEPTUAL = ("filters", "lowpass", "deblurrer", "kernel", "vgg16")
CRITIC_INPUTS = ("detail", "image")
# A converter recipe is a set of defaults; the settings a user gives explicitly override it.
RECIPES: dict[str, dict] = {
    "cpu": {},  # ConverterConfig's own defaults: small networks and high rates, measured on this CPU
    # The reference Blur2Blur training (method.md): MIMO-UNet, the 70 x 70 PatchGAN with InstanceNorm judging
    # the images themselves, Adam 2e-4 with betas (0.5, 0.999) for both, hinge loss, gradient penalty 1e-4,
    # batch 1, 256 crops, no warm-up and no average. Its 100 constant + 200 decaying epochs become `linear`
    # over --steps: the rate held for the first third, then decayed linearly to --min-lr; 60000 steps are 300
    # epochs of 200 images. Reconstruction: VGG16 at lambda_rec 0.8 with --vgg-weights, else the lowpass pyramid.
    "paper": dict(arch="mimo-unet", critic="patchgan", critic_input="image", perceptual="lowpass", lambda_rec=None,
                  lambda_gp=1e-4, lr=2e-4, critic_lr=2e-4, optimizer="adam", beta1=0.5, beta2=0.999,
                  weight_decay=0.0, schedule="linear", warmup=0, ema=0.0, batch=1, crop=256, steps=60000,
                  eval_every=2000, log_every=100),
}


@dataclass
class ConverterConfig(RunConfig):
    """Blur2Blur's converter G against a PatchGAN: Adam with the reference's betas (0.5, 0.999) and schedule
    shape (hold, then decay linearly) but higher rates, for hundreds of steps rather than hundreds of
    thousands (G 1e-3, D 4e-3: measured); an average of G's weights is what gets saved. The CPU recipe's
    critic sees the detail band of its inputs and has no InstanceNorm, and the reconstruction is low-passed
    (README: "A converter for your camera").

    `blurry` and `sharp` are the target camera's unpaired images; `known` the known-blur source (its exact
    sampler for `synthetic:DOMAIN`, or with `kernel` the learned transfer); `deblurrer` the frozen
    known-blur deblurrer that validation runs after G. `lambda_rec` None means the default of the
    `perceptual` features (see train/perceptual.py). `recipe` names the defaults the settings started
    from: build a config with `from_recipe` (the class's own defaults are the `cpu` recipe).
    """

    kind: ClassVar[str] = "converter"
    recipe: str = "cpu"
    blurry: str = ""
    sharp: str = ""
    known: str = ""
    deblurrer: str = ""
    kernel: str | None = None
    val_pairs: str | None = None
    val_count: int = 8
    val_size: int = 128
    arch: str = "mimo-unet-tiny"
    critic: str = "patchgan-tiny-nonorm"
    critic_input: str = "detail"
    perceptual: str = "lowpass"
    vgg_weights: str | None = None
    lambda_rec: float | None = None
    lambda_gp: float = 1e-4
    critic_lr: float = 4e-3
    steps: int = 600  # measured: G peaks after a few hundred steps at these rates, then drifts
    batch: int = 4
    crop: int = 96
    eval_every: int = 100
    lr: float = 1e-3
    optimizer: str = "adam"
    beta1: float = 0.5
    beta2: float = 0.999
    weight_decay: float = 0.0
    schedule: str = "linear"
    warmup: int = 100
    ema: float = 0.99

    def __post_init__(self) -> None:
        if self.vgg_weights:  # the file says which features are wanted
            self.perceptual = "vgg16"

    @classmethod
    def from_recipe(cls, recipe: str = "cpu", **settings) -> ConverterConfig:
        """The settings of `recipe` (see RECIPES), with `settings` (those the user gave) over them."""
        if recipe not in RECIPES:
            raise UserError(f"--recipe {recipe}: choose one of {', '.join(RECIPES)}")
        return cls(**{**RECIPES[recipe], **settings, "recipe": recipe})

    def check(self) -> None:
        super().check()
        if self.recipe not in RECIPES:
            raise UserError(f"--recipe {self.recipe}: choose one of {', '.join(RECIPES)}")
        for option, value in (("--blurry", self.blurry), ("--sharp", self.sharp), ("--known", self.known),
                              ("--deblurrer", self.deblurrer)):
            if not value:
                raise UserError(f"{option}: required (unless --resume); see b2b-train converter --help")
        if self.perceptual not in PERCEPTUAL:
            raise UserError(f"--perceptual {self.perceptual}: choose one of {', '.join(PERCEPTUAL)}")
        if self.critic_input not in CRITIC_INPUTS:
            raise UserError(f"--critic-input {self.critic_input}: choose one of {', '.join(CRITIC_INPUTS)}")
        if self.perceptual == "kernel" and not self.kernel:
            raise UserError("--perceptual kernel needs the kernel extractor: give --kernel CKPT")
        check_held_out(self.val_count, self.val_size)
        if self.crop % 4:
            raise UserError(f"--crop {self.crop}: the converter needs a multiple of 4 (it works at 1/2 and 1/4 size)")
        if not self.critic_lr > 0:
            raise UserError(f"--critic-lr {self.critic_lr}: must be a positive number")
        for option, value in (("--lambda-rec", self.lambda_rec), ("--lambda-gp", self.lambda_gp)):
            if value is not None and not value >= 0:
                raise UserError(f"{option} {value}: must be 0 or more")
        for option, path in (("--deblurrer", self.deblurrer), ("--kernel", self.kernel),
                             ("--vgg-weights", self.vgg_weights)):
            if path and not resolve_checkpoint(path, option).is_file():
                raise UserError(f"{option} {path}: no such checkpoint file")
        from blur2blur.models import ARCHS, arch_kind  # imports torch: only when a run starts

        for option, name, kind in (("--arch", self.arch, "converter"), ("--critic", self.critic, "discriminator")):
            if name not in ARCHS or arch_kind(name) != kind:
                known = ", ".join(n for n in ARCHS if arch_kind(n) == kind)
                raise UserError(f"{option} {name}: not a {kind}; choose one of {known}")
