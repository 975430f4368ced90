"""Training masks for DeepFill v1: random bbox (the original), free-form strokes, user masks.

All masks are float32 1 x H x W x 1 with 1 = hole, shared by the whole batch (as the original, which
draws one bbox and one mask per batch). Every sampler takes a `numpy.random.Generator` (or a seed) so
runs are reproducible and resumable.

Original facts (`inpaint_model.py`, v1.0.0): `random_bbox` draws t uniform in
[VERTICAL_MARGIN, IMG_H - VERTICAL_MARGIN - HEIGHT) and l likewise (tf.random_uniform int, upper
bound exclusive), h = HEIGHT, w = WIDTH; `bbox2mask` shrinks the bbox by dh = randint(MAX_DELTA_HEIGHT
// 2 + 1) rows and dw = randint(MAX_DELTA_WIDTH // 2 + 1) cols on each side. The local patch fed
to the local critic is the unshrunk bbox.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

MASK_KINDS = ("bbox", "free_form", "user")


def _cfg(config, name, default=None):
    if isinstance(config, dict):
        return config.get(name, default)
    return getattr(config, name, default)


def as_rng(rng=None):
    """A numpy Generator from a Generator, an int seed or None."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def random_bbox(config, rng=None):
    """(t, l, h, w) of the local patch, one per batch."""
    rng = as_rng(rng)
    img_h, img_w = int(_cfg(config, "IMG_SHAPES")[0]), int(_cfg(config, "IMG_SHAPES")[1])
    height, width = int(_cfg(config, "HEIGHT")), int(_cfg(config, "WIDTH"))
    v_margin = int(_cfg(config, "VERTICAL_MARGIN", 0))
    h_margin = int(_cfg(config, "HORIZONTAL_MARGIN", 0))
    max_t = img_h - v_margin - height
    max_l = img_w - h_margin - width
    if max_t <= v_margin or max_l <= h_margin:
        raise ValueError(f"bbox {height}x{width} with margins ({v_margin}, {h_margin}) does not fit "
                         f"IMG_SHAPES {img_h}x{img_w}; reduce HEIGHT/WIDTH or the margins")
    t = int(rng.integers(v_margin, max_t))
    l = int(rng.integers(h_margin, max_l))
    return t, l, height, width


