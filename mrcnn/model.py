"""Mask R-CNN inference model and Matterport's MaskRCNN API (keras.ops; TensorFlow or JAX).

`modellib.*` names of Matterport are re-exported here (graph functions and layers).
"""
import collections
import logging

import keras
import numpy as np
from keras import layers as KL
from keras import ops

from mrcnn.backbone import BatchNorm, conv_block, identity_block, resnet_graph  # noqa: F401
from mrcnn.detection import DetectionLayer, refine_detections_graph  # noqa: F401
from mrcnn.fpn import fpn_graph
from mrcnn.heads import build_fpn_mask_graph, fpn_classifier_graph
from mrcnn.ops import parse_image_meta_graph  # noqa: F401
from mrcnn.proposal import (ProposalLayer, apply_box_deltas_graph, clip_boxes_graph,  # noqa: F401
                            denorm_boxes_graph, norm_boxes_graph)
from mrcnn.roi_align import PyramidROIAlign  # noqa: F401
from mrcnn.rpn import build_rpn_model, rpn_graph  # noqa: F401
from mrcnn.weights import WeightLoadError, WeightsMismatchError  # noqa: F401  (re-export)
from mrcnn.weights import load_weights as _load_weights, save_weights as _save_weights

logger = logging.getLogger(__name__)


def log(text, array=None):
    """Matterport's modellib.log: print `text` and, for an array, its shape, min, max and dtype
    in fixed-width columns (the inspect notebooks' format)."""
    if array is not None:
        array = np.asarray(array)
        text = text.ljust(25) + "shape: {:20}  ".format(str(array.shape))
        if array.size:
            text += "min: {:10.5f}  max: {:10.5f}".format(float(array.min()), float(array.max()))
        else:
            text += "min: {:10}  max: {:10}".format("", "")
        text += "  {}".format(array.dtype)
    print(text)

@keras.saving.register_keras_serializable(package="mrcnn")
class DetectionBoxes(KL.Layer):
    """detections[..., :4] (Matterport's unnamed Lambda)."""

    def call(self, x):
        return x[..., :4]

    def compute_output_shape(self, s):
        return tuple(s[:-1]) + (4,)


@keras.saving.register_keras_serializable(package="mrcnn")
class SelectClassMasks(KL.Layer):
    """mrcnn_mask [B, N, h, w, K] -> [B, N, h, w], the mask of each detection's class, so that
    only 1/K of the mask tensor leaves the accelerator."""

    def call(self, inputs):
        detections, masks = inputs
        class_ids = ops.cast(detections[..., 4], "int32")
        sel = ops.take_along_axis(masks, class_ids[:, :, None, None, None], axis=4)
        return ops.squeeze(sel, axis=4)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[1][:-1])


def check_image_size(config):
    h, w = config.IMAGE_SHAPE[:2]
    if h / 2 ** 6 != int(h / 2 ** 6) or w / 2 ** 6 != int(w / 2 ** 6):
        raise ValueError("Image size must be dividable by 2 at least 6 times to avoid fractions "
                         "when downscaling and upscaling, e.g. 256, 320, 384, 448, 512, ...")


def build_backbone_and_rpn(input_image, config):
    """Backbone + FPN + shared RPN. Returns (rpn_feature_maps [P2..P6], mrcnn_feature_maps
    [P2..P5], rpn_class_logits, rpn_class, rpn_bbox) — shared by inference and training graphs."""
    if callable(config.BACKBONE):
        _, C2, C3, C4, C5 = config.BACKBONE(input_image, stage5=True, train_bn=config.TRAIN_BN)
    else:
        _, C2, C3, C4, C5 = resnet_graph(input_image, config.BACKBONE, stage5=True,
                                         train_bn=config.TRAIN_BN)
    P2, P3, P4, P5, P6 = fpn_graph([C2, C3, C4, C5], config.TOP_DOWN_PYRAMID_SIZE)
    rpn_feature_maps = [P2, P3, P4, P5, P6]
    mrcnn_feature_maps = [P2, P3, P4, P5]
    rpn = build_rpn_model(config.RPN_ANCHOR_STRIDE, len(config.RPN_ANCHOR_RATIOS),
                          config.TOP_DOWN_PYRAMID_SIZE)
    level_outputs = [rpn([p]) for p in rpn_feature_maps]
    names = ["rpn_class_logits", "rpn_class", "rpn_bbox"]
    outputs = [KL.Concatenate(axis=1, name=n)([lo[i] for lo in level_outputs])
               for i, n in enumerate(names)]
    return (rpn_feature_maps, mrcnn_feature_maps) + tuple(outputs)


