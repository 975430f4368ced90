"""Shared absl flags, data sources and the run loop of the paper's experiments.

Flags shared by every experiment script:

  --coco_dir            COCO 2014 root (val2014/, annotations/); unset = the synthetic benchmark
  --split               split name(s), comma separated (coco: a data_prep.coco_splits split or a
                        manifest path; synthetic / --benchmark_dir: ignored except for names)
  --mrcnn_weights       Mask R-CNN .h5 (default: gone.weights cache, if present)
  --inpaint_checkpoint  DeepFill v1 checkpoint (default: gone.weights cache)
  --inpainter           auto | deepfill | deepfill-random | patchmatch | telea | ns (default auto:
                        DeepFill v1 with the checkpoint given or cached, else PatchMatch; random
                        DeepFill weights only with deepfill-random; gone.inpainters)
  --output_dir          where everything is written (default: outputs/<script>)
  --limit               at most this many images per split
  --seed                seed of the synthetic set, the COCO splits and the labeling-sheet shuffle
  --masks               model | oracle (default: model if Mask R-CNN weights are found)

Every output file is written atomically (temp file + rename).
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import pathlib
import sys
import time

# TensorFlow's C++ start-up chatter hides the progress output, and mrcnn's reference numerics
# are TF's Eigen kernels (oneDNN off, mrcnn/__init__.py): both before anything loads TensorFlow
# (gone/quiet.py); users can still override them.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # `python experiments/x.py` without `pip install -e .`
    sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402
from absl import flags  # noqa: E402
from gone.inpainters import INPAINTER_KINDS  # noqa: E402
from gone.io import write_bytes_atomic, write_text_atomic  # noqa: E402
from gone.models import DEFAULT_MIN_SCORE  # noqa: E402

FLAGS = flags.FLAGS

flags.DEFINE_string("coco_dir", None, "COCO 2014 root; unset = the synthetic benchmark")
flags.DEFINE_string("split", None, "split name(s), comma separated, or manifest path(s)")
flags.DEFINE_string("mrcnn_weights", None, "Mask R-CNN weights (.h5); default: cached weights")
flags.DEFINE_string("inpaint_checkpoint", None,
                    "DeepFill v1 checkpoint; default: cached (gone weights)")
flags.DEFINE_enum("inpainter", "auto", list(INPAINTER_KINDS),
                  "what fills the holes (gone.inpainters.make_inpainter); auto = DeepFill v1 when "
                  "a checkpoint is given or cached, else PatchMatch")
flags.DEFINE_string("output_dir", None, "output folder (default: outputs/<script name>)")
flags.DEFINE_integer("limit", None, "at most this many images per split")
flags.DEFINE_integer("seed", 0, "seed (synthetic scenes, COCO splits, labeling shuffle)")
flags.DEFINE_enum("masks", None, ["model", "oracle"],
                  "hole source: Mask R-CNN detections or ground-truth person masks "
                  "(default: model if Mask R-CNN weights are found, else oracle)")
flags.DEFINE_string("benchmark_dir", None,
                    "a COCO-format set with clean backgrounds (data_prep.synth or "
                    "data_prep.paste_back output) instead of the generated synthetic set")
flags.DEFINE_string("splits_dir", None,
                    "folder of data_prep.coco_splits manifests (default: <coco_dir>/gone_splits;"
                    " built on the fly when absent)")
flags.DEFINE_integer("synth_scenes", 12, "number of synthetic scenes")
flags.DEFINE_integer("synth_height", 256, "synthetic scene height")
flags.DEFINE_integer("synth_width", 320, "synthetic scene width")
flags.DEFINE_string("dilation", None, "dilation of the 'dilated' strategy (pixels or fraction; "
                    "default gone.masks.DEFAULT_DILATION)")
flags.DEFINE_float("min_score", DEFAULT_MIN_SCORE, "minimum Mask R-CNN score of a person (model masks)")
flags.DEFINE_integer("figure_rows", 4, "images shown in the figure")
flags.DEFINE_bool("oracle_relics", False,
                  "oracle masks on the synthetic set also cover each person's shadow and held "
                  "object (the ideal hole); default: the person masks only")

RANDOM_WEIGHTS_BANNER = "RANDOM INPAINTING WEIGHTS: results are meaningless"

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


class ExperimentError(Exception):
    """Bad flags or inputs; printed as one clear line."""


# ----------------------------------------------------------------------------------------------
# Atomic writing

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


# ----------------------------------------------------------------------------------------------
# Data

@dataclasses.dataclass
class Sample:
    """One image to process; `clean` is the people-free ground truth when known."""

    name: str                 # unique, file-name safe
    image: np.ndarray         # RGB uint8
    person_masks: np.ndarray  # HxWxN bool ground-truth person instances (may be N = 0)
    clean: np.ndarray | None
    columns: list             # split / column names the image belongs to
    object_masks: np.ndarray | None = None  # HxWxM bool held objects (synthetic ground truth)
    object_classes: tuple = ()              # M COCO class names of the held objects


@dataclasses.dataclass
class DataSource:
    description: str
    samples: list
    columns: list             # column (split) names in display order
    has_ground_truth: bool


def _read_rgb(path) -> np.ndarray:
    from gone.io import ImageReadError, read_image

    try:
        return read_image(path)
    except ImageReadError as err:
        raise ExperimentError(str(err)) from None


def load_benchmark(ann_path, name, split_columns, limit=None, relics=False) -> DataSource:
    """A COCO-format set with `background_file` ground truth (data_prep.synth / paste_back).

    `split_columns`: column names; the first is every image, a column ending in
    "no-large-crop" keeps images whose person masks cover <= 50 %. With `relics`, each
    person's mask also covers its shadow and held object (data_prep.synth annotations)."""
    from pycocotools.coco import COCO

    from data_prep.coco_splits import is_large_crop

    ann_path = pathlib.Path(ann_path)
    if not ann_path.is_file():
        raise ExperimentError(f"benchmark annotations not found: {ann_path}")
    import contextlib

    with contextlib.redirect_stdout(io.StringIO()):   # pycocotools prints progress
        coco = COCO(str(ann_path))
    person = coco.getCatIds(catNms=["person"])
    if not person:
        raise ExperimentError(f"{ann_path} has no 'person' category")
    samples = []
    ids = sorted(coco.imgs)
    for image_id in ids:
        info = coco.imgs[image_id]
        image = _read_rgb(ann_path.parent / "images" / info["file_name"])
        clean = None
        if info.get("background_file"):
            clean = _read_rgb(ann_path.parent / info["background_file"])
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[image_id], catIds=person, iscrowd=None))
        masks = np.zeros(image.shape[:2] + (len(anns),), bool)
        for k, a in enumerate(anns):
            masks[..., k] = coco.annToMask(a).astype(bool)
        frac = float(masks.any(-1).mean()) if masks.shape[-1] else 0.0
        if relics and masks.shape[-1]:
            index = {a["id"]: k for k, a in enumerate(anns)}
            relic_cats = coco.getCatIds(catNms=["shadow", "held_object"])
            for r in coco.loadAnns(coco.getAnnIds(imgIds=[image_id], catIds=relic_cats)):
                k = index.get(r.get("person_annotation_id"))
                if k is not None:
                    masks[..., k] |= coco.annToMask(r).astype(bool)
        columns = [c for c in split_columns
                   if not (c.endswith("no-large-crop") and is_large_crop(frac))]
        objects, object_classes = _held_objects(coco, image_id, image.shape)
        samples.append(Sample(pathlib.Path(info["file_name"]).stem, image, masks, clean,
                              columns, objects, object_classes))
    if limit is not None:
        kept, counts = [], {c: 0 for c in split_columns}
        for s in samples:   # `limit` images per column
            s.columns = [c for c in s.columns if counts[c] < limit]
            for c in s.columns:
                counts[c] += 1
            if s.columns:
                kept.append(s)
        samples = kept
    return DataSource(name, samples, list(split_columns), True)


