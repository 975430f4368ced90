"""The cast shadow of a removed person, found from the pixels alone (no shadow detector, no
ground truth).

A cast shadow on the ground is (to first order) the lit ground multiplied by a factor below one
in every channel: darker, same chromaticity; and it touches the feet of whoever casts it.
``cast_shadow_mask(image, person, removed)`` follows exactly that (``DEFAULTS`` holds every
parameter; ``H`` is the person's box height, which sets every scale):

1. **Feet.** The *foot band* is the person's pixels in the lowest ``foot_fraction`` (12 %) of
   its bounding box.
2. **Search window.** Only ground pixels within ``extent`` x ``H`` (1.3) of the foot band, and
   not already removed (person, held objects, other people), are considered: the shadow is
   bounded in extent.
3. **Lit-ground reference per material.** Log luminance ``log(mean RGB + 4)``, smoothed over the
   ground (Gaussian, ``smooth`` = 2 px: a cast shadow is a smooth darkening, texture averages
   out), and chromaticity ``(R, G) / (R + G + B)`` (smoothed by 1 px). The window is cut into
   tiles of ``tile_fraction`` x ``H`` (0.25); per tile, a joint histogram (chroma bin x chroma
   bin x luminance, ``chroma_bins`` = 40) of the ground in the 3x3 surrounding tiles, pooled over
   neighbouring chroma bins, gives the ``lit_quantile`` (70 %) luminance of the pixels of nearly
   the same chromaticity: the same material, lit or shaded.
4. **Candidates.** Ground pixels whose brightness ratio to that reference is in
   [``min_ratio``, ``max_ratio``] (0.2 .. 0.85), among materials with at least
   ``min_material_pixels`` pixels nearby; a 1-px closing.
5. **Connected to the feet.** Candidate components (8-connected) are kept when they reach within
   ``max(2, 0.03 H)`` px of the foot band; a component larger than ``max_area`` (1.5) x the
   person's area is taken for dark ground, not a shadow, and dropped.
6. **Soft edge.** Holes of the kept components are filled, then up to ``penumbra`` (3) px of
   neighbouring ground darker than ``penumbra_ratio`` (0.96) of the reference is added.

Limits (see docs/gone.md, "Traces"): the ground must be lit and fairly even near the feet (dark
texture of the ground's own colour touching the feet -- grey gravel, grass -- is taken for
shadow); shadows that do not touch the visible feet (person cut by the image's lower edge,
jumping) are not found; faint shadows (darkening below 15 %) are missed, as are shadows on walls;
coloured light changes the chromaticity and breaks step 3; a shadow larger than 1.5 x the person
(low sun) is dropped.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

DEFAULTS = dict(foot_fraction=0.12, extent=1.3, min_ratio=0.2, max_ratio=0.85,
                chroma_bins=40, lit_quantile=0.7, min_material_pixels=20, max_area=1.5,
                penumbra=3, penumbra_ratio=0.96, smooth=2.0, tile_fraction=0.25)


def _material_reference(lum, chroma, ground, p, tile):
    """Per pixel: the ``lit_quantile`` of the log luminance of the ground pixels of (nearly) the
    same chromaticity nearby, and whether enough such pixels exist.

    The window is cut into square tiles of ``tile`` px; for each tile a joint histogram (chroma r
    bin, chroma g bin, luminance bin) of the ground in the 3x3 tiles around it is pooled over
    neighbouring chroma bins (3x3) and the quantile read from its cumulative sum. A shadow keeps
    the chromaticity of the ground it falls on, so pixels of the same chroma bin are the same
    material, lit or shaded; the upper quantile is the lit one while the shadow covers less than
    ``1 - lit_quantile`` of that material nearby."""
    nb, nl = int(p["chroma_bins"]), 48
    hh, ww = lum.shape
    cb = np.clip((chroma * nb).astype(np.int64), 0, nb - 1)
    cidx = cb[..., 0] * nb + cb[..., 1]
    lo, hi = float(lum[ground].min()), float(lum[ground].max()) + 1e-6
    lb = np.clip(((lum - lo) / (hi - lo) * nl).astype(np.int64), 0, nl - 1)
    ty, tx = np.arange(hh)[:, None] // tile, np.arange(ww)[None, :] // tile
    nty, ntx = -(-hh // tile), -(-ww // tile)
    ref = np.zeros_like(lum)
    valid = np.zeros(lum.shape, bool)
    flat_ground = ground.ravel()
    flat_c, flat_l = cidx.ravel(), lb.ravel()
    tyf, txf = np.broadcast_to(ty, lum.shape).ravel(), np.broadcast_to(tx, lum.shape).ravel()
    for a in range(nty):
        for b in range(ntx):
            here = (tyf == a) & (txf == b)
            near = flat_ground & (np.abs(tyf - a) <= 1) & (np.abs(txf - b) <= 1)
            if not near.any() or not here.any():
                continue
            hist = np.bincount(flat_c[near] * nl + flat_l[near], minlength=nb * nb * nl)
            hist = hist.reshape(nb, nb, nl).astype(np.float64)
            hist = ndimage.uniform_filter(hist, size=(3, 3, 1), mode="constant") * 9.0
            cum = np.cumsum(hist, axis=-1)
            count = cum[..., -1]
            level = np.argmax(cum >= p["lit_quantile"] * count[..., None], axis=-1)
            ref_of_bin = (lo + (level + 0.5) / nl * (hi - lo)).ravel()
            c_here = flat_c[here]
            ref.ravel()[here] = ref_of_bin[c_here]
            valid.ravel()[here] = count.ravel()[c_here] >= p["min_material_pixels"]
    return ref, valid


def cast_shadow_mask(image, person, removed=None, **params):
    """Bool HxW: the cast shadow of one ``person`` (bool HxW mask) in ``image`` (RGB uint8).

    ``removed``: bool HxW of everything already being removed (the person, its held objects,
    other people); those pixels are never shadow. ``params`` override ``DEFAULTS``."""
    p = dict(DEFAULTS)
    unknown = set(params) - set(p)
    if unknown:
        raise ValueError(f"unknown shadow parameter(s): {', '.join(sorted(unknown))}")
    p.update(params)
    img = np.asarray(image)
    person = np.asarray(person, bool)
    if img.ndim != 3 or img.shape[-1] != 3 or person.shape != img.shape[:2]:
        raise ValueError(f"expected an RGB image and an HxW person mask, got {img.shape} and "
                         f"{person.shape}")
    h, w = person.shape
    out = np.zeros((h, w), bool)
    rows = np.nonzero(person.any(axis=1))[0]
    if rows.size == 0:
        return out
    y1, y2 = int(rows[0]), int(rows[-1]) + 1
    height = y2 - y1
    if height < 8:
        return out
    removed = person if removed is None else (np.asarray(removed, bool) | person)

    # 1-2. foot band and the bounded search window around it (a sub-image, for speed).
    foot = person.copy()
    foot[:y2 - max(1, int(round(p["foot_fraction"] * height)))] = False
    reach = int(np.ceil(p["extent"] * height))
    fy, fx = np.nonzero(foot)
    wy0, wy1 = max(0, fy.min() - reach), min(h, fy.max() + reach + 1)
    wx0, wx1 = max(0, fx.min() - reach), min(w, fx.max() + reach + 1)
    sub = img[wy0:wy1, wx0:wx1].astype(np.float64)
    foot_s = foot[wy0:wy1, wx0:wx1]
    dist = ndimage.distance_transform_edt(~foot_s)
    ground = (~removed[wy0:wy1, wx0:wx1]) & (dist <= reach)
    if not ground.any():
        return out

    # 3. lit-ground reference per material: log luminance and (lightly smoothed) chromaticity.
    total = sub.sum(-1)
    lum = np.log(total / 3.0 + 4.0)
    chroma = sub[..., :2] / np.maximum(total, 1.0)[..., None]
    # Smoothed over the ground only: a cast shadow is a smooth darkening, texture averages out.
    weight = ndimage.gaussian_filter(ground.astype(np.float64), p["smooth"])
    lum = np.where(ground, ndimage.gaussian_filter(lum * ground, p["smooth"])
                   / np.maximum(weight, 1e-9), lum)
    chroma = np.stack([ndimage.gaussian_filter(chroma[..., c] * ground, 1.0)
                       / np.maximum(ndimage.gaussian_filter(ground.astype(np.float64), 1.0), 1e-9)
                       for c in range(2)], -1)
    tile = max(16, int(round(p["tile_fraction"] * height)))
    ref, valid = _material_reference(lum, chroma, ground, p, tile)

    # 4. darker than lit ground of the same chromaticity.
    ratio = lum - ref
    cand = ground & valid & (ratio >= np.log(p["min_ratio"])) & (ratio <= np.log(p["max_ratio"]))
    cand = ndimage.binary_closing(cand, structure=np.ones((3, 3), bool)) & ground

    # 5. connected to the feet, not too large.
    labels, n = ndimage.label(cand, structure=np.ones((3, 3), bool))
    if n == 0:
        return out
    attach = max(2.0, 0.03 * height)
    near = dist <= attach
    touching = np.unique(labels[near & cand])
    touching = touching[touching > 0]
    if touching.size == 0:
        return out
    areas = ndimage.sum_labels(np.ones_like(labels), labels, index=touching)
    keep = touching[areas <= p["max_area"] * max(int(person.sum()), 1)]
    shadow = np.isin(labels, keep)

    # 6. fill small holes (texture speckle inside the shadow) and take the soft edge: ground
    # pixels within `penumbra` px of the shadow that are darker than `penumbra_ratio`.
    shadow = ndimage.binary_fill_holes(shadow) & ground
    if p["penumbra"] > 0 and shadow.any():
        soft = ground & valid & (ratio <= np.log(p["penumbra_ratio"]))
        shadow = ndimage.binary_dilation(shadow, structure=np.ones((3, 3), bool),
                                         iterations=int(p["penumbra"]), mask=soft | shadow)
    out[wy0:wy1, wx0:wx1] = shadow
    return out


def cast_shadows(image, persons, removed=None, **params):
    """Union of ``cast_shadow_mask`` over the persons (bool HxWxN or a list of HxW masks)."""
    persons = np.asarray(persons, bool)
    if persons.ndim == 2:
        persons = persons[..., None]
    out = np.zeros(persons.shape[:2], bool)
    if removed is None:
        removed = persons.any(-1)
    for i in range(persons.shape[-1]):
        out |= cast_shadow_mask(image, persons[..., i], removed, **params)
    return out