def build_inference_model(config):
    """keras.Model([input_image, input_image_meta, input_anchors] ->
    [detections, mrcnn_class, mrcnn_bbox, mrcnn_mask, rpn_rois, rpn_class, rpn_bbox])."""
    check_image_size(config)
    input_image = KL.Input(shape=[None, None, config.IMAGE_SHAPE[2]], name="input_image")
    input_image_meta = KL.Input(shape=[config.IMAGE_META_SIZE], name="input_image_meta")
    input_anchors = KL.Input(shape=[None, 4], name="input_anchors")
    _, mrcnn_feature_maps, _, rpn_class, rpn_bbox = build_backbone_and_rpn(input_image, config)
    rpn_rois = ProposalLayer(proposal_count=config.POST_NMS_ROIS_INFERENCE,
                             nms_threshold=config.RPN_NMS_THRESHOLD, config=config,
                             name="ROI")([rpn_class, rpn_bbox, input_anchors])
    _, mrcnn_class, mrcnn_bbox = fpn_classifier_graph(
        rpn_rois, mrcnn_feature_maps, input_image_meta, config.POOL_SIZE, config.NUM_CLASSES,
        train_bn=config.TRAIN_BN, fc_layers_size=config.FPN_CLASSIF_FC_LAYERS_SIZE)
    detections = DetectionLayer(config, name="mrcnn_detection")(
        [rpn_rois, mrcnn_class, mrcnn_bbox, input_image_meta])
    detection_boxes = DetectionBoxes()(detections)
    mrcnn_mask = build_fpn_mask_graph(detection_boxes, mrcnn_feature_maps, input_image_meta,
                                      config.MASK_POOL_SIZE, config.NUM_CLASSES,
                                      train_bn=config.TRAIN_BN)
    return keras.Model([input_image, input_image_meta, input_anchors],
                       [detections, mrcnn_class, mrcnn_bbox, mrcnn_mask, rpn_rois, rpn_class, rpn_bbox],
                       name="mask_rcnn")


