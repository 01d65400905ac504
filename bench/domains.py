"""How far apart the blur domains are: train a tiny deblurrer on `known`, then measure it on every domain.

Prints a table of PSNR (dB) on held-out pairs of each domain: the blurry input, the deblurred output and
the gain. The known deblurrer should gain clearly on `known` and little, or lose, on the unknown presets.
Budget here: about 8 minutes with the defaults (2000 steps of nafnet-tiny, batch 8, crop 64, 2 CPU threads).

    python bench/domains.py [--steps 2000] [--train-sharp skimage+deadleaves] [--test-sharp DIR]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import torch

from blur2blur.models.checkpoint import load_checkpoint
from blur2blur.train.config import DeblurrerConfig
from blur2blur.train.content import load_sharp_images
from blur2blur.train.datasets import open_pairs
from blur2blur.train.deblurrer import evaluate_deblurrer, train_deblurrer
from blur2blur.train.domains import DOMAINS
from blur2blur.train.synth import synthesize

KODAK = Path(__file__).resolve().parents[2] / "shared" / "data" / "sharp_natural" / "kodak24_via_ffdnet"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--train-sharp", default="skimage+deadleaves")
    parser.add_argument("--test-sharp", default=str(KODAK) if KODAK.is_dir() else "deadleaves:8",
                        help="sharp content for the test pairs (default: the Kodak crops in ../shared when present)")
    parser.add_argument("--count", type=int, default=24, help="test pairs per domain")
    parser.add_argument("--work", help="keep the data and checkpoint here instead of a temporary folder")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(2)
    work = Path(args.work or tempfile.mkdtemp(prefix="b2b-domains-"))

    start = time.perf_counter()
    synthesize("known", load_sharp_images(args.train_sharp), work / "known-train", count=400, size=128, seed=1)
    checkpoint = train_deblurrer(DeblurrerConfig(pairs=str(work / "known-train"), out=str(work / "deblurrer"),
                                                 steps=args.steps, eval_every=10**9)).last
    train_minutes = (time.perf_counter() - start) / 60
    model, _ = load_checkpoint(checkpoint, kind="deblurrer")

    test_images = load_sharp_images(args.test_sharp)
    rows = []
    for name in DOMAINS:
        synthesize(name, test_images, work / f"test-{name}", count=args.count, size=128, seed=2)
        figures = evaluate_deblurrer(model, open_pairs(str(work / f"test-{name}")), 0)
        rows.append((name, figures["val_psnr_input"], figures["val_psnr"]))
    print(f"\nnafnet-tiny trained on `known` for {args.steps} steps ({train_minutes:.1f} min); "
          f"test content: {args.test_sharp}, {args.count} pairs of 128 x 128 per domain\n")
    print("| domain | blurry input | deblurred | gain |\n|---|---|---|---|")
    for name, before, after in rows:
        print(f"| {name} | {before:.2f} | {after:.2f} | {after - before:+.2f} |")


if __name__ == "__main__":
    main()
