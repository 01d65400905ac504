"""NAFNet: the official architecture, key names and parameter counts; LayerNorm2d in FP16 and ONNX."""

from __future__ import annotations

import io
import re

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from helpers import randomized

from blur2blur.models import count_parameters, create_model
from blur2blur.models.checkpoint import load_checkpoint
from blur2blur.models.nafnet import LayerNorm2d, LocalAvgPool, NAFNet, use_local_statistics


def block_params(c: int) -> int:
    """One NAFBlock: conv1 2c^2+2c, depthwise conv2 20c, conv3 c^2+c, sca c^2+c, conv4 2c^2+2c,
    conv5 c^2+c, two LayerNorms 4c, beta and gamma 2c."""
    return 7 * c * c + 33 * c


def nafnet_params(width: int, enc: list[int], middle: int, dec: list[int]) -> int:
    total = (3 * width * 9 + width) + (width * 3 * 9 + 3)  # intro + ending
    c = width
    for n in enc:
        total += n * block_params(c) + (c * 2 * c * 4 + 2 * c)  # blocks + 2x2 down conv
        c *= 2
    total += middle * block_params(c)
    for n in dec:
        total += c * 2 * c  # 1x1 up conv, no bias
        c //= 2
        total += n * block_params(c)
    return total


def test_w32_and_w64_parameter_counts_match_the_paper() -> None:
    assert nafnet_params(32, [1, 1, 1, 28], 1, [1, 1, 1, 1]) == 17_111_907
    assert count_parameters(create_model("nafnet-w32")) == 17_111_907  # "17.11 M"
    assert count_parameters(create_model("nafnet-w64")) == nafnet_params(64, [1, 1, 1, 28], 1, [1, 1, 1, 1])
    assert round(count_parameters(create_model("nafnet-w64")) / 1e6, 1) == 67.9


def test_cpu_presets_are_small() -> None:
    assert count_parameters(create_model("nafnet-tiny")) == nafnet_params(16, [1, 1, 1, 1], 1, [1, 1, 1, 1])
    assert 1.0e6 < count_parameters(create_model("nafnet-tiny")) < 1.2e6
    assert 2e6 < count_parameters(create_model("nafnet-small")) < 6e6


def test_state_dict_keys_follow_the_official_release() -> None:
    keys = set(create_model("nafnet-w32").state_dict())
    assert {"intro.weight", "intro.bias", "ending.weight", "ending.bias"} <= keys
    assert "ups.0.0.weight" in keys and "ups.0.0.bias" not in keys
    assert not any(k.startswith("ups.") and not re.fullmatch(r"ups\.[0-3]\.0\.weight", k) for k in keys)
    downs = {k for k in keys if k.startswith("downs.")}
    assert downs == {f"downs.{i}.{p}" for i in range(4) for p in ("weight", "bias")}
    assert {int(k.split(".")[2]) for k in keys if k.startswith("encoders.3.")} == set(range(28))
    assert {k.split(".")[1] for k in keys if k.startswith("middle_blks.")} == {"0"}
    block = {k[len("decoders.0.0."):] for k in keys if k.startswith("decoders.0.0.")}
    assert block == {
        *(f"{m}.{p}" for m in ("norm1", "norm2", *(f"conv{i}" for i in range(1, 6))) for p in ("weight", "bias")),
        "sca.1.weight", "sca.1.bias", "beta", "gamma",
    }
    assert not any("dropout" in k for k in keys)


def test_official_checkpoint_loads_strictly_and_gives_the_same_output(tmp_path) -> None:
    net = randomized(NAFNet(width=8, enc_blk_nums=(1, 2), middle_blk_num=1, dec_blk_nums=(1, 1)), scale=0.1)
    path = tmp_path / "NAFNet-official.pth"
    torch.save({"params": net.state_dict()}, path)
    loaded, info = load_checkpoint(path, kind="deblurrer")
    assert info["arch"] == "nafnet-custom"
    assert loaded.arch_args == {
        "img_channel": 3, "width": 8, "middle_blk_num": 1, "enc_blk_nums": [1, 2], "dec_blk_nums": [1, 1]
    }
    x = torch.rand(1, 3, 13, 10)
    with torch.no_grad():
        assert torch.equal(loaded(x), net(x))


def test_official_w32_checkpoint_is_named_after_its_preset(tmp_path) -> None:
    path = tmp_path / "NAFNet-GoPro-width32.pth"
    torch.save(create_model("nafnet-w32").state_dict(), path)  # bare state dict works too
    model, info = load_checkpoint(path)
    assert info["arch"] == "nafnet-w32" and model.arch == "nafnet-w32"


def test_forward_pads_and_crops_any_size_with_global_residual() -> None:
    net = randomized(create_model("nafnet-tiny"), scale=0.1)
    assert net.size_multiple == 16
    x = torch.rand(2, 3, 7, 21)
    with torch.no_grad():
        y = net(x)
        assert y.shape == x.shape
        # The crop of a zero-padded run: evaluating the padded image directly gives the same pixels.
        padded = torch.nn.functional.pad(x, (0, 11, 0, 9))
        assert torch.allclose(net(padded)[:, :, :7, :21], y, atol=1e-6)
        torch.nn.init.zeros_(net.ending.weight)
        torch.nn.init.zeros_(net.ending.bias)
        assert torch.equal(net(x), x)


