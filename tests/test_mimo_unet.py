"""MIMO-UNet converter G: size, three residual outputs, initialisation."""

from __future__ import annotations

import pytest
import torch

from blur2blur.errors import UserError
from blur2blur.models import arch_kind, count_parameters, create_model
from blur2blur.models.mimo_unet import MIMOUNet


def test_reference_preset_has_6_8_million_parameters() -> None:
    assert count_parameters(create_model("mimo-unet")) == 6_807_171
    assert count_parameters(create_model("mimo-unet-small")) < count_parameters(create_model("mimo-unet"))
    assert count_parameters(create_model("mimo-unet-tiny")) < 1e6
    assert arch_kind("mimo-unet") == "converter"


def test_returns_quarter_half_and_full_scale_images() -> None:
    net = create_model("mimo-unet-tiny")
    x = torch.rand(2, 3, 24, 40)
    with torch.no_grad():
        outputs = net(x)
    assert [tuple(o.shape) for o in outputs] == [(2, 3, 6, 10), (2, 3, 12, 20), (2, 3, 24, 40)]


def test_starts_as_the_identity_at_every_scale() -> None:
    net = MIMOUNet(base_channels=16, num_res=1)
    x = torch.rand(1, 3, 16, 20)
    with torch.no_grad():
        quarter, half, full = net(x)
    assert torch.equal(full, x)
    assert torch.equal(half, torch.nn.functional.interpolate(x, scale_factor=0.5))
    assert torch.equal(quarter, torch.nn.functional.interpolate(x, scale_factor=0.25))


def test_gradients_reach_every_parameter_once_the_outputs_have_moved() -> None:
    net = create_model("mimo-unet-tiny")
    sum(o.mean() for o in net(torch.rand(1, 3, 16, 16))).backward()
    moved = {name for name, p in net.named_parameters() if p.grad.abs().sum() > 0}
    outputs = {f"{conv}.main.0.{what}" for conv in ("ConvsOut.0", "ConvsOut.1", "feat_extract.5")
               for what in ("weight", "bias")}
    assert moved == outputs  # at the identity, the output convs learn first
    with torch.no_grad():
        for conv in (*net.ConvsOut, net.feat_extract[5]):
            conv.main[0].weight.normal_(0, 0.05)
    net.zero_grad()
    sum(o.mean() for o in net(torch.rand(1, 3, 16, 16))).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


def test_size_not_a_multiple_of_four_is_a_user_error() -> None:
    net = create_model("mimo-unet-tiny")
    assert net.size_multiple == 4
    with pytest.raises(UserError, match="multiple of 4"):
        net(torch.rand(1, 3, 18, 16))


def test_the_nano_converter_costs_under_half_the_starter_deblurrer() -> None:
    from torch.utils.flop_counter import FlopCounterMode

    from blur2blur.models.checkpoint import read_checkpoint

    def gflop(model: torch.nn.Module) -> float:
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            model(torch.zeros(1, 3, 96, 160))
        return counter.get_total_flops() / 1e9

    starter = create_model(read_checkpoint("starter")["arch"])
    assert gflop(create_model("mimo-unet-nano")) <= 0.5 * gflop(starter) < gflop(create_model("mimo-unet-tiny"))
