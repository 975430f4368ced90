"""Table 4 of the paper: train with or without people? Train-2k against Train-2k-no-people.

Command:

    python experiments/table4_people.py --coco_dir /data/coco [--inpaint_checkpoint release_places2_256]
    python experiments/table4_people.py --smoke

From the epoch-10 weights of the Train-40k run (trained first when missing, shared with Tables 3
and 5), `table4.epochs` (4) epochs on Train-2k (COCO images with people) and on
Train-2k-no-people (no person annotation); both evaluated on Val-100-no-large-crop, one blind
labeling sheet over both columns. On the synthetic set, "no people" are the scenes' clean
backgrounds.

Cost: 2 x 4 epochs of 2,000 images (2 x 500 generator steps at batch 16) after the base run: on
one H200 at >= 100 generator-step images/s about 3 minutes; on 2 CPU cores (~0.1 images/s)
~2 days.
`--smoke`: seconds after the base run.

Writes under --output_dir (default outputs/table4_people): runs/, images/, per_image.csv,
labeling_sheet.csv (+ private/, to_label/),
summary.md / summary.csv (the table; make_table.py adds table.md with the label counts),
figure.png, run_info.json.

Expected result (the paper): label counts of the two columns (the paper's comparison of training
on images with and without people); the smoke set only checks the plumbing.
"""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import _training  # noqa: E402
from absl import app  # noqa: E402

COLUMNS = {"Train-2k": "train-2k", "Train-2k-no-people": "train-2k-no-people"}


def get_config(arg=None):
    cfg = _training.base_config(arg)
    cfg["table4"] = {"epochs": 1 if arg == "smoke" else 4, "eval_split": "val-100-no-large-crop"}
    return cfg


def run(cfg, env, splits=None):
    spec = cfg["table4"]
    out = env.output_dir
    splits = splits or _training.prepare_splits(cfg, env)
    init = _training.from_epoch_weights(cfg, env, splits)
    sources = {}
    for column, split in COLUMNS.items():
        done = _training.train_run(f"table4-{split}", cfg, env, splits.train[split],
                                   epochs=int(spec["epochs"]), init=init)
        sources[column] = done["final"]
    title = (f"Table 4: training data with / without people, {spec['epochs']} epochs from epoch "
             f"{cfg['base_run']['from_epoch']} of Train-40k, {spec['eval_split']}")
    header = [f"- data: {splits.description}", f"- initial weights: {init}",
              f"- holes: `{cfg['eval']['strategy']}` of the ground-truth person masks"]
    rows = _training.evaluate_columns(out, title, sources, splits.eval[spec["eval_split"]], cfg, header)
    fig = _training.figure(out / "figure.png", out, rows, list(sources))
    info = _training.write_run_info(out, "table4_people", cfg, env, {"columns": list(sources)})
    return {"table": out / "summary.md", "sheet": out / "labeling_sheet.csv", "figure": fig, "run_info": info}


def main(argv):
    return _training.run_script(run, get_config, "table4_people", argv)


if __name__ == "__main__":
    app.run(main)
