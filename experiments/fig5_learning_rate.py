"""Figure 5 of the paper: the learning rate, 1e-5 / 1e-4 / 1e-3, with early stopping.

Command:

    python experiments/fig5_learning_rate.py --coco_dir /data/coco [--inpaint_checkpoint release_places2_256]
    python experiments/fig5_learning_rate.py --smoke

Trains on Train-2k-no-people with each learning rate (from the Places2 baseline; `--set
init=none` for seeded weights), validating after every epoch with the l1 inside the hole on
Val-100-no-large-crop (fixed bbox holes, InpaintTrainer.evaluate) and stopping after
`fig5.patience` validations without improvement (at most `fig5.max_epochs`). Then every model
fills the ground-truth-person holes of Val-100-no-large-crop.

Cost: at most 3 x 20 epochs of 2,000 images (3 x 2,500 generator steps at batch 16): on one H200
at >= 100 generator-step images/s at most ~20 minutes; on 2 CPU cores (~0.1 images/s) up to
~2 weeks.
`--smoke`: seconds.

Writes under --output_dir (default outputs/fig5_learning_rate): runs/fig5-lr-*/ (scalars.csv
with validation/val_l1), learning_curves.png (validation l1 per step, one line per learning rate),
figure.png (original | the three fills per row: the paper's Figure 5), images/, per_image.csv,
labeling_sheet.csv (blind over the three models; key in private/), summary.md / summary.csv,
run_info.json.

Expected result (the paper): 1e-4 (the original's LEARNING_RATE) is the setting the paper kept;
1e-3 is unstable and 1e-5 learns slowly on the validation curve. The smoke set only checks the
plumbing.
"""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import _training  # noqa: E402
from absl import app  # noqa: E402

TITLE = "Figure 5: learning rate (Train-2k-no-people, early stopping on Val-100-no-large-crop)"


def get_config(arg=None):
    cfg = _training.base_config(arg)
    smoke = arg == "smoke"
    cfg["fig5"] = {"learning_rates": [1e-5, 1e-4, 1e-3], "split": "train-2k-no-people",
                   "val_split": "val-100-no-large-crop", "max_epochs": 2 if smoke else 20,
                   "patience": 1 if smoke else 3}
    return cfg


def column(lr):
    return f"lr {float(lr):.0e}"


def run(cfg, env, splits=None):
    spec = cfg["fig5"]
    out = env.output_dir
    splits = splits or _training.prepare_splits(cfg, env)
    init = _training.resolve_init(cfg, env)
    sources, curves = {}, {}
    for lr in spec["learning_rates"]:
        name = f"fig5-lr-{float(lr):.0e}"
        done = _training.train_run(name, cfg, env, splits.train[spec["split"]], epochs=int(spec["max_epochs"]),
                                   init=init, learning_rate=float(lr), val_paths=splits.train[spec["val_split"]],
                                   patience=int(spec["patience"]))
        sources[column(lr)] = done["final"]
        curves[column(lr)] = _training.validation_curve(env.runs_dir / name)
    plot = _training.plot_curves(out / _training._common.LEARNING_CURVES_PNG, curves, TITLE)
    header = [f"- data: {splits.description}", f"- initial weights: {init or 'seeded random'}",
              f"- holes: `{cfg['eval']['strategy']}` of the ground-truth person masks"]
    rows = _training.evaluate_columns(out, TITLE, sources, splits.eval[spec["val_split"]], cfg, header)
    fig = _training.figure(out / "figure.png", out, rows, list(sources))
    info = _training.write_run_info(out, "fig5_learning_rate", cfg, env,
                                    {"columns": list(sources), "curves": curves})
    return {"curves": plot, "figure": fig, "table": out / "summary.md", "sheet": out / "labeling_sheet.csv",
            "run_info": info}


def main(argv):
    return _training.run_script(run, get_config, "fig5_learning_rate", argv)


if __name__ == "__main__":
    app.run(main)
