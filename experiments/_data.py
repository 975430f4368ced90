"""Data of the paper's experiments: the images, their ground truth and where they come from.

Three sources, one `DataSource` of `Sample`s: data_prep.coco_splits manifests on COCO
(`load_coco_splits`), a COCO-format folder with clean backgrounds (data_prep.synth or
data_prep.paste_back output, `load_benchmark`), or the synthetic set generated on the fly
(`load_data` picks one from the environment). `oracle_detections` is a perfect detector's output
for a sample (its ground-truth masks).
"""
from __future__ import annotations

import dataclasses
import io
import pathlib

import numpy as np


class ExperimentError(Exception):
    """Bad flags or inputs; printed as one clear line."""


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


def read_rgb(path) -> np.ndarray:
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
        image = read_rgb(ann_path.parent / "images" / info["file_name"])
        clean = None
        if info.get("background_file"):
            clean = read_rgb(ann_path.parent / info["background_file"])
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
        image = read_rgb(coco_dir / subset / info["file_name"])
        anns = coco_splits.person_annotations(coco, image_id)
        masks = np.zeros(image.shape[:2] + (len(anns),), bool)
        for k, a in enumerate(anns):
            masks[..., k] = coco.annToMask(a).astype(bool)
        samples.append(Sample(pathlib.Path(info["file_name"]).stem, image, masks, None,
                              members[image_id]))
    return DataSource(f"COCO {subset} ({coco_dir})", samples, list(manifests), False)


def load_data(cfg, env, split_names, benchmark_columns) -> DataSource:
    """The experiment's images: COCO splits (`env.coco_dir`), a benchmark folder
    (`env.benchmark_dir`) or the synthetic set generated from `cfg["synth"]`."""
    seed, limit = int(cfg["seed"]), cfg.get("limit")
    if env.coco_dir:
        if not pathlib.Path(env.coco_dir).is_dir():
            raise ExperimentError(f"COCO root not found: {env.coco_dir}")
        return load_coco_splits(env.coco_dir, split_names, env.splits_dir, env.output_dir, seed,
                                limit)
    relics = bool(cfg.get("oracle_relics"))
    if env.benchmark_dir:
        root = pathlib.Path(env.benchmark_dir)
        return load_benchmark(root / "annotations.json", f"benchmark {root}",
                              benchmark_columns, limit, relics)
    from data_prep import synth

    spec = cfg["synth"]
    n = int(spec["scenes"]) if limit is None else min(int(spec["scenes"]), int(limit))
    root = pathlib.Path(env.output_dir) / "synth_data"
    print(f"generating {n} synthetic scenes ({spec['height']}x{spec['width']}, seed {seed}) "
          f"in {root}")
    ann = synth.generate(root, n, seed=seed, height=int(spec["height"]), width=int(spec["width"]),
                         progress=env.verbose > 0)
    return load_benchmark(ann, f"synthetic benchmark ({n} scenes, seed {seed})",
                          benchmark_columns, None, relics)


def oracle_detections(sample: Sample, held_objects=True) -> dict:
    """What a perfect detector finds in `sample`: its ground-truth people and, with
    `held_objects`, the objects they hold (with the COCO class a detector would give them)."""
    from gone.masks import coco_class_names, detections_from_masks

    objects = sample.object_masks if held_objects else None
    if objects is None or not objects.shape[-1]:
        return detections_from_masks(sample.person_masks)
    names = coco_class_names()
    ids = [1] * sample.person_masks.shape[-1] + [names.index(c) for c in sample.object_classes]
    return detections_from_masks(np.concatenate([sample.person_masks, objects], -1), ids)
