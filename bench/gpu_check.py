"""The GPU acceptance check: everything this project can only verify on an NVIDIA GPU, in one command.

    make gpu-check                 (installs the `trt` extra, then runs this)
    python bench/gpu_check.py --out gpu_check [--deblurrer nafnet-gopro-w32]

Steps, each timed and recorded, none stopping the others:
1. the machine: GPU, driver, TensorRT and CUDA binding versions;
2. the TensorRT and CUDA tests (tests/test_tensorrt_*.py, tests/test_cuda_memory.py), skips listed with reasons;
3. an FP16 bundle of a NAFNet-w32 (the official GoPro weights where fetched, else the same network with random
   weights) exported up to 720p, its TensorRT engine built and verified against ONNX Runtime;
4. b2b-bench at 1280x720: TensorRT, ONNX Runtime (CUDA where onnxruntime-gpu is installed) and PyTorch eager;
5. b2b-run over a 720p clip with --backend tensorrt.
It writes OUT/report.md (and each step's full log beside it) and exits non-zero when a step failed. About 5
minutes on one data-centre GPU, most of it the engine build.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]
TESTS = ["tests/test_tensorrt_build.py", "tests/test_tensorrt_engine.py", "tests/test_cuda_memory.py"]
ENVIRONMENT = """
import importlib, subprocess
def version(name):
    try:
        return getattr(importlib.import_module(name), "__version__", "present")
    except Exception as err:
        return f"absent ({type(err).__name__}: {err})"
try:
    smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                         capture_output=True, text=True)
    print("GPU:", smi.stdout.strip() or smi.stderr.strip())
except FileNotFoundError:
    print("GPU: none (no nvidia-smi)")
for name in ("tensorrt", "cuda", "pycuda", "onnxruntime", "torch"):
    print(f"{name}:", version(name))
import onnxruntime, torch
print("onnxruntime providers:", ", ".join(onnxruntime.get_available_providers()))
print("torch sees CUDA:", torch.cuda.is_available())
if not torch.cuda.is_available() or version("tensorrt").startswith("absent"):
    raise SystemExit("not a GPU check: this machine lacks a CUDA GPU or TensorRT (pip install 'blur2blur[trt]'); "
                     "the steps below run, but TensorRT's are skipped or fail")
"""
W32_CHECKPOINT = """
import sys, torch
from blur2blur.models import create_model
from blur2blur.models.checkpoint import save_checkpoint
torch.manual_seed(0)
model = create_model("nafnet-w32")
with torch.no_grad():  # small random weights everywhere: every branch computes, as in a trained network
    for param in model.parameters():
        param.add_(torch.randn_like(param) * 0.02)
save_checkpoint(sys.argv[1], model, "deblurrer", {"source": "gpu_check: random weights, for timing only"})
"""


class Report:
    """Runs the steps, keeps their logs, and writes the report as it goes."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.rows: list[tuple[str, str, float, str]] = []
        self.sections: list[str] = []

    def step(self, name: str, command: list[str], keep: int = 40) -> bool:
        shown = shlex.join(command[:2] + ["SCRIPT", *command[3:]] if command[1] == "-c" else command)
        print(f"==> {name}: {shown}", flush=True)
        log = self.out / f"{len(self.rows) + 1:02d}-{name.split()[0].lower()}.log"
        start = time.perf_counter()
        with open(log, "w") as sink:
            done = subprocess.run(command, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT, check=False)
        seconds = time.perf_counter() - start
        text = log.read_text(errors="replace").replace("\r", "\n")
        tail = "\n".join(line for line in text.splitlines() if line.strip())
        tail = "\n".join(tail.splitlines()[-keep:])
        status = "passed" if done.returncode == 0 else f"FAILED (exit {done.returncode})"
        self.rows.append((name, status, seconds, log.name))
        self.sections.append(f"## {name}\n\n`{shown}`: {status} in {seconds:.0f} s\n\n```\n{tail}\n```\n")
        self.write()
        print(f"    {status} in {seconds:.0f} s (log: {log})", flush=True)
        return done.returncode == 0

    def write(self) -> None:
        table = "\n".join(f"| {name} | {status} | {seconds:.0f} | {log} |" for name, status, seconds, log in self.rows)
        (self.out / "report.md").write_text(
            "# blur2blur GPU check\n\n| step | result | seconds | log |\n|---|---|---|---|\n"
            f"{table}\n\n" + "\n".join(self.sections))

    @property
    def failed(self) -> list[str]:
        return [name for name, status, _, _ in self.rows if status != "passed"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="gpu_check", help="folder for the report, logs, bundle and clip")
    parser.add_argument("--deblurrer", help="deblurrer to export (default: nafnet-gopro-w32 where fetched, else "
                                            "a NAFNet-w32 with random weights)")
    parser.add_argument("--frames", type=int, default=100, help="frames timed per b2b-bench configuration")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    report = Report(out)
    python = str(BIN / "python")

    report.step("Environment", [python, "-c", ENVIRONMENT])
    report.step("TensorRT tests", [python, "-m", "pytest", "-q", "-rs", *TESTS], keep=60)

    deblurrer = args.deblurrer
    if deblurrer is None:
        from blur2blur.weights import OFFICIAL, official_path

        official = official_path(OFFICIAL["nafnet-gopro-w32"])
        deblurrer = "nafnet-gopro-w32" if official.is_file() else str(out / "nafnet-w32-random.pt")
        if not official.is_file():
            report.step("W32 checkpoint (random weights)", [python, "-c", W32_CHECKPOINT, deblurrer])
    bundle = out / "bundle-w32"
    exported = report.step("Export and engine", [
        str(BIN / "b2b-export"), "--deblurrer", deblurrer, "--fp16", "--min-shape", "240x320",
        "--opt-shape", "720x1280", "--max-shape", "720x1280", "--out", str(bundle), "--force"])
    if exported:
        report.step("Bench at 720p", [
            str(BIN / "b2b-bench"), "--bundle", str(bundle), "--sizes", "1280x720", "--precisions", "fp32,fp16",
            "--frames", str(args.frames), "--json", str(out / "bench.json")])
        clip = out / "clip-720p.mp4"
        if report.step("Clip", [str(BIN / "b2b-train"), "synth", "--domain", "known", "--sharp", "skimage",
                                "--out", str(clip), "--video", "120", "--frame-size", "1280x720", "--overwrite"]):
            report.step("b2b-run with TensorRT", [
                str(BIN / "b2b-run"), "--bundle", str(bundle), "--video", str(clip), "--backend", "tensorrt",
                "--headless", "--output", str(out / "restored.mp4"), "--stats", str(out / "timing.json")])
    print(f"\nreport: {out / 'report.md'}")
    if report.failed:
        sys.exit(f"gpu check: {len(report.failed)} step(s) failed: {', '.join(report.failed)}; see {out / 'report.md'}")


if __name__ == "__main__":
    main()
