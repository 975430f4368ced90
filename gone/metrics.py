"""Image-quality metrics for inpainted results.

Gradient norm (the paper's no-reference measure), precisely:

1. ``gray = skimage.color.rgb2gray(image)`` in [0, 1] (uint8 input is divided by 255; luma
   weights 0.2125, 0.7154, 0.0721).
2. Sobel derivatives normalised to *intensity per pixel*: ``gx = ndimage.sobel(gray, axis=1) / 8``,
   ``gy = ndimage.sobel(gray, axis=0) / 8`` (the 3x3 Sobel kernel sums to 8 on a unit ramp, so a
   ramp of slope ``a`` per pixel gives exactly ``a``); magnitude ``g = sqrt(gx**2 + gy**2)``.
3. ``inside`` = hole pixels whose whole 3x3 Sobel support lies in the hole (the hole eroded by
   1 px); ``outside`` = pixels whose 3x3 support lies outside the hole (complement of the hole
   dilated by 1 px). Pixels on the 1-px image border are excluded from both (Sobel there depends
   on the border mode). The seam itself is therefore not counted: the measure compares the
   texture of the generated content with the texture of its surroundings (a blurry or flat
   fill gives a large value).
4. ``gradient_norm = |mean(g[inside]) - mean(g[outside])|``.

Natural photos give 1e-3 .. 3e-2 with this normalisation (scikit-image's astronaut / coffee /
chelsea, central box: 0.004-0.011 untouched, 0.023-0.030 when filled flat). The paper reports
~1e-4 without stating its normalisation; values that small come from dividing the per-pixel
difference once more by a pixel count (e.g. patch sums over the image area). Compare rankings
and ratios with the paper, not absolute values. See docs/gone.md.

PSNR / SSIM / l1 compare a result with a clean reference (same shape, uint8 or float):
``data_range`` is 255 for uint8 inputs and 1.0 for float inputs. With ``mask`` (bool HxW), the
statistics are taken over the masked pixels only (all channels); without it, over the image.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage


def _gray01(image):
    from skimage.color import rgb2gray
    img = np.asarray(image)
    if img.dtype == np.uint8:
        img = img.astype(np.float64) / 255.0
    elif np.issubdtype(img.dtype, np.integer):
        img = img.astype(np.float64) / np.iinfo(img.dtype).max
    else:
        img = img.astype(np.float64)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.ndim == 3:
        img = rgb2gray(img[..., :3])
    return img


def sobel_magnitude(image):
    """Per-pixel gradient magnitude of the [0, 1] grayscale image, in intensity per pixel."""
    gray = _gray01(image)
    gx = ndimage.sobel(gray, axis=1, mode="reflect") / 8.0
    gy = ndimage.sobel(gray, axis=0, mode="reflect") / 8.0
    return np.hypot(gx, gy)


def gradient_norm(image, hole):
    """|mean Sobel magnitude inside the generated patch - mean outside it| (definition above).
    Returns nan when either region is empty."""
    hole = np.asarray(hole, dtype=bool)
    if hole.ndim == 3:
        hole = hole.any(axis=-1)
    g = sobel_magnitude(image)
    if g.shape != hole.shape:
        raise ValueError(f"image is {g.shape}, hole is {hole.shape}")
    support = np.ones((3, 3), dtype=bool)
    inside = ndimage.binary_erosion(hole, structure=support, border_value=1)
    outside = ~ndimage.binary_dilation(hole, structure=support)
    interior = np.zeros_like(hole)
    interior[1:-1, 1:-1] = True
    inside &= interior
    outside &= interior
    if not inside.any() or not outside.any():
        return float("nan")
    return float(abs(g[inside].mean() - g[outside].mean()))


def _prepare(a, b, mask):
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    data_range = 255.0 if a.dtype == np.uint8 else 1.0
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.ndim == 3:
            mask = mask.any(axis=-1)
        if mask.shape != a.shape[:2]:
            raise ValueError(f"mask is {mask.shape}, images are {a.shape[:2]}")
    return a, b, mask, data_range


def _select(x, mask):
    return x if mask is None else x[mask]


def psnr(a, b, mask=None):
    """Peak signal-to-noise ratio in dB (inf when identical over the region)."""
    a, b, mask, data_range = _prepare(a, b, mask)
    mse = np.mean(_select((a - b) ** 2, mask)) if (mask is None or mask.any()) else np.nan
    if np.isnan(mse):
        return float("nan")
    if mse == 0:
        return float("inf")
    return float(10.0 * np.log10(data_range ** 2 / mse))


def ssim(a, b, mask=None):
    """Structural similarity (scikit-image's defaults: 7x7 uniform window, K1 0.01, K2 0.03).
    Without ``mask`` this is exactly ``skimage.metrics.structural_similarity`` (which averages
    the SSIM map without its 3-px border); with ``mask`` it is the mean of the full SSIM map
    (averaged over channels) over the masked pixels."""
    from skimage.metrics import structural_similarity
    a, b, mask, data_range = _prepare(a, b, mask)
    kwargs = dict(data_range=data_range)
    if a.ndim == 3:
        kwargs["channel_axis"] = -1
    if mask is None:
        return float(structural_similarity(a, b, **kwargs))
    if not mask.any():
        return float("nan")
    _, smap = structural_similarity(a, b, full=True, **kwargs)
    if smap.ndim == 3:
        smap = smap.mean(axis=-1)
    return float(smap[mask].mean())


def l1(a, b, mask=None):
    """Mean absolute difference, in units of the data range (i.e. in [0, 1])."""
    a, b, mask, data_range = _prepare(a, b, mask)
    if mask is not None and not mask.any():
        return float("nan")
    return float(np.mean(_select(np.abs(a - b), mask)) / data_range)
