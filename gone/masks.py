"""Hole masks from detections (stage 2 of the pipeline: detections -> hole to inpaint).

A *detections* dict follows Matterport's ``MaskRCNN.detect()`` result for one image:
``rois`` int32 [N, 4] (y1, x1, y2, x2 in pixels, y2/x2 exclusive), ``class_ids`` int32 [N],
``scores`` float32 [N], ``masks`` bool [H, W, N].

Strategies (``STRATEGIES``):

- ``"box"``: union of the selected bounding boxes (Matterport masks lie inside their box, so
  the box always covers the mask);
- ``"mask"``: union of the selected instance masks, as detected;
- ``"dilated"``: union of the instance masks, each grown by a Euclidean disk of radius ``r``
  pixels. ``dilation`` is either an int (``r`` in pixels) or a float in (0, 1): a fraction of
  the *instance size*, defined as the larger side of the instance's bounding box
  (``r = round(fraction * max(y2 - y1, x2 - x1))``). Why a fraction: Mask R-CNN predicts a 28x28
  mask per box, so its boundary error (and the blur/shadow halo a person leaves) scales with
  the instance size, not with the image. See ``docs/gone.md`` for how the default was chosen.
- ``"traces"``: the ``dilated`` hole plus the traces a person leaves (``trace_parts``): (a) the
  *held objects*, detections of the classes in ``HELD_OBJECT_CLASSES`` (things people carry or
  ride) whose mask touches a removed person's dilated mask, each dilated like a person; (b) the
  person's *cast shadow*, found from the pixels next to its feet by ``gone.shadows`` (needs the
  ``image``), grown by ``SHADOW_DILATION`` px. See ``docs/gone.md`` ("Traces").
"""
from __future__ import annotations

import numbers

import numpy as np
from scipy import ndimage

STRATEGIES = ("box", "mask", "dilated", "traces")

# COCO classes that people carry, wear as an accessory or ride: removed with the person they touch
# (strategy "traces"). Left out on purpose: vehicles people sit in (car, bus, motorcycle: too large
# to belong to one person), animals (a dog on a leash is not a trace), and table-top things
# (cup, bottle, book, laptop: usually standing on furniture next to the person).
HELD_OBJECT_CLASSES = ("backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee", "skis",
                       "snowboard", "sports ball", "kite", "baseball bat", "baseball glove",
                       "skateboard", "surfboard", "tennis racket", "cell phone", "bicycle")

# Default dilation: 5 % of the instance's larger box side (about 1.4 cells of Mask R-CNN's 28x28
# mask grid). Chosen by the measurement documented in docs/gone.md.
DEFAULT_DILATION = 0.05

# Pixels the shadow masks of strategy "traces" are grown by.
SHADOW_DILATION = 1

# An image is a "large crop" when the hole covers more than this fraction of it.
LARGE_CROP_THRESHOLD = 0.5


def coco_class_names():
    """The 81 Matterport COCO class names ('BG' first), in model order."""
    from mrcnn.datasets.coco import COCO_CLASS_NAMES  # lazy: keeps `gone` imports light
    return list(COCO_CLASS_NAMES)


def class_ids_for(classes, class_names=None):
    """Map class names and/or integer ids to a set of ids. ``None`` means every class."""
    if classes is None:
        return None
    if isinstance(classes, (str, numbers.Integral)):
        classes = (classes,)
    names = list(class_names) if class_names is not None else coco_class_names()
    lookup = {n.lower(): i for i, n in enumerate(names)}
    ids = set()
    for c in classes:
        if isinstance(c, numbers.Integral) and not isinstance(c, bool):
            ids.add(int(c))
        elif isinstance(c, str) and c.strip().isdigit():
            ids.add(int(c.strip()))
        elif isinstance(c, str) and c.strip().lower() in lookup:
            ids.add(lookup[c.strip().lower()])
        else:
            raise ValueError(f"unknown class {c!r}; use a COCO class name such as 'person' or an integer id")
    return ids


def _n_instances(detections):
    if "class_ids" in detections:
        return len(detections["class_ids"])
    if "masks" in detections:
        return np.asarray(detections["masks"]).shape[-1]
    return len(detections["rois"])


def select_instances(detections, classes=("person",), min_score=0.0, class_names=None):
    """Bool [N]: instances whose class is in ``classes`` (names or ids; None = all) and whose
    score is >= ``min_score`` (instances without a ``scores`` entry count as score 1)."""
    n = _n_instances(detections)
    keep = np.ones(n, dtype=bool)
    ids = class_ids_for(classes, class_names)
    if ids is not None:
        class_ids = np.asarray(detections.get("class_ids", np.ones(n, np.int32))).reshape(-1)
        keep &= np.isin(class_ids, sorted(ids))
    if min_score and "scores" in detections:
        keep &= np.asarray(detections["scores"], dtype=np.float64).reshape(-1) >= float(min_score)
    return keep


