"""Shared flags, configuration, models and the evaluator of the paper's experiments.

Configuration is explicit, in the manner of big_vision: every experiment script has
`get_config(arg)` (arg None = the paper's setting, "smoke" = tiny images on the synthetic set,
what the tests run; the training scripts also have "runlocal") returning a plain dict, and
`run(cfg, env)`; `--set key=value` overrides fields (dotted keys reach into nested dicts); the
dict is recorded in run_info.json. Flags read once into an `Environment` (where things are):

  --coco_dir            COCO 2014 root (val2014/, annotations/); unset = the synthetic set
  --benchmark_dir       a COCO-format set with clean backgrounds (data_prep.synth / paste_back)
  --splits_dir          data_prep.coco_splits manifests (default <coco_dir>/gone_splits)
  --mrcnn_weights       Mask R-CNN .h5 (default: gone.weights cache, if present)
  --inpaint_checkpoint  DeepFill v1 checkpoint (default: gone.weights cache)
  --lama_weights        LaMa weights for --inpainter lama (default: gone.weights cache, big-lama)
  --output_dir          where everything is written (default: outputs/<script>)
  --runs_dir            training runs (default <output_dir>/runs)
  --quiet               no progress bars
and shorthands for config fields of the same name, where the script's config has them:
  --split, --limit, --seed, --inpainter (auto | lama | deepfill | deepfill-random | patchmatch |
  telea | ns; auto = the paper's inpainter: DeepFill v1 with the checkpoint given or cached, else
  PatchMatch, never LaMa, unlike `gone remove`'s auto; lama = a column beyond the paper), --masks
  (model | oracle; default model when Mask R-CNN weights are found).

Evaluation (`evaluate`): every image goes through `gone.pipeline.PeopleRemover.remove`, the
procedure of `gone remove` (detect -> hole -> crop, scale, pad -> fill -> paste back), with the
detector being Mask R-CNN (`masks` "model") or the ground truth (`OracleDetector`).

Every output file is written atomically (temp file + rename).
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import pathlib
import sys
import time

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # `python experiments/x.py` without `pip install -e .`
    sys.path.insert(0, str(REPO_ROOT))

from gonefiles import quiet as _quiet  # noqa: E402

_quiet.quiet_backend_import()   # before anything loads TensorFlow

import numpy as np  # noqa: E402
from absl import flags  # noqa: E402

# the data and report modules (_data, _report); the names the scripts use are re-exported
from _data import (DataSource, ExperimentError, load_data,  # noqa: E402,F401
                   oracle_detections, read_rgb)
from _report import (RANDOM_WEIGHTS_BANNER, figure_grid, write_csv_atomic,  # noqa: E402,F401
                     write_outputs)
from _report import (EVAL_DONE_JSON, EXPERIMENT_FILES, FIG3_CSV, FIG3_PNG,  # noqa: E402,F401
                     FIG7_CSV, FIG7_PNG, FIGURE_PNG, INDEX_MD, LABELING_KEY_CSV, LABELING_SHEET_CSV,
                     LEARNING_CURVES_PNG, PER_IMAGE_CSV, RUN_INFO_JSON, SUMMARY_CSV, SUMMARY_MD,
                     TABLE6_CSV, TABLE6_MD, TABLE6_RUN_INFO_JSON)
from gone.io import write_text_atomic  # noqa: E402,F401
from gone.inpainters import INPAINTER_KINDS  # noqa: E402
from gone.models import DEFAULT_MIN_SCORE  # noqa: E402

FLAGS = flags.FLAGS

flags.DEFINE_string("coco_dir", None, "COCO 2014 root; unset = the synthetic benchmark")
flags.DEFINE_string("benchmark_dir", None,
                    "a COCO-format set with clean backgrounds (data_prep.synth or "
                    "data_prep.paste_back output) instead of the generated synthetic set")
flags.DEFINE_string("splits_dir", None,
                    "folder of data_prep.coco_splits manifests (default: <coco_dir>/gone_splits;"
                    " built on the fly when absent)")
flags.DEFINE_string("mrcnn_weights", None, "Mask R-CNN weights (.h5); default: cached weights")
flags.DEFINE_string("inpaint_checkpoint", None,
                    "DeepFill v1 checkpoint; default: cached (gone weights)")
flags.DEFINE_string("lama_weights", None,
                    "LaMa weights (best.ckpt, big-lama/ folder or converted .npz) for --inpainter lama; "
                    "default: cached (gone weights --download big-lama)")
flags.DEFINE_string("output_dir", None, "output folder (default: outputs/<script name>)")
flags.DEFINE_string("runs_dir", None, "folder of the training runs (default <output_dir>/runs); "
                                      "reproduce_paper.py shares one between the tables")
flags.DEFINE_bool("quiet", False, "no progress bars")
flags.DEFINE_bool("smoke", False, "get_config('smoke'): tiny images, the synthetic set (what the "
                                  "tests run)")
flags.DEFINE_bool("runlocal", False, "get_config('runlocal'): a short real-size run")
flags.DEFINE_multi_string("set", [], "override a config field: --set key=value (dotted keys for "
                                      "nested fields, values parsed as JSON when they parse)")
# shorthands for the config fields of the same name
flags.DEFINE_string("split", None, "config 'split': split name(s), comma separated, or manifest "
                                   "path(s)")
flags.DEFINE_integer("limit", None, "config 'limit': at most this many images per split")
flags.DEFINE_integer("seed", 0, "config 'seed' (synthetic scenes, COCO splits, labeling shuffle)")
flags.DEFINE_enum("inpainter", "auto", list(INPAINTER_KINDS),
                  "config 'inpainter' (gone.inpainters.make_inpainter); auto = the paper's: DeepFill "
                  "v1 when a checkpoint is given or cached, else PatchMatch (never LaMa); lama = a "
                  "column beyond the paper")
flags.DEFINE_enum("masks", None, ["model", "oracle"],
                  "config 'masks': Mask R-CNN detections or ground-truth person masks "
                  "(default: model if Mask R-CNN weights are found, else oracle)")

SHORTHAND_FIELDS = ("split", "limit", "inpainter", "masks")


# ----------------------------------------------------------------------------------------------
# Configuration

def eval_config(arg=None) -> dict:
    """Settings of the evaluation-only tables (1 and 2): data, models, holes, report."""
    smoke = arg == "smoke"
    return {
        "variant": arg or "paper",
        "seed": 0,
        "split": None,          # the table's default split(s)
        "limit": None,          # at most this many images per split
        "inpainter": "auto",
        "masks": None,          # None = "model" when Mask R-CNN weights are found, else "oracle"
        "min_score": DEFAULT_MIN_SCORE,   # Mask R-CNN score of a person (model masks)
        "dilation": None,       # of the dilated/traces holes; None = gone.masks.DEFAULT_DILATION
        # oracle masks on the synthetic set also cover each person's shadow and held object
        "oracle_relics": False,
        "figure_rows": 4,
        "synth": {"scenes": 3 if smoke else 12, "height": 64 if smoke else 256,
                  "width": 96 if smoke else 320},
    }


def _parse_value(text):
    try:
        return json.loads(text)
    except ValueError:
        return text


def apply_overrides(cfg: dict, items) -> dict:
    """`key=value` items (dotted keys reach into nested dicts; values parsed as JSON)."""
    cfg = copy.deepcopy(cfg)
    for item in items or ():
        if "=" not in item:
            raise ExperimentError(f"--set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        node, parts = cfg, key.strip().split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                raise ExperimentError(f"--set {key}: {part!r} is not a config section")
            node = node[part]
        if parts[-1] not in node:
            raise ExperimentError(f"--set {key}: no such config field (fields: "
                                  f"{', '.join(sorted(node))})")
        node[parts[-1]] = _parse_value(value.strip())
    return cfg


def config_from_flags(get_config) -> dict:
    """get_config(--smoke/--runlocal), then --set, then the shorthand flags given."""
    variant = "smoke" if FLAGS.smoke else ("runlocal" if FLAGS.runlocal else None)
    cfg = apply_overrides(get_config(variant), FLAGS.set)
    if FLAGS.seed:
        cfg["seed"] = int(FLAGS.seed)
    for name in SHORTHAND_FIELDS:
        if FLAGS[name].present:
            if name not in cfg:
                raise ExperimentError(f"--{name} does not apply to this experiment")
            cfg[name] = getattr(FLAGS, name)
    return cfg


@dataclasses.dataclass
class Environment:
    """Where things are (the flags, read once by the script)."""
    output_dir: pathlib.Path
    runs_dir: pathlib.Path
    coco_dir: str | None = None
    splits_dir: str | None = None
    baseline_checkpoint: str | None = None   # --inpaint_checkpoint
    verbose: int = 1
    benchmark_dir: str | None = None
    mrcnn_weights: str | None = None
    lama_weights: str | None = None          # --lama_weights


def environment_from_flags(script_name) -> Environment:
    out = pathlib.Path(FLAGS.output_dir or pathlib.Path("outputs") / script_name)
    return Environment(output_dir=out, runs_dir=pathlib.Path(FLAGS.runs_dir or out / "runs"),
                       coco_dir=FLAGS.coco_dir, splits_dir=FLAGS.splits_dir,
                       baseline_checkpoint=FLAGS.inpaint_checkpoint,
                       verbose=0 if FLAGS.quiet else 1, benchmark_dir=FLAGS.benchmark_dir,
                       mrcnn_weights=FLAGS.mrcnn_weights, lama_weights=FLAGS.lama_weights)


def split_names(cfg, default):
    return [s.strip() for s in (cfg.get("split") or default).split(",") if s.strip()]


# ----------------------------------------------------------------------------------------------
# Models

@dataclasses.dataclass
class Models:
    inpainter: object
    inpaint_source: str       # checkpoint path, "random", or the classical kind ("patchmatch")
    detector: object | None
    masks: str                # "model" | "oracle"
    mrcnn_source: str | None

    @property
    def random_weights(self) -> bool:
        return self.inpaint_source == "random"


def load_inpainter(checkpoint=None, kind="auto", lama_weights=None):
    """(inpainter, source) from gone.inpainters.make_inpainter: "auto" = explicit checkpoint >
    gone.weights cache > PatchMatch, the paper's inpainter (``auto_lama=False``: cached LaMa
    weights are not picked, as `gone remove` picks them); "lama" = LaMa from ``lama_weights`` or
    the cache; random DeepFill weights only for kind "deepfill-random". source: the checkpoint
    or LaMa weights, "random", or the classical kind ("patchmatch", "telea", "ns")."""
    from gone.inpainters import InpainterError, make_inpainter

    if checkpoint and not pathlib.Path(checkpoint).exists() and not pathlib.Path(
            str(checkpoint) + ".index").exists():
        raise ExperimentError(f"inpainting checkpoint not found: {checkpoint}")
    try:
        inpainter = make_inpainter(kind, checkpoint=checkpoint, auto_lama=False,
                                   lama_weights=lama_weights if kind == "lama" else None)
    except InpainterError as err:
        raise ExperimentError(str(err)) from None
    if inpainter.kind == "deepfill-random":
        return inpainter, "random"
    if inpainter.kind in ("deepfill", "lama"):
        return inpainter, str(getattr(inpainter, "weights_source", checkpoint))
    return inpainter, inpainter.kind


def load_models(cfg, env) -> Models:
    """The detector (`cfg["masks"]` "model"; None = model when Mask R-CNN weights are found) with
    `cfg["min_score"]`, and the inpainter `cfg["inpainter"]`."""
    from gone.weights import find_weight_file

    mrcnn = env.mrcnn_weights or find_weight_file("mask_rcnn_coco")
    if env.mrcnn_weights and not pathlib.Path(env.mrcnn_weights).is_file():
        raise ExperimentError(f"Mask R-CNN weights not found: {env.mrcnn_weights}")
    masks = cfg.get("masks") or ("model" if mrcnn else "oracle")
    detector = None
    if masks == "model":
        if not mrcnn:
            raise ExperimentError("--masks=model needs Mask R-CNN weights: pass --mrcnn_weights "
                                  "or run `gone weights` to cache mask_rcnn_coco.h5")
        from gone.models import load_detector

        print(f"loading Mask R-CNN weights {mrcnn} (about 7 s per image on CPU)")
        detector = load_detector(str(mrcnn), detection_min_confidence=float(cfg["min_score"]))
    inpainter, source = load_inpainter(env.baseline_checkpoint, cfg["inpainter"], env.lama_weights)
    print(f"inpainter: {inpainter.description}")
    if source == "random":
        print("!" * 72)
        print(f"!!! {RANDOM_WEIGHTS_BANNER}")
        print("!!! (asked for with --inpainter deepfill-random: a plumbing test)")
        print("!" * 72)
    return Models(inpainter, source, detector, masks, str(mrcnn) if mrcnn else None)


# ----------------------------------------------------------------------------------------------
# The evaluator: every image through PeopleRemover.remove, as `gone remove` does

def image_key(image) -> str:
    image = np.ascontiguousarray(image)
    return f"{image.shape}:" + hashlib.blake2b(image.tobytes(), digest_size=16).hexdigest()


class OracleDetector:
    """A perfect detector for PeopleRemover: the ground-truth detections of `samples`
    (`_data.oracle_detections`), looked up by the image's pixels."""

    def __init__(self, samples, held_objects=True):
        self._known = {image_key(s.image): oracle_detections(s, held_objects) for s in samples}

    def detect(self, images, verbose=0):
        try:
            return [self._known[image_key(im)] for im in images]
        except KeyError:
            raise ExperimentError("the oracle detector was asked about an image it has no "
                                  "ground truth for") from None


