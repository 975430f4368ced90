"""The paper's count table from filled labeling sheets (one or more raters).

Command (after an experiment and labeling; each rater fills a copy of labeling_sheet.csv):

    python experiments/make_table.py --output_dir outputs/table2_crop_strategy \
        [--sheets labels/alice.csv,labels/bob.csv]

Reads the sheets (default: every CSV in <output_dir>/labels/), the private key
(<output_dir>/private/labeling_key.csv) and per_image.csv (for the mean gradient norm per
column), and writes <output_dir>/table.md and table.csv: counts per label (good / okay / striped
/ solid) per column, majority vote over raters (ties go to the worse label), per-rater counts,
the mean gradient norm per column and, with several raters, Fleiss' kappa. The header repeats the
run's data, masks and weights, and warns when the inpainting weights were random.

Expected result: the Markdown table printed and both files written; e.g. for hand-written sheets
the counts equal a hand count (tests/experiments/test_labeling.py).
"""
import csv
import glob
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import _common  # noqa: E402
from absl import app, flags  # noqa: E402

FLAGS = _common.FLAGS
flags.DEFINE_string("sheets", None, "filled labeling sheets: comma-separated files or globs "
                    "(default: <output_dir>/labels/*.csv)")
flags.DEFINE_string("key", None, "labeling key (default: <output_dir>/private/labeling_key.csv)")
flags.DEFINE_string("table_name", "table", "output stem: <output_dir>/<table_name>.{md,csv}")


def _gradient_norms(per_image_csv, columns):
    norms = {c: [] for c in columns}
    if not per_image_csv.is_file():
        return norms
    with open(per_image_csv, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if not row.get("gradient_norm"):
                continue
            member = set(filter(None, row.get("columns", "").split("|"))) | {row.get("strategy")}
            for c in columns:
                if c in member:
                    norms[c].append(float(row["gradient_norm"]))
    return norms


def run():
    from gone import labeling

    if not FLAGS.output_dir:
        raise _common.ExperimentError("--output_dir (the experiment's output folder) is required")
    out = pathlib.Path(FLAGS.output_dir)
    key = pathlib.Path(FLAGS.key) if FLAGS.key else out / "private" / "labeling_key.csv"
    patterns = FLAGS.sheets.split(",") if FLAGS.sheets else [str(out / "labels" / "*.csv")]
    sheets = []
    for p in patterns:
        matches = sorted(glob.glob(p)) or sorted(glob.glob(str(out / p)))
        if not matches:
            raise _common.ExperimentError(f"no labeling sheet matches {p}")
        sheets.extend(matches)
    info_path = out / "run_info.json"
    info = json.loads(info_path.read_text()) if info_path.is_file() else {}
    try:
        records = labeling.read_labeling_sheets(sheets, key)
    except labeling.LabelingError as err:
        raise _common.ExperimentError(str(err)) from None
    if not records:
        raise _common.ExperimentError(f"the sheets {sheets} have no labels yet")
    columns = info.get("columns") or sorted({r.column for r in records})
    title = info.get("title", "Labels")
    if info.get("random_weights"):
        title = f"{title} [{_common.RANDOM_WEIGHTS_BANNER}]"
    table = labeling.make_table(records, columns,
                                _gradient_norms(out / "per_image.csv", columns), title)
    md, cs = table.write(out, FLAGS.table_name)
    if info:
        lines = [f"Data: {info.get('data')}; masks: {info.get('masks')}; inpainting weights: "
                 f"{info.get('inpaint_weights')}.", ""]
        _common.write_text_atomic(md, "\n".join(lines) + md.read_text())
    print(md.read_text())
    return {"table_md": md, "table_csv": cs}


def main(argv):
    return _common.run_main(run, argv)


if __name__ == "__main__":
    app.run(main)
