"""PatchGAN discriminator: pix2pix layout, patch map sizes, multi-scale judging."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from blur2blur.errors import UserError
from blur2blur.models import arch_kind, count_parameters, create_model


def test_layout_matches_pix2pix_70x70() -> None:
    d = create_model("patchgan")
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.stride[0]) for c in convs] == [
        (3, 64, 2), (64, 128, 2), (128, 256, 2), (256, 512, 1), (512, 1, 1),
    ]
    assert all(c.kernel_size == (4, 4) and c.padding == (1, 1) for c in convs)
    norms = [m for m in d.modules() if isinstance(m, nn.InstanceNorm2d)]
    assert len(norms) == 3 and not any(n.affine for n in norms)
    assert all(m.negative_slope == 0.2 for m in d.modules() if isinstance(m, nn.LeakyReLU))
    assert count_parameters(d) == 2_764_737
    assert arch_kind("patchgan") == "discriminator"


def test_patch_map_size_for_a_256_crop() -> None:
    d = create_model("patchgan-tiny")
    with torch.no_grad():
        assert d(torch.rand(2, 3, 256, 256)).shape == (2, 1, 30, 30)


def test_judge_scales_applies_the_same_discriminator_to_each_scale() -> None:
    d = create_model("patchgan-tiny").eval()
    images = [torch.rand(1, 3, 24, 24), torch.rand(1, 3, 48, 48), torch.rand(1, 3, 96, 96)]
    with torch.no_grad():
        scores = d.judge_scales(images)
        assert [tuple(s.shape) for s in scores] == [(1, 1, 1, 1), (1, 1, 4, 4), (1, 1, 10, 10)]
        assert torch.equal(scores[2], d(images[2]))


def test_conv_init_is_narrow_normal() -> None:
    torch.manual_seed(0)
    d = create_model("patchgan")
    weights = torch.cat([m.weight.flatten() for m in d.modules() if isinstance(m, nn.Conv2d)])
    assert abs(weights.std().item() - 0.02) < 1e-3


def test_too_small_image_is_a_user_error() -> None:
    d = create_model("patchgan-tiny")
    with pytest.raises(UserError, match="too small"):
        d(torch.rand(1, 3, 16, 64))


def test_the_cpu_critic_without_instance_norm_sees_how_strong_the_detail_is() -> None:
    # InstanceNorm rescales every feature map, so the reference critic scores faint and strong noise almost the
    # same; the converter's CPU critic must tell them apart (how much noise is what G has to remove).
    torch.manual_seed(0)
    noise = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        for name, differs in (("patchgan-tiny", False), ("patchgan-tiny-nonorm", True)):
            d = create_model(name).eval()
            change = (d(noise) - d(0.25 * noise)).abs().mean() / d(noise).abs().mean()
            assert (change > 0.3) == differs, (name, float(change))
    assert not any(isinstance(m, nn.InstanceNorm2d) for m in create_model("patchgan-tiny-nonorm").modules())