class DetectOnce:
    """Mask R-CNN behind PeopleRemover, run once per image however many removers (strategies,
    columns) ask about it."""

    def __init__(self, detector):
        self.detector = detector
        self._seen = {}

    def detect(self, images, verbose=0):
        keys = [image_key(im) for im in images]
        for key, image in zip(keys, images):
            if key not in self._seen:
                self._seen[key] = self.detector.detect([image], verbose=0)[0]
        return [self._seen[k] for k in keys]


def detector_for(models: Models, samples, held_objects=True):
    """What the removers detect with: the ground truth (oracle masks) or Mask R-CNN."""
    if models.masks == "oracle":
        return OracleDetector(samples, held_objects)
    return DetectOnce(models.detector)


def make_remover(inpainter, detector, strategy, cfg):
    """The removal procedure of `gone remove` with the experiment's strategy, dilation and score
    (large crops are inpainted: the tables count them)."""
    from gone.masks import parse_dilation
    from gone.pipeline import PeopleRemover

    dilation = cfg.get("dilation")
    return PeopleRemover(detector=detector, inpainter=inpainter, strategy=strategy,
                         dilation=parse_dilation(str(dilation)) if dilation is not None else None,
                         min_score=float(cfg.get("min_score", DEFAULT_MIN_SCORE)), large_crop="process")