def dilation_radius(dilation, box):
    """Radius in pixels for one instance. ``dilation``: int pixels, or a float in (0, 1) =
    fraction of the larger side of ``box`` (y1, x1, y2, x2)."""
    if dilation is None:
        dilation = DEFAULT_DILATION
    if isinstance(dilation, str):
        dilation = parse_dilation(dilation)
    if not 0 <= dilation <= MAX_DILATION_PX:
        raise ValueError(f"dilation must be in [0, {MAX_DILATION_PX}] px (or a fraction < 1), got {dilation}")
    if isinstance(dilation, numbers.Integral) or dilation >= 1:
        return int(round(dilation))
    y1, x1, y2, x2 = (int(v) for v in box)
    return int(round(float(dilation) * max(y2 - y1, x2 - x1, 0)))


# The largest dilation in pixels: a radius beyond it covers any photo's side, and the mask is
# padded by the radius on every side while it is dilated ((2 r)^2 pixels per instance).
MAX_DILATION_PX = 4096


def parse_dilation(text):
    """'15' or '15px' -> 15 pixels; '0.05' or '5%' -> fraction 0.05 of the instance size. The one
    parser of a dilation (``gone remove --dilation``, the experiments' ``--dilation``): raises
    ValueError (one line with the reason) for text that is not one, a negative value, or more
    than MAX_DILATION_PX pixels."""
    t = str(text).strip().lower()
    try:
        if t.endswith("%"):
            value = float(t[:-1]) / 100.0
            if not 0 <= value < 1:
                raise ValueError
        elif t.endswith("px"):
            value = int(t[:-2])
        elif "." in t or "e" in t:
            value = float(t)
            if not np.isfinite(value):
                raise ValueError
            value = value if value < 1 else int(round(value))
        else:
            value = int(t)
    except (ValueError, OverflowError):
        raise ValueError(f"invalid dilation {text!r}: use pixels ('15', '15px') or a fraction of the "
                         f"instance size ('0.05', '5%')") from None
    if value < 0:
        raise ValueError(f"invalid dilation {text!r}: must be >= 0")
    if value > MAX_DILATION_PX:
        raise ValueError(f"invalid dilation {text!r}: at most {MAX_DILATION_PX} px (a larger radius covers any "
                         f"photo's side and costs (2 x radius)^2 pixels of memory per instance)")
    return value


def dilate_mask(mask, radius):
    """Grow a bool mask by a Euclidean disk of ``radius`` pixels (pixel centres within
    ``radius`` of a mask pixel are added). Works on the bounding region only, for speed."""
    mask = np.asarray(mask, dtype=bool)
    if radius <= 0 or not mask.any():
        return mask.copy()
    ys, xs = np.nonzero(mask)
    h, w = mask.shape
    y0, y1 = max(ys.min() - radius, 0), min(ys.max() + radius + 1, h)
    x0, x1 = max(xs.min() - radius, 0), min(xs.max() + radius + 1, w)
    # Pad so the distance transform sees background around the region even at image borders.
    sub = np.pad(mask[y0:y1, x0:x1], 1)
    dist = ndimage.distance_transform_edt(~sub)
    out = np.zeros_like(mask)
    out[y0:y1, x0:x1] = (dist <= radius)[1:-1, 1:-1]
    return out


def box_mask(box, image_shape):
    """Bool HxW, True inside the pixel box (y1, x1, y2, x2), y2/x2 exclusive, clipped to the image."""
    h, w = image_shape[:2]
    y1, x1, y2, x2 = (int(v) for v in box)
    out = np.zeros((h, w), dtype=bool)
    out[max(y1, 0):min(y2, h), max(x1, 0):min(x2, w)] = True
    return out


def boxes_from_masks(masks):
    """[N, 4] int32 tight boxes (y1, x1, y2, x2 exclusive) of bool masks [H, W, N]; zeros if empty."""
    masks = np.asarray(masks, dtype=bool)
    boxes = np.zeros((masks.shape[-1], 4), dtype=np.int32)
    for i in range(masks.shape[-1]):
        rows = np.nonzero(masks[..., i].any(axis=1))[0]
        cols = np.nonzero(masks[..., i].any(axis=0))[0]
        if len(rows):
            boxes[i] = (rows[0], cols[0], rows[-1] + 1, cols[-1] + 1)
    return boxes


def detections_from_masks(instance_masks, class_ids=None, scores=None):
    """A Matterport-style detections dict from ground-truth instance masks (oracle mode):
    bool [H, W, N] (or a single [H, W] mask), class 1 ('person') and score 1 by default."""
    m = np.asarray(instance_masks, dtype=bool)
    if m.ndim == 2:
        m = m[..., None]
    n = m.shape[-1]
    return {
        "rois": boxes_from_masks(m),
        "class_ids": (np.ones(n, np.int32) if class_ids is None else np.asarray(class_ids, np.int32)),
        "scores": (np.ones(n, np.float32) if scores is None else np.asarray(scores, np.float32)),
        "masks": m,
    }