# ---------------------------------------------------------------------------------------------
# full-size masks on the accelerator
# ---------------------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------------------
# MaskRCNN
# ---------------------------------------------------------------------------------------------
def _as_rgb(image, index):
    """Accept RGB, grayscale (2-D or HxWx1) and RGBA images; anything else is a clear error."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"detect(): image {index} is a {type(image).__name__}, expected a numpy "
                        "array (RGB uint8 HxWx3)")
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    elif image.ndim == 3 and image.shape[2] == 1:
        image = np.concatenate([image] * 3, axis=-1)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = image[..., :3]
    if image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < 1:
        raise ValueError(f"detect(): image {index} has shape {image.shape}; expected HxWx3 RGB "
                         "(grayscale HxW and RGBA HxWx4 are converted)")
    if not np.issubdtype(image.dtype, np.number) or np.issubdtype(image.dtype, np.complexfloating):
        raise ValueError(f"detect(): image {index} has dtype {image.dtype}; expected uint8")
    return image


class MaskRCNN:
    """Matterport's MaskRCNN: MaskRCNN(mode="inference"|"training", config, model_dir)."""

    def __init__(self, mode, config, model_dir=None, stop_target_gradients=False):
        """stop_target_gradients (training mode): False is Matterport's graph, where only ROI
        align stops gradients; True treats the heads' ROI targets as constants."""
        if mode not in ("training", "inference"):
            raise ValueError(f"mode must be 'training' or 'inference', got {mode!r}")
        self.mode = mode
        self.config = config
        self.model_dir = model_dir
        self.epoch = 0
        self.log_dir = None
        self.checkpoint_path = None
        self._predict_fns = {}
        self._log_dir_resumed = False
        self._resume_state = None
        self.stop_target_gradients = bool(stop_target_gradients)
        self.keras_model = self.build(mode, config)
        if model_dir is not None:
            self.set_log_dir()

    def build(self, mode, config):
        if mode == "training":
            from mrcnn import training
            return training.build_training_model(config, self.stop_target_gradients)
        return build_inference_model(config)

    # --- weights ---------------------------------------------------------------------------
    def load_weights(self, filepath, by_name=False, exclude=None, allow_partial=False):
        """Matterport's load_weights: a Keras-2 HDF5 file (mask_rcnn_coco.h5, our checkpoints)
        by layer order or, with by_name=True, by layer name, leaving the `exclude`d layers
        untouched; or a native Keras 3 .weights.h5 file. A file that lacks more than half of the
        model's weighted layers raises mrcnn.weights.WeightsMismatchError unless
        allow_partial=True. In training mode a checkpoint path in Matterport's layout sets the
        log dir and epoch to continue from (set_log_dir). Returns the layers left unloaded."""
        missing = _load_weights(self.keras_model, filepath, by_name=by_name, exclude=exclude,
                                allow_partial=allow_partial)
        if self.mode == "training" and self.model_dir is not None:
            self.set_log_dir(filepath)
        return missing

    def save_weights(self, filepath):
        """Keras-2 HDF5 by layer name for *.h5, native Keras 3 for *.weights.h5 (atomic)."""
        _save_weights(self.keras_model, filepath)

    # --- training delegation ---------------------------------------------------------------
    def train(self, train_dataset, val_dataset, learning_rate, epochs, layers, augmentation=None,
              **kwargs):
        from mrcnn import training
        return training.train(self, train_dataset, val_dataset, learning_rate, epochs, layers,
                              augmentation=augmentation, **kwargs)

    def set_log_dir(self, model_path=None):
        from mrcnn import training
        return training.set_log_dir(self, model_path)

    def find_last(self):
        from mrcnn import training
        return training.find_last(self)

    def get_anchors(self, image_shape):
        from mrcnn.transform import get_anchors
        return get_anchors(self.config, image_shape)

    # --- inference -------------------------------------------------------------------------
    def _predict(self, molded, metas, anchors, full_outputs=False):
        """Run the network on one padded batch. Returns numpy (detections, class masks
        [B, N, h, w]) or all seven outputs."""
        key = "all" if full_outputs else "det"
        fn = self._predict_fns.get(key)
        if fn is None:
            m = self.keras_model
            if full_outputs:
                sub = m
            else:
                det, masks = m.outputs[0], m.outputs[3]
                sub = keras.Model(m.inputs, [det, SelectClassMasks()([det, masks])])
            fn = sub.predict_on_batch
            self._predict_fns[key] = fn
        out = fn([molded.astype(np.float32), metas.astype(np.float32), anchors.astype(np.float32)])
        return [np.asarray(o) for o in out]

    def run_graph(self, images, outputs, image_metas=None):
        """Matterport's run_graph: values of intermediate tensors for a list of images.

        outputs: [(name, tensor)] with tensors of this graph, e.g.
        ("rpn_class", model.keras_model.get_layer("rpn_class").output). image_metas: the
        molded images' metas (default: from mold_inputs). Inference mode; the batch is padded
        to BATCH_SIZE like detect(). Returns an OrderedDict name -> numpy array (one row per
        image), each also printed with log()."""
        if self.mode != "inference":
            raise ValueError("run_graph() needs a model created with mode='inference'")
        from mrcnn import transform
        names = [name for name, _ in outputs]
        probe = keras.Model(self.keras_model.inputs, [tensor for _, tensor in outputs])
        molded, metas, _ = transform.mold_inputs(list(images), self.config)
        if image_metas is not None:
            metas = np.asarray(image_metas)
        n, batch = len(molded), int(self.config.BATCH_SIZE)
        pad = (-n) % batch
        molded = np.concatenate([molded, molded[:1].repeat(pad, 0)])
        metas = np.concatenate([metas, metas[:1].repeat(pad, 0)])
        anchors = transform.get_anchors(self.config, molded.shape[1:])
        results = [[] for _ in names]
        for start in range(0, len(molded), batch):
            chunk = slice(start, start + batch)
            out = probe.predict_on_batch([molded[chunk].astype(np.float32), metas[chunk].astype(np.float32),
                                          np.broadcast_to(anchors, (batch,) + anchors.shape).astype(np.float32)])
            out = out if isinstance(out, (list, tuple)) else [out]
            for i, o in enumerate(out):
                results[i].append(np.asarray(o))
        values = collections.OrderedDict()
        for name, parts in zip(names, results):
            values[name] = np.concatenate(parts)[:n]
            log(name, values[name])
        return values

    def run_graph_probe(self, inputs, layer_names):
        """Outputs of named layers (e.g. the feat__ probes) for [images, metas, anchors]."""
        m = self.keras_model
        probe = keras.Model(m.inputs, [m.get_layer(n).output for n in layer_names])
        out = probe.predict_on_batch([np.asarray(x, np.float32) for x in inputs])
        if len(layer_names) == 1:
            out = [out]
        return {n: np.asarray(o) for n, o in zip(layer_names, out)}

    def detect(self, images, verbose=0, batch_size=None, mask_paste="numpy"):
        """Detect instances in a list of RGB images (any number, any sizes).

        Returns one dict per image: rois int32 [N, 4] (y1, x1, y2, x2 original pixels),
        class_ids int32 [N], scores float32 [N], masks bool [H, W, N].
        mask_paste="numpy" (default) is Matterport's unmold_mask (skimage resize, faithful);
        "device" pastes the 28x28 masks to full size with keras.ops on the accelerator
        (agrees with numpy up to pixels within ~1e-6 of the 0.5 threshold)."""
        if self.mode != "inference":
            raise ValueError("detect() needs a model created with mode='inference'")
        if mask_paste not in ("numpy", "device"):
            raise ValueError(f"mask_paste must be 'numpy' or 'device', got {mask_paste!r}")
        if isinstance(images, np.ndarray) and images.ndim in (2, 3):
            images = [images]
        images = [_as_rgb(im, i) for i, im in enumerate(images)]
        if not images:
            return []
        from mrcnn import transform
        config = self.config
        batch_size = int(batch_size or config.BATCH_SIZE)
        if verbose:
            logger.info("Processing %d images", len(images))
        molded, metas, windows = transform.mold_inputs(images, config)
        results = [None] * len(images)
        # group by molded shape (differs only in resize modes without a fixed square)
        by_shape = {}
        for i, m in enumerate(molded):
            by_shape.setdefault(m.shape, []).append(i)
        progress = keras.utils.Progbar(len(images)) if verbose else None
        for shape, idx in by_shape.items():
            anchors = transform.get_anchors(config, shape)
            for start in range(0, len(idx), batch_size):
                chunk = idx[start:start + batch_size]
                n_pad = batch_size - len(chunk)
                b_images = np.stack([molded[i] for i in chunk] + [molded[chunk[0]]] * n_pad)
                b_metas = np.stack([metas[i] for i in chunk] + [metas[chunk[0]]] * n_pad)
                b_anchors = np.broadcast_to(anchors, (batch_size,) + anchors.shape)
                detections, class_masks = self._predict(b_images, b_metas, b_anchors)
                # unmold_detections indexes mrcnn_mask[..., class_id]: a broadcast view of the
                # already selected masks gives the same values without copying K planes
                n_cls = config.NUM_CLASSES
                for j, i in enumerate(chunk):
                    mrcnn_mask = np.broadcast_to(class_masks[j][..., None],
                                                 class_masks[j].shape + (n_cls,))
                    results[i] = self._unmold(detections[j], mrcnn_mask, images[i].shape,
                                              molded[i].shape, windows[i], mask_paste)
                if progress is not None:
                    progress.add(len(chunk))
        return results

    def _unmold(self, detections, mrcnn_mask, original_shape, molded_shape, window, mask_paste):
        from mrcnn import transform
        if mask_paste == "numpy":
            rois, class_ids, scores, masks = transform.unmold_detections(
                detections, mrcnn_mask, original_shape, molded_shape, window)
        else:
            # boxes/ids/scores through the numpy path with empty masks, then paste on device
            zero_ix = np.where(detections[:, 4] == 0)[0]
            n = zero_ix[0] if zero_ix.shape[0] > 0 else detections.shape[0]
            small = mrcnn_mask[np.arange(n), :, :, detections[:n, 4].astype(np.int32)]
            rois, class_ids, scores, keep = _unmold_boxes(detections[:n], original_shape,
                                                          molded_shape, window)
            small = small[keep]
            if len(class_ids):
                masks = np.asarray(ops.convert_to_numpy(
                    paste_masks(small, rois, original_shape[0], original_shape[1])))
            else:
                masks = np.zeros(tuple(original_shape[:2]) + (0,), bool)
        return {"rois": rois.astype(np.int32), "class_ids": class_ids.astype(np.int32),
                "scores": scores.astype(np.float32), "masks": masks}


