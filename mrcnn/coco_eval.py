"""COCO bbox / segm evaluation of a Mask R-CNN model with pycocotools' COCOeval
(Matterport's samples/coco/coco.py: build_coco_results, evaluate_coco).

    coco = dataset.load_coco(dir, "minival", return_coco=True); dataset.prepare()
    cocoeval = evaluate_coco(model, dataset, coco, "segm", limit=500, results_path="res.json")
    cocoeval.stats[0]  # AP@[.5:.95]
"""
import json
import os
import time

import numpy as np
from pycocotools import mask as maskUtils
from pycocotools.cocoeval import COCOeval
from tqdm.auto import tqdm

from gonefiles import write_text_atomic

EVAL_TYPES = ("bbox", "segm")


def build_coco_results(dataset, image_ids, rois, class_ids, scores, masks):
    """Detections of one image in COCO results format (a list of dicts).

    image_ids: the COCO image id(s) the detections belong to (Matterport passes a one-element
    list). rois [N, (y1, x1, y2, x2)] pixels, class_ids internal ids, masks [H, W, N].
    bbox becomes [x, y, width, height] (rounded to 0.1 px); segmentation a compressed RLE.
    """
    if rois is None:
        return []
    results = []
    for image_id in image_ids:
        for i in range(rois.shape[0]):
            bbox = np.around(rois[i], 1)
            mask = np.asarray(masks[:, :, i], dtype=np.uint8)
            results.append({
                "image_id": int(image_id),
                "category_id": int(dataset.get_source_class_id(int(class_ids[i]), "coco")),
                "bbox": [float(bbox[1]), float(bbox[0]), float(bbox[3] - bbox[1]), float(bbox[2] - bbox[0])],
                "score": float(scores[i]),
                "segmentation": maskUtils.encode(np.asfortranarray(mask)),
            })
    return results


def _jsonable(results):
    out = []
    for r in results:
        r = dict(r)
        seg = dict(r["segmentation"])
        if isinstance(seg.get("counts"), bytes):
            seg["counts"] = seg["counts"].decode("ascii")
        r["segmentation"] = seg
        out.append(r)
    return out


def write_results_atomic(results, path):
    """Write COCO results (RLE counts as text) to a json file atomically."""
    write_text_atomic(path, json.dumps(_jsonable(results)))


def evaluate_coco(model, dataset, coco, eval_type="bbox", limit=0, image_ids=None, results_path=None,
                  verbose=1):
    """Run model.detect on dataset images and evaluate them with COCOeval.

    model: anything with detect([image], verbose=0) -> [{"rois", "class_ids", "scores", "masks"}].
    limit: evaluate only the first `limit` images (0 = all). image_ids: internal ids to use.
    results_path: also write the detections as a COCO results json. Returns the COCOeval object
    (summary numbers in `.stats`); timing in `.timing`.
    """
    if eval_type not in EVAL_TYPES:
        raise ValueError(f"eval_type must be one of {EVAL_TYPES}, got {eval_type!r}")
    image_ids = list(dataset.image_ids if image_ids is None else image_ids)
    if limit:
        image_ids = image_ids[:limit]
    if not image_ids:
        raise ValueError("evaluate_coco: no images to evaluate")
    coco_image_ids = [dataset.image_info[i]["id"] for i in image_ids]

    t_prediction = 0.0
    t_start = time.time()
    results = []
    for i, image_id in enumerate(tqdm(image_ids, desc=f"COCO {eval_type}", disable=None if verbose else True)):
        image = dataset.load_image(image_id)
        t = time.time()
        r = model.detect([image], verbose=0)[0]
        t_prediction += time.time() - t
        results.extend(build_coco_results(dataset, coco_image_ids[i:i + 1], r["rois"], r["class_ids"],
                                          r["scores"], r["masks"].astype(np.uint8)))
    if results_path is not None:
        write_results_atomic(results, results_path)

    cocoeval = COCOeval(coco, coco.loadRes(results) if results else _empty_results(coco), eval_type)
    cocoeval.params.imgIds = coco_image_ids
    cocoeval.evaluate()
    cocoeval.accumulate()
    cocoeval.summarize()
    cocoeval.timing = {"prediction_s": t_prediction, "per_image_s": t_prediction / len(image_ids),
                       "total_s": time.time() - t_start}
    if verbose:
        print("Prediction time: {:.1f} s. Average {:.2f} s/image".format(t_prediction,
                                                                          t_prediction / len(image_ids)))
        print("Total time: {:.1f} s".format(cocoeval.timing["total_s"]))
    return cocoeval


def _empty_results(coco):
    """A results COCO object without detections (loadRes refuses an empty list)."""
    from pycocotools.coco import COCO
    empty = COCO()
    empty.dataset = {"images": list(coco.dataset["images"]), "categories": list(coco.dataset["categories"]),
                     "annotations": []}
    empty.createIndex()
    return empty