def evaluate(data: DataSource, strategies, models: Models, cfg, output_dir, verbose=1) -> list:
    """Removes the people of every sample with every strategy (one PeopleRemover per strategy,
    `remove` once per image); writes the images; returns the per-image rows."""
    from tqdm import tqdm

    from gone import metrics
    from gone.io import write_image_atomic, write_mask_atomic
    from gone.masks import LARGE_CROP_THRESHOLD, select_instances

    out = pathlib.Path(output_dir)
    detector = detector_for(models, data.samples)
    removers = {s: make_remover(models.inpainter, detector, s, cfg) for s in strategies}
    rows = []
    for sample in tqdm(data.samples, desc="images", unit="img", disable=None if verbose else True):
        folder = out / "images" / sample.name
        original_path = write_image_atomic(folder / "original.png", sample.image)
        person_fraction = float(sample.person_masks.any(-1).mean()) if \
            sample.person_masks.shape[-1] else 0.0
        for strategy in strategies:
            remover = removers[strategy]
            result = remover.remove([sample.image])[0]
            hole, det = result.hole_mask, result.detections
            if result.fallback:   # nothing known to fill from (gone.pipeline.MIN_KNOWN_CONTEXT)
                tqdm.write(f"warning: {sample.name} {strategy}: {result.fallback}")
            hole_path = write_mask_atomic(folder / f"{strategy}_hole.png", hole)
            result_path = write_image_atomic(folder / f"{strategy}_result.png", result.output)
            row = {"image": sample.name, "columns": sample.columns, "strategy": strategy,
                   "status": result.status,
                   "num_people": int(np.count_nonzero(select_instances(
                       det, min_score=remover.min_score))),
                   "large_crop_fraction": result.large_crop_fraction,
                   "person_fraction": person_fraction,
                   "is_large_crop": int(result.large_crop_fraction > LARGE_CROP_THRESHOLD),
                   "fallback": int(bool(result.fallback)),
                   "gradient_norm": metrics.gradient_norm(result.output, hole) if hole.any()
                   else float("nan"),
                   "original_path": original_path.relative_to(out).as_posix(),
                   "hole_path": hole_path.relative_to(out).as_posix(),
                   "result_path": result_path.relative_to(out).as_posix(),
                   "masks": models.masks, "inpaint_weights": models.inpaint_source}
            if sample.clean is not None:
                row["psnr"] = metrics.psnr(result.output, sample.clean)
                row["ssim"] = metrics.ssim(result.output, sample.clean)
                if hole.any():
                    row["psnr_hole"] = metrics.psnr(result.output, sample.clean, mask=hole)
                    row["l1_hole"] = metrics.l1(result.output, sample.clean, mask=hole)
            rows.append(row)
    return rows


# ----------------------------------------------------------------------------------------------
# Running a script

def run_main(body, argv):
    """Runs `body()` with clear one-line errors and timing; returns the exit status."""
    if len(argv) > 1:
        print(f"error: unexpected arguments {argv[1:]}", file=sys.stderr)
        return 2
    start = time.time()
    from data_prep.coco_splits import CocoFilesError, SplitSizeError
    from gone.models import ModelLoadError

    try:
        paths = body()
    except (ExperimentError, CocoFilesError, SplitSizeError, ModelLoadError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"done in {time.time() - start:.0f} s. Outputs:")
    for what, p in paths.items():
        print(f"  {what:10s} {p}")
    return 0


def run_script(run, get_config, script_name, argv):
    """absl main body: config + environment from the flags, then `run(cfg, env)` with one-line
    errors."""
    def body():
        return run(config_from_flags(get_config), environment_from_flags(script_name))
    _quiet.filter_native_stderr()   # TensorFlow's start-up and run-time notes ("remapper failed")
    return run_main(body, argv)