def _held_objects(coco, image_id, shape):
    """Held-object masks of a data_prep.synth image and the COCO class a perfect detector would
    give them (synth.COCO_CLASS_OF_OBJECT_KIND); none for other sets."""
    from data_prep.synth import COCO_CLASS_OF_OBJECT_KIND

    cats = coco.getCatIds(catNms=["held_object"])
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[image_id], catIds=cats)) if cats else []
    anns = [a for a in anns if a.get("object_kind") in COCO_CLASS_OF_OBJECT_KIND]
    masks = np.zeros(shape[:2] + (len(anns),), bool)
    for k, a in enumerate(anns):
        masks[..., k] = coco.annToMask(a).astype(bool)
    return masks, tuple(COCO_CLASS_OF_OBJECT_KIND[a["object_kind"]] for a in anns)


def load_coco_splits(coco_dir, split_names, splits_dir, output_dir, seed, limit) -> DataSource:
    """Images of data_prep.coco_splits manifests; oracle masks = ground-truth person masks."""
    import contextlib

    from data_prep import coco_splits

    coco_dir = pathlib.Path(coco_dir)
    splits_dir = pathlib.Path(splits_dir) if splits_dir else coco_dir / "gone_splits"
    manifests = {}
    for name in split_names:
        path = pathlib.Path(name)
        if path.suffix == ".json":
            manifests[path.stem] = coco_splits.read_manifest(path)
            continue
        canonical = coco_splits.canonical_split_name(name)
        path = splits_dir / f"{canonical}.json"
        if not path.is_file():
            print(f"split manifests not found in {splits_dir}: building them (seed {seed})")
            built = coco_splits.build_splits(coco_dir, seed=seed)
            splits_dir = pathlib.Path(output_dir) / "splits"
            coco_splits.write_manifests(built, splits_dir)
            print(f"split manifests written to {splits_dir}")
            path = splits_dir / f"{canonical}.json"
        manifests[canonical] = coco_splits.read_manifest(path)
    subset = next(iter(manifests.values()))["source_subset"]
    with contextlib.redirect_stdout(io.StringIO()):
        coco, _ = coco_splits.load_coco(coco_dir, subset)
    members = {}
    for column, m in manifests.items():
        ids = [im["id"] for im in m["images"]][:limit]
        for i in ids:
            members.setdefault(i, []).append(column)
    samples = []
    for image_id in sorted(members):
        info = coco.imgs.get(image_id)
        if info is None:
            raise ExperimentError(f"image id {image_id} of the split manifests is not in the "
                                  f"COCO annotation file of {coco_dir}")
        image = _read_rgb(coco_dir / subset / info["file_name"])
        anns = coco_splits.person_annotations(coco, image_id)
        masks = np.zeros(image.shape[:2] + (len(anns),), bool)
        for k, a in enumerate(anns):
            masks[..., k] = coco.annToMask(a).astype(bool)
        samples.append(Sample(pathlib.Path(info["file_name"]).stem, image, masks, None,
                              members[image_id]))
    return DataSource(f"COCO {subset} ({coco_dir})", samples, list(manifests), False)


