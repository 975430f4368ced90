"""Paste-back evaluation set: COCO people pasted onto person-free COCO photos.

The paper's Val/Test images have no clean ground truth (the person was really there), so only
no-reference measures (the gradient norm, human labels) apply. This set adds one with ground
truth: person instances are cut (by their ground-truth mask) from COCO images and pasted onto
COCO images with no person annotation; the untouched target photo is the clean original.

Donors: non-crowd person annotations covering ``min_area``..``max_area`` of their image and not
cut by the image border (a truncated person pasted mid-image would look amputated). Each output
gets 1..``max_people`` donors, scaled so the person keeps the height (relative to the image) they
had in the donor photo, feet placed in the lower part of the target. Hard mask edges: the mask
is exactly the set of changed pixels.

Output layout (the same as ``data_prep.synth`` so the experiments read both):
``<out>/images/pb_00000.png`` (composite), ``<out>/backgrounds/pb_00000.png`` (clean original),
``<out>/annotations.json`` (COCO: pasted person masks, category person = 1, RLE, iscrowd 0; each
image records ``target_image_id``, ``donor_annotation_ids`` and the source annotation hash).

    python -m data_prep.paste_back --coco_dir /data/coco --out pasteback/ --n_images 100
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys

import numpy as np
from scipy import ndimage

from data_prep import coco_splits
from data_prep.synth import _bbox_xywh, _png_bytes, mask_to_rle
from gone.io import write_bytes_atomic


def _read_rgb(path: pathlib.Path) -> np.ndarray:
    if not path.is_file():
        raise coco_splits.CocoFilesError(f"COCO image file not found: {path}")
    from gone.io import ImageReadError, read_image   # the repository's one reader (gonefiles)

    try:
        return read_image(path)
    except ImageReadError as err:
        raise coco_splits.CocoFilesError(f"cannot read COCO image {path}: {err}") from None


def eligible_donors(coco, image_ids=None, min_area=0.02, max_area=0.3):
    """Person annotation ids usable as paste donors (sorted)."""
    cat = coco_splits.person_category_id(coco)
    allowed = None if image_ids is None else set(image_ids)
    out = []
    for ann_id in sorted(coco.getAnnIds(catIds=[cat], iscrowd=False)):
        ann = coco.anns[ann_id]
        if ann.get("iscrowd", 0) or (allowed is not None and ann["image_id"] not in allowed):
            continue
        info = coco.imgs[ann["image_id"]]
        frac = float(ann["area"]) / float(info["height"] * info["width"])
        x, y, w, h = ann["bbox"]
        touches = x <= 1 or y <= 1 or x + w >= info["width"] - 1 or y + h >= info["height"] - 1
        if min_area <= frac <= max_area and not touches and w >= 4 and h >= 8:
            out.append(ann_id)
    return out


def person_free_images(coco, image_ids=None):
    with_people = set(coco.getImgIds(catIds=[coco_splits.person_category_id(coco)]))
    ids = sorted(coco.imgs) if image_ids is None else sorted(image_ids)
    return [i for i in ids if i not in with_people]


def _cut_person(coco, image_dir, ann_id):
    ann = coco.anns[ann_id]
    info = coco.imgs[ann["image_id"]]
    rgb = _read_rgb(image_dir / info["file_name"])
    mask = coco.annToMask(ann).astype(bool)
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    return rgb[y0:y1, x0:x1], mask[y0:y1, x0:x1], (y1 - y0) / info["height"]


def _paste(rng, target, patch, patch_mask, rel_height):
    """Pastes a person patch onto `target` (in place); returns the pasted mask (HxW bool)."""
    th, tw = target.shape[:2]
    new_h = int(np.clip(rel_height * th * rng.uniform(0.8, 1.2), 8, th * 0.95))
    scale = new_h / patch.shape[0]
    new_w = max(2, int(round(patch.shape[1] * scale)))
    if new_w >= tw:
        scale *= (tw - 1) / new_w
        new_h, new_w = max(2, int(patch.shape[0] * scale)), tw - 1
    zoom = (new_h / patch.shape[0], new_w / patch.shape[1])
    p = ndimage.zoom(patch.astype(np.float32), zoom + (1,), order=1, grid_mode=True,
                     mode="nearest")[:new_h, :new_w]
    m = ndimage.zoom(patch_mask.astype(np.float32), zoom, order=1, grid_mode=True,
                     mode="nearest")[:new_h, :new_w] > 0.5
    h, w = m.shape
    foot = int(rng.uniform(max(h, th * 0.6), th + 1))     # feet in the lower part of the image
    top = min(max(foot - h, 0), th - h)
    left = int(rng.integers(0, tw - w + 1))
    region = target[top:top + h, left:left + w]
    region[m] = np.clip(np.rint(p[m]), 0, 255).astype(np.uint8)
    full = np.zeros((th, tw), bool)
    full[top:top + h, left:left + w] = m
    return full


def build_paste_back(coco_dir, out_dir, n_images=100, seed=0, subset="val2014", image_ids=None,
                     max_people=2, min_area=0.02, max_area=0.3, progress=True) -> pathlib.Path:
    """Writes the paste-back set; returns the annotations path. Deterministic for a seed.
    `image_ids` restricts both donors and targets (e.g. to a split manifest's images)."""
    coco, ann_path = coco_splits.load_coco(coco_dir, subset)
    image_dir = pathlib.Path(coco_dir) / subset
    donors = eligible_donors(coco, image_ids, min_area, max_area)
    targets = person_free_images(coco, image_ids)
    if not donors:
        raise coco_splits.SplitSizeError(f"no eligible person instances to paste in {ann_path}")
    if len(targets) < n_images:
        raise coco_splits.SplitSizeError(f"paste-back needs {n_images} person-free images, "
                                         f"{ann_path} has {len(targets)}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x9A57E]))
    chosen = sorted(int(i) for i in rng.choice(targets, size=n_images, replace=False))
    out = pathlib.Path(out_dir)
    images, annotations = [], []
    iterator = enumerate(chosen)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, total=len(chosen), desc="paste-back", unit="img", leave=False,
                        disable=None)
    for k, target_id in iterator:
        info = coco.imgs[target_id]
        clean = _read_rgb(image_dir / info["file_name"])
        composite = clean.copy()
        n_people = int(rng.integers(1, max_people + 1))
        donor_ids = [int(d) for d in rng.choice(donors, size=min(n_people, len(donors)),
                                                replace=False)]
        masks = []
        for d in donor_ids:
            patch, patch_mask, rel_h = _cut_person(coco, image_dir, d)
            pasted = _paste(rng, composite, patch, patch_mask, rel_h)
            masks = [m & ~pasted for m in masks]   # later pastes hide earlier ones
            masks.append(pasted)
        name = f"pb_{k:05d}.png"
        write_bytes_atomic(out / "images" / name, _png_bytes(composite))
        write_bytes_atomic(out / "backgrounds" / name, _png_bytes(clean))
        image_id = k + 1
        images.append({"id": image_id, "file_name": name, "height": int(clean.shape[0]),
                       "width": int(clean.shape[1]), "background_file": f"backgrounds/{name}",
                       "target_image_id": int(target_id), "target_file_name": info["file_name"],
                       "donor_annotation_ids": donor_ids})
        for m, d in zip(masks, donor_ids):
            if m.any():
                annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                    "category_id": 1, "segmentation": mask_to_rle(m),
                                    "area": int(m.sum()), "bbox": _bbox_xywh(m), "iscrowd": 0,
                                    "donor_annotation_id": d})
    data = {"info": {"description": "GONE paste-back set (data_prep.paste_back)",
                     "seed": int(seed), "n_images": int(n_images), "source_subset": subset,
                     "source_annotation_sha256": coco_splits.sha256_file(ann_path)},
            "licenses": [], "images": images, "annotations": annotations,
            "categories": [{"id": 1, "name": "person", "supercategory": "person"}]}
    path = out / "annotations.json"
    write_bytes_atomic(path, json.dumps(data, sort_keys=True, indent=1).encode("utf-8"))
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data_prep.paste_back",
                                     description="Build the paste-back evaluation set.")
    parser.add_argument("--coco_dir", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--n_images", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--subset", default="val2014")
    parser.add_argument("--split_manifest", default=None,
                        help="restrict donors and targets to a split manifest's images")
    parser.add_argument("--max_people", type=int, default=2)
    args = parser.parse_args(argv)
    try:
        ids = None
        if args.split_manifest:
            ids = [im["id"] for im in coco_splits.read_manifest(args.split_manifest)["images"]]
        path = build_paste_back(args.coco_dir, args.out, args.n_images, args.seed, args.subset,
                                ids, args.max_people)
    except (coco_splits.CocoFilesError, coco_splits.SplitSizeError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"paste-back set written: {path.parent} (annotations: {path})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
