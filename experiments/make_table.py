"""The paper's count table from filled labeling sheets (one or more raters).

Command (after an experiment and labeling; each rater fills a copy of labeling_sheet.csv):

    python experiments/make_table.py --output_dir outputs/table2_crop_strategy \
        [--sheets labels/alice.csv,labels/bob.csv]

Reads the sheets (default: every CSV in <output_dir>/labels/), the private key
(<output_dir>/private/labeling_key.csv) and per_image.csv (for the mean gradient norm per
column), and writes <output_dir>/table.md and table.csv: counts per label (good / okay / striped
/ solid) per column, majority vote over raters (ties go to the worse label) beside the per-rater
tables, the mean gradient norm per column and, with several raters, Fleiss' kappa
(statsmodels) with a bootstrap 95 % interval over images and the per-label kappa. The header
repeats the run's data, masks and weights, and warns when the inpainting weights were random.
Sheets may be UTF-8 (with or without BOM), UTF-16 or cp1252, with or without spaces after the
commas (`gone label --export` writes them; spreadsheet programs too).

Expected result: the Markdown table printed and both files written; e.g. for hand-written sheets
the counts equal a hand count (tests/experiments/test_labeling.py).
"""
import glob
import json
import pathlib
import re
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import _common  # noqa: E402
from absl import app, flags  # noqa: E402

FLAGS = _common.FLAGS
flags.DEFINE_string("sheets", None, "filled labeling sheets: comma-separated files or globs "
                    "(default: <output_dir>/labels/*.csv)")
flags.DEFINE_string("key", None, "labeling key (default: <output_dir>/private/labeling_key.csv)")
flags.DEFINE_string("table_name", "table", "output stem: <output_dir>/<table_name>.{md,csv} "
                    "(a plain file name: letters, digits, '_', '-', '.')")
flags.DEFINE_integer("bootstrap", 1000, "bootstrap resamples (over images) of the 95 % interval "
                     "of Fleiss' kappa; 0 = none")

TABLE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def check_table_name(name: str) -> str:
    """`name` if it is a plain file stem that stays in the output folder, else ExperimentError."""
    if not TABLE_NAME.match(name or "") or ".." in name:
        raise _common.ExperimentError(
            "--table_name must be a plain file name (letters, digits, '_', '-', '.'; no folders "
            "or '..'), e.g. table2")
    return name


def check_outputs_free(out: pathlib.Path, stem: str, inputs):
    """ExperimentError when <out>/<stem>.md or .csv is one of the ``inputs`` (sheets, key) or a
    file the experiment wrote there (``_common.EXPERIMENT_FILES``: the labeling sheet, summary,
    per-image table, ...): the table never replaces them."""
    own = {name.lower() for name in _common.EXPERIMENT_FILES}
    taken = {pathlib.Path(p).resolve() for p in inputs} | {(out / n).resolve() for n in _common.EXPERIMENT_FILES}
    for suffix in (".md", ".csv"):
        name = f"{stem}{suffix}"
        if name.lower() in own or (out / name).resolve() in taken:
            raise _common.ExperimentError(f"--table_name={stem} would replace {out / name}, which "
                                          "the experiment wrote or the table reads; choose another name")


def read_run_info(path: pathlib.Path) -> dict:
    """run_info.json as a dict ({} when absent); a broken file is one clear error."""
    if not path.is_file():
        return {}
    from gone import labeling

    try:
        info = json.loads(labeling.read_text_any(path))
    except labeling.LabelingError as err:
        raise _common.ExperimentError(str(err)) from None
    except json.JSONDecodeError as err:
        raise _common.ExperimentError(f"{path} is not valid JSON (line {err.lineno}, column "
                                      f"{err.colno}); re-run the experiment or fix it") from None
    if not isinstance(info, dict):
        raise _common.ExperimentError(f"{path} is not a JSON object; re-run the experiment")
    columns = info.get("columns")
    if columns is not None and (not isinstance(columns, list)
                                or not all(isinstance(c, str) for c in columns)):
        raise _common.ExperimentError(f"{path}: 'columns' must be a list of names")
    return info


