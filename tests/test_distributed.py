"""Two processes under torchrun (gloo on the CPU) train what one process with the doubled batch trains: the
deblurrer, and the converter with its critic and gradient penalty."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from blur2blur.models import create_model
from blur2blur.models.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint

BIN = Path(sys.executable).parent
PAIRS = "synthetic:known?sharp=deadleaves:3&size=48"
CAMERA = "synthetic:defocus?sharp=deadleaves:2&size=128"


def b2b_train(args: list[str], processes: int) -> subprocess.CompletedProcess:
    """`b2b-train ARGS`, under torchrun with `processes` processes or in one; each with one thread, as torchrun
    gives its processes (several threads on a shared CPU only slow each other down)."""
    if processes > 1:
        command = [str(BIN / "torchrun"), "--standalone", "--nproc_per_node", str(processes),
                   "-m", "blur2blur.train.cli", *args]
    else:
        command = [str(BIN / "b2b-train"), *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def train(out: Path, batch: int, processes: int) -> subprocess.CompletedProcess:
    return b2b_train(["deblurrer", "--pairs", PAIRS, "--out", str(out), "--steps", "6", "--batch", str(batch),
                      "--crop", "32", "--eval-every", "3", "--val-count", "2", "--val-size", "32", "--device", "cpu"],
                     processes)


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


def distance(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """The L2 distance between two sets of weights, all tensors together."""
    return float(sum((a[k].double() - b[k].double()).pow(2).sum() for k in a)) ** 0.5


def test_two_processes_train_the_converter_its_critic_and_penalty_as_one_with_the_doubled_batch(tmp_path):
    deblurrer = tmp_path / "deblurrer.pt"
    save_checkpoint(deblurrer, create_model("nafnet-tiny"), "deblurrer")
    # a penalty weight that makes the gradient penalty a large share of the critic's gradient
    args = ["converter", "--blurry", CAMERA, "--sharp", CAMERA, "--known", "synthetic:known", "--deblurrer",
            str(deblurrer), "--steps", "3", "--crop", "96", "--eval-every", "3", "--log-every", "1",
            "--lambda-gp", "10", "--warmup", "0", "--device", "cpu"]
    b2b_train([*args, "--batch", "1", "--out", str(tmp_path / "ddp")], processes=2)
    b2b_train([*args, "--batch", "2", "--out", str(tmp_path / "single")], processes=1)
    b2b_train([*args, "--batch", "1", "--out", str(tmp_path / "half")], processes=1)
    runs = {run: read_checkpoint(tmp_path / run / "last.pt") for run in ("ddp", "single", "half")}
    lines = [json.loads(line) for line in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()]
    penalties = [line["d_penalty"] for line in lines if "d_penalty" in line]
    assert len(penalties) == 3 and min(penalties) > 0.1, penalties  # the penalty is on at every step
    # G, D and the average of G. Adam's first steps move each weight by about lr x sign(gradient), so a gradient
    # that is zero up to rounding may flip a few weights by 2 lr (as one thread against two does): the weight
    # sets are compared whole, by their distance, to what one process with half the data trains.
    for part in ("train_state_dict", "critic", "state_dict"):
        ddp, single, half = (runs[run][part] for run in ("ddp", "single", "half"))
        assert distance(ddp, single) < 0.05 * distance(ddp, half), part


def workers_by_rank(parent: int) -> dict[int, int]:
    """RANK -> pid of the processes torchrun started."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            environ = (stat.parent / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue  # a process that ended meanwhile
        ranks = [int(item[5:]) for item in environ if item.startswith(b"RANK=")]
        if ppid == parent and ranks:
            found[ranks[0]] = int(stat.parent.name)
    return found


def test_a_signal_to_one_process_stops_them_all_at_one_step_and_rank_0_saves(tmp_path):
    out = tmp_path / "run"
    args = ["deblurrer", "--pairs", PAIRS, "--out", str(out), "--steps", "100000", "--batch", "1", "--crop", "16",
            "--val-count", "1", "--log-every", "1", "--device", "cpu"]
    process = subprocess.Popen([str(BIN / "torchrun"), "--standalone", "--nproc_per_node", "2",
                                "-m", "blur2blur.train.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    deadline = time.time() + 180
    while not (out / "metrics.jsonl").exists() or len((out / "metrics.jsonl").read_text().splitlines()) < 4:
        assert time.time() < deadline and process.poll() is None, process.communicate()
        time.sleep(0.2)
    os.kill(workers_by_rank(process.pid)[1], signal.SIGTERM)  # rank 1 only
    _, stderr = process.communicate(timeout=180)  # no process waits forever for the other
    assert process.returncode != 0
    step = read_checkpoint(out / "last.pt")["meta"]["step"]
    assert 3 <= step < 100000 and stderr.count(f"stopped at step {step} of 100000 (SIGTERM)") == 1, stderr[-2000:]
