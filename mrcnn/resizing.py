"""Image and mask resizing in numpy (Matterport's resize_image, resize_mask, mini masks,
unmold_mask), with the original's numerics: float64 resize output, bool masks.
"""
import random
import warnings

import numpy as np
import scipy.ndimage
import skimage.transform


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
    """Resize keeping the aspect ratio, then pad (square, pad64, fit) or crop (crop).

    "fit" (not in Matterport) scales as "square" and pads each side to a multiple of 64 only.

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
    if mode not in ("square", "pad64", "crop", "fit"):
        raise ValueError(f"resize_image: mode {mode!r} not supported (none, square, pad64, crop, fit)")
    if mode == "fit" and (not max_dim or max_dim % 64):
        raise ValueError(f"resize_image: fit needs max_dim a multiple of 64, got {max_dim}")

    if min_dim:
        scale = max(1, min_dim / min(h, w))  # scale up, never down
    if min_scale and scale < min_scale:
        scale = min_scale
    if max_dim and mode in ("square", "fit"):
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
    elif mode in ("pad64", "fit"):
        h, w = image.shape[:2]
        if mode == "pad64" and (min_dim is None or min_dim % 64 != 0):
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