def _unmold_boxes(detections, original_shape, molded_shape, window):
    """Box arithmetic of unmold_detections (same float ops) without the numpy mask resize.
    Returns rois, class_ids, scores of the kept rows and the keep mask (non-zero area)."""
    from mrcnn import utils
    boxes = detections[:, :4]
    class_ids = detections[:, 4].astype(np.int32)
    scores = detections[:, 5]
    wy1, wx1, wy2, wx2 = utils.norm_boxes(window, molded_shape[:2])
    shift = np.array([wy1, wx1, wy1, wx1])
    wh, ww = wy2 - wy1, wx2 - wx1
    boxes = np.divide(boxes - shift, np.array([wh, ww, wh, ww]))
    boxes = utils.denorm_boxes(boxes, original_shape[:2])
    keep = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) > 0
    return boxes[keep], class_ids[keep], scores[keep], keep


# Matterport's other modellib names live in their own modules; resolved lazily (PEP 562)
# because mrcnn.training imports this module.
_LAZY_EXPORTS = {
    "mold_image": "mrcnn.transform", "unmold_image": "mrcnn.transform",
    "compose_image_meta": "mrcnn.transform", "parse_image_meta": "mrcnn.transform",
    "mold_inputs": "mrcnn.transform", "unmold_detections": "mrcnn.transform",
    "compute_backbone_shapes": "mrcnn.transform",
    "DetectionTargetLayer": "mrcnn.detection_targets", "detection_targets_graph": "mrcnn.detection_targets",
    "rpn_class_loss_graph": "mrcnn.losses", "rpn_bbox_loss_graph": "mrcnn.losses",
    "mrcnn_class_loss_graph": "mrcnn.losses", "mrcnn_bbox_loss_graph": "mrcnn.losses",
    "mrcnn_mask_loss_graph": "mrcnn.losses",
    "build_rpn_targets": "mrcnn.data_generator", "load_image_gt": "mrcnn.data_generator",
    "DataGenerator": "mrcnn.data_generator", "data_generator": "mrcnn.data_generator",
}


def __getattr__(name):
    module = _LAZY_EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mrcnn.model' has no attribute {name!r}")
    import importlib
    return getattr(importlib.import_module(module), name)
