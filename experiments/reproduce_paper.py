"""The paper's training half in one command: splits -> trainings -> evaluations -> sheets -> tables.

Command:

    python experiments/reproduce_paper.py --coco_dir /data/coco --inpaint_checkpoint release_places2_256 \\
        --output_dir outputs/paper
    python experiments/reproduce_paper.py --smoke --output_dir /tmp/paper   # synthetic, 64x64 (tests)

Order: the split manifests (data_prep.coco_splits, or the synthetic set), then Table 5 (trains
Train-40k for 16 epochs keeping epochs 4/8/10/12/16; evaluates them and the Places2 baseline on
Test-100-no-large-crop), Table 6 (gradient norms of the same results), Table 3 and Table 4 (both
start from the epoch-10 weights of that one Train-40k run), Figure 5 (three learning rates with
early stopping). Every training run lives in `<output_dir>/runs/<name>/` and every table in
`<output_dir>/<script>/`: finished stages are reused, and a run killed at any point (even kill -9)
continues from its newest snapshot when the same command is run again, ending with the same tables.
Each script's `get_config()` is part of this one's; `--set` overrides any field (e.g.
`--set batch_size=8`), and `run_info.json` records the whole config, the backend, the package
versions and the git commit.

Cost: the sum of the scripts' (see their docstrings): about 3 hours on one H200 with JAX at the
target >= 100 generator-step images/s (the Train-40k run is 2 of them); months on 2 CPU cores.
`--smoke`: about a minute on 2 CPU cores.

Writes `<output_dir>/index.md` (links to every table, figure and labeling sheet) and
`<output_dir>/run_info.json`.

Expected results: those stated in each script's docstring.
"""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import _training  # noqa: E402
import fig5_learning_rate  # noqa: E402
import table3_l1_weight  # noqa: E402
import table4_people  # noqa: E402
import table5_epochs  # noqa: E402
import table6_gradient_norm  # noqa: E402
from absl import app  # noqa: E402

from gone.io import write_text_atomic  # noqa: E402

STAGES = (("table5_epochs", table5_epochs), ("table6_gradient_norm", table6_gradient_norm),
          ("table3_l1_weight", table3_l1_weight), ("table4_people", table4_people),
          ("fig5_learning_rate", fig5_learning_rate))
# Table 6 is computed from Table 5's results, in Table 5's folder
FOLDERS = {"table6_gradient_norm": "table5_epochs"}


def get_config(arg=None):
    cfg = _training.base_config(arg)
    for _, module in STAGES:
        cfg.update({k: v for k, v in module.get_config(arg).items() if k not in cfg})
    return cfg


def run(cfg, env):
    root = env.output_dir
    splits = _training.prepare_splits(cfg, env)
    outputs = {}
    for name, module in STAGES:
        print(f"=== {name}")
        stage_env = _training.Environment(output_dir=root / FOLDERS.get(name, name), runs_dir=env.runs_dir,
                                          coco_dir=env.coco_dir, splits_dir=env.splits_dir,
                                          baseline_checkpoint=env.baseline_checkpoint, verbose=env.verbose)
        outputs[name] = module.run(cfg, stage_env, splits)
    lines = ["# The paper's training experiments", "", f"- data: {splits.description}",
             f"- runs: {env.runs_dir}", ""]
    for name, paths in outputs.items():
        lines.append(f"## {name}")
        lines += [f"- {what}: `{pathlib.Path(p).relative_to(root).as_posix()}`" for what, p in paths.items()]
        lines.append("")
    index = write_text_atomic(root / _training._common.INDEX_MD, "\n".join(lines))
    info = _training.write_run_info(root, "reproduce_paper", cfg, env, {"stages": [n for n, _ in STAGES]})
    return {"index": index, "run_info": info}


def main(argv):
    return _training.run_script(run, get_config, "reproduce_paper", argv)


if __name__ == "__main__":
    app.run(main)
