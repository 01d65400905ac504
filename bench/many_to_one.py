"""Blur2Blur's many-to-one table on synthetic cameras: does the converter make the known deblurrer pay?

For each unknown camera preset, from sharp content this script names:

- the known deblurrer: the shipped `starter` (or `--deblurrer`), trained on the broad `known` blur;
- a converter G trained from the camera's blurry images and its sharp images, unpaired and of disjoint
  content (even and odd training images), with the exact `known` kernel sampler as the known blur, and no pairs:
  the G reported is the one a user without pairs exports (best `noref_score`);
- the upper bound: the same deblurrer fine-tuned on the camera's own pairs for about G's CPU time
  (what paired data of the camera would give for the same budget);

then PSNR/SSIM on held-out pairs of the camera made from other content (the Kodak crops in ../shared when
present): the blurry input, the deblurrer alone, after the converter, the upper bound, the gain over the blurry
input and the share of the gap (upper bound - deblurrer alone) the converter closes; beside them, a perfect G:
the test pairs' sharp images given exactly the known blur, deblurred (the most any G can reach with this
deblurrer). Every evaluation of G during training runs on those test pairs (they only measure; G never trains on
them), so the table also shows how far the no-pairs pick is from the run's best checkpoint (the oracle). Every
step is seeded: the same command prints the same table.

    python bench/many_to_one.py [--domains lowlight,phone,random:0-11] [--converter-steps 600] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from b2b import b2b_train, deblurred, metrics, open_deblurrer  # bench/, beside this script

from blur2blur.data.blur.content import load_sharp_images
from blur2blur.data.blur.domains import CAMERAS, DOMAINS, parse_cameras
from blur2blur.data.blur.write import synthesize
from blur2blur.evaluate.restorers import Restorer
from blur2blur.files.atomic import write_atomic_png
from blur2blur.images import read_bgr
from blur2blur.quality import no_pairs_score

KODAK = Path(__file__).resolve().parents[2] / "shared" / "data" / "sharp_natural" / "kodak24_via_ffdnet"


def timed(run_folder: Path) -> float:
    """Seconds of training a finished run took, from its metrics (steps / steps_per_s per logged window)."""
    logged = [line for line in metrics(run_folder) if "steps_per_s" in line]
    seconds, previous = 0.0, 0
    for line in logged:
        seconds += (line["step"] - previous) / line["steps_per_s"]
        previous = line["step"]
    return seconds


def evaluations(run_folder: Path) -> list[dict]:
    """A converter run's evaluations (test and no-pairs figures) in step order."""
    found = [line for line in metrics(run_folder) if "val_psnr" in line and "noref_score" in line]
    return sorted(found, key=lambda e: e["step"])


def no_pairs_pick(run_folder: Path) -> tuple[dict, float, float]:
    """(the test figures of the evaluation a user without pairs keeps, the run's best test PSNR, the rank
    correlation of the no-pairs score with the test PSNR over the run's evaluations)."""
    found = evaluations(run_folder)
    scores = [no_pairs_score(line) for line in found]  # today's rule, also on runs logged before it
    kept = found[int(np.argmax(scores))]  # the first of equals, as best.pt keeps it
    return kept, max(line["val_psnr"] for line in found), spearman(scores, [e["val_psnr"] for e in found])


def spearman(a: list[float], b: list[float]) -> float:
    """Spearman's rank correlation (tied values share their mean rank; 0 where either side is constant)."""
    ranks = []
    for values in (np.asarray(a, float), np.asarray(b, float)):
        rank = np.empty(len(values))
        rank[np.argsort(values, kind="stable")] = np.arange(len(values))
        for value in np.unique(values):
            rank[values == value] = rank[values == value].mean()
        ranks.append(rank)
    if len(a) < 2 or min(r.std() for r in ranks) == 0:
        return 0.0
    return float(np.corrcoef(*ranks)[0, 1])


