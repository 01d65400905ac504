"""What the benchmarks that train and score share: they run `b2b-train` as a user does and score with
`b2b-eval deblur`'s code, so no bench script imports train/ (docs/architecture.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from blur2blur.data.sources import open_pairs
from blur2blur.evaluate.deblur import evaluate_deblur
from blur2blur.evaluate.restorers import Restorer, torch_restorers
from blur2blur.weights import resolve_checkpoint


def b2b_train(command: str, out: Path, **options) -> Path:
    """Run `b2b-train COMMAND --out OUT --option value ...` (an option of None or False is left out, True is a flag),
    resuming OUT when it holds a run; its last.pt. The benchmark stops, resumably, when the run stops or fails."""
    argv = [sys.executable, "-m", "blur2blur.train.cli", command, "--out", str(out)]
    for name, value in options.items():
        if value is None or value is False:
            continue
        argv += [f"--{name.replace('_', '-')}"] + ([] if value is True else [str(value)])
    if (out / "last.pt").exists():
        argv.append("--resume")
    code = subprocess.run(argv).returncode
    if code:
        raise SystemExit(f"b2b-train {command} stopped (exit {code}): run the same command again to continue ({out})")
    return out / "last.pt"


def metrics(run_folder: Path) -> list[dict]:
    """The lines of a run's metrics.jsonl, in the order written."""
    return [json.loads(line) for line in (run_folder / "metrics.jsonl").read_text().splitlines()]


def last_evaluation(run_folder: Path) -> dict:
    """The figures of a run's last evaluation (its held-out pairs)."""
    return [line for line in metrics(run_folder) if any(key.startswith("val_") for key in line)][-1]


def open_deblurrer(checkpoint: str) -> Restorer:
    """A deblurrer (checkpoint or shipped name) in PyTorch, loaded once for every `deblurred` call."""
    return torch_restorers(resolve_checkpoint(checkpoint, "--deblurrer"))[0]


def deblurred(deblurrer: Restorer, pairs: str) -> dict[str, float]:
    """`b2b-eval deblur`'s means of `deblurrer` on every pair of `pairs`, named as the training runs log them:
    val_psnr_input, val_ssim_input (the blurry input), val_psnr, val_ssim (deblurred)."""
    mean = evaluate_deblur(open_pairs(pairs, option="--pairs"), [deblurrer], limit=0)["mean"]
    return {"val_psnr_input": mean["blurry"]["psnr"], "val_ssim_input": mean["blurry"]["ssim"],
            "val_psnr": mean["deblurrer"]["psnr"], "val_ssim": mean["deblurrer"]["ssim"]}
