"""Shared machinery of the paper's training experiments (Fig. 5, Tables 3-6, reproduce_paper.py).

Configuration is explicit, in the manner of big_vision (the machinery is _common's, which Tables 1
and 2 share): every experiment script has
`get_config(arg)` (arg None = the paper's setting, "smoke" = tiny images / a few steps on the
synthetic set, "runlocal" = a short real run) returning a plain dict; `--set key=value` overrides
fields (dotted keys for nested dicts); the whole dict is recorded in `run_info.json` with the
backend, the package versions and the git commit. Nothing here reads absl flags: the scripts read
them once (`environment_from_flags`) and pass explicit values down.

Stages are resumable, so a killed run continues where it stopped:
- a training run lives in `<runs_dir>/<name>/` (InpaintTrainer snapshots, scalars.csv); it resumes
  from its newest snapshot and writes `DONE.json` when finished; a finished run is reused;
- an evaluation writes its images, `per_image.csv`, the blind labeling sheet and the table, then
  `eval_done.json` (with the checkpoints it used); a finished evaluation is reused.

Data. With `--coco_dir`: data_prep.coco_splits manifests (from `--splits_dir`, default
`<coco_dir>/gone_splits`, built when absent) and the COCO images under
`<coco_dir>/<source_subset>/`. Without it: the synthetic set (data_prep.synth), split as
train-40k / train-2k = scenes with people, train-2k-no-people = the clean backgrounds of the same
scenes, val-100-no-large-crop and test-100-no-large-crop = further scenes.

Epochs: an epoch is one pass of the generator over the training split (N // BATCH_SIZE generator
steps, see inpaint.trainer); TRAIN_SPE is set to that number, so neuralgym's "steps per epoch"
and ours agree.

Evaluation: each test image goes through gone.pipeline.PeopleRemover.remove, the procedure of
`gone remove` (region cropping, working size, paste back), with its ground-truth person masks as
the detector and the `dilated` hole (the paper's winner); every column's model fills the same
holes (the columns swap the generator weights of one InpaintModel); metrics are l1 / PSNR inside the hole
(where a clean background exists) and the gradient norm of gone.metrics (ours) beside the same
value on the paper's scale (`gradient_norm_paper`, see PAPER_GRADIENT_NORM_SCALE).
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import pathlib
import platform
import subprocess
import sys

import numpy as np

import _common  # shared flags (--coco_dir, --output_dir, --seed, --set, ...), config, evaluator
import _data

from gone.io import write_text_atomic

# the configuration machinery is _common's (Tables 1 and 2 share it)
Environment = _common.Environment
apply_overrides = _common.apply_overrides
config_from_flags = _common.config_from_flags
environment_from_flags = _common.environment_from_flags
run_script = _common.run_script

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
RANDOM_WEIGHTS_BANNER = _common.RANDOM_WEIGHTS_BANNER
LABELS = ("good", "okay", "striped", "solid")

# The paper's gradient norms (baseline 0.000183) are ~100x below gone.metrics.gradient_norm on
# the same kind of fill. Our measure works on skimage's rgb2gray, i.e. intensities in [0, 1]; the
# paper's values are what the same Sobel difference gives when the [0, 1] grayscale image is
# divided by 255 once more (a [0, 255] -> [0, 1] conversion applied to an image that already is
# in [0, 1]): a constant factor, so rankings and ratios are unchanged, and filled COCO-like images
# (ours 0.02-0.03) land at ~1e-4, the paper's scale. This is an inference from the magnitudes, not
# a documented fact of the paper.
PAPER_GRADIENT_NORM_SCALE = 1.0 / 255.0


class TrainingExperimentError(_common.ExperimentError):
    """Bad configuration or data; printed as one line."""


# ----------------------------------------------------------------------------------------------
# Configuration

def base_config(arg=None) -> dict:
    """Settings shared by the training experiments (the paper's: 256x256, batch 16, 5:1)."""
    smoke = arg == "smoke"
    runlocal = arg == "runlocal"
    cfg = {
        "variant": arg or "paper",
        "image_size": 64 if smoke else 256,
        "batch_size": 2 if smoke else (8 if runlocal else 16),
        "critic_steps": 1 if smoke else 5,
        "optimizer": "shared",
        "learning_rate": 1e-4,
        "seed": 0,
        # initial weights of the first run: "baseline" = the Places2 checkpoint (--inpaint_checkpoint
        # or the gone.weights cache; random weights, announced, when there is none), "none" = seeded
        "init": "baseline",
        "snapshot_every": 1000,
        # smoke: 1-step epochs; a snap-*.npz (~127 MB, mostly the critics' convs and their Adam
        # slots) only at the kept epochs instead of at every step
        "snapshot_each_epoch": not smoke,
        # the Train-40k run that Tables 3, 4 and 5 share: 16 epochs, epoch 4/8/12/16 weights kept
        # for Table 5, the epoch-10 weights are where Tables 3 and 4 start
        "base_run": {"split": "train-40k", "epochs": 16, "table5_epochs": [4, 8, 12, 16], "from_epoch": 10},
        "keep": 2,
        "eval": {"strategy": "dilated", "limit": None},
        "data": {"synth_scenes": {"train": 2, "val": 2, "test": 2} if smoke else
                 {"train": 24, "val": 8, "test": 8},
                 "synth_size": 64 if smoke else 256,
                 "limit_train": None},  # COCO: at most this many images per training split
    }
    if runlocal:
        cfg["data"]["limit_train"] = 64
    return cfg


def git_commit():
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                             text=True, timeout=10)
        commit = out.stdout.strip() or None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return commit, bool(dirty)
    except (OSError, subprocess.SubprocessError):
        return None, None