def _gradient_norms(per_image_csv, columns):
    """column -> gradient norms of its results, from per_image.csv (absent: none)."""
    from gone import labeling

    norms = {c: [] for c in columns}
    if not per_image_csv.is_file():
        return norms
    try:
        rows = labeling.read_csv_rows(per_image_csv, ("gradient_norm",), "per-image table")
    except labeling.LabelingError as err:
        raise _common.ExperimentError(str(err)) from None
    for row in rows:
        if not row.get("gradient_norm"):
            continue
        try:
            value = float(row["gradient_norm"])
        except ValueError:
            raise _common.ExperimentError(
                f"{per_image_csv}:{row.line}: gradient_norm is not a number") from None
        member = set(filter(None, row.get("columns", "").split("|"))) | {row.get("strategy")}
        for c in columns:
            if c in member:
                norms[c].append(value)
    return norms


def find_sheets(out: pathlib.Path, sheets_flag) -> list:
    patterns = sheets_flag.split(",") if sheets_flag else [str(out / "labels" / "*.csv")]
    sheets = []
    for p in (p.strip() for p in patterns):
        if not p:
            continue
        matches = sorted(glob.glob(p)) or sorted(glob.glob(str(out / p)))
        if not matches:
            raise _common.ExperimentError(f"no labeling sheet matches {p}")
        sheets.extend(m for m in matches if m not in sheets)
    return sheets


def load_records(out: pathlib.Path):
    """(records, info) of an output folder from --sheets / --key (figures use it too)."""
    from gone import labeling

    key = pathlib.Path(FLAGS.key) if FLAGS.key else out / "private" / "labeling_key.csv"
    sheets = find_sheets(out, FLAGS.sheets)
    info = read_run_info(out / "run_info.json")
    try:
        records = labeling.read_labeling_sheets(sheets, key)
    except labeling.LabelingError as err:
        raise _common.ExperimentError(str(err)) from None
    if not records:
        raise _common.ExperimentError(f"the sheets {sheets} have no labels yet")
    return records, info


def run():
    from gone import labeling

    if not FLAGS.output_dir:
        raise _common.ExperimentError("--output_dir (the experiment's output folder) is required")
    out = pathlib.Path(FLAGS.output_dir)
    stem = check_table_name(FLAGS.table_name)
    key = pathlib.Path(FLAGS.key) if FLAGS.key else out / "private" / "labeling_key.csv"
    sheets = find_sheets(out, FLAGS.sheets)
    check_outputs_free(out, stem, [key, *sheets])
    info = read_run_info(out / _common.RUN_INFO_JSON)
    try:
        records = labeling.read_labeling_sheets(sheets, key)
    except labeling.LabelingError as err:
        raise _common.ExperimentError(str(err)) from None
    if not records:
        raise _common.ExperimentError(f"the sheets {sheets} have no labels yet")
    columns = info.get("columns") or sorted({r.column for r in records})
    title = str(info.get("title", "Labels"))
    if info.get("random_weights"):
        title = f"{title} [{_common.RANDOM_WEIGHTS_BANNER}]"
    table = labeling.make_table(records, columns,
                                _gradient_norms(out / "per_image.csv", columns), title,
                                n_bootstrap=max(0, FLAGS.bootstrap), seed=FLAGS.seed)
    text = table.to_markdown()
    if info:
        text = "\n".join([f"Data: {info.get('data')}; masks: {info.get('masks')}; inpainting "
                          f"weights: {info.get('inpaint_weights')}.", ""]) + text
    md = _common.write_text_atomic(out / f"{stem}.md", text)
    cs = _common.write_text_atomic(out / f"{stem}.csv", table.to_csv())
    print(text)
    return {"table_md": md, "table_csv": cs}


def main(argv):
    return _common.run_main(run, argv)


if __name__ == "__main__":
    app.run(main)
