"""The fused deploy module: uint8 BGR frames of any size in and out, in torch and through ONNX."""

from __future__ import annotations

import io

import numpy as np
import onnxruntime as ort
import pytest
import torch
from helpers import randomized

from blur2blur.errors import UserError
from blur2blur.models import create_model
from blur2blur.models.deploy import DeployModel, check_compatible
from blur2blur.models.nafnet import NAFNet


def zeroed(model: torch.nn.Module) -> torch.nn.Module:
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    return model.eval()


def frames(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("h, w", [(37, 53), (1, 1), (5, 3), (16, 16), (17, 64)])
def test_any_frame_size_comes_back_with_its_shape_and_type(h: int, w: int) -> None:
    model = DeployModel(randomized(create_model("nafnet-tiny")), randomized(create_model("mimo-unet-tiny"))).eval()
    with torch.no_grad():
        out = model(frames(2, h, w, 3))
    assert out.shape == (2, h, w, 3)
    assert out.dtype == torch.uint8


def test_identity_networks_return_the_frames_exactly() -> None:
    x = frames(2, 37, 53, 3)
    for converter in (None, zeroed(create_model("mimo-unet-tiny"))):
        model = DeployModel(zeroed(create_model("nafnet-tiny")), converter)
        with torch.no_grad():
            assert torch.equal(model(x), x)


def test_colour_order_is_bgr_in_and_out() -> None:
    deblurrer = zeroed(create_model("nafnet-tiny"))
    with torch.no_grad():
        deblurrer.ending.bias.copy_(torch.tensor([0.5, 0.0, 0.0]))  # adds 0.5 to the network's red channel
    black = torch.zeros(1, 4, 4, 3, dtype=torch.uint8)
    with torch.no_grad():
        out = DeployModel(deblurrer)(black)
    assert out[..., 2].eq(128).all()  # red is the last channel of BGR
    assert out[..., :2].eq(0).all()


def test_batch_items_are_restored_independently() -> None:
    model = DeployModel(randomized(create_model("nafnet-tiny")))
    x = frames(2, 20, 24, 3)
    with torch.no_grad():
        both = model(x)
        assert torch.equal(both[1:], model(x[1:]))


def test_size_multiple_is_the_lcm_of_the_networks() -> None:
    assert DeployModel(create_model("nafnet-tiny")).size_multiple == 16
    two_level = NAFNet(width=8, enc_blk_nums=(1,), dec_blk_nums=(1,))
    assert DeployModel(two_level, create_model("mimo-unet-tiny")).size_multiple == 4


def test_onnx_export_keeps_batch_and_size_dynamic() -> None:
    model = DeployModel(randomized(create_model("nafnet-tiny")), randomized(create_model("mimo-unet-tiny"), 1))
    buffer = io.BytesIO()
    torch.onnx.export(
        model, (frames(1, 37, 53, 3),), buffer, dynamo=False, opset_version=17,
        input_names=["frames"], output_names=["restored"],
        dynamic_axes={"frames": {0: "n", 1: "h", 2: "w"}, "restored": {0: "n", 1: "h", 2: "w"}},
    )
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    for shape in [(2, 5, 3, 3), (1, 1, 1, 3), (1, 33, 20, 3)]:
        x = frames(*shape, seed=3)
        with torch.no_grad():
            expected = model(x).numpy().astype(int)
        (got,) = session.run(None, {"frames": x.numpy()})
        assert got.dtype == np.uint8 and got.shape == shape
        assert np.abs(got.astype(int) - expected).max() <= 1  # rounding at .5 may differ


def test_half_precision_copy_takes_uint8_frames_and_leaves_the_original() -> None:
    model = DeployModel(zeroed(create_model("nafnet-tiny")))
    half = model.to_fp16()
    assert next(half.parameters()).dtype == torch.float16
    assert next(model.parameters()).dtype == torch.float32
    x = frames(1, 9, 11, 3)
    with torch.no_grad():
        assert torch.equal(half(x), x)


def test_incompatible_networks_are_user_errors() -> None:
    with pytest.raises(UserError, match="channels"):
        check_compatible(NAFNet(img_channel=1, width=8, enc_blk_nums=(1,), dec_blk_nums=(1,)))
    with pytest.raises(UserError, match="converter"):
        check_compatible(create_model("nafnet-tiny"), create_model("nafnet-tiny"))
    with pytest.raises(UserError, match="not a deblurrer"):
        DeployModel(create_model("patchgan-tiny"))


def test_frames_must_be_uint8_nhwc() -> None:
    model = DeployModel(create_model("nafnet-tiny"))
    with pytest.raises(UserError, match="uint8 N x H x W x 3"):
        model(torch.rand(1, 8, 8, 3))
    with pytest.raises(UserError, match="uint8 N x H x W x 3"):
        model(frames(1, 3, 8, 8))
