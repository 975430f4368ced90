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
  worse label), per-rater counts, mean gradient norm per column, and the agreement across raters:
  Fleiss' kappa (statsmodels) with a bootstrap 95 % interval over source images (scipy) and a
  per-label kappa (the Fleiss kappa of "this label or not").

Sheets are read in any common encoding (UTF-8 with or without BOM, UTF-16 with BOM, cp1252) and
with spaces after the commas; errors name the file and line but never echo a file's header.
"""
from __future__ import annotations

import codecs
import collections
import csv
import dataclasses
import io
import math
import os
import pathlib
from typing import Iterable, Mapping, Sequence

import numpy as np

from gone.io import copy_file_atomic, write_text_atomic

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
    tags: tuple = ()          # error kinds the rater tagged (gone label), e.g. ("limbs",)


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
    The key is written 0600 and its folder (when it is not the sheet's) made 0700, whatever the
    umask, so other users of a shared machine (raters) cannot open it.
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
            copy_file_atomic(source, target)
            shown = os.path.relpath(target, base).replace(os.sep, "/")
        sheet_rows.append((result_id, shown, "", ""))
        key_rows.append((result_id, str(r["image"]), str(column), path))
    write_text_atomic(sheet_path, _csv_text(SHEET_COLUMNS, sheet_rows))
    private = key_path.parent
    if private.resolve() != sheet_path.parent.resolve():   # e.g. <output>/private/
        private.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(private, 0o700)   # mkdir's mode is cut by the umask; an existing folder too
    write_text_atomic(key_path, _csv_text(KEY_COLUMNS, sorted(key_rows)), mode=0o600)
    return sheet_path, key_path


# ----------------------------------------------------------------------------------------------
# Reading

def decode_text(data: bytes, what: str = "file") -> str:
    """Bytes of a spreadsheet export -> text: UTF-8 (BOM or not), UTF-16 (BOM, or NUL-padded
    ASCII without one), else Windows cp1252. LabelingError when none fits."""
    if data.startswith(codecs.BOM_UTF8):
        try:
            return data[len(codecs.BOM_UTF8):].decode("utf-8")
        except UnicodeDecodeError:
            raise LabelingError(f"{what} starts with a UTF-8 mark but is not UTF-8") from None
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise LabelingError(f"{what} is not valid UTF-16 text") from None
    if len(data) >= 4 and b"\x00" in data[:200]:
        # UTF-16 without a BOM: every other byte of ASCII text is 0.
        even, odd = data[0:200:2].count(0), data[1:200:2].count(0)
        encoding = "utf-16-le" if odd > even else "utf-16-be"
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            raise LabelingError(f"{what} is binary, not a text sheet") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        raise LabelingError(f"{what} is neither UTF-8, UTF-16 nor cp1252 text") from None


def read_text_any(path) -> str:
    """A text file in any encoding decode_text knows (LabelingError names the file)."""
    path = pathlib.Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise LabelingError(f"cannot read {path}: {err.strerror}") from None
    return decode_text(data, str(path))


class CsvRow(dict):
    """One CSV row; `.line` is its line number in the file (the header is line 1)."""
    line = 0


def read_csv_rows(path, required: Sequence[str] = (), what: str = "CSV file") -> list:
    """Rows (dicts, keys and values stripped) of a CSV in any common encoding; spaces after the
    commas are ignored. Errors name the file and the missing columns, never its contents."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise LabelingError(f"{what} not found: {path}")
    text = read_text_any(path)
    try:
        reader = csv.reader(io.StringIO(text, newline=""), skipinitialspace=True)
        header = [h.strip() for h in next(reader, [])]
        rows = []
        for values in reader:
            if not any(v.strip() for v in values):
                continue
            row = CsvRow((h, v.strip()) for h, v in zip(header, values) if h)
            row.line = reader.line_num
            rows.append(row)
    except csv.Error as err:
        line = getattr(reader, "line_num", "?")
        raise LabelingError(f"{what} {path}:{line}: not a readable CSV "
                            f"({str(err).split(':')[0]})") from None
    missing = [c for c in required if c not in header]
    if missing:
        raise LabelingError(f"{what} {path} lacks column(s) {', '.join(missing)} in its first "
                            "line; is it the right file?")
    return rows


def _short(value, n: int = 24) -> str:
    """A cell value safe to show in an error: printable and short."""
    text = "".join(ch if ch.isprintable() else "?" for ch in str(value))
    return repr(text if len(text) <= n else text[:n] + "...")


def _read_csv(path: pathlib.Path, required: Sequence[str], what: str) -> list:
    return read_csv_rows(path, required, what)


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
        raise ValueError(f"unknown label {_short(raw)}; expected one of {', '.join(LABELS)}")
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
        for row in rows:
            line = row.line
            rid = (row.get("result_id") or "").strip()
            if rid not in key:
                raise LabelingError(f"{sheet}:{line}: result_id {_short(rid)} is not in the key "
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
                raise LabelingError(f"{sheet}:{line}: rater {_short(rater)} labeled "
                                    f"{_short(rid)} twice")
            seen.add((rater, rid))
            tags = tuple(t for t in (row.get("tags") or "").split("|") if t.strip())
            for image, column in key[rid]:
                records.append(LabeledResult(rater, rid, image, column, label, tags))
    return records


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
