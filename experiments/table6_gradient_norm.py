"""Table 6 of the paper: gradient norm per checkpoint (epoch 4/8/12/16 and the Places2 baseline).

Command (after or instead of table5_epochs.py; it runs Table 5's chain when its outputs are
missing and reuses them otherwise):

    python experiments/table6_gradient_norm.py --coco_dir /data/coco --output_dir outputs/table5_epochs
    python experiments/table6_gradient_norm.py --smoke

Two normalisations, side by side:
- ours (gone.metrics.gradient_norm): |mean Sobel magnitude inside the fill - outside it| on the
  [0, 1] grayscale image, Sobel divided by 8 (intensity per pixel);
- paper scale: the same divided by 255 (`_training.PAPER_GRADIENT_NORM_SCALE`). The paper reports
  a baseline of 0.000183, about 100x below our values for such fills; dividing an already [0, 1]
  image by 255 once more is the normalisation that reproduces that scale (a constant factor:
  rankings and ratios are the same in both columns). That the paper did so is our inference.

Cost: Table 5's (see table5_epochs.py); reading finished outputs takes seconds.

Writes table6.md / table6.csv beside Table 5's outputs and run_info_table6.json.

Expected result (the paper): Places2 baseline 0.000183 on the paper's scale; the paper compares
the retrained checkpoints' values against it.
"""
import math
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import _training  # noqa: E402
import table5_epochs  # noqa: E402
from absl import app  # noqa: E402

from gone.io import write_text_atomic  # noqa: E402

TITLE = "Table 6: gradient norm per checkpoint (Test-100-no-large-crop)"
PAPER_BASELINE = 0.000183


def get_config(arg=None):
    return table5_epochs.get_config(arg)


def run(cfg, env, splits=None):
    out = env.output_dir
    paths = table5_epochs.run(cfg, env, splits)
    rows = _training._read_rows(out / "per_image.csv")
    columns = table5_epochs.columns(cfg)
    lines = [f"# {TITLE}", "", "| | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    table = []
    for title, key in (("gradient norm (ours, gone.metrics)", "gradient_norm"),
                       ("gradient norm (paper scale, /255)", "gradient_norm_paper")):
        cells = [_training._mean((r[key] for r in rows if r["column"] == c), "{:.6g}") for c in columns]
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
        table.append({"metric": title, **dict(zip(columns, cells))})
    paper = ["n/a"] * (len(columns) - 1) + [f"{PAPER_BASELINE:g}"]
    lines.append("| the paper (paper scale) | " + " | ".join(paper) + " |")
    table.append({"metric": "the paper (paper scale)", **dict(zip(columns, paper))})
    lines += ["", "Per-image values: `per_image.csv`. Ours and the paper scale differ by the constant "
              "factor 255 (see the script's docstring).", ""]
    if any(math.isnan(r["gradient_norm"]) for r in rows):
        lines.append("Images whose hole or surroundings are empty have no gradient norm (n/a).")
    md = write_text_atomic(out / _training._common.TABLE6_MD, "\n".join(lines) + "\n")
    _training._common.write_csv_atomic(out / _training._common.TABLE6_CSV, ["metric"] + columns, table)
    info = _training.write_run_info(out, "table6_gradient_norm", cfg, env, name=_training._common.TABLE6_RUN_INFO_JSON)
    return {"table6": md, "table5": paths["table"], "run_info": info}


def main(argv):
    return _training.run_script(run, get_config, "table6_gradient_norm", argv)


if __name__ == "__main__":
    app.run(main)
