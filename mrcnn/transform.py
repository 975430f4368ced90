"""Pre- and post-processing around the Mask R-CNN network, in one place (Matterport's `model.py`
helpers: mold_image, compose_image_meta, mold_inputs, unmold_detections, get_anchors, ...):
image checks, molding, anchors, box unmolding and mask pasting (numpy, or keras.ops on the
accelerator). Faithful numerics: molding subtracts the float64 MEAN_PIXEL (the model casts to
float32), image_meta is float64, detections are un-molded with float32 window arithmetic.
"""
import math

import numpy as np
from keras import ops

from mrcnn import utils

############################################################
#  Molding
############################################################


def mold_image(images, config):
    """RGB image(s) -> network input: float32 cast, minus MEAN_PIXEL (float64 result, as the
    original; cast it to float32 to get the model input)."""
    return images.astype(np.float32) - config.MEAN_PIXEL


def unmold_image(normalized_images, config):
    """Inverse of mold_image, back to uint8 (truncating)."""
    return (normalized_images + config.MEAN_PIXEL).astype(np.uint8)


def compose_image_meta(image_id, original_image_shape, image_shape, window, scale, active_class_ids):
    """Image attributes as one float64 vector of length 12 + NUM_CLASSES:
    [image_id, original (H, W, C), molded (H, W, C), window (y1, x1, y2, x2), scale,
    active_class_ids...]."""
    return np.array([image_id] + list(original_image_shape) + list(image_shape) + list(window)
                    + [scale] + list(active_class_ids))


def parse_image_meta(meta):
    """Split a batch of image_meta vectors [B, META] into a dict of named parts."""
    meta = np.asarray(meta)
    if meta.ndim != 2 or meta.shape[1] < 12:
        raise ValueError(f"parse_image_meta expects [batch, 12 + NUM_CLASSES], got {meta.shape}")
    return {
        "image_id": meta[:, 0].astype(np.int32),
        "original_image_shape": meta[:, 1:4].astype(np.int32),
        "image_shape": meta[:, 4:7].astype(np.int32),
        "window": meta[:, 7:11].astype(np.int32),  # (y1, x1, y2, x2) in molded pixels
        "scale": meta[:, 11].astype(np.float32),
        "active_class_ids": meta[:, 12:].astype(np.int32),
    }


