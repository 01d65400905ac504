"""The training core: exact resume, interruption, divergence, run folders, schedules, precision."""

import json
import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from blur2blur.errors import UserError
from blur2blur.models.checkpoint import load_checkpoint, read_checkpoint
from blur2blur.train import core
from blur2blur.train.config import DeblurrerConfig, KernelConfig, RunConfig
from blur2blur.train.core import lr_factor, run
from blur2blur.train.deblurrer import DeblurrerTask, train_deblurrer
from blur2blur.train.kernel import train_kernel

BIN = Path(sys.executable).parent
PAIRS = "synthetic:known?sharp=deadleaves:3&size=48"


def tiny(tmp_path: Path, name: str, **changes) -> DeblurrerConfig:
    settings = dict(pairs=PAIRS, out=str(tmp_path / name), steps=20, batch=2, crop=32, eval_every=5, log_every=5,
                    val_count=2, val_size=32)
    return DeblurrerConfig(**{**settings, **changes})


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path, "deblurrer")[0].state_dict()


def evaluations(path: Path) -> list[dict]:
    """The held-out figures in a run's metrics log."""
    return [line for line in map(json.loads, path.read_text().splitlines()) if "val_psnr" in line]


class NoisyDeblurrer(DeblurrerTask):
    """The deblurrer with noise drawn from torch's global RNG added to its input: a run whose result depends
    on the random state that last.pt must carry."""

    def loss(self, model, batch):
        blur, sharp = batch
        return super().loss(model, [blur + 0.02 * torch.randn_like(blur), sharp])


class SignalledAt(NoisyDeblurrer):
    """With the process sending itself `signum` during step `at` (a real signal)."""

    def __init__(self, config, at: int, signum: int = signal.SIGTERM) -> None:
        super().__init__(config)
        self.calls, self.at, self.signum = 0, at, signum

    def loss(self, model, batch):
        self.calls += 1
        if self.calls == self.at:
            os.kill(os.getpid(), self.signum)
        return super().loss(model, batch)


class NanAfter(DeblurrerTask):
    """The deblurrer, with its loss turning NaN after `at` steps."""

    def __init__(self, config, at: int) -> None:
        super().__init__(config)
        self.calls, self.at = 0, at

    def loss(self, model, batch):
        self.calls += 1
        loss, figures = super().loss(model, batch)
        return (loss * float("nan"), figures) if self.calls > self.at else (loss, figures)


def test_resume_matches_uninterrupted_run(tmp_path):
    straight = run(tiny(tmp_path, "straight", workers=1), NoisyDeblurrer)
    assert straight.step == 20 and straight.stopped_by is None

    config = tiny(tmp_path, "stopped", workers=1)
    first = run(config, lambda c: SignalledAt(c, at=12))  # between evaluations and log lines
    assert (first.step, first.stopped_by) == (12, "SIGTERM")
    assert read_checkpoint(first.last)["meta"]["step"] == 12

    resumed = run(replace(config, resume=True), NoisyDeblurrer)
    assert resumed.step == 20 and resumed.stopped_by is None
    a, b = weights(straight.last), weights(resumed.last)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert evaluations(Path(config.out) / "metrics.jsonl") == evaluations(tmp_path / "straight" / "metrics.jsonl")
    assert read_checkpoint(resumed.best)["meta"]["step"] == read_checkpoint(straight.best)["meta"]["step"]


def test_divergence_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    config = tiny(tmp_path, "nan", eval_every=4)
    with pytest.raises(UserError, match=r"diverged at step 7: the loss is nan .*step 4\) is kept; lower --lr"):
        run(config, lambda c: NanAfter(c, at=6))
    last = read_checkpoint(Path(config.out) / "last.pt")
    assert last["meta"]["step"] == 4
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values())
    assert (Path(config.out) / "curves.png").is_file()


def test_a_new_run_never_overwrites_another(tmp_path):
    config = tiny(tmp_path, "run", steps=2)
    train_deblurrer(config)
    with pytest.raises(UserError, match="already holds a run .step 2.: add --resume"):
        train_deblurrer(config)
    finished = train_deblurrer(replace(config, resume=True))  # a complete run resumes to nothing
    assert finished.step == 2


def test_resume_refuses_changed_settings_and_missing_runs(tmp_path):
    config = tiny(tmp_path, "run", steps=2)
    with pytest.raises(UserError, match="holds no last.pt"):
        train_deblurrer(replace(config, resume=True))
    train_deblurrer(config)
    with pytest.raises(UserError, match="--lr 0.1 differs from its 0.002"):
        train_deblurrer(replace(config, resume=True, lr=0.1), given=["lr", "out", "resume"])
    # settings not typed by the user come from the run; where it runs may change
    result = train_deblurrer(DeblurrerConfig(out=config.out, resume=True, steps=99, workers=1), given=["workers"])
    assert result.steps == 2


def test_bad_settings_are_named(tmp_path):
    for changes, message in (({"steps": 0}, "--steps 0"), ({"crop": 8}, "--crop 8"), ({"lr": -1.0}, "--lr -1"),
                             ({"pairs": ""}, "--pairs"), ({"schedule": "step"}, "--schedule step")):
        with pytest.raises(UserError, match=message):
            train_deblurrer(tiny(tmp_path, "bad", **changes))
    assert not (tmp_path / "bad").exists()