def test_layernorm2d_normalises_each_pixel_over_channels() -> None:
    norm = LayerNorm2d(5)
    with torch.no_grad():
        norm.weight.copy_(torch.arange(1.0, 6.0))
        norm.bias.copy_(torch.linspace(-1, 1, 5))
    x = torch.randn(2, 5, 3, 4) * 3 + 2
    mean = x.mean(dim=1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=1, keepdim=True)  # biased
    expected = (x - mean) / torch.sqrt(var + 1e-6) * norm.weight.view(1, 5, 1, 1) + norm.bias.view(1, 5, 1, 1)
    assert torch.allclose(norm(x), expected, atol=1e-5)
    assert [name for name, _ in norm.named_parameters()] == ["weight", "bias"]


def test_layernorm2d_in_fp16_stays_finite_on_large_values() -> None:
    norm = LayerNorm2d(16)
    x = torch.randn(1, 16, 8, 8) * 300  # (x - mean)^2 ~ 1e5 would overflow FP16
    out16 = norm.half()(x.half())
    assert out16.dtype == torch.float16
    assert torch.isfinite(out16).all()
    out32 = norm.float()(x)
    assert (out16.float() - out32).abs().max() < 1e-2


def test_onnx_export_uses_layernormalization_and_matches_torch() -> None:
    net = randomized(create_model("nafnet-tiny"), scale=0.1)
    buffer = io.BytesIO()
    torch.onnx.export(
        net, (torch.rand(1, 3, 32, 32),), buffer, dynamo=False, opset_version=17,
        input_names=["x"], output_names=["y"],
        dynamic_axes={"x": {0: "n", 2: "h", 3: "w"}, "y": {0: "n", 2: "h", 3: "w"}},
    )
    graph = onnx.load_from_string(buffer.getvalue()).graph
    ops = [node.op_type for node in graph.node]
    assert ops.count("LayerNormalization") == 2 * 9  # two per NAFBlock, 9 blocks
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    x = torch.rand(2, 3, 19, 45)  # another shape than the traced one: H and W stay dynamic
    with torch.no_grad():
        expected = net(x).numpy()
    (got,) = session.run(None, {"x": x.numpy()})
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_mismatched_levels_are_rejected() -> None:
    with pytest.raises(ValueError):
        NAFNet(enc_blk_nums=(1, 1), dec_blk_nums=(1,))


def official_local_mean(x: torch.Tensor, kernel: int) -> torch.Tensor:
    """TLC's pooling as NAFNet's release defines it: the global mean when the window covers the image, else
    each valid window's mean from an integral image, replicate-padded back to the image's size."""
    h, w = x.shape[-2:]
    if kernel >= h and kernel >= w:
        return x.mean(dim=(2, 3), keepdim=True).expand_as(x)
    kh, kw = min(h, kernel), min(w, kernel)
    s = torch.nn.functional.pad(x.cumsum(-1).cumsum(-2), (1, 0, 1, 0))
    valid = (s[:, :, kh:, kw:] - s[:, :, :-kh, kw:] - s[:, :, kh:, :-kw] + s[:, :, :-kh, :-kw]) / (kh * kw)
    dh, dw = h - valid.shape[2], w - valid.shape[3]
    return torch.nn.functional.pad(valid, (dw // 2, (dw + 1) // 2, dh // 2, (dh + 1) // 2), mode="replicate")


@pytest.mark.parametrize("h, w, kernel", [(20, 30, 7), (20, 30, 8), (10, 40, 16), (5, 6, 9), (33, 17, 17)])
def test_local_mean_matches_the_official_definition(h, w, kernel) -> None:
    x = torch.randn(2, 3, h, w, generator=torch.Generator().manual_seed(h * w))
    torch.testing.assert_close(LocalAvgPool(kernel)(x), official_local_mean(x, kernel), atol=1e-5, rtol=0)


def test_local_mean_of_half_input_is_computed_in_fp32() -> None:
    x = torch.full((1, 2, 300, 300), 60.0, dtype=torch.float16)  # its integral image is far beyond FP16's 65504
    out = LocalAvgPool(96)(x)
    assert out.dtype == torch.float16 and torch.equal(out, x)


def test_tlc_windows_scale_with_the_level_and_leave_training_size_inputs_unchanged() -> None:
    plain = randomized(create_model("nafnet-tiny"), seed=2, scale=0.15).eval()  # blocks that matter, as trained
    local = use_local_statistics(randomized(create_model("nafnet-tiny"), seed=2, scale=0.15).eval(), train_crop=64)
    kernels = [b.sca[0].kernel for group in (*local.encoders, local.middle_blks, *local.decoders) for b in group]
    assert kernels == [96, 48, 24, 12, 6, 12, 24, 48, 96]  # 1.5 x the crop's side at each level
    with torch.no_grad():
        x = torch.rand(1, 3, 64, 64)  # windows cover every level: the global mean, as in training
        torch.testing.assert_close(local(x), plain(x), atol=1e-3, rtol=1e-5)
        x = torch.linspace(0, 1, 160).expand(1, 3, 192, 160)  # a larger frame, dark left, bright right
        assert (local(x) - plain(x)).abs().max() > 1e-2  # local statistics differ from global ones
