"""Which G to keep without pairs: candidate rules scored against the oracle on the runs of bench/many_to_one.py.

Each converter run of `bench/many_to_one.py --work DIR` logs, at every evaluation (step 0, the identity, included),
the no-pairs figures of train/converter.py and the test PSNR after G (which no rule may look at). A rule sees the
no-pairs figures only and picks one evaluation; the identity is always a candidate. Rules and their thresholds are
chosen on the `--choose` cameras and reported on the others, never on the cameras they were chosen on:

    python bench/selection.py --work runs/m2o-random [--work runs/other ...] --choose random:0-5,random:12-17

For each rule: the harm rate (kept PSNR more than 0.1 dB below the deblurrer alone), the share of cameras within
0.3 dB of the run's best candidate, the mean gain over the deblurrer alone, and Spearman's rank correlation of its
score with the test PSNR over each run's evaluations.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from many_to_one import evaluations, spearman  # bench/, beside this script

from blur2blur.data.blur.domains import parse_cameras
from blur2blur.quality import no_pairs_score

Evaluation = dict


@dataclass
class Rule:
    name: str
    score: Callable[[Evaluation], float]  # higher is better
    margin: float = 0.0  # leave the identity only for a score this much above its own
    harm_db: float | None = None  # and only where G costs the camera's known-blur frames less than this (dB)

    def pick(self, evaluations: list[Evaluation]) -> Evaluation:
        identity = evaluations[0]
        best, best_score = identity, self.score(identity) + self.margin
        for evaluation in evaluations[1:]:
            if self.harm_db is not None and "known_psnr_after" in evaluation and \
                    evaluation["known_psnr_alone"] - evaluation["known_psnr_after"] > self.harm_db:
                continue
            if self.score(evaluation) > best_score:
                best, best_score = evaluation, self.score(evaluation)
        return best


def evaluations_of(run: Path) -> list[Evaluation]:
    """A converter run's evaluations in step order (the first is step 0, the identity)."""
    found = evaluations(run)
    if not found or found[0]["step"] != 0:
        raise SystemExit(f"{run}: no evaluation at step 0 (rerun it from the start)")
    return found


def candidate_rules() -> list[Rule]:
    """The rules measured: each score alone, and with a margin over the identity and a harm guard."""
    scores = {
        "detail gap": lambda e: -e["detail_gap"],
        "slope gap": lambda e: -e["slope_gap"],
        "gap to sharp": lambda e: -e.get("detail_gap_sharp", e["detail_gap"]),
        "slope to sharp": lambda e: -e.get("slope_gap_sharp", e["slope_gap"]),
        "converted gap": lambda e: -e.get("detail_gap_converted", e["detail_gap"]),
        "critic": lambda e: e["critic_converted"] - e["critic_real"],
    }
    rules = [Rule("today's rule (quality.py no_pairs_score)", no_pairs_score)]
    for tol in (0.0, 0.02, 0.05):
        for harm in (0.3, 1.0, 1.5, None):
            def hybrid(e, tol=tol):  # the detail gap's gain, among G that bring the output no further from sharp
                if e["detail_gap_sharp"] > e["detail_gap_sharp_deblurred"] + tol:
                    return -1.0
                return -e["detail_gap"]
            rules.append(Rule(f"detail gap where the gap to sharp grows < {tol:g}, margin 0.02"
                              + (f", known harm < {harm:g}" if harm else ""), hybrid, 0.02, harm))
    for k in (1, 2, 3, 4):
        for harm in (1.0, 1.5, None):
            def trade(e, k=k):  # the detail gap's gain less k times how much further from sharp the output comes
                return e["detail_gap_deblurred"] - e["detail_gap"] - \
                    k * max(e["detail_gap_sharp"] - e["detail_gap_sharp_deblurred"], 0.0)
            before = " (the rule before the slope gap)" if (k, harm) == (3, 1.0) else ""
            rules.append(Rule(f"detail gap's gain - {k} x the growth of the gap to sharp, margin 0.02"
                              + (f", known harm < {harm:g}" if harm else "") + before, trade, 0.02, harm))
    for name, score in scores.items():
        rules.append(Rule(name, score))
        for margin in (0.02, 0.05, 0.1):
            for harm in (None, 0.1, 0.3, 1.0):
                rules.append(Rule(f"{name}, margin {margin:g}" + (f", known harm < {harm:g} dB" if harm else ""),
                                  score, margin, harm))
    return rules