def test_schedules_start_at_the_rate_and_end_at_the_floor():
    base = dict(out="x", steps=300, lr=1e-3, min_lr=1e-6)
    cosine = lr_factor(RunConfig(**base, schedule="cosine"))
    assert cosine(0) == 1 and cosine(150) == pytest.approx(0.5, abs=1e-3) and cosine(300) == pytest.approx(1e-3)
    linear = lr_factor(RunConfig(**base, schedule="linear"))
    assert linear(0) == linear(100) == 1 and linear(200) == pytest.approx(0.5, abs=1e-3)
    assert linear(300) == pytest.approx(1e-3)
    assert lr_factor(RunConfig(**base, schedule="constant"))(300) == 1
    warm = lr_factor(RunConfig(**base, warmup=10))
    assert warm(0) == pytest.approx(0.1 * cosine(0)) and warm(4) == pytest.approx(0.5 * cosine(4))
    assert warm(9) == pytest.approx(cosine(9))


def test_ctrl_c_saves_and_the_cli_resumes(tmp_path):
    out = tmp_path / "run"
    args = [str(BIN / "b2b-train"), "deblurrer", "--pairs", PAIRS, "--out", str(out), "--steps", "100000",
            "--batch", "1", "--crop", "16", "--val-count", "1", "--log-every", "1", "--workers", "1"]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (out / "metrics.jsonl").exists() or len((out / "metrics.jsonl").read_text().splitlines()) < 4:
        assert time.time() < deadline and process.poll() is None, process.communicate()
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    step = read_checkpoint(out / "last.pt")["meta"]["step"]
    assert 3 <= step < 100000 and f"stopped at step {step} of 100000 (SIGINT)" in stderr and "--resume" in stderr
    # continuing needs only the folder; a changed setting is refused in one line
    result = subprocess.run([str(BIN / "b2b-train"), "deblurrer", "--out", str(out), "--resume", "--lr", "1"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "--lr 1.0 differs" in result.stderr


class OutputTypes(NoisyDeblurrer):
    """The noisy deblurrer, noting the dtype of every output of its first conv (training and evaluation)."""

    def __init__(self, config) -> None:
        super().__init__(config)
        self.dtypes: set[torch.dtype] = set()
        self.model.intro.register_forward_hook(lambda module, inputs, output: self.dtypes.add(output.dtype))


def resumed_matches_straight(tmp_path: Path, **changes) -> tuple[dict, dict]:
    """A run of 8 steps, and the same run stopped by SIGTERM during step 5 and resumed: their last.pt."""
    straight = run(tiny(tmp_path, "straight", steps=8, eval_every=4, log_every=1, **changes), NoisyDeblurrer)
    config = tiny(tmp_path, "stopped", steps=8, eval_every=4, log_every=1, **changes)
    assert run(config, lambda c: SignalledAt(c, at=5)).step == 5
    resumed = run(replace(config, resume=True), NoisyDeblurrer)
    a, b = read_checkpoint(straight.last), read_checkpoint(resumed.last)
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    return a, b


def test_bf16_trains_in_bf16_evaluates_in_fp32_and_resumes_exactly(tmp_path):
    config = tiny(tmp_path, "types", steps=2, eval_every=2, precision="bf16")
    task = OutputTypes(config)
    run(config, lambda c: task)
    assert task.dtypes == {torch.bfloat16, torch.float32}  # forward passes under autocast; evaluation not
    resumed_matches_straight(tmp_path, precision="bf16")
    lines = [json.loads(line) for line in (tmp_path / "stopped" / "metrics.jsonl").read_text().splitlines()]
    assert all(math.isfinite(v) for line in lines for v in line.values())
    assert read_checkpoint(tmp_path / "stopped" / "last.pt")["meta"]["config"]["precision"] == "bf16"


def test_fp16_scales_the_loss_and_its_scaler_resumes_exactly(tmp_path, monkeypatch):
    monkeypatch.setattr(core, "FP16_DEVICES", ("cuda", "cpu"))  # the CUDA path, run on the CPU
    a, b = resumed_matches_straight(tmp_path, precision="fp16")
    assert a["scaler"] == b["scaler"] and a["scaler"]["scale"] > 1  # the loss scale travels in last.pt


def test_fp16_without_a_gpu_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(UserError, match="^--precision fp16 needs a CUDA GPU .here: cpu.: use --precision bf16"):
        train_deblurrer(tiny(tmp_path, "fp16", precision="fp16"))
    assert not (tmp_path / "fp16").exists()


def test_the_kernel_extractor_trains_in_bf16(tmp_path):
    config = KernelConfig(pairs=PAIRS, out=str(tmp_path / "run"), steps=3, batch=2, crop=32, eval_every=3,
                          log_every=1, val_count=2, val_size=32, precision="bf16")
    metrics = train_kernel(config).metrics
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all(math.isfinite(v) for line in lines for v in line.values()) and metrics["val_psnr_own_code"] > 0
