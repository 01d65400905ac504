"""The kernel extractor network: presets, any image size, identity at the start, codes per image."""

import pytest
import torch
from helpers import randomized

from blur2blur.errors import UserError
from blur2blur.models import arch_kind, count_parameters, create_model
from blur2blur.models.checkpoint import load_checkpoint, save_checkpoint
from blur2blur.models.kernel_extractor import srgb_to_linear


def test_presets_have_the_reference_sizes():
    model = create_model("kernel-extractor")
    assert model.code_dim == 512 and len(model.blocks) == 20 and len(model.energies.at_half) == 2 + 10
    assert count_parameters(create_model("kernel-extractor-tiny")) < count_parameters(model) / 20
    assert arch_kind("kernel-extractor-tiny") == "kernel"


def test_the_code_decodes_to_a_kernel_and_starts_as_a_box_blur_in_linear_light():
    model = create_model("kernel-extractor-tiny")
    sharp, blurry = torch.rand(2, 3, 37, 53), torch.rand(2, 3, 37, 53)
    code = model.encode(sharp, blurry)
    assert code.shape == (2, 64)
    kernel = model.kernel(code)
    assert kernel.shape == (2, 21, 21) and (kernel >= 0).all()
    torch.testing.assert_close(kernel.sum(dim=(1, 2)), torch.ones(2))
    flat = torch.full((1, 3, 30, 30), 0.3)
    torch.testing.assert_close(model.reblur(flat, code[:1]), flat)  # a blur moves light, never adds it
    # a white line on black spreads over the kernel's 21 columns, in linear light, and keeps its energy
    line = torch.zeros(1, 3, 41, 41)
    line[..., 20] = 1.0
    spread = model.reblur(line, code[:1])[0, 0, 20].detach()
    assert (spread[10:31] > 0).all() and (spread[:10] == 0).all() and (spread[31:] == 0).all()
    assert float(srgb_to_linear(spread).sum()) == pytest.approx(1.0, rel=1e-3)


def test_a_code_from_one_image_applies_to_another_of_any_size():
    model = randomized(create_model("kernel-extractor-tiny"), seed=1)
    code = model.encode(torch.rand(1, 3, 40, 40), torch.rand(1, 3, 40, 40))
    other = torch.rand(1, 3, 29, 71)
    reblurred = model.reblur(other, code)
    assert reblurred.shape == other.shape and not torch.equal(reblurred, other)
    # each image of a batch takes its own code
    pair = model.reblur(torch.cat([other, other]), torch.cat([code, 2 * code]))
    torch.testing.assert_close(pair[:1], reblurred)
    assert not torch.allclose(pair[0], pair[1])


def test_checkpoint_round_trip_and_kind(tmp_path):
    model = randomized(create_model("kernel-extractor-tiny"), seed=2)
    save_checkpoint(tmp_path / "kernel.pt", model, "kernel")
    loaded, data = load_checkpoint(tmp_path / "kernel.pt", "kernel")
    assert data["kind"] == "kernel" and data["arch"] == "kernel-extractor-tiny"
    x = torch.rand(1, 3, 24, 24)
    torch.testing.assert_close(loaded(x, x), model(x, x))
    with pytest.raises(UserError, match="holds a kernel checkpoint; --deblurrer needs a deblurrer"):
        load_checkpoint(tmp_path / "kernel.pt", "deblurrer", option="--deblurrer")
