"""The CS230 paper's COCO 2014 splits, as versioned, deterministic manifest files.

From a COCO 2014 root (``<coco_dir>/val2014/*.jpg`` and
``<coco_dir>/annotations/instances_val2014.json``, read with pycocotools):

=========================  ===================================================================
split                      definition
=========================  ===================================================================
``train-40k``              ``train_size`` (default 40,000) images sampled from val2014
``train-2k``               2,000 images sampled from train-40k
``train-2k-no-people``     2,000 images of train-40k with no person annotation (crowd included)
``val-100``                100 images with people, from the held-out part of val2014
``val-100-no-large-crop``  100 held-out images with people whose person masks cover <= 50 %
                           (its members of val-100 first, topped up from the held-out pool)
``test-100-no-large-crop`` 100 held-out images with people, no large crop, disjoint from both
                           val splits (same distribution as val-100-no-large-crop)
=========================  ===================================================================

Why a held-out part of val2014: the paper drew Val/Test from "COCO 2014-test", whose annotations
are not public, so neither "has people" nor "large crop" can be computed from ground truth
there. We hold out the val2014 images not in train-40k (40,504 - 40,000 = 504 images, about 230
with people) and compute everything from their ground-truth masks. With ``--mrcnn_weights`` the
large-crop fraction is also computed from Mask R-CNN person masks and recorded beside the
ground-truth one (``large_crop_fraction_model``); ``--large_crop_source model`` makes the model
value decide membership (what one would do on test2014).

"Large crop": the union of the image's person masks (crowd regions included) covers more than
``gone.masks.LARGE_CROP_THRESHOLD`` (0.5) of the image.

Every manifest (``<out>/<split>.json``) records the image ids, file names, seed, counts, the
SHA-256 of the source annotation file and the manifest version; ``<out>/index.json`` lists them.
The same seed and COCO files give byte-identical manifests. Missing or inconsistent COCO files
raise ``CocoFilesError`` naming the file.

    python -m data_prep.coco_splits --coco_dir /data/coco --out splits/ [--seed 0]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import pathlib
import sys
import zlib

import numpy as np

from gone.io import write_bytes_atomic

MANIFEST_VERSION = 1
LARGE_CROP_THRESHOLD = 0.5   # same as gone.masks.LARGE_CROP_THRESHOLD (kept importable alone)

SPLITS = ("train-40k", "train-2k", "train-2k-no-people", "val-100", "val-100-no-large-crop",
          "test-100-no-large-crop")
DEFAULT_SIZES = {"train-40k": 40000, "train-2k": 2000, "train-2k-no-people": 2000,
                 "val-100": 100, "val-100-no-large-crop": 100, "test-100-no-large-crop": 100}
# Aliases used by experiment flags and the paper's names.
SPLIT_ALIASES = {"Train-40k": "train-40k", "Train-2k": "train-2k",
                 "Train-2k-no-people": "train-2k-no-people", "Val-100": "val-100",
                 "Val-100-no-large-crop": "val-100-no-large-crop",
                 "Test-100-no-large-crop": "test-100-no-large-crop"}


class CocoFilesError(FileNotFoundError):
    """A COCO file is missing, unreadable or inconsistent; the message names the file."""


class SplitSizeError(ValueError):
    """The COCO data has too few eligible images for a requested split size."""


def canonical_split_name(name: str) -> str:
    n = SPLIT_ALIASES.get(name, name).lower().replace("_", "-")
    if n not in SPLITS:
        raise ValueError(f"unknown split {name!r}; choose one of {', '.join(SPLITS)}")
    return n


# ----------------------------------------------------------------------------------------------
# Loading and checking the COCO files

def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def annotation_path(coco_dir, subset="val2014") -> pathlib.Path:
    return pathlib.Path(coco_dir) / "annotations" / f"instances_{subset}.json"


def load_coco(coco_dir, subset="val2014"):
    """pycocotools COCO of `<coco_dir>/annotations/instances_<subset>.json`, checked for the
    structure this module needs. Raises CocoFilesError naming the offending file."""
    from pycocotools.coco import COCO

    coco_dir = pathlib.Path(coco_dir)
    if not coco_dir.is_dir():
        raise CocoFilesError(f"COCO root not found: {coco_dir}")
    path = annotation_path(coco_dir, subset)
    if not path.is_file():
        raise CocoFilesError(f"COCO annotation file not found: {path} (expected the COCO 2014 "
                             f"layout <coco_dir>/annotations/instances_{subset}.json)")
    try:
        with open(path, "rb") as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CocoFilesError(f"COCO annotation file {path} is not valid JSON: {err}") from None
    for key in ("images", "annotations", "categories"):
        if not isinstance(data, dict) or not isinstance(data.get(key), list):
            raise CocoFilesError(f"COCO annotation file {path} has no '{key}' list")
    image_ids = set()
    for im in data["images"]:
        if not all(k in im for k in ("id", "file_name", "height", "width")):
            raise CocoFilesError(f"COCO annotation file {path}: image entry {im!r} lacks one of "
                                 "id, file_name, height, width")
        image_ids.add(im["id"])
    for ann in data["annotations"]:
        if ann.get("image_id") not in image_ids:
            raise CocoFilesError(f"COCO annotation file {path} is inconsistent: annotation "
                                 f"{ann.get('id')} refers to unknown image id "
                                 f"{ann.get('image_id')}")
    if not any(c.get("name") == "person" for c in data["categories"]):
        raise CocoFilesError(f"COCO annotation file {path} has no 'person' category")
    coco = COCO()
    coco.dataset = data
    coco.createIndex()
    return coco, path


def person_category_id(coco) -> int:
    return coco.getCatIds(catNms=["person"])[0]


def person_annotations(coco, image_id):
    """All person annotations of an image, crowd regions included."""
    return coco.loadAnns(coco.getAnnIds(imgIds=[image_id], catIds=[person_category_id(coco)],
                                        iscrowd=None))


def person_union_mask(coco, image_id) -> np.ndarray:
    info = coco.imgs[image_id]
    union = np.zeros((info["height"], info["width"]), bool)
    for ann in person_annotations(coco, image_id):
        union |= coco.annToMask(ann).astype(bool)
    return union


def large_crop_fraction_gt(coco, image_id) -> float:
    """Fraction of the image covered by the union of its ground-truth person masks."""
    return float(person_union_mask(coco, image_id).mean())


def is_large_crop(fraction: float, threshold: float = LARGE_CROP_THRESHOLD) -> bool:
    return fraction > threshold


class ModelLargeCrop:
    """Large-crop fraction from Mask R-CNN person masks (lazy; ~7 s/image on CPU)."""

    def __init__(self, weights_path, min_score=0.7):
        from gone.models import load_detector

        self.model = load_detector(weights_path, detection_min_confidence=min_score)
        self.min_score = min_score

    def __call__(self, image_path) -> float:
        from gone.io import read_image
        from gone.masks import hole_mask, large_crop_fraction

        image = read_image(image_path)
        det = self.model.detect([image], verbose=0)[0]
        hole = hole_mask(det, image.shape, strategy="mask", min_score=self.min_score)
        return large_crop_fraction(hole)


# ----------------------------------------------------------------------------------------------
# Sampling

def _rng(seed: int, split: str) -> np.random.Generator:
    # One independent stream per split, stable across Python runs (crc32, not hash()).
    return np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(split.encode())]))


def _sample(ids, n, seed, split, what):
    ids = sorted(ids)
    if n > len(ids):
        raise SplitSizeError(f"split {split}: needs {n} {what} but only {len(ids)} are "
                             "available; lower the size (e.g. --sizes) or use a larger COCO set")
    picked = _rng(seed, split).choice(len(ids), size=n, replace=False)
    return sorted(ids[i] for i in picked)


def build_splits(coco_dir, seed: int = 0, sizes=None, subset: str = "val2014",
                 check_images: bool = True, mrcnn_weights=None, large_crop_source: str = "gt",
                 progress: bool = True):
    """Computes all splits; returns {split: manifest dict} (nothing written)."""
    sizes = {**DEFAULT_SIZES, **(sizes or {})}
    if large_crop_source not in ("gt", "model"):
        raise ValueError("large_crop_source must be 'gt' or 'model'")
    if large_crop_source == "model" and not mrcnn_weights:
        raise ValueError("large_crop_source='model' needs mrcnn_weights")
    coco, ann_path = load_coco(coco_dir, subset)
    ann_hash = sha256_file(ann_path)
    image_dir = pathlib.Path(coco_dir) / subset
    all_ids = sorted(coco.imgs)
    person_cat = person_category_id(coco)
    with_people = set(coco.getImgIds(catIds=[person_cat]))   # crowd annotations count too

    train = _sample(all_ids, sizes["train-40k"], seed, "train-40k", "images")
    train_set = set(train)
    heldout = [i for i in all_ids if i not in train_set]
    train2k = _sample(train, sizes["train-2k"], seed, "train-2k", "images")
    train2k_np = _sample([i for i in train if i not in with_people], sizes["train-2k-no-people"],
                         seed, "train-2k-no-people", "images without people")

    pool = [i for i in heldout if i in with_people]
    detector = ModelLargeCrop(mrcnn_weights) if mrcnn_weights else None
    fractions, model_fractions = {}, {}
    iterator = pool
    if progress and pool:
        from tqdm import tqdm

        iterator = tqdm(pool, desc="large-crop fractions", unit="img", leave=False, disable=None)
    for i in iterator:
        fractions[i] = large_crop_fraction_gt(coco, i)
        if detector is not None:
            model_fractions[i] = detector(image_dir / coco.imgs[i]["file_name"])
    decide = model_fractions if large_crop_source == "model" else fractions
    small = [i for i in pool if not is_large_crop(decide[i])]

    val = _sample(pool, sizes["val-100"], seed, "val-100", "held-out images with people")
    val_small_in_val = [i for i in val if not is_large_crop(decide[i])]
    need = sizes["val-100-no-large-crop"]
    if len(val_small_in_val) >= need:
        val_nl = _sample(val_small_in_val, need, seed, "val-100-no-large-crop",
                         "images without large crop")
    else:
        extra_pool = [i for i in small if i not in set(val)]
        extra = _sample(extra_pool, need - len(val_small_in_val), seed,
                        "val-100-no-large-crop", "held-out images with people and no large crop")
        val_nl = sorted(val_small_in_val + extra)
    used = set(val) | set(val_nl)
    test_nl = _sample([i for i in small if i not in used], sizes["test-100-no-large-crop"], seed,
                      "test-100-no-large-crop",
                      "held-out images with people, no large crop, not in the val splits")

    members = {"train-40k": train, "train-2k": train2k, "train-2k-no-people": train2k_np,
               "val-100": val, "val-100-no-large-crop": val_nl,
               "test-100-no-large-crop": test_nl}
    if check_images:
        needed = sorted(set().union(*members.values()))
        missing = [coco.imgs[i]["file_name"] for i in needed
                   if not (image_dir / coco.imgs[i]["file_name"]).is_file()]
        if missing:
            raise CocoFilesError(f"COCO image file not found: {image_dir / missing[0]} "
                                 f"({len(missing)} of {len(needed)} split images are missing "
                                 f"from {image_dir}; inconsistent with {ann_path})")
    descriptions = {
        "train-40k": f"{sizes['train-40k']} images sampled from {subset}",
        "train-2k": "sampled from train-40k",
        "train-2k-no-people": "sampled from the train-40k images with no person annotation "
                              "(crowd included)",
        "val-100": f"held-out {subset} images (not in train-40k) with people",
        "val-100-no-large-crop": "held-out images with people, person masks <= 50 % of the "
                                 "image; val-100 members first, topped up from the pool",
        "test-100-no-large-crop": "held-out images with people, no large crop, disjoint from "
                                  "val-100 and val-100-no-large-crop",
    }
    manifests = {}
    for split, ids in members.items():
        images = []
        for i in ids:
            info = coco.imgs[i]
            entry = {"id": int(i), "file_name": info["file_name"],
                     "height": int(info["height"]), "width": int(info["width"]),
                     "num_people": len(person_annotations(coco, i))}
            if i in fractions:
                entry["large_crop_fraction_gt"] = round(fractions[i], 6)
            if i in model_fractions:
                entry["large_crop_fraction_model"] = round(model_fractions[i], 6)
            images.append(entry)
        manifests[split] = {
            "manifest_version": MANIFEST_VERSION,
            "split": split,
            "description": descriptions[split],
            "seed": int(seed),
            "count": len(ids),
            "source_subset": subset,
            "source_annotation_file": f"annotations/{ann_path.name}",
            "source_annotation_sha256": ann_hash,
            "large_crop_threshold": LARGE_CROP_THRESHOLD,
            "large_crop_source": large_crop_source,
            "images": images,
        }
    return manifests


def check_disjoint(manifests) -> None:
    """Raises AssertionError if train, val and test overlap where they must not."""
    ids = {k: {im["id"] for im in m["images"]} for k, m in manifests.items()}
    train = ids["train-40k"]
    assert ids["train-2k"] <= train and ids["train-2k-no-people"] <= train
    val = ids["val-100"] | ids["val-100-no-large-crop"]
    assert not (val & train), "val splits overlap train-40k"
    assert not (ids["test-100-no-large-crop"] & train), "test overlaps train-40k"
    assert not (ids["test-100-no-large-crop"] & val), "test overlaps the val splits"


def _dump(obj) -> bytes:
    return (json.dumps(obj, sort_keys=True, indent=1) + "\n").encode("utf-8")


def write_manifests(manifests, out_dir) -> pathlib.Path:
    """Writes `<out>/<split>.json` and `<out>/index.json`; returns the index path."""
    out = pathlib.Path(out_dir)
    check_disjoint(manifests)
    index = {"manifest_version": MANIFEST_VERSION, "splits": {}}
    for split, manifest in manifests.items():
        data = _dump(manifest)
        write_bytes_atomic(out / f"{split}.json", data)
        index["splits"][split] = {"file": f"{split}.json", "count": manifest["count"],
                                  "sha256": hashlib.sha256(data).hexdigest()}
    some = next(iter(manifests.values()))
    index.update(seed=some["seed"], source_annotation_sha256=some["source_annotation_sha256"],
                 source_annotation_file=some["source_annotation_file"])
    path = out / "index.json"
    write_bytes_atomic(path, _dump(index))
    return path


def read_manifest(path) -> dict:
    path = pathlib.Path(path)
    if not path.is_file():
        raise CocoFilesError(f"split manifest not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise CocoFilesError(f"split manifest {path} is not valid JSON: {err}") from None
    if data.get("manifest_version") != MANIFEST_VERSION or "images" not in data:
        raise CocoFilesError(f"{path} is not a version-{MANIFEST_VERSION} split manifest")
    return data


def _parse_sizes(text):
    sizes = {}
    for part in filter(None, (text or "").split(",")):
        name, _, value = part.partition("=")
        sizes[canonical_split_name(name.strip())] = int(value)
    return sizes


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data_prep.coco_splits",
                                     description="Build the paper's COCO 2014 split manifests.")
    parser.add_argument("--coco_dir", required=True, help="COCO root (val2014/, annotations/)")
    parser.add_argument("--out", required=True, help="folder for the manifest files")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--subset", default="val2014")
    parser.add_argument("--sizes", default="",
                        help="override sizes, e.g. 'train-40k=400,train-2k=50,val-100=20'")
    parser.add_argument("--mrcnn_weights", default=None,
                        help="also compute large-crop fractions from Mask R-CNN masks")
    parser.add_argument("--large_crop_source", choices=("gt", "model"), default="gt")
    parser.add_argument("--no_check_images", action="store_true",
                        help="do not check that the split images exist on disk")
    args = parser.parse_args(argv)
    try:
        manifests = build_splits(args.coco_dir, args.seed, _parse_sizes(args.sizes), args.subset,
                                 check_images=not args.no_check_images,
                                 mrcnn_weights=args.mrcnn_weights,
                                 large_crop_source=args.large_crop_source)
        index = write_manifests(manifests, args.out)
    except (CocoFilesError, SplitSizeError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for split, m in manifests.items():
        print(f"{split:24s} {m['count']:6d} images")
    print(f"manifests written: {index.parent} (index: {index})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
