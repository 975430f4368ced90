"""Table 3 of the paper: the l1 pixel-wise loss weight, 1.2 (inpaint.yml) against 2.0.

Command:

    python experiments/table3_l1_weight.py --coco_dir /data/coco [--inpaint_checkpoint release_places2_256]
    python experiments/table3_l1_weight.py --smoke
    python experiments/table3_l1_weight.py --set 'table3.fields=["L1_LOSS_ALPHA","COARSE_L1_ALPHA","AE_LOSS_ALPHA"]'

From the epoch-10 weights of the Train-40k run (trained first when missing, shared with Tables 4
and 5), four more epochs on Train-40k with the l1 weight 2.0 and with 1.2; both are evaluated on
Val-100-no-large-crop (one blind sheet over both columns).

Which field is "the l1 weight": v1.0.0's inpaint.yml sets L1_LOSS_ALPHA, COARSE_L1_ALPHA and
AE_LOSS_ALPHA all to 1.2; the paper's "l1 pixel-wise loss hyperparameter" is most likely
L1_LOSS_ALPHA (the weight of the spatially discounted l1 in the generator loss), so the study
varies `table3.fields = ["L1_LOSS_ALPHA"]` by default; the table header names the fields varied.

Cost: 2 x 4 epochs of Train-40k (2 x 10,000 generator steps at batch 16) after the base run:
on one H200 at >= 100 generator-step images/s about 1 hour; on 2 CPU cores (~0.1 images/s)
~5 weeks.
`--smoke`: seconds after the base run.

Writes under --output_dir (default outputs/table3_l1_weight): runs/, images/, per_image.csv,
labeling_sheet.csv (+ private/ key, to_label/),
summary.md / summary.csv (the table; make_table.py adds table.md with the label counts),
figure.png, run_info.json.

Expected result (the paper): the paper kept 1.2 after comparing the label counts of the two
columns; the smoke set only checks the plumbing.
"""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import _training  # noqa: E402
from absl import app  # noqa: E402


def get_config(arg=None):
    cfg = _training.base_config(arg)
    cfg["table3"] = {"values": [1.2, 2.0], "fields": ["L1_LOSS_ALPHA"], "epochs": 1 if arg == "smoke" else 4,
                     "split": "train-40k", "eval_split": "val-100-no-large-crop"}
    return cfg


def title(cfg):
    return (f"Table 3: l1 loss weight ({' = '.join(cfg['table3']['fields'])} varied), "
            f"{cfg['table3']['epochs']} epochs from epoch {cfg['base_run']['from_epoch']} of Train-40k, "
            f"{cfg['table3']['eval_split']}")


def column(value):
    return f"l1 weight {float(value):.1f}"


def run(cfg, env, splits=None):
    from inpaint.config import InpaintConfig

    spec = cfg["table3"]
    unknown = [f for f in spec["fields"] if f not in InpaintConfig.field_names()]
    if unknown:
        raise _training.TrainingExperimentError(f"table3.fields: unknown inpaint config field(s) {unknown}")
    out = env.output_dir
    splits = splits or _training.prepare_splits(cfg, env)
    init = _training.from_epoch_weights(cfg, env, splits)
    base = int(cfg["base_run"]["from_epoch"])
    sources = {}
    for value in spec["values"]:
        name = f"table3-{'-'.join(f.lower() for f in spec['fields'])}-{float(value):.1f}"
        done = _training.train_run(name, cfg, env, splits.train[spec["split"]], epochs=int(spec["epochs"]),
                                   init=init, overrides={f: float(value) for f in spec["fields"]})
        sources[column(value)] = done["final"]
    header = [f"- data: {splits.description}", f"- varied: {', '.join(spec['fields'])} "
              f"(values {', '.join(str(v) for v in spec['values'])}); initial weights: epoch {base} "
              f"of train-40k ({init})", f"- holes: `{cfg['eval']['strategy']}` of the ground-truth person masks"]
    rows = _training.evaluate_columns(out, title(cfg), sources, splits.eval[spec["eval_split"]], cfg, header)
    fig = _training.figure(out / "figure.png", out, rows, list(sources))
    info = _training.write_run_info(out, "table3_l1_weight", cfg, env, {"columns": list(sources)})
    return {"table": out / "summary.md", "sheet": out / "labeling_sheet.csv", "figure": fig, "run_info": info}


def main(argv):
    return _training.run_script(run, get_config, "table3_l1_weight", argv)


if __name__ == "__main__":
    app.run(main)
