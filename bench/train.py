"""Training benchmark: throughput of each preset, what the tiny deblurrer learns, what the kernel extractor learns.

Prints three tables:

1. training throughput (steps/s) of nafnet-tiny, nafnet-w32 and the kernel extractors at batch 4, crop 128,
   measured through the real trainer (data synthesis and all);
2. the tiny deblurrer trained on --pairs synthesised `known` pairs (from the photos in scikit-image and dead
   leaves) for --steps steps, then PSNR/SSIM of the blurry input and of its output on held-out `known`
   pairs: pairs made from content training never saw (the Kodak crops in ../shared when present), and the
   run's own validation pairs (held out of the training pairs: unseen crops of seen images); target +4 dB;
3. the tiny kernel extractor trained on `known` for --kernel-steps steps, then, on the same held-out pairs,
   PSNR against the real blurry image of the sharp image, of the sharp image re-blurred with its own pair's
   code, and re-blurred with another pair's code (own should beat both).

Budget on the project's 2-core CPU machine with the defaults: about 26 minutes (deblurrer 17, kernel 4,
throughput 4). The deblurrer's recipe differs from the trainer's defaults in its rate: 4e-3 with 200
warm-up steps (2e-3 gave +3.78 dB on Kodak in 6000 steps; 6e-3 without warm-up stalled).

    python bench/train.py [--steps 7000] [--lr 4e-3] [--warmup 200] [--kernel-steps 1500]
                          [--skip throughput,deblurrer,kernel] [--work DIR]
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from b2b import b2b_train, deblurred, last_evaluation, metrics, open_deblurrer  # bench/, beside this script

from blur2blur.data.blur.content import load_sharp_images
from blur2blur.data.blur.write import synthesize

KODAK = Path(__file__).resolve().parents[2] / "shared" / "data" / "sharp_natural" / "kodak24_via_ffdnet"
SYNTHETIC = "synthetic:known?sharp=skimage+deadleaves&size=128"  # pairs made on the fly, for throughput


def throughput(work: Path, arch: str, steps: int) -> float:
    """Steps/s of the real trainer at batch 4, crop 128 (the first logging window, with warm-up, left out)."""
    run = work / f"speed-{arch}"
    shutil.rmtree(run, ignore_errors=True)  # the benchmark's own runs start afresh
    b2b_train("kernel" if arch.startswith("kernel") else "deblurrer", run, pairs=SYNTHETIC, arch=arch, steps=steps,
              batch=4, crop=128, log_every=max(1, steps // 3), eval_every=10**9, val_count=1, val_size=32)
    rates = [line["steps_per_s"] for line in metrics(run) if "steps_per_s" in line][1:]
    return float(np.mean(rates))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=7000, help="deblurrer training steps")
    parser.add_argument("--batch", type=int, default=8, help="deblurrer batch")
    parser.add_argument("--crop", type=int, default=64, help="deblurrer crop")
    parser.add_argument("--lr", type=float, default=4e-3, help="deblurrer learning rate")
    parser.add_argument("--warmup", type=int, default=200, help="deblurrer warm-up steps")
    parser.add_argument("--kernel-steps", type=int, default=1500, help="kernel extractor training steps")
    parser.add_argument("--pairs", type=int, default=2000, help="known training pairs synthesised (128 x 128)")
    parser.add_argument("--train-sharp", default="skimage+deadleaves", help="sharp content of the training pairs")
    parser.add_argument("--test-sharp", default=str(KODAK) if KODAK.is_dir() else "deadleaves:8",
                        help="sharp content of the held-out pairs (default: the Kodak crops in ../shared)")
    parser.add_argument("--count", type=int, default=24, help="held-out pairs")
    parser.add_argument("--skip", default="", help="comma list of parts to skip: throughput, deblurrer, kernel")
    parser.add_argument("--work", help="keep runs here instead of a temporary folder")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    work = Path(args.work or tempfile.mkdtemp(prefix="b2b-bench-train-"))
    skip = set(filter(None, args.skip.split(",")))
    if {"deblurrer", "kernel"} - skip:  # training from files: synthesis on the fly would halve a CPU's speed
        synthesize("known", load_sharp_images(args.train_sharp), work / "known", count=args.pairs, size=128,
                   seed=1, overwrite=True)
    test = f"synthetic:known?sharp={args.test_sharp}&size=128&count={args.count}&seed=2"
    tables = []

    if "throughput" not in skip:
        rows = [(arch, throughput(work, arch, steps)) for arch, steps in
                (("nafnet-tiny", 60), ("nafnet-w32", 9), ("kernel-extractor-tiny", 60), ("kernel-extractor", 9))]
        tables.append("training throughput, batch 4, crop 128, 2 CPU threads\n\n| preset | steps/s | images/s |\n"
                      "|---|---|---|\n" + "".join(f"| {a} | {r:.2f} | {4 * r:.1f} |\n" for a, r in rows))

    if "deblurrer" not in skip:
        shutil.rmtree(work / "deblurrer", ignore_errors=True)
        start = time.perf_counter()
        last = b2b_train("deblurrer", work / "deblurrer", pairs=work / "known", steps=args.steps, batch=args.batch,
                         crop=args.crop, lr=args.lr, warmup=args.warmup, eval_every=max(1, args.steps // 6))
        minutes = (time.perf_counter() - start) / 60
        rows = [(f"{args.count} pairs of 128 x 128 from {args.test_sharp}", deblurred(open_deblurrer(str(last)), test)),
                ("the run's 8 validation pairs (unseen crops of training images)", last_evaluation(last.parent))]
        tables.append(
            f"nafnet-tiny trained on `known` for {args.steps} steps ({minutes:.1f} min), batch {args.batch}, "
            f"crop {args.crop}, lr {args.lr:g}, warm-up {args.warmup}; PSNR (dB) / SSIM on held-out pairs\n\n"
            "| held-out pairs | blurry input | deblurred | gain |\n|---|---|---|---|\n" + "".join(
                f"| {name} | {m['val_psnr_input']:.2f} / {m['val_ssim_input']:.3f} | "
                f"{m['val_psnr']:.2f} / {m['val_ssim']:.3f} | {m['val_psnr'] - m['val_psnr_input']:+.2f} dB |\n"
                for name, m in rows))

    if "kernel" not in skip:
        shutil.rmtree(work / "kernel", ignore_errors=True)
        start = time.perf_counter()
        b2b_train("kernel", work / "kernel", pairs=work / "known", val_pairs=test, val_count=args.count, val_size=0,
                  steps=args.kernel_steps, eval_every=max(1, args.kernel_steps // 5))  # validated on the test pairs
        minutes = (time.perf_counter() - start) / 60
        m = last_evaluation(work / "kernel")
        tables.append(
            f"kernel-extractor-tiny trained on `known` for {args.kernel_steps} steps ({minutes:.1f} min); PSNR (dB) "
            f"against the real blurry image on the same held-out pairs\n\n"
            "| sharp image | re-blurred, own pair's code | re-blurred, another pair's code |\n|---|---|---|\n"
            f"| {m['val_psnr_no_blur']:.2f} | {m['val_psnr_own_code']:.2f} | {m['val_psnr_other_code']:.2f} |\n")

    print(f"\nruns in {work}\n")
    print("\n".join(tables))


if __name__ == "__main__":
    main()
