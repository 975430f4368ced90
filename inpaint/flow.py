"""Colour coding of contextual-attention offsets (DeepFill's `flow_to_image`).

The original (`inpaint_ops.flow_to_image`, forked from FlowNet's Middlebury colour wheel) runs in
numpy float64 through `tf.py_func`. Facts it fixes and we follow:
- channel 0 of the offsets (dy) plays the role of `u`, channel 1 (dx) of `v`;
- the normalising radius is a running maximum over the batch (item i uses max over items 0..i);
- a pixel's colour is interpolated on a 55-entry wheel (RY 15, YG 6, GC 4, CB 11, BM 13, MR 6) at
  angle `atan2(-v, -u)`, desaturated towards white by `1 - rad`, floored to uint8, then mapped to
  [-1, 1] as `/127.5 - 1`.

`flow_to_image_np` is the float64 numpy version (bit-faithful); `flow_to_image` the keras.ops
version used inside the generator (float32; a byte can differ by 1 where float64 lands within
float32 rounding of an integer).
"""
from __future__ import annotations

import numpy as np
from keras import ops

_SEGMENTS = (15, 6, 4, 11, 13, 6)  # RY, YG, GC, CB, BM, MR
# `floor(255 * col)` sits exactly on an integer whenever both wheel entries are 255 or 0, and the
# last-ulp result of arctan2 / the interpolation then decides between n-1 and n (numpy builds differ).
# Snapping values within this distance below an integer up makes the codes stable across builds.
_SNAP = 1e-9
_SNAP32 = 1e-4


def make_color_wheel() -> np.ndarray:
    """55 x 3 float64 colour wheel (values 0..255)."""
    ry, yg, gc, cb, bm, mr = _SEGMENTS
    wheel = np.zeros((sum(_SEGMENTS), 3))
    ramp = lambda n: np.floor(255 * np.arange(n) / n)  # noqa: E731
    col = 0
    wheel[col:col + ry, 0] = 255
    wheel[col:col + ry, 1] = ramp(ry)
    col += ry
    wheel[col:col + yg, 0] = 255 - ramp(yg)
    wheel[col:col + yg, 1] = 255
    col += yg
    wheel[col:col + gc, 1] = 255
    wheel[col:col + gc, 2] = ramp(gc)
    col += gc
    wheel[col:col + cb, 1] = 255 - ramp(cb)
    wheel[col:col + cb, 2] = 255
    col += cb
    wheel[col:col + bm, 2] = 255
    wheel[col:col + bm, 0] = ramp(bm)
    col += bm
    wheel[col:col + mr, 2] = 255 - ramp(mr)
    wheel[col:col + mr, 0] = 255
    return wheel


COLOR_WHEEL = make_color_wheel()


def _colorize_np(u, v):
    ncols = COLOR_WHEEL.shape[0]
    rad = np.sqrt(u ** 2 + v ** 2)
    angle = np.arctan2(-v, -u) / np.pi
    fk = (angle + 1) / 2 * (ncols - 1) + 1
    k0 = np.floor(fk).astype(int)
    k1 = k0 + 1
    k1[k1 == ncols + 1] = 1
    frac = fk - k0
    img = np.zeros(u.shape + (3,))
    for ch in range(3):
        col = (1 - frac) * COLOR_WHEEL[k0 - 1, ch] / 255 + frac * COLOR_WHEEL[k1 - 1, ch] / 255
        inside = rad <= 1
        col = np.where(inside, 1 - rad * (1 - col), col * 0.75)
        img[..., ch] = np.uint8(np.floor(255 * col + _SNAP))
    return img


def flow_to_image_np(offsets) -> np.ndarray:
    """B x H x W x 2 offsets (dy, dx) -> B x H x W x 3 float32 colour image in [-1, 1] (float64 math)."""
    flow = np.asarray(offsets, dtype=np.float64)
    if flow.ndim != 4 or flow.shape[-1] != 2:
        raise ValueError(f"offsets must be B x H x W x 2, got shape {flow.shape}")
    out, maxrad = [], -1.0
    for i in range(flow.shape[0]):
        u, v = flow[i, ..., 0].copy(), flow[i, ..., 1].copy()
        unknown = (np.abs(u) > 1e7) | (np.abs(v) > 1e7)
        u[unknown] = 0
        v[unknown] = 0
        maxrad = max(maxrad, float(np.max(np.sqrt(u ** 2 + v ** 2))))
        eps = np.finfo(float).eps
        out.append(_colorize_np(u / (maxrad + eps), v / (maxrad + eps)))
    return (np.float32(np.uint8(out)) / np.float32(127.5) - np.float32(1.0)).astype(np.float32)


def flow_to_image(offsets):
    """keras.ops version of `flow_to_image_np` (float32), usable inside jit/graph code."""
    flow = ops.cast(offsets, "float32")
    batch = int(flow.shape[0])
    wheel = ops.convert_to_tensor(COLOR_WHEEL.astype(np.float32) / np.float32(255.0))
    ncols = COLOR_WHEEL.shape[0]
    rad_items = ops.sqrt(ops.sum(flow * flow, axis=-1))  # B x H x W
    item_max = ops.max(ops.reshape(rad_items, (batch, -1)), axis=1)
    # running maximum over the batch, as the original's loop keeps `maxrad` across items
    running, maxima = None, []
    for i in range(batch):
        running = item_max[i] if running is None else ops.maximum(running, item_max[i])
        maxima.append(running)
    maxrad = ops.reshape(ops.stack(maxima), (batch, 1, 1)) + np.float32(np.finfo(float).eps)
    u = flow[..., 0] / maxrad
    v = flow[..., 1] / maxrad
    rad = ops.sqrt(u * u + v * v)
    angle = ops.arctan2(-v, -u) / np.float32(np.pi)
    fk = (angle + 1.0) / 2.0 * np.float32(ncols - 1) + 1.0
    k0 = ops.floor(fk)
    frac = fk - k0
    k0i = ops.cast(k0, "int32")
    k1i = ops.where(k0i + 1 == ncols + 1, 1, k0i + 1)
    col0 = ops.take(wheel, k0i - 1, axis=0)  # B x H x W x 3
    col1 = ops.take(wheel, k1i - 1, axis=0)
    frac = frac[..., None]
    col = (1.0 - frac) * col0 + frac * col1
    rad = rad[..., None]
    col = ops.where(rad <= 1.0, 1.0 - rad * (1.0 - col), col * 0.75)
    img = ops.floor(255.0 * col + _SNAP32)
    return img / 127.5 - 1.0
