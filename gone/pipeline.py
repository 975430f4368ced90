"""End-to-end people removal: detect -> hole mask -> crop/scale/pad -> inpaint -> paste back.

``PeopleRemover`` works with any detector exposing Matterport's ``detect(list_of_rgb_uint8)``
(list of dicts with rois, class_ids, scores, masks) and any inpainter exposing
``fill(images, holes)`` on network-ready batches (``gone.inpainters``, ``inpaint.InpaintModel.fill``).
It is the only place that crops, scales, pads and composites.

Any image size is handled by inpainting *regions*: each connected part of the hole gets a
context box (the hole's bounding box grown by ``context_margin`` x its larger side, at least
``min_context`` px, clipped to the image); overlapping boxes are merged. A region whose larger
side exceeds ``working_size`` is downscaled to it (DeepFill v1 was trained on 256x256 images with
holes up to 128x128, so holes far larger than that at full resolution deteriorate). Its working
size is rounded up to a multiple of ``size_multiple`` (64; DeepFill needs 8), taking more real
context first and padding symmetrically (marked as known) only where the image ends: few
distinct shapes means few graph traces. It is inpainted, scaled back and pasted **only inside
the hole**: every output pixel outside the hole is bit-identical to the input. These region
parameters default to those the inpainter advertises (``region_defaults``; LaMa fills at full
resolution up to 2048 px with at least 128 px of context, sides multiples of 8), else to
``REGION_DEFAULTS`` (the values above).
"""
from __future__ import annotations

import dataclasses
import time
import warnings

import numpy as np
from scipy import ndimage

from gone import masks as _masks

LARGE_CROP_POLICIES = ("process", "skip", "warn")
# Region parameters used when neither the caller nor the inpainter (its ``region_defaults``,
# e.g. gone.inpainters.LAMA_REGION) sets them: DeepFill v1's and the classical inpainters'.
REGION_DEFAULTS = {"working_size": 512, "context_margin": 0.5, "min_context": 32, "size_multiple": 64}
STATUSES = ("inpainted", "nothing_to_remove", "skipped_large_crop")


# A region whose known (non-hole) pixels are fewer than this fraction of it gives the inpainter
# nothing to fill from (PatchMatch copies known patches: with none, the hole stays black). Such a
# region is filled with the mean colour of the image's known pixels (of the whole image when the
# hole covers all of it), and the result says so (``RemovalResult.fallback``).
MIN_KNOWN_CONTEXT = 0.01


class LargeCropWarning(UserWarning):
    """The hole covers more than LARGE_CROP_THRESHOLD of the image."""


@dataclasses.dataclass
class RemovalResult:
    output: np.ndarray               # RGB uint8 HxWx3
    hole_mask: np.ndarray            # bool HxW, True = removed/inpainted
    detections: dict | None          # Matterport detect() dict (None in oracle mode with a 2-D hole)
    large_crop_fraction: float       # hole area / image area
    status: str                      # one of STATUSES
    message: str = ""
    fallback: str = ""               # why some hole was filled by the documented fallback, else ""


@dataclasses.dataclass
class _Region:
    image_index: int
    box: tuple                       # (y1, x1, y2, x2) in the full image, exclusive ends
    crop: np.ndarray                 # uint8, working scale, padded to multiples of 8
    mask: np.ndarray                 # bool, same size as crop
    valid: tuple                     # (h, w) of the unpadded working-scale crop
    paste: np.ndarray                # bool, full-resolution crop size: pixels to paste back
    result: np.ndarray | None = None
    fallback_colour: np.ndarray | None = None   # set when the region has too little known context
    known: float = 1.0               # fraction of the region's pixels outside the hole


def _check_image(image, index):
    img = np.asarray(image)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[-1] != 3:
        raise ValueError(f"image {index}: expected RGB uint8 HxWx3, got {img.dtype} {img.shape}")
    if img.shape[0] < 1 or img.shape[1] < 1:
        raise ValueError(f"image {index}: empty image {img.shape}")
    return img


def _resize_uint8(img, size_hw, downscale):
    from PIL import Image
    h, w = size_hw
    if img.shape[:2] == (h, w):
        return img.copy()
    resample = Image.Resampling.LANCZOS if downscale else Image.Resampling.BICUBIC
    return np.asarray(Image.fromarray(img).resize((w, h), resample=resample))