def measure(rule: Rule, runs: dict[str, list[Evaluation]]) -> dict:
    harmed, close, gains, correlations = 0, 0, [], []
    for run_evaluations in runs.values():
        kept = rule.pick(run_evaluations)
        alone = run_evaluations[0]["val_psnr"]
        best = max(e["val_psnr"] for e in run_evaluations)
        harmed += kept["val_psnr"] < alone - 0.1
        close += kept["val_psnr"] >= best - 0.3
        gains.append(kept["val_psnr"] - alone)
        correlations.append(spearman([rule.score(e) for e in run_evaluations],
                                     [e["val_psnr"] for e in run_evaluations]))
    return {"harm": harmed, "close": close, "cameras": len(runs), "gain": float(np.mean(gains)),
            "corr": float(np.mean(correlations))}


def rank_key(rule: Rule, runs: dict[str, list[Evaluation]]) -> tuple:
    """Fewest harmed cameras first, then most cameras close to the best, then the largest mean gain and rank
    correlation (to 0.01: closer is noise), then the strictest guard on the known-blur frames."""
    m = measure(rule, runs)
    return (m["harm"], -m["close"], -round(m["gain"], 2), -round(m["corr"], 2),
            float("inf") if rule.harm_db is None else rule.harm_db)


def table(rules: list[Rule], runs: dict[str, list[Evaluation]], title: str) -> str:
    lines = [f"{title} ({len(runs)} cameras: {', '.join(runs)})", "",
             "| rule | harm rate | within 0.3 dB of the best | mean gain over alone (dB) | rank corr. |",
             "|---|---|---|---|---|"]
    for rule in rules:
        m = measure(rule, runs)
        lines.append(f"| {rule.name} | {m['harm']} of {m['cameras']} | {m['close']} of {m['cameras']} | "
                     f"{m['gain']:+.3f} | {m['corr']:+.2f} |")
    return "\n".join(lines)


def finished_runs(works: list[str]) -> dict[str, list[Evaluation]]:
    """Every finished converter run in the --work folders, named `camera (G's arch, folder)`."""
    runs = {}
    for work in works:
        for run in sorted(Path(work).glob("converter-*")):
            if not (run / "metrics.jsonl").exists() or not (run / "config.json").exists():
                continue
            config = json.loads((run / "config.json").read_text())
            evaluations = evaluations_of(run)
            if evaluations[-1]["step"] < config["steps"]:
                continue  # still training
            camera = run.name.removeprefix("converter-").removesuffix(f"-{config['arch']}")
            runs[f"{camera} ({config['arch']}, {Path(work).name})"] = evaluations
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", required=True, action="append",
                        help="a --work folder of bench/many_to_one.py (again for more)")
    parser.add_argument("--choose", default="random:0-5", help="cameras the rule is chosen on (the rest report it)")
    parser.add_argument("--top", type=int, default=5, help="rules carried from choosing to reporting")
    args = parser.parse_args()
    runs = finished_runs(args.work)
    chosen = set(parse_cameras(args.choose))
    choose = {name: found for name, found in runs.items() if name.split(" (")[0] in chosen}
    report = {name: found for name, found in runs.items() if name not in choose}
    rules = candidate_rules()
    print(table(rules, choose, "choosing"))
    ranked = sorted(rules, key=lambda r: rank_key(r, choose))
    print()
    if not report:
        print("no other cameras in --work yet: run bench/many_to_one.py on cameras outside --choose to report")
        return
    print(table(ranked[:args.top], report, f"reporting the {args.top} best rules on the other cameras"))


if __name__ == "__main__":
    main()
