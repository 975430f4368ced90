"""Box utilities in numpy: IoU, overlaps, NMS, box deltas, normalization.

Boxes are (y1, x1, y2, x2); pixel boxes have exclusive y2, x2; Matterport's names and numerics
(matterport/Mask_RCNN 3deaec5, utils.py).
float32 box arithmetic, int32 pixel boxes.
"""
import numpy as np


def extract_bboxes(mask):
    """Boxes [N, (y1, x1, y2, x2)] int32 (exclusive y2, x2) of masks [H, W, N]; empty -> zeros."""
    boxes = np.zeros([mask.shape[-1], 4], dtype=np.int32)
    for i in range(mask.shape[-1]):
        m = mask[:, :, i]
        cols = np.where(np.any(m, axis=0))[0]
        rows = np.where(np.any(m, axis=1))[0]
        if cols.shape[0]:
            boxes[i] = [rows[0], cols[0], rows[-1] + 1, cols[-1] + 1]
    return boxes


def compute_iou(box, boxes, box_area, boxes_area):
    """IoU of one box with each of `boxes`; the areas are passed in to avoid recomputing them."""
    y1 = np.maximum(box[0], boxes[:, 0])
    y2 = np.minimum(box[2], boxes[:, 2])
    x1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[3], boxes[:, 3])
    intersection = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    union = box_area + boxes_area[:] - intersection[:]
    return intersection / union


def compute_overlaps(boxes1, boxes2):
    """IoU matrix [len(boxes1), len(boxes2)] (float64)."""
    area1 = (boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])
    area2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])
    overlaps = np.zeros((boxes1.shape[0], boxes2.shape[0]))
    for i in range(overlaps.shape[1]):
        overlaps[:, i] = compute_iou(boxes2[i], boxes1, area2[i], area1)
    return overlaps


def compute_overlaps_masks(masks1, masks2):
    """IoU matrix [N1, N2] (float32) of masks [H, W, N1] and [H, W, N2] (values > 0.5 count)."""
    if masks1.shape[-1] == 0 or masks2.shape[-1] == 0:
        return np.zeros((masks1.shape[-1], masks2.shape[-1]))
    masks1 = np.reshape(masks1 > .5, (-1, masks1.shape[-1])).astype(np.float32)
    masks2 = np.reshape(masks2 > .5, (-1, masks2.shape[-1])).astype(np.float32)
    area1 = np.sum(masks1, axis=0)
    area2 = np.sum(masks2, axis=0)
    intersections = np.dot(masks1.T, masks2)
    union = area1[:, None] + area2[None, :] - intersections
    return intersections / union


def non_max_suppression(boxes, scores, threshold):
    """Greedy NMS; returns the kept indices (int32), highest score first.

    A box is suppressed when its IoU with a kept box is > threshold.
    """
    if boxes.shape[0] == 0:
        raise ValueError("non_max_suppression: no boxes given")
    if boxes.dtype.kind != "f":
        boxes = boxes.astype(np.float32)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    order = scores.argsort()[::-1]  # numpy's default (quicksort) argsort, reversed, as the original
    pick = []
    while len(order) > 0:
        i = order[0]
        pick.append(i)
        iou = compute_iou(boxes[i], boxes[order[1:]], area[i], area[order[1:]])
        suppressed = np.where(iou > threshold)[0] + 1
        order = np.delete(order, suppressed)
        order = np.delete(order, 0)
    return np.array(pick, dtype=np.int32)


def apply_box_deltas(boxes, deltas):
    """Apply (dy, dx, log dh, log dw) deltas to boxes (float32 arithmetic)."""
    boxes = boxes.astype(np.float32)
    height = boxes[:, 2] - boxes[:, 0]
    width = boxes[:, 3] - boxes[:, 1]
    center_y = boxes[:, 0] + 0.5 * height
    center_x = boxes[:, 1] + 0.5 * width
    center_y += deltas[:, 0] * height
    center_x += deltas[:, 1] * width
    height *= np.exp(deltas[:, 2])
    width *= np.exp(deltas[:, 3])
    y1 = center_y - 0.5 * height
    x1 = center_x - 0.5 * width
    return np.stack([y1, x1, y1 + height, x1 + width], axis=1)


def box_refinement(box, gt_box):
    """Deltas (dy, dx, log dh, log dw) that turn `box` into `gt_box` (float32; inverse of
    apply_box_deltas)."""
    box = box.astype(np.float32)
    gt_box = gt_box.astype(np.float32)
    height = box[:, 2] - box[:, 0]
    width = box[:, 3] - box[:, 1]
    center_y = box[:, 0] + 0.5 * height
    center_x = box[:, 1] + 0.5 * width
    gt_height = gt_box[:, 2] - gt_box[:, 0]
    gt_width = gt_box[:, 3] - gt_box[:, 1]
    gt_center_y = gt_box[:, 0] + 0.5 * gt_height
    gt_center_x = gt_box[:, 1] + 0.5 * gt_width
    dy = (gt_center_y - center_y) / height
    dx = (gt_center_x - center_x) / width
    dh = np.log(gt_height / height)
    dw = np.log(gt_width / width)
    return np.stack([dy, dx, dh, dw], axis=1)


def norm_boxes(boxes, shape):
    """Pixel boxes -> normalized float32: (b - [0, 0, 1, 1]) / [h-1, w-1, h-1, w-1]."""
    h, w = shape
    scale = np.array([h - 1, w - 1, h - 1, w - 1])
    shift = np.array([0, 0, 1, 1])
    return np.divide((boxes - shift), scale).astype(np.float32)


def denorm_boxes(boxes, shape):
    """Normalized boxes -> int32 pixel boxes: around(b * [h-1, w-1, h-1, w-1] + [0, 0, 1, 1])."""
    h, w = shape
    scale = np.array([h - 1, w - 1, h - 1, w - 1])
    shift = np.array([0, 0, 1, 1])
    return np.around(np.multiply(boxes, scale) + shift).astype(np.int32)


def trim_zeros(x):
    """Drop the all-zero rows of a 2-D array (zero padding)."""
    if x.ndim != 2:
        raise ValueError(f"trim_zeros expects a 2-D array, got shape {x.shape}")
    return x[~np.all(x == 0, axis=1)]
