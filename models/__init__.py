"""Network definitions by preset name: ``create_model("nafnet-w32")``, ``create_model("mimo-unet", num_res=4)``."""

from __future__ import annotations

import inspect

from torch import nn

from blur2blur.errors import UserError
from blur2blur.models.kernel_extractor import PRESETS as _KERNEL_PRESETS
from blur2blur.models.kernel_extractor import KernelExtractor
from blur2blur.models.mimo_unet import PRESETS as _MIMO_PRESETS
from blur2blur.models.mimo_unet import MIMOUNet
from blur2blur.models.nafnet import PRESETS as _NAFNET_PRESETS
from blur2blur.models.nafnet import NAFNet
from blur2blur.models.patchgan import PRESETS as _PATCHGAN_PRESETS
from blur2blur.models.patchgan import PatchGAN

KINDS = ("deblurrer", "converter", "discriminator", "kernel")

# name -> (kind, class, constructor kwargs). "nafnet-custom" is a NAFNet whose shape comes
# entirely from explicit kwargs (e.g. an official checkpoint that matches no preset).
ARCHS: dict[str, tuple[str, type[nn.Module], dict]] = {
    **{name: ("deblurrer", NAFNet, kwargs) for name, kwargs in _NAFNET_PRESETS.items()},
    "nafnet-custom": ("deblurrer", NAFNet, {}),
    **{name: ("converter", MIMOUNet, kwargs) for name, kwargs in _MIMO_PRESETS.items()},
    **{name: ("discriminator", PatchGAN, kwargs) for name, kwargs in _PATCHGAN_PRESETS.items()},
    **{name: ("kernel", KernelExtractor, kwargs) for name, kwargs in _KERNEL_PRESETS.items()},
}


def _plain(value):
    """Tuples as lists, so the kwargs survive a JSON round trip unchanged."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _lookup(arch: str) -> tuple[str, type[nn.Module], dict]:
    try:
        return ARCHS[arch]
    except KeyError:
        raise UserError(f"unknown architecture {arch!r}: choose one of {', '.join(ARCHS)}") from None


def arch_kind(arch: str) -> str:
    """The kind ("deblurrer", "converter", "discriminator" or "kernel") of a registered architecture."""
    return _lookup(arch)[0]


def create_model(arch: str, **overrides) -> nn.Module:
    """Build a registered architecture, preset kwargs updated by ``overrides``.

    The module carries ``.arch`` (the name) and ``.arch_args`` (every constructor kwarg used,
    JSON-serialisable), which is all a checkpoint needs to rebuild it.
    """
    _, cls, preset = _lookup(arch)
    params = inspect.signature(cls.__init__).parameters
    unknown = sorted(set(overrides) - set(params) - {"self"})
    if unknown:
        known = ", ".join(p for p in params if p != "self")
        raise UserError(f"{arch} has no option {', '.join(unknown)}: its options are {known}")
    args = {name: p.default for name, p in params.items() if name != "self" and p.default is not p.empty}
    args.update(preset)
    args.update(overrides)
    args = {name: _plain(value) for name, value in args.items()}
    try:
        model = cls(**args)
    except (TypeError, ValueError) as err:
        raise UserError(f"cannot build {arch} with {args}: {err}") from None
    model.arch = arch
    model.arch_args = args
    return model


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (trainable or not)."""
    return sum(p.numel() for p in model.parameters())


__all__ = ["ARCHS", "KINDS", "arch_kind", "count_parameters", "create_model"]