def load_data(split_names, output_dir, benchmark_columns) -> DataSource:
    """The experiment's images, from the flags: COCO splits, a benchmark dir or synthetic."""
    if FLAGS.coco_dir:
        return load_coco_splits(FLAGS.coco_dir, split_names, FLAGS.splits_dir, output_dir,
                                FLAGS.seed, FLAGS.limit)
    if FLAGS.benchmark_dir:
        root = pathlib.Path(FLAGS.benchmark_dir)
        return load_benchmark(root / "annotations.json", f"benchmark {root}",
                              benchmark_columns, FLAGS.limit, FLAGS.oracle_relics)
    from data_prep import synth

    n = FLAGS.synth_scenes if FLAGS.limit is None else min(FLAGS.synth_scenes, FLAGS.limit)
    root = pathlib.Path(output_dir) / "synth_data"
    print(f"generating {n} synthetic scenes ({FLAGS.synth_height}x{FLAGS.synth_width}, "
          f"seed {FLAGS.seed}) in {root}")
    ann = synth.generate(root, n, seed=FLAGS.seed, height=FLAGS.synth_height,
                         width=FLAGS.synth_width)
    return load_benchmark(ann, f"synthetic benchmark ({n} scenes, seed {FLAGS.seed})",
                          benchmark_columns, None, FLAGS.oracle_relics)


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