def _resize_mask_cover(mask, size_hw):
    """Downscale a bool mask so that every working pixel touching the hole is hole (area > 0)."""
    from PIL import Image
    h, w = size_hw
    if mask.shape == (h, w):
        return mask.copy()
    area = np.asarray(Image.fromarray(mask.astype(np.float32)).resize((w, h), resample=Image.Resampling.BOX))
    return area > 1e-6


def _grow(lo, hi, size, limit):
    """Grow [lo, hi) towards `size` (evenly on both sides), within [0, limit)."""
    extra = size - (hi - lo)
    if extra <= 0:
        return lo, hi
    lo2 = max(0, lo - extra // 2)
    hi2 = min(limit, hi + (extra - (lo - lo2)))
    lo2 = max(0, lo2 - (size - (hi2 - lo2)))
    return lo2, max(hi2, hi)


def _merge_boxes(boxes):
    boxes = [list(b) for b in boxes]
    merged = True
    while merged:
        merged = False
        out = []
        while boxes:
            b = boxes.pop()
            i = 0
            while i < len(boxes):
                o = boxes[i]
                if b[0] < o[2] and o[0] < b[2] and b[1] < o[3] and o[1] < b[3]:
                    b = [min(b[0], o[0]), min(b[1], o[1]), max(b[2], o[2]), max(b[3], o[3])]
                    boxes.pop(i)
                    merged = True
                else:
                    i += 1
            out.append(b)
        boxes = out
    return [tuple(b) for b in sorted(boxes)]


def describe_inpainter(inpainter):
    """One line saying which inpainter fills the holes."""
    if inpainter is None:
        return "none"
    return getattr(inpainter, "description", None) or getattr(inpainter, "kind", None) or type(inpainter).__name__


class PeopleRemover:
    """Remove selected instances (default: people) from RGB uint8 images.

    detector: Matterport-style model (``detect``); not needed when ``remove`` gets hole masks.
    inpainter: an object with ``fill(images, holes)`` taking network-ready batches (RGB uint8
    N x H x W x 3 whose sides are multiples of ``size_multiple``, bool N x H x W holes) and
    returning the filled batch (what it does outside the holes is ignored), or an inpainter kind of
    ``gone.inpainters.INPAINTER_KINDS`` ("auto", "patchmatch", ...; built on first use with
    ``inpaint_checkpoint``). ``inpainter_description`` says which one is used.
    strategy, dilation, classes: see ``gone.masks.hole_mask`` (dilation None = default).
    min_score: the score threshold is the detector's own (``gone.models.load_detector``'s
    ``detection_min_confidence``, Matterport's ``DETECTION_MIN_CONFIDENCE``, set once on its
    config); None (default) adds no second one. A number also drops detections under it, for a
    detector without a threshold of its own; one below the detector's own threshold is refused
    (those detections never reach the remover).
    large_crop: "process" (inpaint anyway), "skip" (return the input unchanged, status
    ``skipped_large_crop``) or "warn" (inpaint and warn) when the hole fraction > 0.5.
    context_margin / min_context: context kept around each hole (fraction of its larger side / px).
    working_size: largest side of a region fed to the inpainter (larger regions are downscaled).
    size_multiple: region sides are rounded up to a multiple of this (8 is DeepFill's minimum;
    64 keeps the number of distinct shapes, hence of graph traces, small).
    These four, when None (the default), come from the inpainter's ``region_defaults`` (LaMa:
    ``gone.inpainters.LAMA_REGION``, 2048 / 0.5 / 128 px / 8), else ``REGION_DEFAULTS`` (512 /
    0.5 / 32 px / 64).
    lama_weights: LaMa's weights for an inpainter given as a kind ("lama", or "auto").
    batch_size: images per detector call and regions per inpainter call (None = detector's
    config.BATCH_SIZE, else 1).
    """

    def __init__(self, detector=None, inpainter="auto", strategy="dilated", dilation=None,
                 classes=("person",), min_score=None, large_crop="process", context_margin=None,
                 min_context=None, working_size=None, size_multiple=None, batch_size=None, class_names=None,
                 inpaint_checkpoint=None, lama_weights=None):
        if strategy not in _masks.STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}; choose one of {', '.join(_masks.STRATEGIES)}")
        if large_crop not in LARGE_CROP_POLICIES:
            raise ValueError(f"large_crop must be one of {', '.join(LARGE_CROP_POLICIES)}, got {large_crop!r}")
        if working_size is not None and (working_size < 8 or working_size % 8):
            raise ValueError(f"working_size must be a positive multiple of 8, got {working_size}")
        self.detector = detector
        self._inpainter = None
        self._inpainter_kind = None
        self.inpaint_checkpoint = inpaint_checkpoint
        self.lama_weights = lama_weights
        self.inpainter = inpainter
        self.strategy = strategy
        self.dilation = _masks.DEFAULT_DILATION if dilation is None else dilation
        if isinstance(self.dilation, str):
            self.dilation = _masks.parse_dilation(self.dilation)
        self.classes = classes
        _masks.class_ids_for(classes, class_names)  # validate early
        self.min_score = None if min_score is None else float(min_score)
        own = getattr(getattr(detector, "config", None), "DETECTION_MIN_CONFIDENCE", None)
        if self.min_score is not None and own is not None and self.min_score < own:
            raise ValueError(f"min_score {self.min_score} is below the detector's own threshold {own} "
                             f"(DETECTION_MIN_CONFIDENCE); build the detector with that score instead")
        self.large_crop = large_crop
        if size_multiple is not None and (size_multiple < 8 or size_multiple % 8):
            raise ValueError(f"size_multiple must be a positive multiple of 8, got {size_multiple}")
        # None = the inpainter's ``region_defaults``, else REGION_DEFAULTS (resolved on use)
        self._region = {"working_size": working_size, "size_multiple": None if size_multiple is None else int(size_multiple),
                        "context_margin": None if context_margin is None else float(context_margin),
                        "min_context": None if min_context is None else int(min_context)}
        self.batch_size = batch_size
        self.class_names = class_names
        self.last_timings = {}   # seconds per stage of the last remove() call

    @property
    def inpainter(self):
        if self._inpainter is None and self._inpainter_kind is not None:
            from gone.inpainters import make_inpainter
            self._inpainter = make_inpainter(self._inpainter_kind, checkpoint=self.inpaint_checkpoint,
                                             lama_weights=self.lama_weights)
        return self._inpainter

    def _region_param(self, name):
        value = self._region[name]
        if value is None:
            value = (getattr(self.inpainter, "region_defaults", None) or {}).get(name, REGION_DEFAULTS[name])
        return value

    working_size = property(lambda self: self._region_param("working_size"),
                            doc="Largest region side fed to the inpainter (set, else the inpainter's, else 512).")
    size_multiple = property(lambda self: self._region_param("size_multiple"),
                             doc="Region sides are rounded up to a multiple of this (set, else the inpainter's, else 64).")
    context_margin = property(lambda self: self._region_param("context_margin"),
                              doc="Context around each hole, fraction of its larger side (set, else the inpainter's, else 0.5).")
    min_context = property(lambda self: self._region_param("min_context"),
                           doc="Context around each hole, at least this many px (set, else the inpainter's, else 32).")

    @inpainter.setter
    def inpainter(self, value):
        if isinstance(value, str):
            self._inpainter, self._inpainter_kind = None, value
        else:
            self._inpainter, self._inpainter_kind = value, None

    @property
    def inpainter_description(self):
        """Which inpainter fills the holes (builds it when given as a kind)."""
        return describe_inpainter(self.inpainter)

    # -- detection ---------------------------------------------------------------------------
    def detect(self, images):
        """Detections for each image (Matterport dicts): one ``detector.detect`` call per
        ``batch_size`` images (Matterport-compatible ``mrcnn.model.MaskRCNN.detect`` pads a short
        batch to its config's BATCH_SIZE itself)."""
        if self.detector is None:
            raise ValueError("no detector: pass one to PeopleRemover or give hole_masks (oracle mode)")
        cfg = getattr(self.detector, "config", None)
        size = int(getattr(cfg, "BATCH_SIZE", None) or self.batch_size or 1)
        results = []
        for start in range(0, len(images), size):
            results.extend(self.detector.detect(list(images[start:start + size])))
        return results

    def hole_for(self, detections, image_shape, classes=None, image=None):
        """The hole of one image from its detections (``gone.masks.hole_mask``); ``image`` is
        passed to strategies that look at the pixels (``traces``: the shadows)."""
        return _masks.hole_mask(detections, image_shape, strategy=self.strategy, dilation=self.dilation,
                                classes=self.classes if classes is None else classes,
                                min_score=self.min_score or 0.0, class_names=self.class_names, image=image)

    # -- inpainting ----------------------------------------------------------------------------
    def _regions(self, index, image, hole):
        h, w = hole.shape
        labels, _ = ndimage.label(hole, structure=np.ones((3, 3), dtype=bool))
        boxes = []
        for sl in ndimage.find_objects(labels):
            if sl is None:
                continue
            y1, y2, x1, x2 = sl[0].start, sl[0].stop, sl[1].start, sl[1].stop
            margin = max(self.min_context, int(np.ceil(self.context_margin * max(y2 - y1, x2 - x1))))
            boxes.append((max(0, y1 - margin), max(0, x1 - margin), min(h, y2 + margin), min(w, x2 + margin)))
        q = self.size_multiple
        regions = []
        for own_box in _merge_boxes(boxes):
            y1, x1, y2, x2 = own_box
            ch, cw = y2 - y1, x2 - x1
            scale = 1.0
            if self.working_size and max(ch, cw) > self.working_size:
                scale = self.working_size / max(ch, cw)
            # Working size rounded up to a multiple of q: few distinct shapes means few
            # graph traces / XLA compilations and more batching. Fill the extra with real
            # context where the image has it; pad (symmetric) only what is left.
            th = -(-max(1, int(round(ch * scale))) // q) * q
            tw = -(-max(1, int(round(cw * scale))) // q) * q
            y1, y2 = _grow(y1, y2, int(np.floor(th / scale)), h)
            x1, x2 = _grow(x1, x2, int(np.floor(tw / scale)), w)
            crop, mask = image[y1:y2, x1:x2], hole[y1:y2, x1:x2]
            vh = min(th, max(1, int(round((y2 - y1) * scale))))
            vw = min(tw, max(1, int(round((x2 - x1) * scale))))
            small = _resize_uint8(crop, (vh, vw), downscale=True)
            small_mask = _resize_mask_cover(mask, (vh, vw))
            ph, pw = th - vh, tw - vw
            if ph or pw:
                small = np.pad(small, ((0, ph), (0, pw), (0, 0)), mode="symmetric")
                small_mask = np.pad(small_mask, ((0, ph), (0, pw)), constant_values=False)
            # paste back only this region's own hole pixels (merged boxes are disjoint)
            own = np.zeros((y2 - y1, x2 - x1), dtype=bool)
            oy1, ox1, oy2, ox2 = own_box
            own[oy1 - y1:oy2 - y1, ox1 - x1:ox2 - x1] = True
            own &= mask
            region = _Region(index, (y1, x1, y2, x2), np.ascontiguousarray(small), small_mask, (vh, vw), own)
            region.known = float(1.0 - small_mask[:vh, :vw].mean())
            if region.known < MIN_KNOWN_CONTEXT:
                outside = image[~hole]
                region.fallback_colour = np.round((outside if len(outside) else image.reshape(-1, 3))
                                                  .mean(axis=0)).astype(np.uint8)
            regions.append(region)
        return regions

    def _run_inpainter(self, regions):
        if self.inpainter is None:
            raise ValueError("no inpainter: pass one (or a kind such as 'auto') to PeopleRemover")
        fill = getattr(self.inpainter, "fill", None)
        if not callable(fill):
            raise TypeError(f"the inpainter {type(self.inpainter).__name__} has no fill(images, holes) "
                            f"taking network-ready batches (gone.inpainters.make_inpainter builds one)")
        size = max(1, int(self.batch_size or 1))
        by_shape = {}
        for r in regions:
            if r.fallback_colour is not None:   # nothing to fill from: the documented fallback
                r.result = np.where(r.mask[..., None], r.fallback_colour, r.crop).astype(np.uint8)
                continue
            by_shape.setdefault(r.crop.shape, []).append(r)
        for group in by_shape.values():
            for start in range(0, len(group), size):
                chunk = group[start:start + size]
                outs = fill(np.stack([r.crop for r in chunk]), np.stack([r.mask for r in chunk]))
                for r, o in zip(chunk, outs):
                    o = np.asarray(o)
                    if o.shape != r.crop.shape:
                        raise RuntimeError(f"inpainter returned {o.shape} for a {r.crop.shape} input")
                    r.result = o.astype(np.uint8, copy=False)

    def crop_regions(self, images, holes):
        """Step 3: the network-ready regions (cropped with context, scaled, padded) of every hole."""
        regions = []
        for i, (img, hole) in enumerate(zip(images, holes)):
            if hole.any():
                regions.extend(self._regions(i, img, hole))
        return regions

    def fill(self, regions):
        """Step 4: the inpainter fills every region (same-shape regions batched); a region with
        less than MIN_KNOWN_CONTEXT known pixels gets the mean-colour fallback instead."""
        if regions:
            self._run_inpainter(regions)

    @staticmethod
    def paste(images, regions):
        """Step 5: keep the fill only inside the working-scale hole (the inpainters composite
        nothing), scale it back and paste it into a copy of its image, inside the hole only."""
        outputs = [np.array(img, copy=True) for img in images]
        for r in regions:
            y1, x1, y2, x2 = r.box
            vh, vw = r.valid
            fill = np.where(r.mask[:vh, :vw, None], r.result[:vh, :vw], r.crop[:vh, :vw])
            patch = _resize_uint8(fill, (y2 - y1, x2 - x1), downscale=False)
            target = outputs[r.image_index][y1:y2, x1:x2]
            target[r.paste] = patch[r.paste]
        return outputs

    def holes_from_masks(self, images, hole_masks):
        """Oracle mode: (detections, holes) from given 2-D holes or HxWxN instance masks."""
        if isinstance(hole_masks, np.ndarray) and hole_masks.ndim == 2:
            hole_masks = [hole_masks]
        if len(hole_masks) != len(images):
            raise ValueError(f"{len(hole_masks)} hole masks for {len(images)} images")
        detections, holes = [], []
        for i, (img, m) in enumerate(zip(images, hole_masks)):
            m = np.asarray(m).astype(bool)
            if m.ndim == 3:
                if m.shape[:2] != img.shape[:2]:
                    raise ValueError(f"image {i}: instance masks {m.shape[:2]} vs image {img.shape[:2]}")
                det = _masks.detections_from_masks(m)
                detections.append(det)
                holes.append(self.hole_for(det, img.shape, classes=None, image=img))
            elif m.ndim == 2:
                if m.shape != img.shape[:2]:
                    raise ValueError(f"image {i}: hole mask {m.shape} vs image {img.shape[:2]}")
                detections.append(None)
                holes.append(m)
            else:
                raise ValueError(f"image {i}: hole mask must be HxW or HxWxN, got {m.shape}")
        return detections, holes

    def _decide(self, image, hole, det):
        """The large-crop policy for one image: a finished RemovalResult (nothing to do / skipped)
        or one still to inpaint (output None)."""
        frac = _masks.large_crop_fraction(hole)
        if not hole.any():
            n = 0 if det is None else len(det.get("class_ids", []))
            what = "the mask marks no hole (no pixel > 127)" if det is None else (
                f"nothing to remove ({n} detection{'s' if n != 1 else ''}, none selected)")
            return RemovalResult(image.copy(), hole, det, frac, "nothing_to_remove",
                                 f"{what}; image left untouched")
        large = frac > _masks.LARGE_CROP_THRESHOLD
        if large and self.large_crop == "skip":
            return RemovalResult(image.copy(), hole, det, frac, "skipped_large_crop",
                                 f"skipped: hole covers {frac:.0%} of the image (> "
                                 f"{_masks.LARGE_CROP_THRESHOLD:.0%}); image left untouched")
        message = f"inpainted {frac:.1%} of the image"
        if large and self.large_crop == "warn":
            message = (f"warning: large crop, hole covers {frac:.0%} of the image (> "
                       f"{_masks.LARGE_CROP_THRESHOLD:.0%}); result may be poor")
            warnings.warn(message, LargeCropWarning, stacklevel=3)
        return RemovalResult(None, hole, det, frac, "inpainted", message)

    # -- the whole pipeline ----------------------------------------------------------------------
    def remove(self, images, hole_masks=None):
        """List of RemovalResult, one per image: detect -> hole -> crop -> fill -> paste.

        hole_masks (oracle mode, no detector needed): one entry per image, either a bool HxW hole
        used as is, or bool HxWxN ground-truth instance masks, turned into a hole with this
        remover's strategy and dilation (all instances selected)."""
        if isinstance(images, np.ndarray) and images.ndim == 3:
            images = [images]
        images = [_check_image(im, i) for i, im in enumerate(images)]
        t0 = time.perf_counter()
        # 1. detect, 2. hole (or the holes given)
        if hole_masks is None:
            detections = self.detect(images)
            t_detect = time.perf_counter()
            holes = [self.hole_for(d, img.shape, image=img) for d, img in zip(detections, images)]
        else:
            t_detect = t0
            detections, holes = self.holes_from_masks(images, hole_masks)
        t_holes = time.perf_counter()
        results = [self._decide(img, hole, det) for img, hole, det in zip(images, holes, detections)]
        todo = [i for i, r in enumerate(results) if r.output is None]
        # 3. crop, scale and pad the regions; 4. fill them; 5. paste the fills into the holes
        regions = self.crop_regions([images[i] for i in todo], [holes[i] for i in todo])
        self.fill(regions)
        for i, out in zip(todo, self.paste([images[i] for i in todo], regions)):
            results[i].output = out
        for r in regions:
            if r.fallback_colour is not None:
                res = results[todo[r.image_index]]
                res.fallback = (f"the hole leaves {r.known:.1%} of its region known (< {MIN_KNOWN_CONTEXT:.0%}), "
                                f"nothing to fill from: filled with the mean colour of the image's known pixels"
                                if holes[todo[r.image_index]].mean() < 1.0 else
                                "the hole covers the whole image, nothing to fill from: filled with the "
                                "image's mean colour")
                res.message = (f"{res.message}; {res.fallback}" if res.message.startswith("warning")
                               else f"warning: {res.fallback}")
        self.last_timings = {"detect": t_detect - t0, "masks": t_holes - t_detect,
                             "inpaint": time.perf_counter() - t_holes}
        return results



class WholeImageRemover:
    """``gone inpaint``'s test.py form (one --image, one --mask, a DeepFill inpainter, an image no
    larger than the working size): Yu et al.'s test.py procedure instead of regions. The whole
    image, cropped at the bottom/right to a multiple of 8 as test.py crops it, goes through the
    network once (``DeepFillInpainter.fill_like_test_py``), and the output is test.py's: that
    cropped size, test.py's composite and truncation. ``remove`` returns RemovalResults as
    PeopleRemover's (oracle holes only)."""

    def __init__(self, inpainter):
        self.inpainter = inpainter

    @property
    def inpainter_description(self):
        return f"{describe_inpainter(self.inpainter)}, whole image as Yu et al.'s test.py"

    def remove(self, images, hole_masks):
        results = []
        for image, hole in zip(images, hole_masks):
            hole = np.asarray(hole, bool)
            frac = _masks.large_crop_fraction(hole)
            if not hole.any():
                results.append(RemovalResult(np.array(image, copy=True), hole, None, frac, "nothing_to_remove",
                                             "the mask marks no hole (no pixel > 127); image left untouched"))
                continue
            out = self.inpainter.fill_like_test_py(image, hole)
            message = f"inpainted {frac:.1%} of the image as test.py"
            if out.shape != np.shape(image):
                message += f" (cropped to {out.shape[0]}x{out.shape[1]}, a multiple of 8, as test.py does)"
            results.append(RemovalResult(out, hole[:out.shape[0], :out.shape[1]], None, frac, "inpainted", message))
        return results
