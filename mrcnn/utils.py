"""Mask R-CNN numpy utilities with Matterport's names and numerics (matterport/Mask_RCNN 3deaec5).

Boxes are (y1, x1, y2, x2); pixel boxes have exclusive y2, x2. dtypes follow the original:
float32 box arithmetic, float64 resize output, int32 pixel boxes, bool masks.
No TensorFlow here: the graph versions live in `mrcnn.proposal` / `mrcnn.ops`.
"""
import os
import random
import shutil
import tempfile
import urllib.error
import urllib.request
import warnings

import numpy as np
import scipy.ndimage
import skimage.color
import skimage.io
import skimage.transform

from mrcnn.anchors import generate_anchors, generate_pyramid_anchors  # noqa: F401 (re-export)

# Published COCO weights (Matterport release v2.0).
COCO_MODEL_URL = "https://github.com/matterport/Mask_RCNN/releases/download/v2.0/mask_rcnn_coco.h5"


############################################################
#  Bounding boxes
############################################################

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


############################################################
#  Resizing
############################################################

def resize(image, output_shape, order=1, mode="constant", cval=0, clip=True,
           preserve_range=False, anti_aliasing=False, anti_aliasing_sigma=None):
    """`skimage.transform.resize` with Matterport's defaults (bilinear, constant 0 border, no
    anti-aliasing). A bool input is cast to float64 0/1 first, as scikit-image <= 0.18 did
    (newer versions refuse bilinear resizes of bool arrays)."""
    if image.dtype == bool:
        image = image.astype(np.float64)
    return skimage.transform.resize(image, output_shape, order=order, mode=mode, cval=cval, clip=clip,
                                    preserve_range=preserve_range, anti_aliasing=anti_aliasing,
                                    anti_aliasing_sigma=anti_aliasing_sigma)


def resize_image(image, min_dim=None, max_dim=None, min_scale=None, mode="square"):
    """Resize keeping the aspect ratio, then pad (square, pad64) or crop (crop).

    Returns (image in the input dtype, window (y1, x1, y2, x2), scale, padding
    [(top, bottom), (left, right), (0, 0)], crop (y, x, h, w) or None). The float resize result is
    truncated (astype) to the input dtype, as in the original.
    """
    image_dtype = image.dtype
    h, w = image.shape[:2]
    window = (0, 0, h, w)
    scale = 1
    padding = [(0, 0), (0, 0), (0, 0)]
    crop = None

    if mode == "none":
        return image, window, scale, padding, crop
    if mode not in ("square", "pad64", "crop"):
        raise ValueError(f"resize_image: mode {mode!r} not supported (none, square, pad64, crop)")

    if min_dim:
        scale = max(1, min_dim / min(h, w))  # scale up, never down
    if min_scale and scale < min_scale:
        scale = min_scale
    if max_dim and mode == "square":
        image_max = max(h, w)
        if round(image_max * scale) > max_dim:
            scale = max_dim / image_max

    if scale != 1:
        image = resize(image, (round(h * scale), round(w * scale)), preserve_range=True)

    if mode == "square":
        h, w = image.shape[:2]
        top_pad = (max_dim - h) // 2
        bottom_pad = max_dim - h - top_pad
        left_pad = (max_dim - w) // 2
        right_pad = max_dim - w - left_pad
        padding = [(top_pad, bottom_pad), (left_pad, right_pad), (0, 0)]
        image = np.pad(image, padding, mode="constant", constant_values=0)
        window = (top_pad, left_pad, h + top_pad, w + left_pad)
    elif mode == "pad64":
        h, w = image.shape[:2]
        if min_dim is None or min_dim % 64 != 0:
            raise ValueError(f"resize_image: pad64 needs min_dim a multiple of 64, got {min_dim}")
        top_pad, bottom_pad = _pad_to_64(h)
        left_pad, right_pad = _pad_to_64(w)
        padding = [(top_pad, bottom_pad), (left_pad, right_pad), (0, 0)]
        image = np.pad(image, padding, mode="constant", constant_values=0)
        window = (top_pad, left_pad, h + top_pad, w + left_pad)
    else:  # crop: random, from Python's global `random` as the original (seed it for repeatability)
        h, w = image.shape[:2]
        y = random.randint(0, (h - min_dim))
        x = random.randint(0, (w - min_dim))
        crop = (y, x, min_dim, min_dim)
        image = image[y:y + min_dim, x:x + min_dim]
        window = (0, 0, min_dim, min_dim)
    return image.astype(image_dtype), window, scale, padding, crop