def load_inpainter(checkpoint=None, kind="auto"):
    """(inpainter, source) from gone.inpainters.make_inpainter: "auto" = explicit checkpoint >
    gone.weights cache > PatchMatch; random DeepFill weights only for kind "deepfill-random".
    source: the checkpoint, "random", or the classical kind ("patchmatch", "telea", "ns")."""
    from gone.inpainters import InpainterError, make_inpainter

    if checkpoint and not pathlib.Path(checkpoint).exists() and not pathlib.Path(
            str(checkpoint) + ".index").exists():
        raise ExperimentError(f"inpainting checkpoint not found: {checkpoint}")
    if kind == "deepfill-random":   # the others load the backend through gone.models (quietly)
        from gone.quiet import import_backend_quietly
        import_backend_quietly()
    try:
        inpainter = make_inpainter(kind, checkpoint=checkpoint)
    except InpainterError as err:
        raise ExperimentError(str(err)) from None
    if inpainter.kind == "deepfill-random":
        return inpainter, "random"
    if inpainter.kind == "deepfill":
        return inpainter, str(getattr(inpainter, "weights_source", checkpoint))
    return inpainter, inpainter.kind


def load_models(masks_flag=None) -> Models:
    from gone.weights import find_weight_file

    mrcnn = FLAGS.mrcnn_weights or find_weight_file("mask_rcnn_coco")
    if FLAGS.mrcnn_weights and not pathlib.Path(FLAGS.mrcnn_weights).is_file():
        raise ExperimentError(f"Mask R-CNN weights not found: {FLAGS.mrcnn_weights}")
    masks = masks_flag or FLAGS.masks or ("model" if mrcnn else "oracle")
    detector = None
    if masks == "model":
        if not mrcnn:
            raise ExperimentError("--masks=model needs Mask R-CNN weights: pass --mrcnn_weights "
                                  "or run `gone weights` to cache mask_rcnn_coco.h5")
        from gone.models import load_detector

        print(f"loading Mask R-CNN weights {mrcnn} (about 7 s per image on CPU)")
        detector = load_detector(str(mrcnn), detection_min_confidence=FLAGS.min_score)
    inpainter, source = load_inpainter(FLAGS.inpaint_checkpoint, FLAGS.inpainter)
    print(f"inpainter: {inpainter.description}")
    if source == "random":
        print("!" * 72)
        print(f"!!! {RANDOM_WEIGHTS_BANNER}")
        print("!!! (asked for with --inpainter deepfill-random: a plumbing test)")
        print("!" * 72)
    return Models(inpainter, source, detector, masks, str(mrcnn) if mrcnn else None)


# ----------------------------------------------------------------------------------------------
# The run loop

PER_IMAGE_COLUMNS = ("image", "columns", "strategy", "status", "num_people",
                     "large_crop_fraction", "person_fraction", "is_large_crop", "gradient_norm",
                     "psnr", "ssim", "psnr_hole", "l1_hole", "original_path", "hole_path",
                     "result_path", "masks", "inpaint_weights")


def detections_for(sample: Sample, models: Models):
    from gone.masks import coco_class_names, detections_from_masks

    if models.masks == "oracle":   # a perfect detector: the people and the objects they hold
        objects = sample.object_masks
        if objects is None or not objects.shape[-1]:
            return detections_from_masks(sample.person_masks)
        names = coco_class_names()
        ids = [1] * sample.person_masks.shape[-1] + [names.index(c) for c in sample.object_classes]
        return detections_from_masks(np.concatenate([sample.person_masks, objects], -1), ids)
    return models.detector.detect([sample.image], verbose=0)[0]


