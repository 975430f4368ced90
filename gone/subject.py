"""Which detected people are the photo's *subject* (kept), and the hole of the others.

The rule (``subject_instances``), on the person detections of one image whose score is at least
``min_score``:

1. **Main subject.** Each person gets ``size`` = the larger of its bounding box's height / image
   height and width / image width, and ``offset`` = how far its mask centroid is from the image
   centre, as a fraction of the half-size (Chebyshev: 0 at the centre, 1 on the border). The
   candidate is the person with the largest ``size * (1 - offset)``. It is the subject when
   ``size >= SUBJECT_MIN_SIZE`` (0.5: a person spanning at least half the frame) and
   ``offset <= SUBJECT_MAX_OFFSET`` (0.5: its centroid in the central half of each axis), or
   whatever its position, when its mask covers at least ``LARGE_SUBJECT_AREA`` of the image (the
   paper, section on large crops: "people occupying >= 50% of the image are likely the main
   subjects of images"; such a hole is a "large crop", ``gone.masks.LARGE_CROP_THRESHOLD``).
2. **Companions.** A person whose mask touches or overlaps a subject's mask grown by
   ``TOUCH_RADIUS`` of that subject's box side (2 %) and whose ``size`` is at least
   ``COMPANION_MIN_RATIO`` (0.6) of that subject's is a subject too (a couple, a family). This
   is repeated until no one is added, so a chain of people holding hands is kept whole.

Everything else selected for removal (``gone.masks.select_instances``: the classes and the
minimum score) is removed. ``hole_without`` turns "remove these instances" into the hole with the
pipeline's own strategy (``PeopleRemover.hole_for``); ``gone remove --keep subject`` and
``gone app`` both use it, so the same choices give the same hole.

Limits (measured by ``benchmarks/subject_rule.py``, table in docs/app.md): a large passer-by in
the centre of the frame is taken for the subject; a small subject (a person far away in a
landscape) is not found; a passer-by who touches the subject and is nearly as large is kept as a
companion; group photos with people spread across the frame keep only the ones touching the
central person.
"""
from __future__ import annotations

import numpy as np

from gone import masks as _masks

SUBJECT_MIN_SIZE = 0.5
SUBJECT_MAX_OFFSET = 0.5
LARGE_SUBJECT_AREA = _masks.LARGE_CROP_THRESHOLD
TOUCH_RADIUS = 0.02
COMPANION_MIN_RATIO = 0.6
KEEP_CHOICES = ("none", "subject")


def _person_geometry(masks, rois, shape):
    h, w = shape[:2]
    rois = np.asarray(rois, np.float64).reshape(-1, 4)
    size = np.maximum((rois[:, 2] - rois[:, 0]) / h, (rois[:, 3] - rois[:, 1]) / w)
    offset = np.ones(len(rois))
    area = np.zeros(len(rois))
    for i in range(len(rois)):
        ys, xs = np.nonzero(masks[..., i])
        if len(ys):
            offset[i] = max(abs(ys.mean() + 0.5 - h / 2) / (h / 2), abs(xs.mean() + 0.5 - w / 2) / (w / 2))
            area[i] = len(ys) / float(h * w)
    return size, offset, area


def subject_instances(detections, image_shape, min_score=0.7, class_names=None):
    """Bool [N]: the detections that are the photo's subject(s) by the rule of this module.
    Only ``person`` detections with score >= ``min_score`` can be subjects."""
    n = _masks._n_instances(detections)
    keep = np.zeros(n, bool)
    people = np.nonzero(_masks.select_instances(detections, ("person",), min_score, class_names))[0]
    if not len(people):
        return keep
    m = np.asarray(detections["masks"], bool)
    if m.shape[:2] != tuple(image_shape[:2]):
        raise ValueError(f"detection masks are {m.shape[:2]}, image is {tuple(image_shape[:2])}")
    masks = m[..., people]
    rois = (np.asarray(detections["rois"])[people] if "rois" in detections
            else _masks.boxes_from_masks(masks))
    size, offset, area = _person_geometry(masks, rois, image_shape)
    best = int(np.argmax(size * (1.0 - np.minimum(offset, 1.0))))
    if not ((size[best] >= SUBJECT_MIN_SIZE and offset[best] <= SUBJECT_MAX_OFFSET)
            or area[best] >= LARGE_SUBJECT_AREA):
        return keep
    chosen = {best}
    frontier = [best]
    while frontier:
        s = frontier.pop()
        side = max(int(rois[s][2] - rois[s][0]), int(rois[s][3] - rois[s][1]))
        grown = _masks.dilate_mask(masks[..., s], max(1, int(round(TOUCH_RADIUS * side))))
        for j in range(len(people)):
            if j not in chosen and size[j] >= COMPANION_MIN_RATIO * size[s] and (grown & masks[..., j]).any():
                chosen.add(j)
                frontier.append(j)
    keep[people[sorted(chosen)]] = True
    return keep


def subset(detections, index):
    """The detections dict restricted to the instances ``index`` (bool [N] or int indices)."""
    index = np.asarray(index)
    if index.dtype == bool:
        index = np.nonzero(index)[0]
    out = {}
    for key, value in detections.items():
        arr = np.asarray(value)
        out[key] = arr[..., index] if key == "masks" else arr[index]
    return out


def hole_without(remover, detections, image, remove):
    """The hole of ``image`` (``remover``'s strategy and dilation) when exactly the instances
    ``remove`` (bool [N]) are removed. Held objects (``gone.masks.HELD_OBJECT_CLASSES``) not
    removed themselves stay candidates of strategy ``traces`` (they go with a removed person
    they touch); kept instances are left out, so a kept person's held objects and shadow stay
    unless a removed person touches them."""
    remove = np.asarray(remove, bool)
    image = np.asarray(image)
    if not remove.any():
        return np.zeros(image.shape[:2], bool)
    class_ids = np.asarray(detections["class_ids"]).reshape(-1)
    held = np.isin(class_ids, sorted(_masks.class_ids_for(_masks.HELD_OBJECT_CLASSES,
                                                          remover.class_names)))
    chosen = subset(detections, remove | held)
    classes = sorted({int(c) for c in class_ids[remove]})
    return remover.hole_for(chosen, image.shape, classes=classes, image=image)


def holes_keeping_subject(remover, images, detections):
    """``gone remove --keep subject``: for each image, the hole of the instances ``remover``
    selects (classes, minimum score) minus the subject(s)."""
    holes = []
    for img, det in zip(images, detections):
        selected = _masks.select_instances(det, remover.classes, remover.min_score, remover.class_names)
        kept = subject_instances(det, img.shape, remover.min_score, remover.class_names)
        holes.append(hole_without(remover, det, img, selected & ~kept))
    return holes


def remove_keeping_subject(remover, images):
    """``PeopleRemover.remove`` with the subject(s) of each image kept: detect, the hole of the
    other selected instances (``holes_keeping_subject``), then the pipeline on those holes. The
    results carry the detections; an image whose only people are subjects is left untouched."""
    images = [np.asarray(im) for im in images]
    detections = remover.detect(images)
    holes = holes_keeping_subject(remover, images, detections)
    results = remover.remove(images, hole_masks=holes)
    for res, det in zip(results, detections):
        res.detections = det
        if res.status == "nothing_to_remove":
            n = len(det.get("class_ids", []))
            res.message = (f"nothing to remove ({n} detection{'s' if n != 1 else ''}, the subject "
                           "kept); image left untouched")
    return results
