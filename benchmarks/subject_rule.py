"""How well ``gone.subject``'s rule keeps the subject and removes passers-by, on synthetic scenes
with a designated subject (``data_prep.subject_scenes``) and oracle person masks (a perfect
detector: this measures the rule, not Mask R-CNN).

    python benchmarks/subject_rule.py --n_scenes 1000 --seed 0 [--out table.md]

Prints (and with --out writes) a markdown table: precision and recall of "kept" over all people,
with 95 % Wilson intervals (statsmodels ``proportion_confint``), and per scene kind the share of
scenes where exactly the right people are kept.
"""
from __future__ import annotations

import argparse
import pathlib
import sys

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from data_prep.subject_scenes import make_subject_scene  # noqa: E402
from gone import masks as _masks  # noqa: E402
from gone import subject  # noqa: E402
from gone.io import write_text_atomic  # noqa: E402


def _ci(k, n):
    from statsmodels.stats.proportion import proportion_confint
    if n == 0:
        return float("nan"), float("nan"), float("nan")
    lo, hi = proportion_confint(k, n, alpha=0.05, method="wilson")
    return k / n, lo, hi


def measure(n_scenes, seed=0):
    """Counts: tp, fp, fn, tn over people; per kind [exact scenes, scenes]."""
    tp = fp = fn = tn = 0
    kinds = {}
    for index in range(n_scenes):
        scene = make_subject_scene(seed, index)
        det = _masks.detections_from_masks(scene.person_masks)
        kept = subject.subject_instances(det, scene.image.shape)
        truth = scene.truth
        tp += int((kept & truth).sum())
        fp += int((kept & ~truth).sum())
        fn += int((~kept & truth).sum())
        tn += int((~kept & ~truth).sum())
        row = kinds.setdefault(scene.kind, [0, 0])
        row[0] += int(np.array_equal(kept, truth))
        row[1] += 1
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn, "kinds": kinds}


def table(counts, n_scenes, seed):
    tp, fp, fn, tn = counts["tp"], counts["fp"], counts["fn"], counts["tn"]
    lines = [f"Subject rule on {n_scenes} synthetic scenes (seed {seed}; "
             f"{tp + fp + fn + tn} people, {tp + fn} of them subjects)", "",
             "| measure | value | 95 % interval (Wilson) | counts |", "|---|---|---|---|"]
    for name, k, n in (("precision of kept", tp, tp + fp), ("recall of kept", tp, tp + fn),
                       ("passers-by removed", tn, tn + fp)):
        p, lo, hi = _ci(k, n)
        lines.append(f"| {name} | {p:.3f} | [{lo:.3f}, {hi:.3f}] | {k} / {n} |")
    for kind, (ok, n) in sorted(counts["kinds"].items()):
        p, lo, hi = _ci(ok, n)
        lines.append(f"| scenes '{kind}' exactly right | {p:.3f} | [{lo:.3f}, {hi:.3f}] | {ok} / {n} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n_scenes", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="also write the table to this markdown file")
    args = parser.parse_args(argv)
    if args.n_scenes < 1:
        parser.error("--n_scenes must be >= 1")
    text = table(measure(args.n_scenes, args.seed), args.n_scenes, args.seed)
    print(text, end="")
    if args.out:
        write_text_atomic(args.out, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
