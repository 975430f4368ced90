"""Mask R-CNN inference model and Matterport's MaskRCNN API (keras.ops; TensorFlow or JAX).

`modellib.*` names of Matterport are re-exported here (graph functions and layers).
"""
import collections
import logging

import keras
import numpy as np
from keras import layers as KL
from keras import ops

from gonefiles.quiet import progbar
from mrcnn import training, transform
from mrcnn.backbone import BatchNorm, conv_block, identity_block, resnet_graph  # noqa: F401
from mrcnn.graph import build_backbone_and_rpn, check_image_size
from mrcnn.heads import build_fpn_mask_graph, fpn_classifier_graph
from mrcnn.proposal import ProposalLayer
from mrcnn.weights import load_weights as _load_weights, save_weights as _save_weights

# Matterport's modellib names, importable from here as from mrcnn/model.py:
from mrcnn.data_generator import DataGenerator, build_rpn_targets, data_generator, load_image_gt  # noqa: F401,E402
from mrcnn.detection import DetectionLayer, refine_detections_graph  # noqa: F401,E402
from mrcnn.detection_targets import DetectionTargetLayer  # noqa: F401,E402
from mrcnn.losses import (mrcnn_bbox_loss_graph, mrcnn_class_loss_graph, mrcnn_mask_loss_graph,  # noqa: F401,E402
                          rpn_bbox_loss_graph, rpn_class_loss_graph)
from mrcnn.ops import parse_image_meta_graph  # noqa: F401,E402
from mrcnn.proposal import apply_box_deltas_graph, clip_boxes_graph, denorm_boxes_graph, norm_boxes_graph  # noqa: F401,E402
from mrcnn.roi_align import PyramidROIAlign  # noqa: F401,E402
from mrcnn.rpn import rpn_graph  # noqa: F401,E402
from mrcnn.transform import (compose_image_meta, compute_backbone_shapes, mold_image, mold_inputs,  # noqa: F401,E402
                             parse_image_meta, unmold_detections, unmold_image)
from mrcnn.transform import paste_masks, unmold_boxes as _unmold_boxes  # noqa: F401,E402  (benchmarks import them here)
from mrcnn.weights import WeightLoadError, WeightsMismatchError  # noqa: F401,E402

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
# MaskRCNN
# ---------------------------------------------------------------------------------------------
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
        return training.train(self, train_dataset, val_dataset, learning_rate, epochs, layers,
                              augmentation=augmentation, **kwargs)

    def set_log_dir(self, model_path=None):
        return training.set_log_dir(self, model_path)

    def find_last(self):
        return training.find_last(self)

    def get_anchors(self, image_shape):
        return transform.get_anchors(self.config, image_shape)

    # --- inference -------------------------------------------------------------------------
    # Where the mask head runs: "all" = every one of the DETECTION_MAX_INSTANCES detection slots
    # (Matterport's graph), "kept" = only the rows the detection layer kept (class id > 0), in a
    # power-of-two bucket, the other slots' masks left 0. A row's mask depends only on its own
    # box (ROI align + per-ROI convolutions), so the kept rows' masks are the same; on a CPU this
    # saves most of the head's ~57 GMAC (100 slots) when few objects are found. "auto" = "kept"
    # on a CPU, "all" on an accelerator (there the feature maps would go to the host and back).
    mask_head_rois = "auto"

    def _mask_head_on_kept(self):
        mode = self.mask_head_rois
        if mode not in ("auto", "kept", "all"):
            raise ValueError(f"mask_head_rois must be 'auto', 'kept' or 'all', got {mode!r}")
        if mode != "auto":
            return mode == "kept"
        # backend-neutral device list ("cpu:0", "gpu:0", "cuda:0", "tpu:0", ...)
        return all(d.lower().startswith("cpu") for d in keras.distribution.list_devices())

    def _predict_kept(self, inputs):
        """(detections, class masks [B, N, h, w]) with the mask head on the kept rows only: one
        model up to the detections and P2..P5, one for the mask head (same layers and weights)."""
        m = self.keras_model
        det = m.outputs[0]
        feats = [m.get_layer(f"fpn_p{i}").output for i in (2, 3, 4, 5)]
        if "kept" not in self._predict_fns:
            self._predict_fns["kept"] = keras.Model(m.inputs, [det] + feats).predict_on_batch
        detections, *maps = [np.asarray(o) for o in self._predict_fns["kept"](inputs)]
        slots = detections.shape[1]
        masks = np.zeros(detections.shape[:2] + tuple(self.config.MASK_SHAPE), np.float32)
        n = int((detections[..., 4] > 0).sum(axis=1).max())
        if n:
            rows = min(slots, 1 << (n - 1).bit_length())   # few distinct shapes: few traces
            key = ("kept", rows)   # one model per bucket: each traces once with static shapes
            if key not in self._predict_fns:
                head = keras.Model([det, m.inputs[1]] + feats, SelectClassMasks()([det, m.outputs[3]]))
                head.input_spec = None   # `rows` detection rows (the graph's own shape says N)
                self._predict_fns[key] = head.predict_on_batch
            masks[:, :rows] = np.asarray(self._predict_fns[key]([detections[:, :rows], inputs[1]] + maps))
        return detections, masks

    def _predict(self, molded, metas, anchors, full_outputs=False):
        """Run the network on one padded batch. Returns numpy (detections, class masks
        [B, N, h, w]) or all seven outputs."""
        if not full_outputs and self._mask_head_on_kept():
            return self._predict_kept([molded.astype(np.float32), metas.astype(np.float32),
                                       anchors.astype(np.float32)])
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
        images = [transform.as_rgb(im, i) for i, im in enumerate(images)]
        if not images:
            return []
        config = self.config
        batch_size = int(batch_size or config.BATCH_SIZE)
        if verbose:
            logger.info("Processing %d images", len(images))
        molded, metas, windows = transform.mold_inputs(images, config, checked=True)
        results = [None] * len(images)
        # group by molded shape (differs only in resize modes without a fixed square)
        by_shape = {}
        for i, m in enumerate(molded):
            by_shape.setdefault(m.shape, []).append(i)
        progress = progbar(len(images)) if verbose else None
        for shape, idx in by_shape.items():
            anchors = transform.get_anchors(config, shape)
            for start in range(0, len(idx), batch_size):
                chunk = idx[start:start + batch_size]
                n_pad = batch_size - len(chunk)
                b_images = np.stack([molded[i] for i in chunk] + [molded[chunk[0]]] * n_pad)
                b_metas = np.stack([metas[i] for i in chunk] + [metas[chunk[0]]] * n_pad)
                b_anchors = np.broadcast_to(anchors, (batch_size,) + anchors.shape)
                detections, class_masks = self._predict(b_images, b_metas, b_anchors)
                # the graph already selected each detection's class mask (SelectClassMasks)
                for j, i in enumerate(chunk):
                    rois, class_ids, scores, masks = transform.unmold_class_masks(
                        detections[j], class_masks[j], images[i].shape, molded[i].shape, windows[i], mask_paste)
                    results[i] = {"rois": rois, "class_ids": class_ids, "scores": scores, "masks": masks}
                if progress is not None:
                    progress.add(len(chunk))
        return results
