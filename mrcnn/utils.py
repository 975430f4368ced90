"""Matterport's `mrcnn.utils` names, kept importable (`from mrcnn import utils`; `utils.compute_ap`,
`utils.Dataset`, ...). The code lives in modules by subject: boxes.py (IoU, NMS, box deltas),
resizing.py (images and masks), evaluation.py (matching, AP, recall), dataset.py (the Dataset
base class), anchors.py, and weights.py (download_trained_weights).
"""
from mrcnn.anchors import generate_anchors, generate_pyramid_anchors  # noqa: F401
from mrcnn.boxes import (apply_box_deltas, box_refinement, compute_iou, compute_overlaps,  # noqa: F401
                         compute_overlaps_masks, denorm_boxes, extract_bboxes, non_max_suppression,
                         norm_boxes, trim_zeros)
from mrcnn.dataset import Dataset  # noqa: F401
from mrcnn.evaluation import compute_ap, compute_ap_range, compute_matches, compute_recall  # noqa: F401
from mrcnn.resizing import (expand_mask, minimize_mask, resize, resize_image, resize_mask,  # noqa: F401
                            unmold_mask)

_FROM_WEIGHTS = ("COCO_MODEL_URL", "download_trained_weights")


def __getattr__(name):
    # mrcnn.weights imports Keras (and so the backend); loading it only when one of its names is
    # asked for keeps `from mrcnn import utils` (and mrcnn.datasets) free of the backend start-up.
    if name in _FROM_WEIGHTS:
        from mrcnn import weights
        return getattr(weights, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
