"""How a deblurrer fares on every blur domain: the shipped starter (or any checkpoint) on held-out pairs of each.

Prints a table of PSNR / SSIM on pairs of each domain made from content the starter never saw (the Kodak crops
in ../shared when present): the blurry input, the deblurred output and the gain. A broad known deblurrer should
gain clearly on `known`, do little harm on the unknown cameras, which are the converter's job, and leave the
sharp frames of `still` as they are. Budget here:
about 2 minutes on this project's 2-core CPU machine.

    python bench/domains.py [--deblurrer starter] [--test-sharp DIR] [--count 24]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import torch
from b2b import deblurred, open_deblurrer  # bench/, beside this script

from blur2blur.data.blur.content import load_sharp_images
from blur2blur.data.blur.domains import CAMERAS, DOMAINS
from blur2blur.data.blur.write import synthesize

KODAK = Path(__file__).resolve().parents[2] / "shared" / "data" / "sharp_natural" / "kodak24_via_ffdnet"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deblurrer", default="starter", help="checkpoint or shipped name (default: starter)")
    parser.add_argument("--test-sharp", default=str(KODAK) if KODAK.is_dir() else "deadleaves:8",
                        help="sharp content for the test pairs (default: the Kodak crops in ../shared when present)")
    parser.add_argument("--count", type=int, default=24, help="test pairs per domain")
    parser.add_argument("--size", type=int, default=128, help="side of each test pair")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", help="keep the test pairs here instead of a temporary folder")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    work = Path(args.work or tempfile.mkdtemp(prefix="b2b-domains-"))
    deblurrer = open_deblurrer(args.deblurrer)
    start = time.perf_counter()
    test_images = load_sharp_images(args.test_sharp)
    rows = []
    for name in ["known", *CAMERAS, *(n for n in DOMAINS if n not in CAMERAS and n != "known")]:
        synthesize(name, test_images, work / f"test-{name}", count=args.count, size=args.size, seed=2)
        rows.append((name, deblurred(deblurrer, str(work / f"test-{name}"))))
    minutes = (time.perf_counter() - start) / 60
    print(f"\n{deblurrer.description} on {args.count} pairs of {args.size} x {args.size} per domain from "
          f"{args.test_sharp} ({minutes:.1f} min); PSNR (dB) / SSIM\n")
    print("| domain | role | blurry input | deblurred | gain |\n|---|---|---|---|---|")
    for name, f in rows:
        role = name if name in ("known", "still") else "camera" if name in CAMERAS else "narrow"
        print(f"| {name} | {role} | {f['val_psnr_input']:.2f} / {f['val_ssim_input']:.3f} | "
              f"{f['val_psnr']:.2f} / {f['val_ssim']:.3f} | {f['val_psnr'] - f['val_psnr_input']:+.2f} |")


if __name__ == "__main__":
    main()
