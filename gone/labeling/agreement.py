"""The paper's count tables from filled labeling sheets, and the agreement across raters.

Counts per label per column (majority vote over raters, ties broken toward the worse label),
per-rater counts, mean gradient norm per column, and Fleiss' kappa (statsmodels) with a bootstrap
95 % interval over source images (scipy) and a per-label kappa (the Fleiss kappa of "this label
or not")."""
from __future__ import annotations

import collections
import dataclasses
import math
import pathlib
from typing import Mapping, Sequence

import numpy as np

from gone.io import write_text_atomic
from gone.labeling.sheets import LABELS, LabeledResult, LabelingError, _csv_text


# ----------------------------------------------------------------------------------------------
# Tables

def fleiss_kappa(counts) -> float:
    """Fleiss' kappa (statsmodels.stats.inter_rater.fleiss_kappa) from an N x k matrix:
    counts[i, j] = raters who put item i in category j.

    Every item must have the same number of raters n >= 2. Perfect agreement on a single
    category (chance agreement 1, where the formula is 0/0) gives 1.0.
    """
    from statsmodels.stats.inter_rater import fleiss_kappa as _fleiss

    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 2 or counts.shape[0] == 0:
        raise ValueError(f"counts must be a non-empty N x k matrix, got shape {counts.shape}")
    n = counts.sum(axis=1)
    if not np.all(n == n[0]) or n[0] < 2:
        raise ValueError("Fleiss' kappa needs the same number (>= 2) of ratings for every item")
    p_cat = counts.sum(axis=0) / counts.sum()
    if math.isclose(float(np.sum(p_cat ** 2)), 1.0):
        return 1.0
    return float(_fleiss(counts, method="fleiss"))


def per_label_kappa(counts, labels: Sequence[str] = LABELS) -> dict:
    """label -> Fleiss' kappa of the two-category table "this label / any other" (Fleiss 1971's
    category-specific kappa); nan for a label nobody used."""
    counts = np.asarray(counts, dtype=np.float64)
    n = counts.sum(axis=1, keepdims=True)
    result = {}
    for j, label in enumerate(labels):
        if counts[:, j].sum() == 0:
            result[label] = float("nan")
            continue
        result[label] = fleiss_kappa(np.concatenate([counts[:, j:j + 1],
                                                     n - counts[:, j:j + 1]], axis=1))
    return result


def bootstrap_kappa_interval(counts, groups, n_resamples: int = 1000, seed: int = 0,
                             confidence: float = 0.95):
    """Percentile bootstrap interval of Fleiss' kappa, resampling `groups` (e.g. the source
    image of each item: all results of one image go in or out together) with
    scipy.stats.bootstrap. Returns (low, high), or (nan, nan) with fewer than two groups."""
    from scipy import stats

    counts = np.asarray(counts, dtype=np.float64)
    names = sorted(set(groups))
    if len(names) < 2 or n_resamples < 1:
        return float("nan"), float("nan")
    index = {g: i for i, g in enumerate(names)}
    per_group = np.zeros((len(names), counts.shape[0]), bool)
    for item, g in enumerate(groups):
        per_group[index[g], item] = True

    def statistic(picked):
        rows = np.concatenate([counts[per_group[int(g)]] for g in picked])
        return fleiss_kappa(rows)

    res = stats.bootstrap((np.arange(len(names)),), statistic, n_resamples=n_resamples,
                          confidence_level=confidence, method="percentile", vectorized=False,
                          random_state=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


@dataclasses.dataclass
class LabelTable:
    columns: list                      # column names in display order
    counts: dict                       # column -> {label: count} (majority vote per result)
    rater_counts: dict                 # rater -> column -> {label: count}
    mean_gradient_norm: dict           # column -> float (nan when unknown)
    raters: list
    kappa: float | None                # Fleiss' kappa over results rated by every rater
    n_kappa_items: int
    title: str = ""
    kappa_interval: tuple = (float("nan"), float("nan"))   # bootstrap 95 % over images
    label_kappa: dict = dataclasses.field(default_factory=dict)   # label -> per-label kappa
    n_kappa_images: int = 0

    def _count_table(self, counts, with_gradient: bool) -> list:
        lines = ["| label | " + " | ".join(self.columns) + " |",
                 "|---|" + "---:|" * len(self.columns)]
        for label in LABELS:
            lines.append(f"| {label} | " + " | ".join(
                str(counts[c].get(label, 0)) for c in self.columns) + " |")
        lines.append("| total | " + " | ".join(
            str(sum(counts[c].values())) for c in self.columns) + " |")
        if with_gradient:
            lines.append("| mean gradient norm | " + " | ".join(
                _fmt(self.mean_gradient_norm.get(c)) for c in self.columns) + " |")
        return lines

    def to_markdown(self) -> str:
        lines = []
        if self.title:
            lines += [f"### {self.title}", ""]
        if len(self.raters) > 1:
            lines += ["Majority vote over the raters (ties go to the worse label):", ""]
        lines += self._count_table(self.counts, with_gradient=True)
        lines.append("")
        if self.kappa is None:
            agreement = "Fleiss' kappa: needs at least two raters."
        else:
            low, high = self.kappa_interval
            lo, hi = round(low, 3) + 0.0, round(high, 3) + 0.0   # no "-0.000"
            ci = (f" (95 % bootstrap interval {lo:.3f} to {hi:.3f}, resampling "
                  f"{self.n_kappa_images} images)" if not math.isnan(low) else "")
            agreement = (f"Fleiss' kappa = {self.kappa:.3f}{ci} over {self.n_kappa_items} "
                         "results rated by all.")
        lines.append(f"Raters: {len(self.raters)} ({', '.join(self.raters)}). {agreement}")
        if self.label_kappa:
            lines += ["", "| agreement per label | " + " | ".join(LABELS) + " |",
                      "|---|" + "---:|" * len(LABELS),
                      "| kappa (label vs rest) | " + " | ".join(
                          _fmt(self.label_kappa.get(label)) for label in LABELS) + " |"]
        if len(self.raters) > 1:
            for rater in self.raters:
                lines += ["", f"Rater {rater}:", ""]
                lines += self._count_table(self.rater_counts[rater], with_gradient=False)
        return "\n".join(lines) + "\n"

    def to_csv(self) -> str:
        header = ["label"] + [str(c) for c in self.columns]
        rows = [[label] + [self.counts[c].get(label, 0) for c in self.columns]
                for label in LABELS]
        rows.append(["mean_gradient_norm"] + [_fmt(self.mean_gradient_norm.get(c))
                                              for c in self.columns])
        for rater in self.raters:
            for label in LABELS:
                rows.append([f"{rater}:{label}"] + [
                    self.rater_counts[rater][c].get(label, 0) for c in self.columns])
        pad = [""] * (len(self.columns) - 1)
        rows.append(["fleiss_kappa"] + ["" if self.kappa is None else f"{self.kappa:.6f}"] + pad)
        for name, value in zip(("fleiss_kappa_ci_low", "fleiss_kappa_ci_high"),
                               self.kappa_interval):
            rows.append([name] + ["" if math.isnan(value) else f"{value:.6f}"] + pad)
        for label in LABELS:
            value = self.label_kappa.get(label, float("nan"))
            rows.append([f"kappa:{label}"] + ["" if math.isnan(value) else f"{value:.6f}"] + pad)
        return _csv_text(header, rows)

    def write(self, out_dir, stem: str = "table"):
        """Writes `<stem>.md` and `<stem>.csv` atomically; returns both paths."""
        out = pathlib.Path(out_dir)
        md, cs = out / f"{stem}.md", out / f"{stem}.csv"
        write_text_atomic(md, self.to_markdown())
        write_text_atomic(cs, self.to_csv())
        return md, cs


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.4g}"


