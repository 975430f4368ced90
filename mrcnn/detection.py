"""DetectionLayer: per-class refinement, confidence filter, per-class NMS, top-K (Matterport)."""
import keras
from keras import ops

from mrcnn.ops import gather_rows, non_max_suppression_padded, parse_image_meta_graph, zero_unfilled
from mrcnn.proposal import apply_box_deltas_graph, clip_boxes_graph, norm_boxes_graph


def refine_detections_graph(rois, probs, deltas, window, bbox_std_dev, min_confidence,
                            nms_threshold, max_instances):
    """Batched refine_detections. rois [B, N, 4], probs [B, N, K], deltas [B, N, K, 4],
    window [B, 4] normalized. Returns [B, max_instances, 6] (y1, x1, y2, x2, class_id, score),
    sorted by score, zero padded.

    Per-class greedy NMS done jointly (IoU only between boxes of the same class), which keeps
    exactly the per-class results; the final order is by score with ties to the lower ROI index,
    as top_k over the ascending kept indices gives in the original."""
    class_ids = ops.cast(ops.argmax(probs, axis=2), "int32")  # [B, N]
    class_scores = ops.squeeze(ops.take_along_axis(probs, class_ids[..., None], axis=2), -1)
    deltas_specific = ops.squeeze(
        ops.take_along_axis(deltas, class_ids[..., None, None], axis=2), 2)
    std = ops.reshape(ops.convert_to_tensor(bbox_std_dev, dtype="float32"), (1, 1, 4))
    refined = apply_box_deltas_graph(rois, deltas_specific * std)
    refined = clip_boxes_graph(refined, window[:, None, :])
    keep = class_ids > 0
    if min_confidence:
        keep = ops.logical_and(keep, class_scores >= min_confidence)
    idx, filled = non_max_suppression_padded(refined, class_scores, max_instances, nms_threshold,
                                             valid=keep, class_ids=class_ids)
    det = ops.concatenate([
        gather_rows(refined, idx),
        ops.cast(gather_rows(class_ids, idx), "float32")[..., None],
        gather_rows(class_scores, idx)[..., None],
    ], axis=-1)
    return zero_unfilled(det, filled)


@keras.saving.register_keras_serializable(package="mrcnn")
class DetectionLayer(keras.layers.Layer):
    """Inputs [rois, mrcnn_class, mrcnn_bbox, image_meta] -> [B, DETECTION_MAX_INSTANCES, 6]
    in normalized coordinates of the molded image."""

    def __init__(self, config=None, bbox_std_dev=None, min_confidence=None, nms_threshold=None,
                 max_instances=None, **kwargs):
        super().__init__(**kwargs)
        self.bbox_std_dev = [float(v) for v in (bbox_std_dev if bbox_std_dev is not None
                                                else config.BBOX_STD_DEV)]
        self.min_confidence = float(min_confidence if min_confidence is not None
                                    else config.DETECTION_MIN_CONFIDENCE)
        self.nms_threshold = float(nms_threshold if nms_threshold is not None
                                   else config.DETECTION_NMS_THRESHOLD)
        self.max_instances = int(max_instances if max_instances is not None
                                 else config.DETECTION_MAX_INSTANCES)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(bbox_std_dev=self.bbox_std_dev, min_confidence=self.min_confidence,
                   nms_threshold=self.nms_threshold, max_instances=self.max_instances)
        return cfg

    def call(self, inputs):
        rois, mrcnn_class, mrcnn_bbox, image_meta = inputs
        m = parse_image_meta_graph(image_meta)
        image_shape = m["image_shape"][0]
        window = norm_boxes_graph(m["window"], image_shape[:2])
        return refine_detections_graph(ops.cast(rois, "float32"), mrcnn_class, mrcnn_bbox, window,
                                       self.bbox_std_dev, self.min_confidence, self.nms_threshold,
                                       self.max_instances)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], self.max_instances, 6)
