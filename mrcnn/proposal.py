"""RPN proposal stage: box coding graph functions and ProposalLayer (Matterport names)."""
import keras
from keras import ops

from mrcnn.ops import gather_rows, non_max_suppression_padded, zero_unfilled


def apply_box_deltas_graph(boxes, deltas):
    """Apply (dy, dx, log dh, log dw) to boxes [..., 4] (y1, x1, y2, x2), in the operation order
    of Matterport's apply_box_deltas_graph (float32)."""
    height = boxes[..., 2] - boxes[..., 0]
    width = boxes[..., 3] - boxes[..., 1]
    center_y = boxes[..., 0] + 0.5 * height
    center_x = boxes[..., 1] + 0.5 * width
    center_y = center_y + deltas[..., 0] * height
    center_x = center_x + deltas[..., 1] * width
    height = height * ops.exp(deltas[..., 2])
    width = width * ops.exp(deltas[..., 3])
    y1 = center_y - 0.5 * height
    x1 = center_x - 0.5 * width
    y2 = y1 + height
    x2 = x1 + width
    return ops.stack([y1, x1, y2, x2], axis=-1)


def clip_boxes_graph(boxes, window):
    """Clip boxes [..., 4] to window (wy1, wx1, wy2, wx2); window [4] or broadcastable [..., 4]."""
    window = ops.convert_to_tensor(window, dtype=boxes.dtype)
    wy1, wx1, wy2, wx2 = window[..., 0], window[..., 1], window[..., 2], window[..., 3]
    y1 = ops.maximum(ops.minimum(boxes[..., 0], wy2), wy1)
    x1 = ops.maximum(ops.minimum(boxes[..., 1], wx2), wx1)
    y2 = ops.maximum(ops.minimum(boxes[..., 2], wy2), wy1)
    x2 = ops.maximum(ops.minimum(boxes[..., 3], wx2), wx1)
    return ops.stack([y1, x1, y2, x2], axis=-1)


def _scale_shift(shape):
    shape = ops.cast(ops.convert_to_tensor(shape), "float32")
    h, w = shape[..., 0:1], shape[..., 1:2]
    scale = ops.concatenate([h, w, h, w], axis=-1) - 1.0
    shift = ops.convert_to_tensor([0.0, 0.0, 1.0, 1.0])
    return scale, shift


def norm_boxes_graph(boxes, shape):
    """Pixel boxes -> normalized: (b - [0, 0, 1, 1]) / [H-1, W-1, H-1, W-1]."""
    scale, shift = _scale_shift(shape)
    return (ops.cast(boxes, "float32") - shift) / scale


def denorm_boxes_graph(boxes, shape):
    """Normalized boxes -> int32 pixel boxes, rounding half to even (tf.round)."""
    scale, shift = _scale_shift(shape)
    return ops.cast(ops.round(boxes * scale + shift), "int32")


@keras.saving.register_keras_serializable(package="mrcnn")
class ProposalLayer(keras.layers.Layer):
    """Top PRE_NMS_LIMIT anchors by foreground score -> apply deltas * RPN_BBOX_STD_DEV -> clip to
    [0, 1] -> greedy NMS -> [B, proposal_count, 4] normalized proposals, zero padded.

    Inputs: [rpn_probs [B, N, 2], rpn_bbox [B, N, 4], anchors [B, N, 4]]."""

    def __init__(self, proposal_count, nms_threshold, config=None, rpn_bbox_std_dev=None,
                 pre_nms_limit=None, **kwargs):
        super().__init__(**kwargs)
        self.proposal_count = int(proposal_count)
        self.nms_threshold = float(nms_threshold)
        if rpn_bbox_std_dev is None:
            rpn_bbox_std_dev = config.RPN_BBOX_STD_DEV
        if pre_nms_limit is None:
            pre_nms_limit = config.PRE_NMS_LIMIT
        self.rpn_bbox_std_dev = [float(v) for v in rpn_bbox_std_dev]
        self.pre_nms_limit = int(pre_nms_limit)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(proposal_count=self.proposal_count, nms_threshold=self.nms_threshold,
                   rpn_bbox_std_dev=self.rpn_bbox_std_dev, pre_nms_limit=self.pre_nms_limit)
        return cfg

    def call(self, inputs):
        scores = inputs[0][:, :, 1]
        deltas = inputs[1] * ops.reshape(ops.convert_to_tensor(self.rpn_bbox_std_dev), (1, 1, 4))
        anchors = inputs[2]
        n = inputs[2].shape[1]
        if n is None:
            n = inputs[0].shape[1]
        limit = self.pre_nms_limit if n is None else min(self.pre_nms_limit, n)
        top_scores, ix = ops.top_k(scores, k=limit, sorted=True)
        ix = ops.cast(ix, "int32")
        deltas = gather_rows(deltas, ix)
        pre_nms_anchors = gather_rows(anchors, ix)
        boxes = apply_box_deltas_graph(pre_nms_anchors, deltas)
        boxes = clip_boxes_graph(boxes, [0.0, 0.0, 1.0, 1.0])
        keep, filled = non_max_suppression_padded(boxes, top_scores, self.proposal_count,
                                                  self.nms_threshold, presorted=True)
        return zero_unfilled(gather_rows(boxes, keep), filled)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], self.proposal_count, 4)
