"""Blind labeling sheets: writing the sheet and its private key, reading filled sheets back.

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
import csv
import dataclasses
import io
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