def trace_parts(detections, image, dilation=DEFAULT_DILATION, classes=("person",), min_score=0.0,
                class_names=None, held_classes=HELD_OBJECT_CLASSES, shadows=True):
    """What strategy ``traces`` removes besides the selected instances themselves.

    Returns ``(selected, held_by, shadow)``: bool [N] selected instances (as ``select_instances``),
    int [N] ``held_by`` (index of the selected instance a held object touches, -1 otherwise) and a
    list of bool HxW cast-shadow masks, one per instance (empty where not selected).

    A held object is a detection of a class in ``held_classes`` (score >= ``min_score``, not
    itself selected) whose mask meets a selected instance's mask dilated by that instance's
    ``dilation`` radius (at least 2 px); it goes with the first such instance. The shadow of a
    selected instance is ``gone.shadows.cast_shadow_mask`` of the instance in ``image``, with
    every selected instance and held object excluded from it."""
    from gone import shadows as _shadows

    img = np.asarray(image)
    h, w = img.shape[:2]
    n = _n_instances(detections)
    selected = select_instances(detections, classes=classes, min_score=min_score,
                                class_names=class_names)
    held_by = np.full(n, -1, np.int64)
    shadow = [np.zeros((h, w), bool) for _ in range(n)]
    if not selected.any():
        return selected, held_by, shadow
    masks = np.asarray(detections["masks"], dtype=bool)
    if masks.shape[:2] != (h, w):
        raise ValueError(f"detection masks are {masks.shape[:2]}, image is {(h, w)}")
    rois = np.asarray(detections["rois"]) if "rois" in detections else boxes_from_masks(masks)
    candidates = select_instances(detections, classes=held_classes, min_score=min_score,
                                  class_names=class_names) & ~selected
    grown = {i: dilate_mask(masks[..., i], max(2, dilation_radius(dilation, rois[i])))
             for i in np.nonzero(selected)[0]}
    for j in np.nonzero(candidates)[0]:
        for i, g in grown.items():
            if (g & masks[..., j]).any():
                held_by[j] = i
                break
    if shadows:
        removed = masks[..., selected | (held_by >= 0)].any(-1)
        for i in np.nonzero(selected)[0]:
            shadow[i] = _shadows.cast_shadow_mask(img, masks[..., i], removed)
    return selected, held_by, shadow


def hole_mask(detections, image_shape, strategy="dilated", dilation=DEFAULT_DILATION,
              classes=("person",), min_score=0.0, class_names=None, image=None):
    """Bool HxW hole: the union over the selected instances of the strategy's region.

    ``image`` (RGB uint8) is needed by strategy ``traces`` only (to find the shadows)."""
    if strategy == "traces":
        if image is None:
            raise ValueError("strategy 'traces' needs the image (to find the shadows)")
        if tuple(np.shape(image)[:2]) != tuple(image_shape[:2]):
            raise ValueError(f"image is {np.shape(image)[:2]}, expected {tuple(image_shape[:2])}")
        selected, held_by, shadow = trace_parts(detections, image, dilation=dilation,
                                                classes=classes, min_score=min_score,
                                                class_names=class_names)
        hole = np.zeros(image_shape[:2], dtype=bool)
        if not selected.any():
            return hole
        masks = np.asarray(detections["masks"], dtype=bool)
        rois = np.asarray(detections["rois"]) if "rois" in detections else boxes_from_masks(masks)
        for i in np.nonzero(selected | (held_by >= 0))[0]:
            hole |= dilate_mask(masks[..., i], dilation_radius(dilation, rois[i]))
            # The shadow mask already has its soft edge (gone.shadows' penumbra step): grown by
            # SHADOW_DILATION px only, not by the person's radius (a wide ring of well-lit
            # ground would only add fill error).
            hole |= dilate_mask(shadow[i], SHADOW_DILATION)
        return hole
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    h, w = image_shape[:2]
    hole = np.zeros((h, w), dtype=bool)
    keep = select_instances(detections, classes=classes, min_score=min_score, class_names=class_names)
    if not keep.any():
        return hole
    rois = np.asarray(detections["rois"]) if "rois" in detections else None
    masks = np.asarray(detections["masks"], dtype=bool) if "masks" in detections else None
    if strategy != "box" and masks is None:
        raise ValueError(f"strategy {strategy!r} needs instance masks; these detections only have boxes")
    if masks is not None and masks.shape[:2] != (h, w):
        raise ValueError(f"detection masks are {masks.shape[:2]}, image is {(h, w)}")
    if rois is None:
        rois = boxes_from_masks(masks)
    for i in np.nonzero(keep)[0]:
        if strategy == "box":
            hole |= box_mask(rois[i], (h, w))
        elif strategy == "mask":
            hole |= masks[..., i]
        else:
            hole |= dilate_mask(masks[..., i], dilation_radius(dilation, rois[i]))
    return hole


def large_crop_fraction(hole):
    """Hole area / image area (float in [0, 1]); 'large' when > LARGE_CROP_THRESHOLD."""
    hole = np.asarray(hole, dtype=bool)
    return float(hole.mean()) if hole.size else 0.0
