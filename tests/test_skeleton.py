"""The walking skeleton as a user runs it: synth -> b2b-train deblurrer -> b2b-export -> b2b-run."""

import json
import subprocess
import sys
from pathlib import Path

from helpers import read_video

from blur2blur.models.checkpoint import load_checkpoint

BIN = Path(sys.executable).parent


def cli(*args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([str(BIN / args[0]), *args[1:]], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result


def test_synth_train_export_run_end_to_end(tmp_path):
    cli("b2b-train", "synth", "--domain", "known", "--sharp", "deadleaves:3", "--out", str(tmp_path / "pairs"),
        "--count", "10", "--size", "48")
    cli("b2b-train", "deblurrer", "--pairs", str(tmp_path / "pairs"), "--out", str(tmp_path / "run"),
        "--steps", "4", "--batch", "2", "--crop", "32")
    model, ckpt = load_checkpoint(tmp_path / "run" / "last.pt", kind="deblurrer")
    assert ckpt["meta"]["step"] == 4 and ckpt["arch"] == "nafnet-tiny"
    assert {"val_psnr", "val_psnr_input"} <= set(ckpt["meta"]["metrics"])
    cli("b2b-train", "synth", "--domain", "known", "--sharp", "deadleaves:1", "--out", str(tmp_path / "blurry.mp4"),
        "--video", "6", "--frame-size", "72x56")
    assert read_video(tmp_path / "blurry.sharp.mp4")[0].shape == (56, 72, 3)
    cli("b2b-export", "--deblurrer", str(tmp_path / "run" / "last.pt"), "--out", str(tmp_path / "bundle"))
    run = cli("b2b-run", "--bundle", str(tmp_path / "bundle"), "--video", str(tmp_path / "blurry.mp4"),
              "--output", str(tmp_path / "restored.mp4"), "--stats", str(tmp_path / "stats.json"), "--headless")
    restored, blurry = read_video(tmp_path / "restored.mp4"), read_video(tmp_path / "blurry.mp4")
    assert len(restored) == len(blurry) == 6 and restored[0].shape == blurry[0].shape
    assert json.loads((tmp_path / "stats.json").read_text())["frames"] == 6
    assert "frames/s" in run.stdout


def test_training_bad_input_is_one_line(tmp_path):
    for args in (["deblurrer", "--pairs", str(tmp_path / "nothing"), "--out", str(tmp_path / "run")],
                 ["deblurrer", "--pairs", str(tmp_path), "--out", str(tmp_path / "run"), "--arch", "mimo-unet"],
                 ["synth", "--domain", "nope", "--out", str(tmp_path / "x")]):
        result = subprocess.run([str(BIN / "b2b-train"), *args], capture_output=True, text=True)
        assert result.returncode == 2
        assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("error:"), result.stderr


def test_synth_refuses_to_mix_syntheses_unless_overwriting(tmp_path):
    args = ["--sharp", "deadleaves:2", "--out", str(tmp_path / "pairs"), "--count", "3", "--size", "32"]
    cli("b2b-train", "synth", "--domain", "known", *args)
    result = subprocess.run([str(BIN / "b2b-train"), "synth", "--domain", "defocus", *args],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "--overwrite" in result.stderr
    cli("b2b-train", "synth", "--domain", "defocus", *args, "--overwrite")
    assert json.loads((tmp_path / "pairs" / "synth.json").read_text())["domain"] == "defocus"
    assert len(list((tmp_path / "pairs" / "blur").iterdir())) == 3