def process(data: DataSource, strategies, models: Models, output_dir) -> list:
    """Inpaints every sample with every strategy; writes images; returns per-image rows."""
    from tqdm import tqdm

    from gone import metrics
    from gone.io import write_image_atomic, write_mask_atomic
    from gone.masks import LARGE_CROP_THRESHOLD, hole_mask, parse_dilation, select_instances
    from gone.pipeline import PeopleRemover

    out = pathlib.Path(output_dir)
    dilation = parse_dilation(FLAGS.dilation) if FLAGS.dilation else None
    removers = {s: PeopleRemover(detector=None, inpainter=models.inpainter, strategy=s,
                                 dilation=dilation, large_crop="process") for s in strategies}
    min_score = FLAGS.min_score if models.masks == "model" else 0.0
    rows = []
    for sample in tqdm(data.samples, desc="images", unit="img"):
        det = detections_for(sample, models)
        folder = out / "images" / sample.name
        original_path = write_image_atomic(folder / "original.png", sample.image)
        person_fraction = float(sample.person_masks.any(-1).mean()) if \
            sample.person_masks.shape[-1] else 0.0
        for strategy in strategies:
            remover = removers[strategy]
            hole = hole_mask(det, sample.image.shape, strategy=strategy,
                             dilation=remover.dilation, min_score=min_score, image=sample.image)
            result = remover.remove([sample.image], hole_masks=[hole])[0]
            if result.fallback:   # nothing known to fill from (gone.pipeline.MIN_KNOWN_CONTEXT)
                tqdm.write(f"warning: {sample.name} {strategy}: {result.fallback}")
            hole_path = write_mask_atomic(folder / f"{strategy}_hole.png", hole)
            result_path = write_image_atomic(folder / f"{strategy}_result.png", result.output)
            row = {"image": sample.name, "columns": sample.columns, "strategy": strategy,
                   "status": result.status,
                   "num_people": int(np.count_nonzero(select_instances(det,
                                                                       min_score=min_score))),
                   "large_crop_fraction": result.large_crop_fraction,
                   "person_fraction": person_fraction,
                   "is_large_crop": int(result.large_crop_fraction > LARGE_CROP_THRESHOLD),
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


def labeling_results(rows, column_of_row):
    """One labeling entry per (row, column); `column_of_row(row)` -> list of column names."""
    return [{"image": r["image"], "column": c, "image_path": r["result_path"]}
            for r in rows if r["status"] == "inpainted" for c in column_of_row(r)]


def header_lines(models: Models, data: DataSource, title: str) -> list:
    lines = [f"# {title}", ""]
    if models.random_weights:
        lines += [f"**{RANDOM_WEIGHTS_BANNER}**", ""]
    lines += [f"- data: {data.description}",
              f"- masks: {models.masks}" + (f" (Mask R-CNN {models.mrcnn_source})"
                                            if models.masks == "model" else
                                            " (ground-truth person masks, and held-object "
                                            "masks where the set has them" +
                                            (" + shadows + held objects)" if FLAGS.oracle_relics
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
             "with clean background | inpainted | large crop | mean gradient norm |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for c in columns:
        sel = [r for r in rows if c in column_of_row(r)]
        lines.append(f"| {c} | {_mean_ci(r.get('psnr') for r in sel)} | "
                     f"{mean((r.get('ssim') for r in sel), '.4f')} | "
                     f"{mean((r.get('psnr_hole') for r in sel), '.2f')} | {len(sel)} | "
                     f"{len(_finite(r.get('psnr') for r in sel))} | "
                     f"{sum(r['status'] == 'inpainted' for r in sel)} | "
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
                  script):
    """Per-image CSV, labeling sheet + private key, figure, summary, run info."""
    from gone import labeling

    out = pathlib.Path(output_dir)
    per_image = write_csv_atomic(out / PER_IMAGE_CSV, PER_IMAGE_COLUMNS, rows)
    sheet, key = labeling.write_labeling_sheet(
        labeling_results(rows, column_of_row), out / LABELING_SHEET_CSV,
        out / LABELING_KEY_CSV, seed=FLAGS.seed, blind_images_dir="to_label")
    figure = figure_fn(out / FIGURE_PNG)
    lines = header_lines(models, data, title)
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
            "seed": FLAGS.seed, "limit": FLAGS.limit, "n_images": len(data.samples),
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


def default_output_dir(script_name: str) -> pathlib.Path:
    return pathlib.Path(FLAGS.output_dir or pathlib.Path("outputs") / script_name)


def split_names(default):
    return [s.strip() for s in (FLAGS.split or default).split(",") if s.strip()]


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