def as_rgb(image, index=0):
    """Accept RGB, grayscale (2-D or HxWx1) and RGBA images (converted to RGB); anything else
    is a clear one-line error naming the image."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image {index} is a {type(image).__name__}, expected a numpy "
                        "array (RGB uint8 HxWx3)")
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    elif image.ndim == 3 and image.shape[2] == 1:
        image = np.concatenate([image] * 3, axis=-1)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = image[..., :3]
    if image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < 1:
        raise ValueError(f"image {index} has shape {image.shape}; expected HxWx3 RGB "
                         "(grayscale HxW and RGBA HxWx4 are converted)")
    if not np.issubdtype(image.dtype, np.number) or np.issubdtype(image.dtype, np.complexfloating):
        raise ValueError(f"image {index} has dtype {image.dtype}; expected uint8")
    return image


def mold_inputs(images, config, checked=False):
    """Resize, pad and mold a list of RGB images (any number, same sizes not required).
    Images go through as_rgb unless `checked` says the caller did it already.

    Returns (molded_images [N, H, W, 3] float64, image_metas [N, META] float64,
    windows [N, 4] int, the image area inside each molded image).
    """
    if len(images) == 0:
        raise ValueError("mold_inputs: no images given")
    molded_images, image_metas, windows = [], [], []
    for index, image in enumerate(images):
        if not checked:
            image = as_rgb(image, index)
        molded_image, window, scale, padding, crop = utils.resize_image(
            image, min_dim=config.IMAGE_MIN_DIM, min_scale=config.IMAGE_MIN_SCALE,
            max_dim=config.IMAGE_MAX_DIM, mode=config.IMAGE_RESIZE_MODE)
        molded_image = mold_image(molded_image, config)
        image_meta = compose_image_meta(0, image.shape, molded_image.shape, window, scale,
                                        np.zeros([config.NUM_CLASSES], dtype=np.int32))
        molded_images.append(molded_image)
        windows.append(window)
        image_metas.append(image_meta)
    return np.stack(molded_images), np.stack(image_metas), np.stack(windows)


############################################################
#  Anchors
############################################################

def compute_backbone_shapes(config, image_shape):
    """[levels, (height, width)] of the backbone feature maps: ceil(image / stride)."""
    if callable(config.BACKBONE):
        if config.COMPUTE_BACKBONE_SHAPE is None:
            raise ValueError("a callable BACKBONE needs config.COMPUTE_BACKBONE_SHAPE")
        return config.COMPUTE_BACKBONE_SHAPE(image_shape)
    if config.BACKBONE not in ("resnet50", "resnet101"):
        raise ValueError(f"BACKBONE must be 'resnet50', 'resnet101' or a callable, got {config.BACKBONE!r}")
    return np.array([[int(math.ceil(image_shape[0] / stride)), int(math.ceil(image_shape[1] / stride))]
                     for stride in config.BACKBONE_STRIDES])


_ANCHOR_CACHE = {}


def get_anchors(config, image_shape):
    """Normalized float32 anchors [N, 4] of an image shape, cached per (anchor settings, shape).

    The cached array is marked read-only so callers cannot corrupt the cache.
    """
    image_shape = tuple(int(s) for s in image_shape)
    key = (_backbone_key(config), tuple(config.RPN_ANCHOR_SCALES), tuple(config.RPN_ANCHOR_RATIOS),
           tuple(config.BACKBONE_STRIDES), int(config.RPN_ANCHOR_STRIDE), image_shape[:2])
    anchors = _ANCHOR_CACHE.get(key)
    if anchors is None:
        backbone_shapes = compute_backbone_shapes(config, image_shape)
        pixel_anchors = utils.generate_pyramid_anchors(
            config.RPN_ANCHOR_SCALES, config.RPN_ANCHOR_RATIOS, backbone_shapes,
            config.BACKBONE_STRIDES, config.RPN_ANCHOR_STRIDE)
        anchors = utils.norm_boxes(pixel_anchors, image_shape[:2])
        anchors.setflags(write=False)
        _ANCHOR_CACHE[key] = anchors
    return anchors


def _backbone_key(config):
    if callable(config.BACKBONE):
        return (id(config.BACKBONE), id(config.COMPUTE_BACKBONE_SHAPE))
    return config.BACKBONE


############################################################
#  Detections
############################################################

def unmold_boxes(detections, original_shape, molded_shape, window):
    """Boxes of one image's detections [n, 6] (normalized in the molded image) -> original
    pixels, in float32 window arithmetic as the original. Returns rois int32, class_ids int32,
    scores float32 of the rows whose box keeps a non-zero area, and that keep mask."""
    boxes = detections[:, :4]
    class_ids = detections[:, 4].astype(np.int32)
    scores = detections[:, 5]
    # Window-relative normalized boxes -> original-image normalized -> pixels.
    wy1, wx1, wy2, wx2 = utils.norm_boxes(window, molded_shape[:2])
    shift = np.array([wy1, wx1, wy1, wx1])
    wh, ww = wy2 - wy1, wx2 - wx1
    boxes = np.divide(boxes - shift, np.array([wh, ww, wh, ww]))
    boxes = utils.denorm_boxes(boxes, original_shape[:2])
    keep = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) > 0
    return (boxes[keep].astype(np.int32), class_ids[keep], scores[keep].astype(np.float32), keep)


def unmold_detections(detections, mrcnn_mask, original_image_shape, image_shape, window, mask_paste="numpy"):
    """Network output of one image -> results in original-image pixels.

    detections: [N, (y1, x1, y2, x2, class_id, score)] normalized, zero rows at the end.
    mrcnn_mask: [N, h, w, num_classes]. original_image_shape: [H, W, C] before resizing.
    image_shape: [H, W, C] of the molded image. window: (y1, x1, y2, x2) pixels in it.
    mask_paste: "numpy" (Matterport's utils.unmold_mask, faithful) or "device" (paste_masks,
    keras.ops on the accelerator).
    Returns boxes int32 [n, 4], class_ids int32 [n], scores float32 [n], masks bool [H, W, n];
    detections whose box has zero area in original pixels are dropped.
    """
    zero_ix = np.where(detections[:, 4] == 0)[0]
    n = zero_ix[0] if zero_ix.shape[0] > 0 else detections.shape[0]
    class_masks = mrcnn_mask[np.arange(n), :, :, detections[:n, 4].astype(np.int32)]
    return unmold_class_masks(detections, class_masks, original_image_shape, image_shape, window, mask_paste)


def unmold_class_masks(detections, class_masks, original_image_shape, image_shape, window, mask_paste="numpy"):
    """``unmold_detections`` for masks already selected by class (``SelectClassMasks``, as
    ``MaskRCNN.detect`` gets them from the graph): class_masks [N, h, w], the mask of each
    detection row's own class (rows past the detections are ignored)."""
    if mask_paste not in ("numpy", "device"):
        raise ValueError(f"mask_paste must be 'numpy' or 'device', got {mask_paste!r}")
    zero_ix = np.where(detections[:, 4] == 0)[0]
    n = zero_ix[0] if zero_ix.shape[0] > 0 else detections.shape[0]
    boxes, class_ids, scores, keep = unmold_boxes(detections[:n], original_image_shape, image_shape, window)
    masks = np.asarray(class_masks)[:n][keep]
    height, width = (int(s) for s in original_image_shape[:2])
    if not len(class_ids):
        return boxes, class_ids, scores, np.zeros((height, width, 0), dtype=bool)
    if mask_paste == "device":
        full_masks = np.asarray(ops.convert_to_numpy(paste_masks(masks, boxes, height, width)))
    else:
        full_masks = np.stack([utils.unmold_mask(masks[i], boxes[i], original_image_shape)
                               for i in range(len(class_ids))], axis=-1)
    return boxes, class_ids, scores, full_masks