def bbox2mask(bbox, config, rng=None, delta=None):
    """1 x H x W x 1 float32 mask of the bbox shrunk by random deltas (MAX_DELTA_HEIGHT/WIDTH).

    `delta=(dh, dw)` fixes the shrink (the golden losses case uses (6, 13)).
    """
    img_h, img_w = int(_cfg(config, "IMG_SHAPES")[0]), int(_cfg(config, "IMG_SHAPES")[1])
    t, l, h, w = (int(v) for v in bbox)
    if delta is None:
        rng = as_rng(rng)
        dh = int(rng.integers(int(_cfg(config, "MAX_DELTA_HEIGHT", 32)) // 2 + 1))
        dw = int(rng.integers(int(_cfg(config, "MAX_DELTA_WIDTH", 32)) // 2 + 1))
    else:
        dh, dw = (int(v) for v in delta)
    mask = np.zeros((1, img_h, img_w, 1), np.float32)
    mask[:, t + dh:t + h - dh, l + dw:l + w - dw, :] = 1.0
    return mask


def free_form_mask(height, width, rng=None, max_vertex=12, max_length=None, max_brush_width=None,
                   max_angle=4.0, strokes=(1, 4)):
    """Random brush strokes (DeepFill v2-style free-form holes), 1 x H x W x 1 float32.

    Each stroke is a polyline of up to `max_vertex` segments with random angle and length, drawn
    with a random brush width (round joints).
    """
    from PIL import Image, ImageDraw

    rng = as_rng(rng)
    max_length = max_length or max(4, min(height, width) // 4)
    max_brush_width = max_brush_width or max(3, min(height, width) // 10)
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    for _ in range(int(rng.integers(strokes[0], strokes[1] + 1))):
        x, y = float(rng.integers(0, width)), float(rng.integers(0, height))
        brush = int(rng.integers(max(2, max_brush_width // 3), max_brush_width + 1))
        angle = float(rng.uniform(0, 2 * math.pi))
        for _ in range(int(rng.integers(1, max_vertex + 1))):
            angle += float(rng.uniform(-max_angle, max_angle)) / 2
            length = float(rng.uniform(max(2, max_length // 4), max_length))
            nx = min(max(x + length * math.cos(angle), 0), width - 1)
            ny = min(max(y + length * math.sin(angle), 0), height - 1)
            draw.line([(x, y), (nx, ny)], fill=255, width=brush)
            r = brush / 2
            draw.ellipse([nx - r, ny - r, nx + r, ny + r], fill=255)
            x, y = nx, ny
    mask = (np.asarray(canvas) > 0).astype(np.float32)
    return mask[None, :, :, None]


def load_user_mask(path, height, width):
    """A mask image file (white / >127.5 = hole, any channel count) resized (nearest) to H x W."""
    from PIL import Image

    from gonefiles.images import ImageReadError, open_image   # the guarded reader (pixel limit)

    if not os.path.isfile(path):
        raise FileNotFoundError(f"mask file not found: {path}")
    try:
        with open_image(path, what="mask") as image:
            gray = image.convert("L")
            if gray.size != (width, height):
                gray = gray.resize((width, height), Image.NEAREST)
            values = np.asarray(gray)
    except ImageReadError as error:
        raise ValueError(f"cannot read mask file {error}") from None
    return (values > 127.5).astype(np.float32)[None, :, :, None]


def patch_around_hole(mask, config):
    """(t, l, HEIGHT, WIDTH) local-critic window centred on the hole's bounding box, clipped."""
    img_h, img_w = mask.shape[1], mask.shape[2]
    height, width = int(_cfg(config, "HEIGHT")), int(_cfg(config, "WIDTH"))
    rows = np.flatnonzero(mask[0, :, :, 0].any(axis=1))
    cols = np.flatnonzero(mask[0, :, :, 0].any(axis=0))
    if rows.size == 0:
        cy, cx = img_h // 2, img_w // 2
    else:
        cy, cx = (rows[0] + rows[-1] + 1) // 2, (cols[0] + cols[-1] + 1) // 2
    t = int(min(max(cy - height // 2, 0), img_h - height))
    l = int(min(max(cx - width // 2, 0), img_w - width))
    return t, l, height, width


@dataclass
class MaskSample:
    mask: np.ndarray  # 1 x H x W x 1 float32, 1 = hole
    bbox: tuple  # (t, l, HEIGHT, WIDTH): the local critic's patch


class MaskSampler:
    """One (mask, local bbox) per batch: kind "bbox" (original), "free_form" or "user" (files)."""

    def __init__(self, config, kind="bbox", rng=None, user_mask_paths=None):
        if kind not in MASK_KINDS:
            raise ValueError(f"mask kind must be one of {MASK_KINDS}, got {kind!r}")
        self.config = config
        self.kind = kind
        self.rng = as_rng(rng)
        self.height = int(_cfg(config, "IMG_SHAPES")[0])
        self.width = int(_cfg(config, "IMG_SHAPES")[1])
        self.user_masks = []
        if kind == "user":
            if not user_mask_paths:
                raise ValueError("mask kind 'user' needs mask files (user_mask_paths)")
            self.user_masks = [load_user_mask(p, self.height, self.width) for p in user_mask_paths]

    def sample(self):
        if self.kind == "bbox":
            bbox = random_bbox(self.config, self.rng)
            return MaskSample(bbox2mask(bbox, self.config, self.rng), bbox)
        if self.kind == "free_form":
            mask = free_form_mask(self.height, self.width, self.rng)
        else:
            mask = self.user_masks[int(self.rng.integers(len(self.user_masks)))]
        return MaskSample(mask, patch_around_hole(mask, self.config))
