"""DetectionTargetLayer: samples the training ROIs of the second stage and builds their targets.

Semantics of Matterport's `detection_targets_graph` (model.py, 3deaec5), rewritten with
`keras.ops` and fixed-size outputs so that it runs on TensorFlow and JAX (jit):

* zero-padded proposals and GT boxes are ignored; GT with a negative class id are crowd boxes:
  they never become targets and proposals that touch one (IoU >= 0.001) are not used as negatives;
* positive ROIs: IoU >= 0.5 with a GT box, at most int(TRAIN_ROIS_PER_IMAGE * ROI_POSITIVE_RATIO),
  picked in random order; negatives: IoU < 0.5 with every GT box,
  count = int(float32(1 / ROI_POSITIVE_RATIO) * P) - P (so no positives means no negatives either,
  as in the original);
* outputs [positives, negatives, zero padding] with class ids, deltas / BBOX_STD_DEV of the best
  GT box (first on ties), and the GT mask cropped to the ROI (mini-mask coordinates when
  USE_MINI_MASK) with crop_and_resize to MASK_SHAPE, rounded to {0, 1}.
"""
import types

import keras
import numpy as np
from keras import ops

from mrcnn.ops import crop_and_resize_flat, gather_rows, zero_unfilled


def overlaps_graph(boxes1, boxes2):
    """IoU matrix [..., N1, N2] of (y1, x1, y2, x2) boxes, as Matterport's overlaps_graph
    (plain intersection / union; 0 where the union is empty instead of NaN)."""
    y1 = ops.maximum(boxes1[..., :, None, 0], boxes2[..., None, :, 0])
    x1 = ops.maximum(boxes1[..., :, None, 1], boxes2[..., None, :, 1])
    y2 = ops.minimum(boxes1[..., :, None, 2], boxes2[..., None, :, 2])
    x2 = ops.minimum(boxes1[..., :, None, 3], boxes2[..., None, :, 3])
    intersection = ops.maximum(x2 - x1, 0.0) * ops.maximum(y2 - y1, 0.0)
    area1 = (boxes1[..., 2] - boxes1[..., 0]) * (boxes1[..., 3] - boxes1[..., 1])
    area2 = (boxes2[..., 2] - boxes2[..., 0]) * (boxes2[..., 3] - boxes2[..., 1])
    union = area1[..., :, None] + area2[..., None, :] - intersection
    nonempty = union > 0
    return ops.where(nonempty, intersection / ops.where(nonempty, union, 1.0), 0.0)


def box_refinement_graph(box, gt_box):
    """Deltas (dy, dx, log dh, log dw) turning `box` into `gt_box` ([..., 4] float32), in the
    operation order of Matterport's utils.box_refinement_graph."""
    box = ops.cast(box, "float32")
    gt_box = ops.cast(gt_box, "float32")
    height = box[..., 2] - box[..., 0]
    width = box[..., 3] - box[..., 1]
    center_y = box[..., 0] + 0.5 * height
    center_x = box[..., 1] + 0.5 * width
    gt_height = gt_box[..., 2] - gt_box[..., 0]
    gt_width = gt_box[..., 3] - gt_box[..., 1]
    gt_center_y = gt_box[..., 0] + 0.5 * gt_height
    gt_center_x = gt_box[..., 1] + 0.5 * gt_width
    dy = (gt_center_y - center_y) / height
    dx = (gt_center_x - center_x) / width
    dh = ops.log(gt_height / height)
    dw = ops.log(gt_width / width)
    return ops.stack([dy, dx, dh, dw], axis=-1)


