"""Blind labeling of inpainting results and the paper's count tables.

The CS230 study judged every result by eye as one of four labels (its Tables 1 and 2):
``good`` (person gone, no visible trace), ``okay`` (minor artefacts), ``striped`` (streaky,
repeated texture) and ``solid`` (a flat blob of colour). This module

* writes a **labeling sheet**: a CSV with one row per result in random order, the method hidden
  behind a random ``result_id`` (columns ``result_id, image_path, label, notes``), and a separate
  **key** CSV mapping ``result_id`` to ``(image, column)`` that raters never see;
* reads filled sheets (one per rater; the rater is the ``rater`` column if present, else the
  sheet's file stem) and joins them with the key;
* makes the table: counts per label per column (majority vote over raters, ties broken toward the
  worse label), mean gradient norm per column, and Fleiss' kappa across raters.
"""
from __future__ import annotations

import collections
import csv
import dataclasses
import io
import math
import os
import pathlib
import shutil
from typing import Iterable, Mapping, Sequence

import numpy as np

from gone.io import write_text_atomic

LABELS = ("good", "okay", "striped", "solid")   # best to worst, the paper's row order
SHEET_COLUMNS = ("result_id", "image_path", "label", "notes")
KEY_COLUMNS = ("result_id", "image", "column", "image_path")


class LabelingError(ValueError):
    """A labeling sheet or key is missing, malformed or inconsistent (message names the file)."""


@dataclasses.dataclass(frozen=True)
class LabeledResult:
    rater: str
    result_id: str
    image: str
    column: str
    label: str


# ----------------------------------------------------------------------------------------------
# Writing

def _csv_text(header: Sequence[str], rows: Iterable[Sequence]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def write_labeling_sheet(results: Sequence[Mapping], sheet_path, key_path, seed: int = 0,
                         blind_images_dir=None):
    """Writes a shuffled, blinded labeling sheet and its private key.

    `results`: one mapping per result with keys ``image`` (an id of the source image),
    ``column`` (what is compared, e.g. the strategy; ``strategy`` is accepted too) and
    ``image_path`` (the result file, relative to the sheet's folder or absolute). The same
    results and seed give the same files. With `blind_images_dir` (a folder, relative to the
    sheet's folder or absolute), each result file is copied there as ``<result_id><suffix>`` and
    the sheet lists the copy, so neither the file name nor the folder gives the method away.
    Returns ``(sheet_path, key_path)``.
    """
    sheet_path, key_path = pathlib.Path(sheet_path), pathlib.Path(key_path)
    if sheet_path.resolve() == key_path.resolve():
        raise LabelingError("the key must be a different file from the labeling sheet")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(results))
    ids, sheet_rows, key_rows, id_of_path = set(), [], [], {}
    for i in order:
        r = results[int(i)]
        column = r.get("column", r.get("strategy"))
        if column is None or "image" not in r or "image_path" not in r:
            raise LabelingError(f"result {r!r} needs 'image', 'column' (or 'strategy') and "
                                "'image_path'")
        path = str(r["image_path"])
        if path in id_of_path:   # one result file in several columns is labeled once
            key_rows.append((id_of_path[path], str(r["image"]), str(column), path))
            continue
        while True:   # random, unique, not derived from the method
            result_id = f"r{int(rng.integers(0, 16 ** 8)):08x}"
            if result_id not in ids:
                ids.add(result_id)
                break
        id_of_path[path] = result_id
        shown = path
        if blind_images_dir is not None:
            base = sheet_path.parent
            source = pathlib.Path(path) if pathlib.Path(path).is_absolute() else base / path
            if not source.is_file():
                raise LabelingError(f"result image not found: {source}")
            folder = pathlib.Path(blind_images_dir)
            folder = folder if folder.is_absolute() else base / folder
            target = folder / f"{result_id}{source.suffix}"
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.tmp")
            shutil.copyfile(source, tmp)
            os.replace(tmp, target)
            shown = os.path.relpath(target, base).replace(os.sep, "/")
        sheet_rows.append((result_id, shown, "", ""))
        key_rows.append((result_id, str(r["image"]), str(column), path))
    write_text_atomic(sheet_path, _csv_text(SHEET_COLUMNS, sheet_rows))
    write_text_atomic(key_path, _csv_text(KEY_COLUMNS, sorted(key_rows)))
    return sheet_path, key_path


# ----------------------------------------------------------------------------------------------
# Reading

def _read_csv(path: pathlib.Path, required: Sequence[str], what: str) -> list:
    if not path.is_file():
        raise LabelingError(f"{what} not found: {path}")
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise LabelingError(f"{what} {path} lacks column(s) {missing}; "
                                f"found {reader.fieldnames}")
        return list(reader)


def read_key(key_path) -> dict:
    """result_id -> list of (image, column) (one result may count in several columns)."""
    key_path = pathlib.Path(key_path)
    key = {}
    for row in _read_csv(key_path, ("result_id", "image", "column"), "labeling key"):
        key.setdefault(row["result_id"].strip(), []).append((row["image"], row["column"]))
    return key