def package_versions():
    from importlib import metadata
    versions = {"python": platform.python_version()}
    for name in ("keras", "tensorflow", "jax", "jaxlib", "numpy", "opencv-python-headless",
                 "scikit-image", "tensorboardX"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def write_run_info(out_dir, script, cfg, env: Environment, extra=None, name=_common.RUN_INFO_JSON):
    import keras
    commit, dirty = git_commit()
    info = {"script": script, "config": cfg, "backend": keras.backend.backend(),
            "packages": package_versions(), "git_commit": commit, "git_dirty": dirty,
            "command": [sys.executable] + sys.argv, "coco_dir": env.coco_dir,
            "splits_dir": env.splits_dir, "runs_dir": str(env.runs_dir),
            "baseline_checkpoint": env.baseline_checkpoint}
    info.update(extra or {})
    return write_text_atomic(pathlib.Path(out_dir) / name,
                             json.dumps(info, indent=1, sort_keys=True, default=str) + "\n")


# ----------------------------------------------------------------------------------------------
# Data

@dataclasses.dataclass
class Splits:
    """Training paths per split and evaluation samples (_data.Sample) per split."""
    description: str
    train: dict
    eval: dict


def _synthetic_splits(cfg, env) -> Splits:
    from data_prep import synth

    counts = cfg["data"]["synth_scenes"]
    n = counts["train"] + counts["val"] + counts["test"]
    size = int(cfg["data"]["synth_size"])
    root = env.output_dir / "synth_data"
    ann = synth.generate(root, n, seed=int(cfg["seed"]), height=size, width=size, progress=False)
    data = json.loads(pathlib.Path(ann).read_text())
    images = sorted(data["images"], key=lambda im: im["id"])
    train = images[:counts["train"]]
    people = [str(root / "images" / im["file_name"]) for im in train]
    clean = [str(root / im["background_file"]) for im in train]
    half = max(len(people) // 2, int(cfg["batch_size"]))
    source = _data.load_benchmark(ann, "synthetic", ["val-100-no-large-crop", "test-100-no-large-crop"])
    by_name = {pathlib.Path(im["file_name"]).stem: k for k, im in enumerate(images)}
    val, test = [], []
    for sample in source.samples:
        index = by_name[sample.name]
        if counts["train"] <= index < counts["train"] + counts["val"]:
            val.append(sample)
        elif index >= counts["train"] + counts["val"]:
            test.append(sample)
    val_paths = [str(root / "images" / f"{s.name}.png") for s in val]
    return Splits(f"synthetic set ({n} scenes {size}x{size}, seed {cfg['seed']}) in {root}",
                  {"train-40k": people, "train-2k": people[:half], "train-2k-no-people": clean[:half],
                   "val-100-no-large-crop": val_paths},
                  {"val-100-no-large-crop": val, "test-100-no-large-crop": test})


def _coco_splits(cfg, env, eval_splits) -> Splits:
    from data_prep import coco_splits

    coco_dir = pathlib.Path(env.coco_dir)
    splits_dir = pathlib.Path(env.splits_dir) if env.splits_dir else coco_dir / "gone_splits"
    if not (splits_dir / "train-40k.json").is_file():
        print(f"split manifests not found in {splits_dir}: building them (seed {cfg['seed']})")
        built = coco_splits.build_splits(coco_dir, seed=int(cfg["seed"]))
        splits_dir = env.output_dir / "splits"
        coco_splits.write_manifests(built, splits_dir)
    train = {}
    for name in ("train-40k", "train-2k", "train-2k-no-people", "val-100-no-large-crop"):
        manifest = coco_splits.read_manifest(splits_dir / f"{name}.json")
        folder = coco_dir / manifest["source_subset"]
        train[name] = [str(folder / im["file_name"]) for im in manifest["images"]]
        limit = cfg["data"].get("limit_train")
        if limit:
            train[name] = train[name][:int(limit)]
    evaluation = {}
    for name in eval_splits:
        source = _data.load_coco_splits(coco_dir, [name], splits_dir, env.output_dir, int(cfg["seed"]),
                                          cfg["eval"].get("limit"))
        evaluation[name] = source.samples
    return Splits(f"COCO ({coco_dir}, manifests {splits_dir})", train, evaluation)


def prepare_splits(cfg, env, eval_splits=("val-100-no-large-crop", "test-100-no-large-crop")) -> Splits:
    if env.coco_dir:
        if not pathlib.Path(env.coco_dir).is_dir():
            raise TrainingExperimentError(f"COCO root not found: {env.coco_dir}")
        return _coco_splits(cfg, env, eval_splits)
    return _synthetic_splits(cfg, env)


# ----------------------------------------------------------------------------------------------
# Training runs

_TRAINERS = {}  # compiled trainers of this process, by config (the learning rate excepted)


def base_run(cfg, env, splits):
    """The Train-40k run (Tables 3, 4, 5 and 6 share it); returns its DONE dict."""
    spec = cfg["base_run"]
    keep = sorted(set(spec["table5_epochs"]) | {int(spec["from_epoch"])})
    return train_run("train-40k", cfg, env, splits.train[spec["split"]], epochs=int(spec["epochs"]),
                     init=resolve_init(cfg, env), epoch_snapshots=keep)


def from_epoch_weights(cfg, env, splits):
    """The base run's epoch-`from_epoch` snapshot (trains the base run when needed)."""
    done = base_run(cfg, env, splits)
    epoch = str(int(cfg["base_run"]["from_epoch"]))
    if epoch not in done["epochs"]:
        raise TrainingExperimentError(f"the train-40k run has no epoch-{epoch} snapshot "
                                      f"(epochs kept: {', '.join(done['epochs']) or 'none'})")
    return done["epochs"][epoch]


def inpaint_config(cfg, n_train, overrides=None):
    from inpaint.config import InpaintConfig

    size, batch = int(cfg["image_size"]), int(cfg["batch_size"])
    values = {"IMG_SHAPES": [size, size, 3], "HEIGHT": size // 2, "WIDTH": size // 2,
              "MAX_DELTA_HEIGHT": size // 8, "MAX_DELTA_WIDTH": size // 8, "BATCH_SIZE": batch,
              "CRITIC_STEPS": int(cfg["critic_steps"]), "LEARNING_RATE": float(cfg["learning_rate"]),
              "TRAIN_SPE": max(1, n_train // batch), "VAL_PSTEPS": max(1, n_train // batch)}
    values.update(overrides or {})
    return InpaintConfig().override(values)


def _trainer(config, cfg, log_dir, verbose):
    from inpaint.trainer import InpaintTrainer

    # fields the compiled steps do not read (the learning rate is an optimizer variable)
    unused = ("LEARNING_RATE", "LOG_DIR", "TRAIN_SPE", "VAL_PSTEPS", "MAX_ITERS")
    key = json.dumps({k: v for k, v in config.to_dict().items() if k not in unused},
                     sort_keys=True, default=str) + cfg["optimizer"]
    trainer = _TRAINERS.get(key)
    if trainer is None:
        trainer = InpaintTrainer(config, log_dir=log_dir, seed=int(cfg["seed"]), optimizer=cfg["optimizer"],
                                 snapshot_every=int(cfg["snapshot_every"]), keep_snapshots=int(cfg["keep"]),
                                 log_every=1, image_every=10 ** 9, verbose=verbose)
        _TRAINERS[key] = trainer
    else:
        trainer.start_run(log_dir, seed=int(cfg["seed"]), learning_rate=config.LEARNING_RATE)
    trainer.verbose = verbose
    trainer.snapshot_each_epoch = bool(cfg.get("snapshot_each_epoch", True))
    return trainer


def baseline_source(env):
    """(checkpoint path or None, label) of the Places2 baseline."""
    from gone.weights import find_weight_file

    path = env.baseline_checkpoint or find_weight_file("deepfill_v1_places2")
    if env.baseline_checkpoint and not (pathlib.Path(path).exists() or
                                        pathlib.Path(str(path) + ".index").exists()):
        raise TrainingExperimentError(f"inpainting checkpoint not found: {path}")
    return (str(path), str(path)) if path else (None, "random")


def train_run(name, cfg, env, paths, *, epochs, init=None, learning_rate=None, overrides=None,
              val_paths=None, patience=None, epoch_snapshots=None):
    """Train (or resume, or reuse) the run `<runs_dir>/<name>`; returns its DONE.json dict:
    {"epochs": {E: path}, "final": path, "steps": int, "stopped_early": bool, "init": str}."""
    from inpaint.data import InpaintImageDataset

    log_dir = env.runs_dir / name
    done_path = log_dir / "DONE.json"
    if done_path.is_file():
        return json.loads(done_path.read_text())
    run_cfg = dict(cfg)
    if learning_rate is not None:
        run_cfg["learning_rate"] = learning_rate
    config = inpaint_config(run_cfg, len(paths), overrides)
    try:
        dataset = InpaintImageDataset.from_config(config, paths, seed=int(cfg["seed"]))
        val = (InpaintImageDataset.from_config(config, val_paths, seed=int(cfg["seed"]), shuffle=False)
               if val_paths else None)
    except ValueError as error:  # inpaint.data.DataError
        raise TrainingExperimentError(f"run {name}: {error}") from None
    trainer = _trainer(config, run_cfg, log_dir, env.verbose)
    trainer.epoch_snapshots = None if epoch_snapshots is None else set(epoch_snapshots)
    step = trainer.resume()
    if step:
        print(f"run {name}: resumed from step {step}")
    elif init:
        trainer.load_weights(init)
    print(f"run {name}: {len(paths)} images, {len(dataset)} generator steps per epoch, {epochs} epochs, "
          f"lr {config.LEARNING_RATE:g}, init {init or 'seeded'}")
    trainer.fit(dataset, epochs=epochs, val_dataset=val, val_every=len(dataset), patience=patience)
    from inpaint.trainer import epoch_snapshots as list_epochs, latest_snapshot
    done = {"epochs": {str(e): str(p) for e, p in list_epochs(log_dir).items()},
            "final": str(latest_snapshot(log_dir)), "steps": trainer.step,
            "stopped_early": trainer.step < epochs * len(dataset), "init": str(init or "seeded"),
            "learning_rate": config.LEARNING_RATE, "best_val_l1": None if math.isinf(trainer.best_val_l1)
            else trainer.best_val_l1}
    write_text_atomic(done_path, json.dumps(done, indent=1, sort_keys=True) + "\n")
    return done


def validation_curve(log_dir):
    """[(step, val_l1)] from a run's scalars.csv."""
    path = pathlib.Path(log_dir) / "scalars.csv"
    if not path.is_file():
        return []
    with open(path, newline="") as fh:
        return [(int(r["step"]), float(r["value"])) for r in csv.DictReader(fh)
                if r["name"] == "validation/val_l1"]


# ----------------------------------------------------------------------------------------------
# Evaluation, sheets and tables

def _slug(column):
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in column)


_MODELS = {}


def _model():
    """One InpaintModel per process: columns swap its generator weights (its compiled forward
    pass reads the variables at call time), so each image size compiles once."""
    import keras
    from inpaint import InpaintModel
    if "model" not in _MODELS:
        from inpaint.trainer import seeded_glorot_init
        model = InpaintModel()
        seeded_glorot_init(model.generator, np.random.default_rng([0, 5]))  # same "random" everywhere
        _MODELS["model"] = model
        _MODELS["random"] = [np.array(keras.ops.convert_to_numpy(w)) for w in model.generator.weights]
    return _MODELS["model"]


def _generator_variables(source):
    """{TF name: array} of a column's generator (a checkpoint path), or None for random weights."""
    if source is None:
        return None
    from inpaint.checkpoint import read_checkpoint
    return {k: v for k, v in read_checkpoint(source).items() if k.startswith("inpaint_net/")}


def evaluate_columns(out_dir, title, columns, samples, cfg, header=()):
    """Fill every sample's hole with every column's model; write images, per_image.csv, one blind
    labeling sheet over all columns (gone.labeling) and summary.md / summary.csv (the table with
    the paper's columns; experiments/make_table.py adds table.md with the label counts).
    `columns`: {column name: checkpoint path, or None for random weights}. Reused when done."""
    from gone import labeling, metrics
    from gone.io import write_image_atomic, write_mask_atomic
    from inpaint.checkpoint import assign_generator_weights

    out = pathlib.Path(out_dir)
    done_path = out / _common.EVAL_DONE_JSON
    signature = {"columns": {k: (str(v) if v else None) for k, v in columns.items()},
                 "samples": [s.name for s in samples], "strategy": cfg["eval"]["strategy"]}
    if done_path.is_file() and json.loads(done_path.read_text()).get("signature") == signature:
        return _read_rows(out / _common.PER_IMAGE_CSV)
    if not samples:
        raise TrainingExperimentError("no evaluation images")
    model = _model()
    random_state = _MODELS["random"]
    weights = {c: _generator_variables(p) for c, p in columns.items()}
    # the procedure of `gone remove` (crop, scale, pad, fill, paste back) with the ground-truth
    # person masks as the detector; the columns swap the model's generator weights
    remover = _common.make_remover(model, _common.OracleDetector(samples, held_objects=False),
                                   cfg["eval"]["strategy"], {})
    rows = []
    for sample in samples:
        folder = out / "images" / sample.name
        write_image_atomic(folder / "original.png", sample.image)
        hole_written = False
        for column, variables in weights.items():
            if variables is None:
                for w, value in zip(model.generator.weights, random_state):
                    w.assign(value)
            else:
                assign_generator_weights(model.generator, variables)
            removal = remover.remove([sample.image])[0]
            result, holes = removal.output, removal.hole_mask
            if not hole_written:
                write_mask_atomic(folder / "hole.png", holes)
                hole_written = True
            path = write_image_atomic(folder / f"{_slug(column)}.png", result)
            g = metrics.gradient_norm(result, holes) if holes.any() else float("nan")
            row = {"image": sample.name, "column": column, "columns": column, "result_path": path.relative_to(out).as_posix(),
                   "hole_fraction": float(holes.mean()), "gradient_norm": g,
                   "gradient_norm_paper": g * PAPER_GRADIENT_NORM_SCALE,
                   "weights": str(columns[column] or "random")}
            if sample.clean is not None and holes.any():
                row["l1_hole"] = metrics.l1(result, sample.clean, mask=holes)
                row["psnr_hole"] = metrics.psnr(result, sample.clean, mask=holes)
            rows.append(row)
    header_cols = ("image", "column", "columns", "hole_fraction", "l1_hole", "psnr_hole", "gradient_norm",
                   "gradient_norm_paper", "result_path", "weights")
    _common.write_csv_atomic(out / _common.PER_IMAGE_CSV, header_cols, rows)
    labeling.write_labeling_sheet([{"image": r["image"], "column": r["column"], "image_path": r["result_path"]}
                                   for r in rows], out / _common.LABELING_SHEET_CSV,
                                  out / _common.LABELING_KEY_CSV, seed=int(cfg["seed"]),
                                  blind_images_dir="to_label")
    write_table(out, title, list(columns), rows, header, columns)
    write_text_atomic(done_path, json.dumps({"signature": signature}, indent=1, sort_keys=True) + "\n")
    return rows


def _read_rows(path):
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        for k in ("hole_fraction", "l1_hole", "psnr_hole", "gradient_norm", "gradient_norm_paper"):
            r[k] = float(r[k]) if r.get(k) not in (None, "") else float("nan")
    return rows


def _mean(values, fmt="{:.4g}"):
    v = [float(x) for x in values if x is not None and not math.isnan(float(x))]
    return fmt.format(float(np.mean(v))) if v else "n/a"


TABLE_METRICS = (("results", None), ("mean l1 in hole", "l1_hole"), ("mean PSNR in hole", "psnr_hole"),
                 ("gradient norm (ours, gone.metrics)", "gradient_norm"),
                 ("gradient norm (paper scale, /255)", "gradient_norm_paper"))


def table_lines(columns, rows):
    """Markdown table: one column per model (the paper's columns), one row per label count (filled
    in by experiments/make_table.py from the labeled sheets) and per metric."""
    lines = ["| | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    for label in LABELS:
        lines.append(f"| {label} | " + " | ".join("(label the sheet)" for _ in columns) + " |")
    for title, key in TABLE_METRICS:
        cells = []
        for c in columns:
            sel = [r for r in rows if r["column"] == c]
            cells.append(str(len(sel)) if key is None else _mean(r.get(key) for r in sel))
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    return lines


def write_table(out, title, columns, rows, header, sources):
    random_used = any(v is None for v in sources.values())
    lines = [f"# {title}", ""]
    if random_used:
        lines += [f"**{RANDOM_WEIGHTS_BANNER}** (column(s) "
                  f"{', '.join(c for c, v in sources.items() if v is None)})", ""]
    lines += list(header) + [""] + table_lines(columns, rows)
    lines += ["", "Weights per column: " + "; ".join(f"{c}: {sources[c] or 'random'}" for c in columns), "",
              "Label `labeling_sheet.csv` (one blind sheet over all columns; `to_label/` holds the "
              "images, `private/` the key), then `python experiments/make_table.py --output_dir "
              f"{out}` for the label counts (table.md).", ""]
    write_text_atomic(pathlib.Path(out) / _common.SUMMARY_MD, "\n".join(lines))
    _common.write_csv_atomic(pathlib.Path(out) / _common.SUMMARY_CSV, ["metric"] + list(columns),
                             [{"metric": title, **{c: (str(len([r for r in rows if r["column"] == c]))
                                                      if key is None else
                                                      _mean(r.get(key) for r in rows if r["column"] == c))
                                                   for c in columns}} for title, key in TABLE_METRICS])


def figure(path, out_dir, rows, columns, n_rows=4, suptitle=""):
    """original | one fill per column, for the first `n_rows` images."""
    out = pathlib.Path(out_dir)
    names = sorted({r["image"] for r in rows})[:n_rows]
    by = {(r["image"], r["column"]): r for r in rows}
    read = _common.read_rgb
    panels = [[read(out / "images" / n / "original.png")] +
              [read(out / by[(n, c)]["result_path"]) for c in columns] for n in names]
    return _common.figure_grid(path, panels, ["original"] + list(columns), names, suptitle)


def plot_curves(path, curves, title):
    """Validation l1 against generator steps, one line per run (matplotlib, atomic)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from gone.io import write_bytes_atomic

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for label, points in curves.items():
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label)
    ax.set_xlabel("generator step")
    ax.set_ylabel("validation l1 in the hole")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return write_bytes_atomic(pathlib.Path(path), buf.getvalue())


def print_banner_if_random(sources):
    if any(v is None for v in sources.values()):
        print(f"!!! {RANDOM_WEIGHTS_BANNER} (no Places2 checkpoint: the baseline column and runs "
              f"initialised from it use random weights)")


def resolve_init(cfg, env):
    """The first run's initial weights: the baseline checkpoint, or None (seeded)."""
    if cfg.get("init", "baseline") == "none":
        return None
    return baseline_source(env)[0]