@keras.saving.register_keras_serializable(package="mrcnn")
class DetectionTargetLayer(keras.layers.Layer):
    """Subsamples proposals and generates target class ids, box deltas and masks.

    Inputs: proposals [B, N, 4] normalized (zero padded), gt_class_ids [B, G] int (zero padded,
    negative = crowd), gt_boxes [B, G, 4] normalized, gt_masks [B, h, w, G] bool (mini masks of
    MINI_MASK_SHAPE when USE_MINI_MASK, else full image size).
    Outputs: rois [B, T, 4], target_class_ids [B, T] int32, target_bbox [B, T, 4],
    target_mask [B, T, MASK_SHAPE[0], MASK_SHAPE[1]], with T = TRAIN_ROIS_PER_IMAGE, zero padded.

    shuffle=False keeps positives and negatives in proposal order (deterministic; for tests);
    the default picks them at random like Matterport's tf.random_shuffle.

    Gradients, as in Matterport: none of the outputs is cut here. The box targets are deltas
    from the proposals, so the mrcnn_bbox loss also reaches the RPN's box deltas through them; the
    mask targets are rounded (no gradient); rois feed PyramidROIAlign, the one place that stops
    gradients (model.py 3deaec5: `tf.stop_gradient(level_boxes)`). stop_target_gradients=True
    stops the gradient of rois, box and mask targets here (treats them as constants).
    """

    def __init__(self, config=None, shuffle=True, seed=None, stop_target_gradients=False, rois_per_image=None,
                 positive_ratio=None, bbox_std_dev=None, use_mini_mask=None, mask_shape=None, **kwargs):
        super().__init__(**kwargs)

        def pick(value, field):
            if value is not None:
                return value
            if config is None:
                raise ValueError(f"DetectionTargetLayer: give a config or {field}")
            return getattr(config, field)

        # The config values the layer uses, as plain values (get_config serializes them).
        self.config = types.SimpleNamespace(
            TRAIN_ROIS_PER_IMAGE=int(pick(rois_per_image, "TRAIN_ROIS_PER_IMAGE")),
            ROI_POSITIVE_RATIO=float(pick(positive_ratio, "ROI_POSITIVE_RATIO")),
            BBOX_STD_DEV=[float(v) for v in pick(bbox_std_dev, "BBOX_STD_DEV")],
            USE_MINI_MASK=bool(pick(use_mini_mask, "USE_MINI_MASK")),
            MASK_SHAPE=[int(v) for v in pick(mask_shape, "MASK_SHAPE")])
        self.shuffle = shuffle
        self.seed = seed
        self.stop_target_gradients = bool(stop_target_gradients)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _order(self, selected):
        """Indices [B, N] with the selected entries first (random or natural order)."""
        n = selected.shape[-1]
        if self.shuffle:
            keys = keras.random.uniform(ops.shape(selected), seed=self.seed_generator)
        else:
            keys = ops.broadcast_to(ops.arange(n, dtype="float32") / float(max(n, 1)), ops.shape(selected))
        keys = ops.where(selected, keys, 2.0)
        return ops.cast(ops.argsort(keys, axis=-1), "int32")

    def call(self, inputs):
        proposals, gt_class_ids, gt_boxes, gt_masks = inputs
        cfg = self.config
        rois_per_image = int(cfg.TRAIN_ROIS_PER_IMAGE)
        proposals = ops.cast(proposals, "float32")
        gt_boxes = ops.cast(gt_boxes, "float32")
        gt_class_ids = ops.cast(gt_class_ids, "int32")
        num_proposals = proposals.shape[1]

        proposal_valid = ops.sum(ops.abs(proposals), axis=-1) > 0
        gt_valid = ops.sum(ops.abs(gt_boxes), axis=-1) > 0
        is_crowd = ops.logical_and(gt_valid, gt_class_ids < 0)
        is_instance = ops.logical_and(gt_valid, gt_class_ids > 0)

        iou = overlaps_graph(proposals, gt_boxes)  # [B, N, G]
        overlaps = ops.where(is_instance[:, None, :], iou, -1.0)
        crowd_iou_max = ops.max(ops.where(is_crowd[:, None, :], iou, 0.0), axis=-1)
        no_crowd = crowd_iou_max < 0.001
        roi_iou_max = ops.max(overlaps, axis=-1)

        positive = ops.logical_and(proposal_valid, roi_iou_max >= 0.5)
        negative = ops.logical_and(ops.logical_and(proposal_valid, roi_iou_max < 0.5), no_crowd)

        max_positive = int(rois_per_image * cfg.ROI_POSITIVE_RATIO)
        positive_count = ops.minimum(ops.sum(ops.cast(positive, "int32"), axis=-1), max_positive)
        ratio = np.float32(1.0 / cfg.ROI_POSITIVE_RATIO)
        negative_count = ops.cast(ratio * ops.cast(positive_count, "float32"), "int32") - positive_count
        negative_count = ops.minimum(negative_count, ops.sum(ops.cast(negative, "int32"), axis=-1))
        negative_count = ops.minimum(negative_count, rois_per_image - positive_count)

        slots = ops.arange(rois_per_image, dtype="int32")[None, :]
        pos_slot = slots < positive_count[:, None]
        neg_slot = ops.logical_and(slots >= positive_count[:, None],
                                   slots < (positive_count + negative_count)[:, None])
        pos_index = gather_rows(self._order(positive), ops.clip(slots + 0 * positive_count[:, None], 0,
                                                                num_proposals - 1))
        neg_index = gather_rows(self._order(negative),
                                ops.clip(slots - positive_count[:, None], 0, num_proposals - 1))
        roi_index = ops.where(pos_slot, pos_index, neg_index)
        filled = ops.logical_or(pos_slot, neg_slot)
        rois = zero_unfilled(gather_rows(proposals, roi_index), filled)

        # Best GT box of each positive ROI (argmax: first index on ties, as tf.argmax).
        assignment = ops.cast(ops.argmax(gather_rows(overlaps, roi_index), axis=-1), "int32")
        roi_gt_boxes = gather_rows(gt_boxes, assignment)
        roi_gt_class_ids = ops.where(pos_slot, gather_rows(gt_class_ids, assignment), 0)

        # Non-positive slots get a dummy unit box so log/division stay finite, then are zeroed.
        unit = ops.convert_to_tensor(np.array([0.0, 0.0, 1.0, 1.0], np.float32))
        safe_rois = ops.where(pos_slot[..., None], rois, unit)
        safe_gt = ops.where(pos_slot[..., None], roi_gt_boxes, unit)
        deltas = box_refinement_graph(safe_rois, safe_gt) / np.asarray(cfg.BBOX_STD_DEV, np.float32)
        deltas = zero_unfilled(deltas, pos_slot)

        boxes = safe_rois
        if cfg.USE_MINI_MASK:
            # ROI in the normalized coordinates of its GT box (the mini mask's frame).
            gt_h = safe_gt[..., 2] - safe_gt[..., 0]
            gt_w = safe_gt[..., 3] - safe_gt[..., 1]
            boxes = ops.stack([(safe_rois[..., 0] - safe_gt[..., 0]) / gt_h,
                               (safe_rois[..., 1] - safe_gt[..., 1]) / gt_w,
                               (safe_rois[..., 2] - safe_gt[..., 0]) / gt_h,
                               (safe_rois[..., 3] - safe_gt[..., 1]) / gt_w], axis=-1)
        masks = self._crop_masks(gt_masks, boxes, assignment)
        masks = zero_unfilled(ops.round(masks), pos_slot)

        if self.stop_target_gradients:
            rois, deltas, masks = (ops.stop_gradient(x) for x in (rois, deltas, masks))
        return [rois, roi_gt_class_ids, deltas, masks]

    def _crop_masks(self, gt_masks, boxes, assignment):
        """crop_and_resize of mask `assignment[b, r]` of image b with boxes [B, T, 4]."""
        mask_h, mask_w, num_gt = gt_masks.shape[1], gt_masks.shape[2], gt_masks.shape[3]
        if mask_h is None or mask_w is None or num_gt is None:
            shape = ops.shape(gt_masks)
            mask_h, mask_w, num_gt = shape[1], shape[2], shape[3]
        # [B, h, w, G] -> [B, G * h * w, 1]: the G masks of an image concatenated row-major.
        flat = ops.reshape(ops.transpose(ops.cast(gt_masks, "float32"), (0, 3, 1, 2)),
                           (-1, num_gt * mask_h * mask_w, 1))
        ones = ops.ones_like(assignment)
        crops = crop_and_resize_flat(flat, boxes, ones * mask_h, ones * mask_w,
                                     assignment * (mask_h * mask_w), self.config.MASK_SHAPE)
        return crops[..., 0]

    def compute_output_shape(self, input_shape):
        t = self.config.TRAIN_ROIS_PER_IMAGE
        batch = input_shape[0][0]
        return [(batch, t, 4), (batch, t), (batch, t, 4),
                (batch, t, self.config.MASK_SHAPE[0], self.config.MASK_SHAPE[1])]

    def compute_output_spec(self, inputs):
        shapes = self.compute_output_shape([tuple(x.shape) for x in inputs])
        dtypes = ["float32", "int32", "float32", "float32"]
        return [keras.KerasTensor(s, dtype=d) for s, d in zip(shapes, dtypes)]

    def get_config(self):
        base = super().get_config()
        c = self.config
        base.update(shuffle=self.shuffle, seed=self.seed, stop_target_gradients=self.stop_target_gradients,
                    rois_per_image=c.TRAIN_ROIS_PER_IMAGE, positive_ratio=c.ROI_POSITIVE_RATIO,
                    bbox_std_dev=list(c.BBOX_STD_DEV), use_mini_mask=c.USE_MINI_MASK, mask_shape=list(c.MASK_SHAPE))
        return base
