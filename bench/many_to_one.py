"""Blur2Blur's many-to-one table on synthetic cameras: does the converter make the known deblurrer work?

For each unknown preset (a "camera"), from sharp content this script names:

- the `known` deblurrer: nafnet-tiny trained on `known` pairs (what a user has, like NAFNet-GoPro);
- the upper bound: the same network trained on the camera's own pairs (what paired data would give);
- a converter G trained from the camera's blurry images and its sharp images, unpaired and of disjoint
  content (even and odd training images), with the exact `known` kernel sampler as the known blur;

then PSNR/SSIM on held-out pairs of the camera made from other content (the Kodak crops in ../shared
when present): the deblurrer alone, after the converter, and the upper bound, and the share of the gap
between the first and the last that the converter closes. Every step is seeded: the same command prints
the same table. Budget here: under 60 minutes with the defaults on this project's 2-core CPU machine.

    python bench/many_to_one.py [--domains vertical,shake] [--converter-steps 1500] [--work DIR]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

from blur2blur.models.checkpoint import load_checkpoint
from blur2blur.train.config import ConverterConfig, DeblurrerConfig
from blur2blur.train.content import load_sharp_images
from blur2blur.train.converter import evaluate_converter, train_converter
from blur2blur.train.datasets import open_pairs
from blur2blur.train.deblurrer import evaluate_deblurrer, train_deblurrer
from blur2blur.train.domains import DOMAINS
from blur2blur.train.synth import synthesize

KODAK = Path(__file__).resolve().parents[2] / "shared" / "data" / "sharp_natural" / "kodak24_via_ffdnet"
UNKNOWN = [name for name in DOMAINS if name != "known"]


def finished(result) -> Path:
    """The run's checkpoint path; the script stops (resumable) when the run was interrupted."""
    if result.stopped_by:
        raise SystemExit(f"stopped: run the same command again to continue ({result.last.parent})")
    return result.last


def deblurrer(work: Path, name: str, images: list, steps: int) -> Path:
    """nafnet-tiny trained on 400 pairs of domain `name` (a run already in `work` is continued or reused)."""
    run = work / f"deblurrer-{name}"
    synthesize(name, images, work / f"pairs-{name}", count=400, size=128, seed=1)
    return finished(train_deblurrer(DeblurrerConfig(pairs=str(work / f"pairs-{name}"), out=str(run), steps=steps,
                                                    eval_every=10**9, resume=(run / "last.pt").exists())))


def converter(work: Path, name: str, images: list, known: Path, args: argparse.Namespace) -> Path:
    """G for camera `name`: its blurry images from the even content, sharp images from the odd content."""
    run = work / f"converter-{name}"
    synthesize(name, images[0::2], work / f"blurry-{name}", count=200, size=128, seed=3)
    synthesize(name, images[1::2], work / f"sharp-{name}", count=200, size=128, seed=4)
    result = finished(train_converter(ConverterConfig(
        blurry=str(work / f"blurry-{name}" / "blur"), sharp=str(work / f"sharp-{name}" / "sharp"),
        known="synthetic:known", deblurrer=str(known), val_pairs=str(work / f"blurry-{name}"),
        out=str(run), steps=args.converter_steps, eval_every=max(1, args.converter_steps // 6),
        perceptual=args.perceptual, lambda_rec=args.lambda_rec, lambda_gp=args.lambda_gp, lr=args.lr,
        critic_lr=args.critic_lr, crop=args.crop, batch=args.batch, seed=args.seed,
        resume=(run / "last.pt").exists())))
    return run / "best.pt" if (run / "best.pt").exists() else result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--domains", default=",".join(UNKNOWN), help="unknown presets (default: all)")
    parser.add_argument("--deblurrer-steps", type=int, default=1500)
    parser.add_argument("--converter-steps", type=int, default=600)
    parser.add_argument("--perceptual", default=ConverterConfig.perceptual)
    parser.add_argument("--lambda-rec", type=float)
    parser.add_argument("--lambda-gp", type=float, default=ConverterConfig.lambda_gp)
    parser.add_argument("--lr", type=float, default=ConverterConfig.lr)
    parser.add_argument("--critic-lr", type=float, default=ConverterConfig.critic_lr)
    parser.add_argument("--crop", type=int, default=ConverterConfig.crop)
    parser.add_argument("--batch", type=int, default=ConverterConfig.batch)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-sharp", default="skimage+deadleaves")
    parser.add_argument("--test-sharp", default=str(KODAK) if KODAK.is_dir() else "deadleaves:8",
                        help="sharp content of the test pairs (default: the Kodak crops in ../shared when present)")
    parser.add_argument("--count", type=int, default=24, help="test pairs per domain")
    parser.add_argument("--work", help="keep data and runs here (and reuse those already there)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    work = Path(args.work or tempfile.mkdtemp(prefix="b2b-many-to-one-"))
    names = [n.strip() for n in args.domains.split(",") if n.strip()]
    start = time.perf_counter()

    train_images = load_sharp_images(args.train_sharp)
    test_images = load_sharp_images(args.test_sharp)
    known = deblurrer(work, "known", train_images, args.deblurrer_steps)
    known_model = load_checkpoint(known, "deblurrer")[0].eval()
    rows = []
    for name in names:
        upper = load_checkpoint(deblurrer(work, name, train_images, args.deblurrer_steps), "deblurrer")[0].eval()
        g = load_checkpoint(converter(work, name, train_images, known, args), "converter")[0].eval()
        synthesize(name, test_images, work / f"test-{name}", count=args.count, size=128, seed=2)
        test = open_pairs(str(work / f"test-{name}"))
        ours = evaluate_converter(g, known_model, test, 0)
        bound = evaluate_deblurrer(upper, test, 0)
        rows.append((name, ours, bound))
        print(f"{name}: alone {ours['val_psnr_deblurred']:.2f}, converted {ours['val_psnr']:.2f}, "
              f"upper bound {bound['val_psnr']:.2f} ({(time.perf_counter() - start) / 60:.1f} min)", flush=True)

    minutes = (time.perf_counter() - start) / 60
    print(f"\nmany-to-one, {minutes:.1f} min: nafnet-tiny deblurrers ({args.deblurrer_steps} steps), "
          f"mimo-unet-tiny converters ({args.converter_steps} steps, perceptual {args.perceptual}); test: "
          f"{args.count} pairs of 128 x 128 per camera from {args.test_sharp}; PSNR / SSIM\n")
    print("| camera | blurry input | known deblurrer alone | after the converter | upper bound | gain | gap closed |")
    print("|---|---|---|---|---|---|---|")
    for name, ours, bound in rows:
        alone, after, best = ours["val_psnr_deblurred"], ours["val_psnr"], bound["val_psnr"]
        closed = (after - alone) / (best - alone) if best > alone else float("nan")
        print(f"| {name} | {ours['val_psnr_input']:.2f} | {alone:.2f} / {ours['val_ssim_deblurred']:.3f} | "
              f"{after:.2f} / {ours['val_ssim']:.3f} | {best:.2f} / {bound['val_ssim']:.3f} | "
              f"{after - alone:+.2f} | {closed:.0%} |")


if __name__ == "__main__":
    main()
