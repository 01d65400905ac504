"""Do two converters trained from different seeds agree where G helps? A no-pairs signal, measured.

Benaim, Galanti and Wolf ("Estimating the success of unsupervised image to image translation", ECCV 2018) bound
the error of an unpaired mapping by its disagreement with a second mapping trained the same way from another
seed. This script measures that signal on runs of `bench/many_to_one.py` made with `--seed 0` and `--seed 1`,
each in its own `--work` folder: at every evaluation of a camera's two runs it reads G's output on the same four
held-out blurry frames of the camera (the run's `samples/step_N.png` grids: blurry | alone | converted | after G
| sharp; only the first and third columns are used, which a user without pairs also has) and prints

- move: how far G's output is from its input (RMSE in 8-bit levels, the mean of the two seeds);
- disagreement: how far the two seeds' outputs are from each other, and its ratio to the move;
- the oracle: after G - alone on the camera's 24 test pairs (dB, each seed), which no rule sees.

Then per camera, the rank correlation of -ratio with the oracle gain over the evaluations where G moved, and
what keeping a G only where the ratio is below a threshold (today's rule otherwise unchanged) does to harm and
to the gap to the run's best, for a few thresholds. Last, every evaluation today's rule would keep over the
identity, with the drift of that seed's G: how far its output moved since its run's previous evaluation, over
its move from the input (below 1 where G keeps going one way; about 1.4 where it wanders).

    python bench/agreement.py runs/seed0 runs/seed1 --domains random:0-5 [--arch mimo-unet-tiny]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from many_to_one import evaluations, spearman  # bench/, beside this script

from blur2blur.data.blur.domains import parse_cameras
from blur2blur.images import read_bgr
from blur2blur.quality import no_pairs_score

TILE, GAP, ROWS = 128, 4, 4
MOVED = 0.5  # RMSE levels below which G is taken as the identity (8-bit rounding of a near-identity G)
THRESHOLDS = (0.3, 0.5, 0.7, 1.0)


def columns(grid: np.ndarray, *wanted: int) -> list[np.ndarray]:
    """The stacked tiles of each wanted column of a samples grid, as float."""
    out = []
    for column in wanted:
        left = column * (TILE + GAP)
        tiles = [grid[r * (TILE + GAP):r * (TILE + GAP) + TILE, left:left + TILE] for r in range(ROWS)]
        out.append(np.stack(tiles).astype(np.float64))
    return out


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2)))


def camera(a: Path, b: Path) -> list[dict]:
    """One row per evaluation step the two runs share."""
    figures_a, figures_b = ({e["step"]: e for e in evaluations(run)} for run in (a, b))
    rows, previous = [], None
    for step in sorted(set(figures_a) & set(figures_b)):
        name = f"samples/step_{step:06d}.png"
        blurry, converted_a = columns(read_bgr(a / name), 0, 2)
        converted_b, = columns(read_bgr(b / name), 2)
        move_a, move_b = rmse(converted_a, blurry), rmse(converted_b, blurry)
        move = (move_a + move_b) / 2
        disagreement = rmse(converted_a, converted_b)
        previous_a, previous_b = previous or (blurry, blurry)
        previous = converted_a, converted_b
        fa, fb = figures_a[step], figures_b[step]
        rows.append({"step": step, "move": move, "disagreement": disagreement,
                     "ratio": disagreement / max(move, MOVED),
                     "drift_a": rmse(converted_a, previous_a) / max(move_a, MOVED),
                     "drift_b": rmse(converted_b, previous_b) / max(move_b, MOVED),
                     "move_a": move_a, "move_b": move_b,
                     "gain_a": fa["val_psnr"] - fa["val_psnr_deblurred"],
                     "gain_b": fb["val_psnr"] - fb["val_psnr_deblurred"],
                     "score_a": no_pairs_score(fa), "score_b": no_pairs_score(fb)})
    return rows


def kept_gain(rows: list[dict], seed: str, threshold: float | None) -> float:
    """after G - alone of the evaluation today's rule keeps on one seed's run, with G allowed only where the
    ratio is below `threshold` (None: today's rule as it is); 0 when it keeps no G."""
    best_score, gain = 0.0, 0.0
    for row in rows:
        allowed = threshold is None or row["move"] < MOVED or row["ratio"] < threshold
        if allowed and row[f"score_{seed}"] > best_score:
            best_score, gain = row[f"score_{seed}"], row[f"gain_{seed}"]
    return gain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", type=Path, help="the --work folder of the seed-0 runs")
    parser.add_argument("b", type=Path, help="the --work folder of the seed-1 runs")
    parser.add_argument("--domains", required=True, help="cameras both folders hold, as bench/many_to_one.py takes")
    parser.add_argument("--arch", default="mimo-unet-tiny", help="G's architecture in the run names")
    args = parser.parse_args()

    table = {}
    for name in parse_cameras(args.domains):
        runs = [folder / f"converter-{name}-{args.arch}" for folder in (args.a, args.b)]
        missing = [str(run) for run in runs if not (run / "metrics.jsonl").exists()]
        if missing:
            raise SystemExit(f"no finished run in {', '.join(missing)}: run bench/many_to_one.py for {name} first")
        table[name] = camera(*runs)

    print("| camera | step | move | disagreement | ratio | after G - alone (seed 0 / 1) |")
    print("|---|---|---|---|---|---|")
    for name, rows in table.items():
        for row in rows:
            ratio = f"{row['ratio']:.2f}" if row["move"] >= MOVED else "-"
            print(f"| {name} | {row['step']} | {row['move']:.2f} | {row['disagreement']:.2f} | {ratio} | "
                  f"{row['gain_a']:+.2f} / {row['gain_b']:+.2f} |")

    print("\n| camera | rank corr. (-ratio, gain) | best gain (either seed) | today's rule: kept gain (seed 0 / 1) | "
          + " | ".join(f"ratio < {t}" for t in THRESHOLDS) + " |")
    print("|---|---|---|---|" + "---|" * len(THRESHOLDS))
    for name, rows in table.items():
        moved = [row for row in rows if row["move"] >= MOVED]
        correlation = spearman([-row["ratio"] for row in moved], [(row["gain_a"] + row["gain_b"]) / 2 for row in moved])
        best = max(0.0, *(max(row["gain_a"], row["gain_b"]) for row in rows))
        cells = [f"{kept_gain(rows, 'a', t):+.2f} / {kept_gain(rows, 'b', t):+.2f}" for t in (None, *THRESHOLDS)]
        print(f"| {name} | {correlation:+.2f} | {best:+.2f} | " + " | ".join(cells) + " |")

    print("\nWhere today's rule would leave the identity (no-pairs score above 0), per seed: drift is how far that "
          "G's output moved since its run's previous evaluation, over its move from the input (1.0 at the first)\n")
    print("| camera | seed | step | score | move | drift | ratio (two seeds) | after G - alone |")
    print("|---|---|---|---|---|---|---|---|")
    for name, rows in table.items():
        for seed in "ab":
            for row in rows:
                if row[f"score_{seed}"] > 0:
                    print(f"| {name} | {'ab'.index(seed)} | {row['step']} | {row[f'score_{seed}']:.3f} | "
                          f"{row[f'move_{seed}']:.2f} | {row[f'drift_{seed}']:.2f} | {row['ratio']:.2f} | "
                          f"{row[f'gain_{seed}']:+.2f} |")


if __name__ == "__main__":
    main()