def majority_label(labels: Sequence[str]) -> str:
    """The most frequent label; ties go to the worse label."""
    tally = collections.Counter(labels)
    best = max(tally.values())
    # Ties go to the worse label: a result two raters disagree on is not "good".
    return [l for l in LABELS if tally.get(l) == best][-1]


_majority = majority_label


def make_table(records: Sequence[LabeledResult], columns: Sequence[str] | None = None,
               gradient_norms: Mapping | None = None, title: str = "",
               n_bootstrap: int = 1000, seed: int = 0) -> LabelTable:
    """Counts per label per column (majority vote over raters per result), per-rater counts,
    mean gradient norm per column (`gradient_norms`: column -> iterable of values, or
    (image, column) -> value) and, with several raters, Fleiss' kappa, its bootstrap 95 %
    interval over source images (`n_bootstrap` resamples) and the per-label kappa."""
    if columns is None:
        columns = sorted({r.column for r in records})
    columns = [str(c) for c in columns]
    raters = sorted({r.rater for r in records})
    by_result = collections.defaultdict(dict)   # (result_id, column) -> {rater: label}
    column_of = {}
    for r in records:
        by_result[(r.result_id, r.column)][r.rater] = r.label
        column_of[(r.result_id, r.column)] = r.column
    counts = {c: {label: 0 for label in LABELS} for c in columns}
    rater_counts = {rt: {c: {label: 0 for label in LABELS} for c in columns} for rt in raters}
    for rid, votes in by_result.items():
        column = column_of[rid]
        if column not in counts:
            continue
        counts[column][_majority(list(votes.values()))] += 1
        for rater, label in votes.items():
            rater_counts[rater][column][label] += 1

    mean_grad = {}
    for c in columns:
        values = []
        if gradient_norms:
            if c in gradient_norms:
                values = list(gradient_norms[c])
            else:
                values = [v for k, v in gradient_norms.items()
                          if isinstance(k, tuple) and len(k) == 2 and k[1] == c]
        values = [float(v) for v in values if v is not None and not math.isnan(float(v))]
        mean_grad[c] = float(np.mean(values)) if values else float("nan")

    kappa, n_items, interval, label_kappa, n_images = None, 0, (math.nan, math.nan), {}, 0
    if len(raters) >= 2:
        # Each result counts once for agreement even when it sits in several columns.
        unique = {rid: votes for (rid, _), votes in by_result.items()}
        image_of = {r.result_id: r.image for r in records}
        full = [(rid, votes) for rid, votes in unique.items() if len(votes) == len(raters)]
        n_items = len(full)
        if full:
            matrix = [[list(v.values()).count(label) for label in LABELS] for _, v in full]
            kappa = fleiss_kappa(matrix)
            label_kappa = per_label_kappa(matrix)
            groups = [image_of[rid] for rid, _ in full]
            n_images = len(set(groups))
            interval = bootstrap_kappa_interval(matrix, groups, n_bootstrap, seed)
    return LabelTable(columns, counts, rater_counts, mean_grad, raters, kappa, n_items, title,
                      interval, label_kappa, n_images)