############################################################
#  Mask pasting on the accelerator
############################################################

def _resize_weights(start, length, out_size, in_size):
    """[N, out_size, in_size] bilinear weights that map a length-`in_size` mask onto pixels
    [start, start + length) of an axis of `out_size` pixels (zero elsewhere). Pixel-centre
    mapping src = (dst + 0.5) * in / length - 0.5 with a zero border, like skimage/scipy
    resize(order=1, mode='constant') used by utils.unmold_mask."""
    start = ops.cast(start, "float32")[:, None, None]
    length = ops.cast(length, "float32")[:, None, None]
    dst = ops.arange(out_size, dtype="float32")[None, :, None] - start
    src = (dst + 0.5) * (float(in_size) / ops.maximum(length, 1.0)) - 0.5
    k = ops.arange(in_size, dtype="float32")[None, None, :]
    w = ops.maximum(1.0 - ops.abs(src - k), 0.0)
    inside = ops.logical_and(dst >= 0.0, dst < length)
    return ops.where(inside, w, ops.zeros_like(w))


def paste_masks(masks, boxes, height, width, threshold=0.5):
    """masks [N, h, w] float (box-relative), boxes [N, 4] int pixels (y1, x1, y2, x2 exclusive)
    -> bool [height, width, N], computed with keras.ops (on the accelerator) as two small
    matrix products per instance."""
    masks = ops.convert_to_tensor(masks, dtype="float32")
    boxes = ops.convert_to_tensor(boxes, dtype="int32")
    mh, mw = masks.shape[1], masks.shape[2]
    ry = _resize_weights(boxes[:, 0], boxes[:, 2] - boxes[:, 0], int(height), mh)  # [N, H, mh]
    rx = _resize_weights(boxes[:, 1], boxes[:, 3] - boxes[:, 1], int(width), mw)  # [N, W, mw]
    full = ops.matmul(ops.matmul(ry, masks), ops.transpose(rx, (0, 2, 1)))  # [N, H, W]
    return ops.transpose(full >= threshold, (1, 2, 0))
