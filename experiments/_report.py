"""Reports of the paper's experiments: per-image CSV, blind labeling sheet, summary table,
figure grid and run_info.json, every file written atomically (temp file + rename)."""
from __future__ import annotations

import csv
import io
import json
import math
import pathlib

import numpy as np

from gone.io import write_bytes_atomic, write_text_atomic

# The files the experiment scripts write into an --output_dir (paths relative to it). The writers
# use these names and EXPERIMENT_FILES lists them all, so that a script run afterwards
# (make_table.py --table_name) never writes over an experiment's own file.
PER_IMAGE_CSV = "per_image.csv"
LABELING_SHEET_CSV = "labeling_sheet.csv"
LABELING_KEY_CSV = "private/labeling_key.csv"
FIGURE_PNG = "figure.png"
SUMMARY_MD = "summary.md"
SUMMARY_CSV = "summary.csv"
RUN_INFO_JSON = "run_info.json"
EVAL_DONE_JSON = "eval_done.json"                  # _training.evaluate
LEARNING_CURVES_PNG = "learning_curves.png"        # fig5_learning_rate.py
FIG3_PNG, FIG3_CSV = "figure3_label_examples.png", "figure3_label_examples.csv"
FIG7_PNG, FIG7_CSV = "figure7_error_samples.png", "figure7_error_samples.csv"
TABLE6_MD, TABLE6_CSV, TABLE6_RUN_INFO_JSON = "table6.md", "table6.csv", "run_info_table6.json"
INDEX_MD = "index.md"                              # reproduce_paper.py (its root folder)
EXPERIMENT_FILES = (PER_IMAGE_CSV, LABELING_SHEET_CSV, LABELING_KEY_CSV, FIGURE_PNG, SUMMARY_MD,
                    SUMMARY_CSV, RUN_INFO_JSON, EVAL_DONE_JSON, LEARNING_CURVES_PNG, FIG3_PNG, FIG3_CSV,
                    FIG7_PNG, FIG7_CSV, TABLE6_MD, TABLE6_CSV, TABLE6_RUN_INFO_JSON, INDEX_MD)

RANDOM_WEIGHTS_BANNER = "RANDOM INPAINTING WEIGHTS: results are meaningless"

PER_IMAGE_COLUMNS = ("image", "columns", "strategy", "status", "num_people",
                     "large_crop_fraction", "person_fraction", "is_large_crop", "fallback", "gradient_norm",
                     "psnr", "ssim", "psnr_hole", "l1_hole", "original_path", "hole_path",
                     "result_path", "masks", "inpaint_weights")


def write_csv_atomic(path, header, rows) -> pathlib.Path:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(header), lineterminator="\n",
                            extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_value(row.get(k)) for k in header})
    return write_text_atomic(path, buf.getvalue())


def _csv_value(v):
    if v is None:
        return ""
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.6g}"
    if isinstance(v, (list, tuple)):
        return "|".join(str(x) for x in v)
    return v


def labeling_results(rows, column_of_row):
    """One labeling entry per (row, column); `column_of_row(row)` -> list of column names. Rows
    whose hole was filled by the pipeline's fallback (too little known context, ``fallback``) are
    left out: their fill is a flat colour, not the inpainter's."""
    return [{"image": r["image"], "column": c, "image_path": r["result_path"]}
            for r in rows if r["status"] == "inpainted" and not int(r.get("fallback") or 0)
            for c in column_of_row(r)]


def header_lines(models, data, title: str, oracle_relics=False) -> list:
    lines = [f"# {title}", ""]
    if models.random_weights:
        lines += [f"**{RANDOM_WEIGHTS_BANNER}**", ""]
    lines += [f"- data: {data.description}",
              f"- masks: {models.masks}" + (f" (Mask R-CNN {models.mrcnn_source})"
                                            if models.masks == "model" else
                                            " (ground-truth person masks, and held-object "
                                            "masks where the set has them" +
                                            (" + shadows + held objects)" if oracle_relics
                                             else ")")),
              f"- inpainter: {getattr(models.inpainter, 'description', models.inpaint_source)}",
              f"- inpainting weights: {models.inpaint_source}", ""]
    return lines


def _finite(values):
    return [float(x) for x in values if x is not None and x != "" and math.isfinite(float(x))]


def _mean_ci(values):
    """'mean ± half-width of the 95 % Student t interval' (or 'n/a')."""
    v = _finite(values)
    if not v:
        return "n/a"
    if len(v) == 1:
        return f"{v[0]:.2f}"
    from scipy import stats

    half = stats.t.ppf(0.975, len(v) - 1) * np.std(v, ddof=1) / math.sqrt(len(v))
    return f"{np.mean(v):.2f} ± {half:.2f}"


