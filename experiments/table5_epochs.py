"""Table 5 of the paper: how long to train? Epoch 4, 8, 12 and 16 of the Train-40k run against
the Places2 baseline, on Test-100-no-large-crop (one blind labeling sheet over all five columns).

Command (the paper's setting: COCO 2014, 256x256, batch 16, 5 critic steps per generator step):

    python experiments/table5_epochs.py --coco_dir /data/coco [--inpaint_checkpoint release_places2_256]
    python experiments/table5_epochs.py --smoke          # 64x64 synthetic set, 1-step epochs (tests)

The run trains Train-40k for 16 epochs (an epoch = one pass of the generator over the split,
2500 generator steps at batch 16), keeping `epoch-4/8/10/12/16.npz` (the epoch-10 weights start
Tables 3 and 4), starting from the Places2 baseline (`--set init=none` for seeded random
weights). Killed and rerun, it resumes from its newest snapshot. Config fields: `get_config()`
below; override with `--set key=value` (e.g. `--set batch_size=8 --set base_run.epochs=8`).

Cost (benchmarks/inpaint_training.py; 40,000 generator steps x 16 images): on one H200 with JAX
at the target >= 100 generator-step images/s, under 2 hours; on the 2-core CPU machine about
0.1 generator-step images/s (TensorFlow; extrapolated from 128x128 / batch 4 on the shared
machine, docs/training.md), i.e. ~2 months: use a GPU.
`--smoke`: under a minute on 2 CPU cores.

Writes under --output_dir (default outputs/table5_epochs): runs/train-40k/ (snapshots,
scalars.csv), images/<image>/{original,hole,<column>}.png, per_image.csv, labeling_sheet.csv
(blind, shuffled; key in private/), summary.md / summary.csv (the table, columns epoch 4 |
epoch 8 | epoch 12 | epoch 16 | Places2 baseline; make_table.py adds table.md with the label
counts), figure.png, run_info.json (the full config, backend, package
versions, git commit).

Expected result (the paper): label counts per column from the raters; the paper's gradient-norm
baseline (Places2) is 0.000183 (see table6_gradient_norm.py for the two normalisations). On the
smoke set the numbers only check the plumbing.
"""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import _training  # noqa: E402
from absl import app  # noqa: E402

TITLE = "Table 5: training epochs (Train-40k) vs the Places2 baseline, Test-100-no-large-crop"
BASELINE = "Places2 baseline"


def get_config(arg=None):
    cfg = _training.base_config(arg)
    cfg["table5"] = {"eval_split": "test-100-no-large-crop"}
    return cfg


def columns(cfg):
    return [f"epoch {e}" for e in cfg["base_run"]["table5_epochs"]] + [BASELINE]


def run(cfg, env, splits=None):
    out = env.output_dir
    splits = splits or _training.prepare_splits(cfg, env)
    done = _training.base_run(cfg, env, splits)
    sources = {}
    for epoch in cfg["base_run"]["table5_epochs"]:
        if str(epoch) not in done["epochs"]:
            raise _training.TrainingExperimentError(f"train-40k has no epoch-{epoch} snapshot")
        sources[f"epoch {epoch}"] = done["epochs"][str(epoch)]
    sources[BASELINE] = _training.baseline_source(env)[0]
    _training.print_banner_if_random({BASELINE: sources[BASELINE]})
    header = [f"- data: {splits.description}", f"- runs: {env.runs_dir} (train-40k from "
              f"{done['init']}, {done['steps']} generator steps)",
              f"- holes: `{cfg['eval']['strategy']}` of the ground-truth person masks"]
    samples = splits.eval[cfg["table5"]["eval_split"]]
    rows = _training.evaluate_columns(out, TITLE, sources, samples, cfg, header)
    fig = _training.figure(out / "figure.png", out, rows, list(sources))
    info = _training.write_run_info(out, "table5_epochs", cfg, env, {"columns": list(sources)})
    return {"table": out / "summary.md", "sheet": out / "labeling_sheet.csv", "figure": fig, "run_info": info}


def main(argv):
    return _training.run_script(run, get_config, "table5_epochs", argv)


if __name__ == "__main__":
    app.run(main)