def _pad_to_64(size):
    if size % 64 == 0:
        return 0, 0
    total = size - (size % 64) + 64 - size
    return total // 2, total - total // 2


def resize_mask(mask, scale, padding, crop=None):
    """Resize masks [H, W, N] like resize_image did the image: nearest zoom, then pad or crop."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy's note on round() vs int() of the output shape
        mask = scipy.ndimage.zoom(mask, zoom=[scale, scale, 1], order=0)
    if crop is not None:
        y, x, h, w = crop
        return mask[y:y + h, x:x + w]
    return np.pad(mask, padding, mode="constant", constant_values=0)


def minimize_mask(bbox, mask, mini_shape):
    """Crop each mask to its box and resize it to mini_shape (bool [h, w, N])."""
    mini_shape = tuple(int(s) for s in mini_shape)
    mini_mask = np.zeros(mini_shape + (mask.shape[-1],), dtype=bool)
    for i in range(mask.shape[-1]):
        y1, x1, y2, x2 = bbox[i][:4]
        m = mask[:, :, i].astype(bool)[y1:y2, x1:x2]
        if m.size == 0:
            raise ValueError(f"minimize_mask: instance {i} has a box of zero area {tuple(bbox[i][:4])}")
        m = resize(m, mini_shape)
        mini_mask[:, :, i] = np.around(m).astype(bool)
    return mini_mask


def expand_mask(bbox, mini_mask, image_shape):
    """Inverse of minimize_mask: resize each mini mask into its box of an image_shape[:2] mask."""
    mask = np.zeros(tuple(int(s) for s in image_shape[:2]) + (mini_mask.shape[-1],), dtype=bool)
    for i in range(mask.shape[-1]):
        y1, x1, y2, x2 = bbox[i][:4]
        m = resize(mini_mask[:, :, i], (y2 - y1, x2 - x1))
        mask[y1:y2, x1:x2, i] = np.around(m).astype(bool)
    return mask


def unmold_mask(mask, bbox, image_shape):
    """Network mask (e.g. 28x28 float) -> bool full-image mask: resize into bbox, threshold 0.5."""
    threshold = 0.5
    y1, x1, y2, x2 = bbox
    mask = resize(mask, (y2 - y1, x2 - x1))
    mask = np.where(mask >= threshold, 1, 0).astype(bool)
    full_mask = np.zeros(tuple(int(s) for s in image_shape[:2]), dtype=bool)
    full_mask[y1:y2, x1:x2] = mask
    return full_mask


############################################################
#  Evaluation
############################################################

def compute_matches(gt_boxes, gt_class_ids, gt_masks, pred_boxes, pred_class_ids, pred_scores,
                    pred_masks, iou_threshold=0.5, score_threshold=0.0, fix_rematch=False):
    """Greedy matching of predictions (by descending score) to GT instances by mask IoU.

    Returns (gt_match [G] index of the matched prediction or -1, pred_match [P] index of the
    matched GT or -1, overlaps [P, G]); predictions are in score order.
    Faithful default: like the original, a GT matched to prediction 0 (gt_match == 0) counts as
    unmatched and can be matched again (`gt_match[j] > 0`). fix_rematch=True uses `> -1`.
    """
    gt_boxes = trim_zeros(gt_boxes)
    gt_masks = gt_masks[..., :gt_boxes.shape[0]]
    pred_boxes = trim_zeros(pred_boxes)
    pred_scores = pred_scores[:pred_boxes.shape[0]]
    indices = np.argsort(pred_scores)[::-1]
    pred_boxes = pred_boxes[indices]
    pred_class_ids = pred_class_ids[indices]
    pred_scores = pred_scores[indices]
    pred_masks = pred_masks[..., indices]

    overlaps = compute_overlaps_masks(pred_masks, gt_masks)

    already = -1 if fix_rematch else 0
    pred_match = -1 * np.ones([pred_boxes.shape[0]])
    gt_match = -1 * np.ones([gt_boxes.shape[0]])
    for i in range(len(pred_boxes)):
        sorted_ixs = np.argsort(overlaps[i])[::-1]
        low_score_idx = np.where(overlaps[i, sorted_ixs] < score_threshold)[0]
        if low_score_idx.size > 0:
            sorted_ixs = sorted_ixs[:low_score_idx[0]]
        for j in sorted_ixs:
            if gt_match[j] > already:
                continue
            if overlaps[i, j] < iou_threshold:
                break
            if pred_class_ids[i] == gt_class_ids[j]:
                gt_match[j] = i
                pred_match[i] = j
                break
    return gt_match, pred_match, overlaps


def compute_ap(gt_boxes, gt_class_ids, gt_masks, pred_boxes, pred_class_ids, pred_scores, pred_masks,
               iou_threshold=0.5):
    """VOC-style AP at one IoU threshold (mask IoU).

    Returns (mAP, precisions, recalls, overlaps); precisions/recalls padded with the end points.
    """
    gt_match, pred_match, overlaps = compute_matches(
        gt_boxes, gt_class_ids, gt_masks, pred_boxes, pred_class_ids, pred_scores, pred_masks,
        iou_threshold)
    precisions = np.cumsum(pred_match > -1) / (np.arange(len(pred_match)) + 1)
    recalls = np.cumsum(pred_match > -1).astype(np.float32) / len(gt_match)
    precisions = np.concatenate([[0], precisions, [0]])
    recalls = np.concatenate([[0], recalls, [1]])
    # Precision envelope: the best precision at any later recall (VOC).
    for i in range(len(precisions) - 2, -1, -1):
        precisions[i] = np.maximum(precisions[i], precisions[i + 1])
    indices = np.where(recalls[:-1] != recalls[1:])[0] + 1
    mAP = np.sum((recalls[indices] - recalls[indices - 1]) * precisions[indices])
    return mAP, precisions, recalls, overlaps


def compute_ap_range(gt_box, gt_class_id, gt_mask, pred_box, pred_class_id, pred_score, pred_mask,
                     iou_thresholds=None, verbose=1):
    """Mean of compute_ap over IoU thresholds (default 0.5, 0.55, ..., 0.95)."""
    if iou_thresholds is None:
        iou_thresholds = np.arange(0.5, 1.0, 0.05)
    aps = []
    for iou_threshold in iou_thresholds:
        ap, _, _, _ = compute_ap(gt_box, gt_class_id, gt_mask, pred_box, pred_class_id, pred_score,
                                 pred_mask, iou_threshold=iou_threshold)
        if verbose:
            print("AP @{:.2f}:\t {:.3f}".format(iou_threshold, ap))
        aps.append(ap)
    mean_ap = np.array(aps).mean()
    if verbose:
        print("AP @{:.2f}-{:.2f}:\t {:.3f}".format(iou_thresholds[0], iou_thresholds[-1], mean_ap))
    return mean_ap


def compute_recall(pred_boxes, gt_boxes, iou):
    """Fraction of GT boxes that some prediction overlaps with IoU >= iou.

    Returns (recall, positive_ids: predictions whose best IoU reaches `iou`).
    """
    overlaps = compute_overlaps(pred_boxes, gt_boxes)
    iou_max = np.max(overlaps, axis=1)
    iou_argmax = np.argmax(overlaps, axis=1)
    positive_ids = np.where(iou_max >= iou)[0]
    matched_gt_boxes = iou_argmax[positive_ids]
    recall = len(set(matched_gt_boxes)) / gt_boxes.shape[0]
    return recall, positive_ids


############################################################
#  Dataset
############################################################

class Dataset:
    """Base dataset (Matterport API). Subclass it, add classes and images with add_class /
    add_image, override load_mask (and load_image / image_reference if needed), then prepare().
    """

    def __init__(self, class_map=None):
        self._image_ids = []
        self.image_info = []
        # Background is always class 0.
        self.class_info = [{"source": "", "id": 0, "name": "BG"}]
        self.source_class_ids = {}

    def add_class(self, source, class_id, class_name):
        if "." in source:
            raise ValueError(f"Dataset.add_class: source name {source!r} cannot contain a dot")
        for info in self.class_info:
            if info["source"] == source and info["id"] == class_id:
                return  # already registered
        self.class_info.append({"source": source, "id": class_id, "name": class_name})

    def add_image(self, source, image_id, path, **kwargs):
        image_info = {"id": image_id, "source": source, "path": path}
        image_info.update(kwargs)
        self.image_info.append(image_info)

    def image_reference(self, image_id):
        """A link or description of the image for debugging; override per dataset."""
        return ""

    def prepare(self, class_map=None):
        """Build the internal ids and the source <-> internal maps (call after adding data)."""
        def clean_name(name):
            return ",".join(name.split(",")[:1])

        self.num_classes = len(self.class_info)
        self.class_ids = np.arange(self.num_classes)
        self.class_names = [clean_name(c["name"]) for c in self.class_info]
        self.num_images = len(self.image_info)
        self._image_ids = np.arange(self.num_images)
        self.class_from_source_map = {"{}.{}".format(info["source"], info["id"]): cid
                                      for info, cid in zip(self.class_info, self.class_ids)}
        self.image_from_source_map = {"{}.{}".format(info["source"], info["id"]): iid
                                      for info, iid in zip(self.image_info, self.image_ids)}
        # Sources in first-seen order (the original used a set, whose order is arbitrary).
        self.sources = list(dict.fromkeys(i["source"] for i in self.class_info))
        self.source_class_ids = {}
        for source in self.sources:
            # The BG class belongs to every source.
            self.source_class_ids[source] = [i for i, info in enumerate(self.class_info)
                                             if i == 0 or info["source"] == source]

    def map_source_class_id(self, source_class_id):
        """"coco.12" -> internal class id."""
        return self.class_from_source_map[source_class_id]

    def get_source_class_id(self, class_id, source):
        """Internal class id -> the class id in `source`."""
        info = self.class_info[class_id]
        if info["source"] != source:
            raise ValueError(f"class {class_id} belongs to source {info['source']!r}, not {source!r}")
        return info["id"]

    @property
    def image_ids(self):
        return self._image_ids

    def source_image_link(self, image_id):
        """Path or URL of the image."""
        return self.image_info[image_id]["path"]

    def load_image(self, image_id):
        """RGB uint8 [H, W, 3]: grayscale is converted to RGB and an alpha channel dropped."""
        path = self.image_info[image_id]["path"]
        try:
            image = skimage.io.imread(path)
        except (OSError, ValueError) as exc:
            raise OSError(f"cannot read image {image_id} from {path!r}: {exc}") from exc
        if image.ndim != 3:
            image = skimage.color.gray2rgb(image)
        if image.shape[-1] == 4:
            image = image[..., :3]
        return image

    def load_mask(self, image_id):
        """Override: return (bool masks [H, W, N], int32 class_ids [N]). Default: no instances."""
        mask = np.empty([0, 0, 0])
        class_ids = np.empty([0], np.int32)
        return mask, class_ids


############################################################
#  Weights
############################################################

def download_trained_weights(coco_model_path, verbose=1, url=COCO_MODEL_URL, timeout=60):
    """Download the published COCO weights to coco_model_path (atomically: temp file + rename)."""
    coco_model_path = os.fspath(coco_model_path)
    directory = os.path.dirname(os.path.abspath(coco_model_path))
    os.makedirs(directory, exist_ok=True)
    if verbose > 0:
        print("Downloading pretrained model to " + coco_model_path + " ...")
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as resp:
                    shutil.copyfileobj(resp, out)
            except (urllib.error.URLError, OSError) as exc:
                raise OSError(f"could not download {url} ({exc}); without network access, download "
                              f"it elsewhere and place it at {coco_model_path}") from exc
        os.replace(tmp, coco_model_path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    if verbose > 0:
        print("... done downloading pretrained model!")