def summary_table(rows, columns, column_of_row) -> list:
    """Markdown lines: per column, removal PSNR first, then counts and the other metrics, and
    a definition of every column (labels come from make_table)."""
    def mean(values, fmt=".4g"):
        v = _finite(values)
        return f"{np.mean(v):{fmt}}" if v else "n/a"

    lines = ["| column | removal PSNR (dB) | removal SSIM | PSNR in hole (dB) | rows | "
             "with clean background | inpainted | fallback fill | large crop | mean gradient norm |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for c in columns:
        sel = [r for r in rows if c in column_of_row(r)]
        lines.append(f"| {c} | {_mean_ci(r.get('psnr') for r in sel)} | "
                     f"{mean((r.get('ssim') for r in sel), '.4f')} | "
                     f"{mean((r.get('psnr_hole') for r in sel), '.2f')} | {len(sel)} | "
                     f"{len(_finite(r.get('psnr') for r in sel))} | "
                     f"{sum(r['status'] == 'inpainted' for r in sel)} | "
                     f"{sum(int(r.get('fallback') or 0) for r in sel)} | "
                     f"{sum(int(r['is_large_crop']) for r in sel)} | "
                     f"{mean(r.get('gradient_norm') for r in sel)} |")
    lines += ["", "Columns:", "",
              "- **removal PSNR**: PSNR of the whole result against the clean background (the "
              "photo without the people), in dB; leftover shadows or held objects count like bad "
              "fills. Mean over the rows *with clean background* ± the half-width of its 95 % "
              "Student t interval; n/a where no clean background exists (COCO).",
              "- **removal SSIM**: SSIM of the whole result against the clean background "
              "(scikit-image defaults), mean over the same rows.",
              "- **PSNR in hole**: PSNR over the inpainted pixels only, mean over the rows with "
              "a clean background and a non-empty hole.",
              "- **rows**: results in this column (one per image and strategy); **with clean "
              "background**: how many of them the PSNR/SSIM means cover.",
              "- **inpainted**: rows whose hole was filled (the others had nothing to remove).",
              "- **fallback fill**: inpainted rows whose hole left under gone.pipeline.MIN_KNOWN_CONTEXT "
              "of its region known (e.g. a box covering the whole image): the hole is filled with the "
              "mean colour of the known pixels instead of the inpainter's output (per_image.csv "
              "column `fallback`), and the row is left out of the labeling sheet.",
              f"- **large crop**: rows whose hole covers more than "
              f"{int(100 * _large_crop_threshold())} % of the image (gone.masks.LARGE_CROP_THRESHOLD).",
              "- **mean gradient norm**: the paper's no-reference measure (gone.metrics."
              "gradient_norm: |mean Sobel magnitude inside the hole - outside|; lower = the fill's "
              "texture matches its surroundings), mean over the rows with a non-empty hole.",
              "- strategies: **box** = the person's bounding box, **mask** = its instance mask, "
              "**dilated** = the mask grown by gone.masks.DEFAULT_DILATION of its size, "
              "**traces** = dilated plus the held objects touching it and its cast shadow "
              "(found from the pixels, gone.shadows)."]
    return lines


def _large_crop_threshold():
    from gone.masks import LARGE_CROP_THRESHOLD

    return LARGE_CROP_THRESHOLD


def write_outputs(output_dir, rows, columns, column_of_row, models, data, title, figure_fn,
                  script, cfg):
    """Per-image CSV, labeling sheet + private key, figure, summary, run info (with `cfg`, the
    experiment's whole configuration)."""
    from gone import labeling

    out = pathlib.Path(output_dir)
    per_image = write_csv_atomic(out / PER_IMAGE_CSV, PER_IMAGE_COLUMNS, rows)
    sheet, key = labeling.write_labeling_sheet(
        labeling_results(rows, column_of_row), out / LABELING_SHEET_CSV,
        out / LABELING_KEY_CSV, seed=int(cfg["seed"]), blind_images_dir="to_label")
    figure = figure_fn(out / FIGURE_PNG)
    lines = header_lines(models, data, title, bool(cfg.get("oracle_relics")))
    lines += summary_table(rows, columns, column_of_row)
    lines += ["", "Label the results blind in the browser (docs/labeling.md), then export:", "",
              f"    gone label {out}", f"    gone label {out} --export", "",
              "or by hand: copy `labeling_sheet.csv` once per rater (e.g. "
              "`labels/alice.csv`), fill the `label` column with good / okay / striped / solid "
              "(the paper's labels; `image_path` is a blinded copy under `to_label/`, relative to "
              "this folder; do not open `private/`). Then:", "",
              f"    python experiments/make_table.py --output_dir {out}", ""]
    summary = write_text_atomic(out / SUMMARY_MD, "\n".join(lines))
    info = {"script": script, "title": title, "columns": list(columns),
            "data": data.description, "masks": models.masks, "mrcnn_weights": models.mrcnn_source,
            "inpaint_weights": models.inpaint_source, "random_weights": models.random_weights,
            "seed": cfg["seed"], "limit": cfg.get("limit"), "config": cfg, "n_images": len(data.samples),
            "n_results": len(rows)}
    write_text_atomic(out / RUN_INFO_JSON, json.dumps(info, indent=1, sort_keys=True) + "\n")
    return {"per_image": per_image, "sheet": sheet, "key": key, "figure": figure,
            "summary": summary}


def figure_grid(path, panels, col_titles, row_titles, suptitle=""):
    """Saves a grid of images (rows of panels) with matplotlib (Agg), atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_rows, n_cols = max(len(panels), 1), len(col_titles)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(2.6 * n_cols, 2.2 * n_rows + 0.4),
                             squeeze=False)
    for r in range(n_rows):
        for c in range(n_cols):
            ax = axes[r][c]
            ax.axis("off")
            if r < len(panels) and panels[r][c] is not None:
                ax.imshow(panels[r][c])
            if r == 0:
                ax.set_title(col_titles[c], fontsize=10)
        if r < len(row_titles):
            axes[r][0].text(-0.05, 0.5, row_titles[r], transform=axes[r][0].transAxes,
                            ha="right", va="center", fontsize=7, rotation=90)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10, color="red" if "RANDOM" in suptitle else "black")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)

    path = pathlib.Path(path)
    write_bytes_atomic(path, buf.getvalue())
    return path
