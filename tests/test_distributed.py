"""Two processes under torchrun (gloo on the CPU) train what one process with the doubled batch trains."""

import subprocess
import sys
from pathlib import Path

from blur2blur.models.checkpoint import load_checkpoint, read_checkpoint

BIN = Path(sys.executable).parent
PAIRS = "synthetic:known?sharp=deadleaves:3&size=48"


def train(out: Path, batch: int, processes: int) -> subprocess.CompletedProcess:
    args = ["deblurrer", "--pairs", PAIRS, "--out", str(out), "--steps", "6", "--batch", str(batch), "--crop", "32",
            "--eval-every", "3", "--val-count", "2", "--val-size", "32", "--device", "cpu"]
    if processes > 1:
        command = [str(BIN / "torchrun"), "--standalone", "--nproc_per_node", str(processes),
                   "-m", "blur2blur.train.cli", *args]
    else:
        command = [str(BIN / "b2b-train"), *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_two_processes_match_one_process_with_the_doubled_batch(tmp_path):
    ddp = train(tmp_path / "ddp", batch=2, processes=2)
    train(tmp_path / "single", batch=4, processes=1)
    train(tmp_path / "half", batch=2, processes=1)
    weights = {run: load_checkpoint(tmp_path / run / "last.pt", "deblurrer")[0].state_dict()
               for run in ("ddp", "single", "half")}
    gap = {run: max(float((weights["ddp"][k] - weights[run][k]).abs().max()) for k in weights["ddp"])
           for run in ("single", "half")}
    # equal up to the order of floating-point sums; one process's half of the data trains something else
    assert gap["single"] < 1e-4 and gap["half"] > 1e-3, gap
    # rank 0 alone writes files and talks: one summary, one progress bar, one log of the run
    assert ddp.stdout.count("wrote ") == 1
    assert ddp.stderr.count("1.14 M parameters, 6 steps of batch 2 x 2 process(es)") == 1
    assert read_checkpoint(tmp_path / "ddp" / "last.pt")["meta"]["step"] == 6
    lines = {run: (tmp_path / run / "metrics.jsonl").read_text().splitlines() for run in ("ddp", "single")}
    assert len(lines["ddp"]) == len(lines["single"]) == 4  # evaluations at 0, 3 and 6, a log line at 6
