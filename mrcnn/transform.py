"""Numpy pre- and post-processing around the Mask R-CNN network (Matterport's `model.py`
helpers: mold_image, compose_image_meta, mold_inputs, unmold_detections, get_anchors, ...).
Faithful numerics: molding subtracts the float64 MEAN_PIXEL (the model casts to float32),
image_meta is float64, detections are un-molded with float32 window arithmetic.
"""
import math

import numpy as np

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


def _check_image(image, index):
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image {index}: expected a numpy array (RGB uint8 HxWx3), got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"image {index}: expected an RGB array [H, W, 3], got shape {image.shape}")


def mold_inputs(images, config):
    """Resize, pad and mold a list of RGB images (any number, same sizes not required).

    Returns (molded_images [N, H, W, 3] float64, image_metas [N, META] float64,
    windows [N, 4] int, the image area inside each molded image).
    """
    if len(images) == 0:
        raise ValueError("mold_inputs: no images given")
    molded_images, image_metas, windows = [], [], []
    for index, image in enumerate(images):
        _check_image(image, index)
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

def unmold_detections(detections, mrcnn_mask, original_image_shape, image_shape, window):
    """Network output of one image -> results in original-image pixels.

    detections: [N, (y1, x1, y2, x2, class_id, score)] normalized, zero rows at the end.
    mrcnn_mask: [N, h, w, num_classes]. original_image_shape: [H, W, C] before resizing.
    image_shape: [H, W, C] of the molded image. window: (y1, x1, y2, x2) pixels in it.
    Returns boxes int32 [n, 4], class_ids int32 [n], scores float32 [n], masks bool [H, W, n];
    detections whose box has zero area in original pixels are dropped.
    """
    zero_ix = np.where(detections[:, 4] == 0)[0]
    n = zero_ix[0] if zero_ix.shape[0] > 0 else detections.shape[0]
    boxes = detections[:n, :4]
    class_ids = detections[:n, 4].astype(np.int32)
    scores = detections[:n, 5]
    masks = mrcnn_mask[np.arange(n), :, :, class_ids]

    # Window-relative normalized boxes -> original-image normalized -> pixels.
    wy1, wx1, wy2, wx2 = utils.norm_boxes(window, image_shape[:2])
    shift = np.array([wy1, wx1, wy1, wx1])
    wh = wy2 - wy1
    ww = wx2 - wx1
    scale = np.array([wh, ww, wh, ww])
    boxes = np.divide(boxes - shift, scale)
    boxes = utils.denorm_boxes(boxes, original_image_shape[:2])

    exclude_ix = np.where((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) <= 0)[0]
    if exclude_ix.shape[0] > 0:
        boxes = np.delete(boxes, exclude_ix, axis=0)
        class_ids = np.delete(class_ids, exclude_ix, axis=0)
        scores = np.delete(scores, exclude_ix, axis=0)
        masks = np.delete(masks, exclude_ix, axis=0)
        n = class_ids.shape[0]

    full_masks = [utils.unmold_mask(masks[i], boxes[i], original_image_shape) for i in range(n)]
    if full_masks:
        full_masks = np.stack(full_masks, axis=-1)
    else:
        full_masks = np.zeros(tuple(int(s) for s in original_image_shape[:2]) + (0,), dtype=bool)
    return boxes, class_ids, scores, full_masks
