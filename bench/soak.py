"""Soak test: does a long `b2b-run` keep its memory flat, lose no frame and keep writing its figures?

Loops a clip through `b2b-run --loop --stats-every` for a stated time (the starter's bundle, exported here, or
`--bundle`), samples the process's resident memory (VmRSS) every few seconds, then stops it with SIGINT as a user
would. Prints the memory curve (one row a minute), the growth after the first minute, how many frames ran and
were dropped or skipped (a file source must lose none), and how often the stats file was rewritten.

    python bench/soak.py [--minutes 30] [--bundle B] [--clip CLIP] [--app none] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

B2B = Path(sys.executable).parent
SAMPLE_SECONDS = 2.0


def resident_mb(pid: int) -> float | None:
    """The process's resident memory in MB (VmRSS), None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def prepare(work: Path, args: argparse.Namespace) -> tuple[Path, Path]:
    """The bundle and the clip to loop (made in `work` unless given)."""
    bundle = Path(args.bundle) if args.bundle else work / "bundle"
    if not args.bundle and not (bundle / "meta.json").exists():
        subprocess.run([B2B / "b2b-export", "--deblurrer", "starter", "--out", bundle, "--min-shape", "64x64",
                        "--opt-shape", "240x320", "--max-shape", "480x640"], check=True)
    clip = Path(args.clip) if args.clip else work / "clip.mp4"
    if not args.clip and not clip.exists():
        subprocess.run([B2B / "b2b-train", "synth", "--domain", "defocus", "--sharp", "skimage", "--video",
                        "50", "--frame-size", "320x240", "--out", clip], check=True)
    return bundle, clip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--bundle", help="export bundle (default: the starter, exported into --work)")
    parser.add_argument("--clip", help="video to loop (default: a generated 320x240 clip of 50 frames)")
    parser.add_argument("--app", default="none")
    parser.add_argument("--stats-every", type=float, default=10.0)
    parser.add_argument("--work", help="keep the bundle, clip and figures here")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="b2b-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    bundle, clip = prepare(work, args)
    stats = work / "stats.json"
    stats.unlink(missing_ok=True)
    command = [B2B / "b2b-run", "--bundle", bundle, "--video", clip, "--loop", "--headless", "--app", args.app,
               "--stats", stats, "--stats-every", str(args.stats_every)]
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    start, samples, writes = time.monotonic(), [], []  # writes: the run time each stats file it wrote gives
    while time.monotonic() - start < args.minutes * 60 and run.poll() is None:
        time.sleep(SAMPLE_SECONDS)
        rss = resident_mb(run.pid)
        if rss is not None:
            samples.append((time.monotonic() - start, rss))
        try:
            seconds = json.loads(stats.read_text())["seconds"]
        except (OSError, ValueError, KeyError):
            continue
        if not writes or seconds != writes[-1]:
            writes.append(seconds)
    if run.poll() is None:
        run.send_signal(signal.SIGINT)
    output = run.communicate(timeout=120)[0]
    seconds = time.monotonic() - start
    report = json.loads(stats.read_text()) if stats.exists() else {}

    print(f"soak: {' '.join(map(str, command))}\n{seconds / 60:.1f} min, exit {run.returncode}\n")
    print("| minute | resident MB |\n|---|---|")
    shown = -1
    for t, rss in samples:
        if int(t // 60) > shown:
            shown = int(t // 60)
            print(f"| {t / 60:.1f} | {rss:.1f} |")
    print(f"| {samples[-1][0] / 60:.1f} | {samples[-1][1]:.1f} |" if samples else "| - | - |")
    settled = [rss for t, rss in samples if t >= 60]
    if settled:
        growth = (max(settled) - settled[0]) / settled[0]
        print(f"\nafter the first minute: {settled[0]:.1f} MB, at most {max(settled):.1f} MB "
              f"({growth:+.1%}; target within 5 %)")
    gaps = np.diff(writes) if len(writes) > 1 else np.zeros(1)
    print(f"frames {report.get('frames')}, {report.get('fps')} frames/s, dropped {report.get('dropped')}, skipped "
          f"{report.get('skipped_corrupt')}; the stats file was rewritten {len(writes)} times seen (every "
          f"{args.stats_every:g} s asked): {np.mean(gaps):.1f} s apart on average, at most {np.max(gaps):.1f} s; "
          f"final running={report.get('running')}")
    (work / "soak.json").write_text(json.dumps({"samples": samples, "report": report, "writes": writes,
                                                "seconds": seconds, "exit": run.returncode}, indent=2))
    if run.returncode not in (0, 130):
        print(output[-2000:], file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