def normalize_label(raw: str) -> str:
    """'Good', ' OK ', 'stripes' ... -> one of LABELS; '' -> ''. Unknown -> ValueError."""
    text = (raw or "").strip().lower()
    aliases = {"ok": "okay", "stripes": "striped", "stripe": "striped", "g": "good", "o": "okay",
               "s": "striped", "blob": "solid"}
    text = aliases.get(text, text)
    if text and text not in LABELS:
        raise ValueError(f"unknown label {raw!r}; expected one of {', '.join(LABELS)}")
    return text


def read_labeling_sheets(sheet_paths, key_path, allow_unlabeled: bool = True) -> list:
    """Reads filled sheets (one per rater) and joins them with the key.

    Returns a list of LabeledResult. Rows with an empty label are skipped when
    `allow_unlabeled` (else an error); unknown labels or result ids are errors naming the file
    and line.
    """
    if isinstance(sheet_paths, (str, os.PathLike)):
        sheet_paths = [sheet_paths]
    key = read_key(key_path)
    records, seen = [], set()
    for sheet in map(pathlib.Path, sheet_paths):
        rows = _read_csv(sheet, ("result_id", "label"), "labeling sheet")
        for line, row in enumerate(rows, start=2):
            rid = (row.get("result_id") or "").strip()
            if rid not in key:
                raise LabelingError(f"{sheet}:{line}: result_id {rid!r} is not in the key "
                                    f"{key_path}")
            try:
                label = normalize_label(row.get("label", ""))
            except ValueError as err:
                raise LabelingError(f"{sheet}:{line}: {err}") from None
            if not label:
                if allow_unlabeled:
                    continue
                raise LabelingError(f"{sheet}:{line}: result {rid} has no label")
            rater = (row.get("rater") or "").strip() or sheet.stem
            if (rater, rid) in seen:
                raise LabelingError(f"{sheet}:{line}: rater {rater!r} labeled {rid} twice")
            seen.add((rater, rid))
            for image, column in key[rid]:
                records.append(LabeledResult(rater, rid, image, column, label))
    return records


# ----------------------------------------------------------------------------------------------
# Tables

def fleiss_kappa(counts) -> float:
    """Fleiss' kappa from an N x k matrix: counts[i, j] = raters who put item i in category j.

    Every item must have the same number of raters n >= 2. Perfect agreement on a single
    category (chance agreement 1) gives 1.0.
    """
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 2 or counts.shape[0] == 0:
        raise ValueError(f"counts must be a non-empty N x k matrix, got shape {counts.shape}")
    n = counts.sum(axis=1)
    if not np.all(n == n[0]) or n[0] < 2:
        raise ValueError("Fleiss' kappa needs the same number (>= 2) of ratings for every item")
    n = n[0]
    per_item = (np.sum(counts ** 2, axis=1) - n) / (n * (n - 1))
    p_bar = per_item.mean()
    p_cat = counts.sum(axis=0) / counts.sum()
    p_e = float(np.sum(p_cat ** 2))
    if math.isclose(p_e, 1.0):
        return 1.0
    return float((p_bar - p_e) / (1.0 - p_e))


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

    def to_markdown(self) -> str:
        lines = []
        if self.title:
            lines += [f"### {self.title}", ""]
        lines.append("| label | " + " | ".join(self.columns) + " |")
        lines.append("|---|" + "---:|" * len(self.columns))
        for label in LABELS:
            lines.append(f"| {label} | " + " | ".join(
                str(self.counts[c].get(label, 0)) for c in self.columns) + " |")
        lines.append("| total | " + " | ".join(
            str(sum(self.counts[c].values())) for c in self.columns) + " |")
        lines.append("| mean gradient norm | " + " | ".join(
            _fmt(self.mean_gradient_norm.get(c)) for c in self.columns) + " |")
        lines.append("")
        lines.append(f"Raters: {len(self.raters)} ({', '.join(self.raters)}). " + (
            f"Fleiss' kappa = {self.kappa:.3f} over {self.n_kappa_items} results rated by all."
            if self.kappa is not None else "Fleiss' kappa: needs at least two raters."))
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
        rows.append(["fleiss_kappa"] + ["" if self.kappa is None else f"{self.kappa:.6f}"]
                    + [""] * (len(self.columns) - 1))
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


def _majority(labels: Sequence[str]) -> str:
    tally = collections.Counter(labels)
    best = max(tally.values())
    # Ties go to the worse label: a result two raters disagree on is not "good".
    return [l for l in LABELS if tally.get(l) == best][-1]


def make_table(records: Sequence[LabeledResult], columns: Sequence[str] | None = None,
               gradient_norms: Mapping | None = None, title: str = "") -> LabelTable:
    """Counts per label per column (majority vote over raters per result), per-rater counts,
    mean gradient norm per column (`gradient_norms`: column -> iterable of values, or
    (image, column) -> value) and Fleiss' kappa when there are several raters."""
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

    kappa, n_items = None, 0
    if len(raters) >= 2:
        # Each result counts once for agreement even when it sits in several columns.
        unique = {rid: votes for (rid, _), votes in by_result.items()}
        full = [votes for votes in unique.values() if len(votes) == len(raters)]
        n_items = len(full)
        if full:
            matrix = [[list(v.values()).count(label) for label in LABELS] for v in full]
            kappa = fleiss_kappa(matrix)
    return LabelTable(columns, counts, rater_counts, mean_grad, raters, kappa, n_items, title)