def converter(work: Path, name: str, images: list, known: str, test: Path, args: argparse.Namespace) -> Path:
    """G for camera `name`: its blurry images from the even content, sharp images from the odd content; every
    evaluation on the `test` pairs."""
    run = work / (f"converter-{name}-{args.arch}" if args.arch else f"converter-{name}")
    synthesize(name, images[0::2], work / f"blurry-{name}", count=200, size=128, seed=3)
    synthesize(name, images[1::2], work / f"sharp-{name}", count=200, size=128, seed=4)
    every = max(1, args.converter_steps // 6) if args.converter_steps else None  # None: b2b-train's (100 of 600)
    b2b_train("converter", run, blurry=work / f"blurry-{name}" / "blur", sharp=work / f"sharp-{name}" / "sharp",
              known="synthetic:known", deblurrer=known, val_pairs=test, val_count=args.count, val_size=0,
              arch=args.arch, steps=args.converter_steps, eval_every=every, perceptual=args.perceptual,
              lambda_rec=args.lambda_rec, lambda_gp=args.lambda_gp, lr=args.lr,
              critic_lr=args.critic_lr, crop=args.crop, batch=args.batch, seed=args.seed)
    return run


def upper_bound(work: Path, name: str, images: list, known: str, steps: int) -> Path:
    """The known deblurrer fine-tuned on 200 pairs of camera `name` (the even content, as G's blurry side)."""
    return b2b_train("deblurrer", work / f"upper-{name}", pairs=work / f"blurry-{name}", init=known, steps=steps,
                     lr=2e-4, warmup=20, eval_every=10**9, val_count=0)


def perfect_converter(deblurrer: Restorer, test: Path, work: Path, name: str, draws: int = 8) -> dict:
    """The deblurrer's figures on the `test` pairs' sharp images given exactly the known blur (`draws` blurs of
    each): what a G that turned the camera's frames into known-blur frames, and did nothing else, would give."""
    folder = work / f"perfect-{name}"
    shutil.rmtree(folder, ignore_errors=True)
    for sub in ("blur", "sharp"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    known = DOMAINS["known"]
    for index, path in enumerate(sorted((test / "sharp").glob("*.png"))):
        for draw in range(draws):
            sharp, blurry = known.render(read_bgr(path), np.random.default_rng([5, index, draw]))
            write_atomic_png(folder / "sharp" / f"{path.stem}_{draw}.png", sharp)
            write_atomic_png(folder / "blur" / f"{path.stem}_{draw}.png", blurry)
    return deblurred(deblurrer, str(folder))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--domains", default=",".join(CAMERAS),
                        help="cameras: presets and random ones, random:A-B for a range of seeds (default: the presets)")
    parser.add_argument("--deblurrer", default="starter", help="the known deblurrer (default: the shipped starter)")
    parser.add_argument("--upper-steps", type=int, default=1200,
                        help="fine-tuning steps of the upper bound (default: about G's CPU time at the defaults; the "
                             "table shows both; 0: no upper bound, for choosing a rule with bench/selection.py)")
    for name, kind in (("--converter-steps", int), ("--arch", str), ("--perceptual", str), ("--lambda-rec", float),
                       ("--lambda-gp", float), ("--lr", float), ("--critic-lr", float), ("--crop", int),
                       ("--batch", int)):
        parser.add_argument(name, type=kind, help="G's training option (default: b2b-train converter's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-sharp", default="skimage,deadleaves:16",
                        help="the cameras' training content (packaged photos; the starter saw these, never Kodak)")
    parser.add_argument("--test-sharp", default=str(KODAK) if KODAK.is_dir() else "deadleaves:8",
                        help="sharp content of the test pairs (default: the Kodak crops in ../shared when present)")
    parser.add_argument("--count", type=int, default=24, help="test pairs per camera")
    parser.add_argument("--work", help="keep data and runs here (and reuse those already there)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    work = Path(args.work or tempfile.mkdtemp(prefix="b2b-many-to-one-"))
    names = parse_cameras(args.domains)
    start = time.perf_counter()

    train_images = load_sharp_images(args.train_sharp)
    test_images = load_sharp_images(args.test_sharp)
    deblurrer = open_deblurrer(args.deblurrer)
    rows = []
    for name in names:
        test = work / f"test-{name}"
        synthesize(name, test_images, test, count=args.count, size=128, seed=2)
        run = converter(work, name, train_images, args.deblurrer, test, args)
        bound, upper_seconds = {"val_psnr": float("nan"), "val_ssim": float("nan")}, float("nan")
        if args.upper_steps:
            upper = upper_bound(work, name, train_images, args.deblurrer, args.upper_steps)
            bound, upper_seconds = deblurred(open_deblurrer(str(upper)), str(test)), timed(work / f"upper-{name}")
        perfect = perfect_converter(deblurrer, test, work, name)
        ours, best_test, correlation = no_pairs_pick(run)
        rows.append((name, ours, bound, perfect, best_test, correlation, (timed(run), upper_seconds)))
        g = json.loads((run / "config.json").read_text())
        print(f"{name}: blurry {ours['val_psnr_input']:.2f}, alone {ours['val_psnr_deblurred']:.2f}, converted "
              f"{ours['val_psnr']:.2f}, perfect G {perfect['val_psnr']:.2f}, upper bound {bound['val_psnr']:.2f} "
              f"({(time.perf_counter() - start) / 60:.1f} min)", flush=True)

    minutes = (time.perf_counter() - start) / 60
    print(f"\nmany-to-one, {minutes:.1f} min: {args.deblurrer} as the known deblurrer; {g['arch']} converters "
          f"({g['steps']} steps, perceptual {g['perceptual']}); upper bound: {args.deblurrer} fine-tuned "
          f"{args.upper_steps} steps on 200 pairs of the camera; test: {args.count} pairs of 128 x 128 per camera "
          f"from {args.test_sharp}; PSNR / SSIM\n")
    print("| camera | blurry input | deblurrer alone | after the converter | after G - alone | perfect G | upper bound "
          "| gap closed | no-pairs pick vs the run's best | rank corr. | CPU s: G / upper |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    harmed = 0
    for name, ours, bound, perfect, best_test, correlation, (g_seconds, upper_seconds) in rows:
        alone, after, best = ours["val_psnr_deblurred"], ours["val_psnr"], bound["val_psnr"]
        closed = "-" if np.isnan(best) else \
            f"{(after - alone) / (best - alone):.0%}" if best - alone >= 1.0 else "(gap < 1 dB)"
        harmed += after - alone < -0.1
        print(f"| {name} | {ours['val_psnr_input']:.2f} / {ours['val_ssim_input']:.3f} | "
              f"{alone:.2f} / {ours['val_ssim_deblurred']:.3f} | {after:.2f} / {ours['val_ssim']:.3f} | "
              f"{after - alone:+.2f} | {perfect['val_psnr']:.2f} / {perfect['val_ssim']:.3f} | "
              f"{best:.2f} / {bound['val_ssim']:.3f} | {closed} | "
              f"{after - best_test:+.2f} dB (step {ours['step']}) | {correlation:+.2f} | "
              f"{g_seconds:.0f} / {upper_seconds:.0f} |")
    print(f"\nharm rate (the kept G more than 0.1 dB below the deblurrer alone): {harmed} of {len(rows)}; rank corr.: "
          "Spearman's between the no-pairs score and the test PSNR over each run's evaluations")

if __name__ == "__main__":
    main()
