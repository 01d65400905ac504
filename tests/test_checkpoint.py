"""Checkpoint files: round trips, atomic writes, and one-line errors naming the file."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import randomized

from blur2blur.errors import UserError
from blur2blur.models import ARCHS, arch_kind, create_model
from blur2blur.models.checkpoint import FORMAT, load_checkpoint, read_checkpoint, save_checkpoint


def assert_one_line_naming(err: pytest.ExceptionInfo, path) -> None:
    message = str(err.value)
    assert "\n" not in message
    assert str(path) in message


def test_save_then_load_gives_the_same_outputs(tmp_path) -> None:
    model = randomized(create_model("nafnet-tiny", width=8))
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.rand(1, 3, 16, 16)).mean().backward()
    optimizer.step()
    path = tmp_path / "deblurrer.pt"
    save_checkpoint(path, model, "deblurrer", meta={"step": 3, "psnr": np.float32(27.5), "out": tmp_path},
                    optimizer=optimizer.state_dict())

    loaded, data = load_checkpoint(path, kind="deblurrer")
    assert not loaded.training
    assert loaded.arch == "nafnet-tiny" and loaded.arch_args == model.arch_args and loaded.arch_args["width"] == 8
    assert data["format"] == FORMAT and data["kind"] == "deblurrer"
    assert data["meta"] == {"step": 3, "psnr": 27.5, "out": str(tmp_path)}
    json.dumps(data["arch_args"])
    torch.optim.AdamW(loaded.parameters()).load_state_dict(data["optimizer"])
    x = torch.rand(1, 3, 21, 17)
    model.eval()
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_converter_round_trip(tmp_path) -> None:
    model = create_model("mimo-unet-tiny").eval()
    save_checkpoint(tmp_path / "g.pt", model, "converter")
    loaded, _ = load_checkpoint(tmp_path / "g.pt", kind="converter")
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(loaded(x), model(x)))


def test_atomic_write_leaves_only_the_checkpoint(tmp_path) -> None:
    path = tmp_path / "runs" / "last.pt"
    model = create_model("patchgan-tiny")
    save_checkpoint(path, model, "discriminator")
    save_checkpoint(path, model, "discriminator", meta={"step": 2})  # overwriting is atomic too
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]
    assert read_checkpoint(path)["meta"] == {"step": 2}


def test_wrong_kind_names_file_and_option(tmp_path) -> None:
    path = tmp_path / "g.pt"
    save_checkpoint(path, create_model("mimo-unet-tiny"), "converter")
    with pytest.raises(UserError, match="holds a converter checkpoint; --deblurrer needs a deblurrer") as err:
        load_checkpoint(path, kind="deblurrer", option="--deblurrer")
    assert_one_line_naming(err, path)


def test_unknown_architecture(tmp_path) -> None:
    path = tmp_path / "future.pt"
    save_checkpoint(path, create_model("nafnet-tiny"), "deblurrer")
    data = read_checkpoint(path)
    data["arch"] = "restormer-huge"
    torch.save(data, path)
    with pytest.raises(UserError, match="restormer-huge") as err:
        load_checkpoint(path)
    assert_one_line_naming(err, path)


def test_unknown_format(tmp_path) -> None:
    path = tmp_path / "other.pt"
    torch.save({"format": "someone-else/7", "state_dict": {}}, path)
    with pytest.raises(UserError, match="someone-else/7") as err:
        load_checkpoint(path)
    assert_one_line_naming(err, path)


@pytest.mark.parametrize(
    "change, words", [("drop", "missing keys 1"), ("add", "unexpected keys 2"), ("shape", "wrong shape")]
)
def test_keys_that_do_not_fit(tmp_path, change: str, words: str) -> None:
    path = tmp_path / "bad.pt"
    save_checkpoint(path, create_model("nafnet-tiny"), "deblurrer")
    data = read_checkpoint(path)
    if change == "drop":
        del data["state_dict"]["intro.bias"]
    elif change == "add":
        data["state_dict"]["extra.a"] = torch.zeros(1)
        data["state_dict"]["extra.b"] = torch.zeros(1)
    else:
        data["state_dict"]["ending.bias"] = torch.zeros(4)
    torch.save(data, path)
    with pytest.raises(UserError, match=words) as err:
        load_checkpoint(path)
    assert_one_line_naming(err, path)


def test_truncated_and_foreign_files(tmp_path) -> None:
    good = tmp_path / "good.pt"
    save_checkpoint(good, create_model("nafnet-tiny", width=8), "deblurrer")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:2000])
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint\n")
    for path, words in ((truncated, "is corrupt or truncated"), (text, r"is not a PyTorch file \(it holds text\)")):
        with pytest.raises(UserError, match=words) as err:
            load_checkpoint(path)
        assert_one_line_naming(err, path)


def test_pickled_objects_are_refused(tmp_path) -> None:
    path = tmp_path / "pickled.pt"
    torch.save({"format": FORMAT, "meta": {"when": np.datetime64("2024-01-01")}}, path)
    with pytest.raises(UserError, match="cannot be loaded safely") as err:
        read_checkpoint(path)
    assert_one_line_naming(err, path)


def test_missing_file_and_directory(tmp_path) -> None:
    for path, words in ((tmp_path / "nope.pt", "does not exist"), (tmp_path, "is a directory")):
        with pytest.raises(UserError, match=words) as err:
            load_checkpoint(path)
        assert_one_line_naming(err, path)


def test_registry_builds_every_preset_with_json_arch_args() -> None:
    for arch, (kind, cls, _) in ARCHS.items():
        if arch in ("nafnet-w32", "nafnet-w64", "mimo-unet"):
            continue  # counted in their own tests; building them here only costs time
        model = create_model(arch)
        assert isinstance(model, cls) and arch_kind(arch) == kind and model.arch == arch
        assert json.loads(json.dumps(model.arch_args)) == model.arch_args
    custom = create_model("nafnet-custom", width=8, enc_blk_nums=(1, 2), dec_blk_nums=(1, 1))
    assert custom.arch_args["enc_blk_nums"] == [1, 2] and custom.size_multiple == 4


def test_registry_errors_are_user_errors() -> None:
    with pytest.raises(UserError, match="unknown architecture 'nafnet-w128'.*nafnet-w32"):
        create_model("nafnet-w128")
    with pytest.raises(UserError, match="has no option depth"):
        create_model("mimo-unet-tiny", depth=3)
    with pytest.raises(UserError, match="cannot build"):
        create_model("nafnet-tiny", enc_blk_nums=[1, 1])
