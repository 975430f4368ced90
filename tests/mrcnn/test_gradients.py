"""Where Mask R-CNN's training graph stops gradients (TensorFlow's GradientTape; the layers are
backend-neutral, the tape is the cheapest way to ask)."""
import types

import numpy as np
import pytest

import tensorflow as tf

from mrcnn.detection_targets import DetectionTargetLayer
from mrcnn.roi_align import PyramidROIAlign


def _config():
    return types.SimpleNamespace(TRAIN_ROIS_PER_IMAGE=8, ROI_POSITIVE_RATIO=0.5,
                                 BBOX_STD_DEV=np.array([0.1, 0.1, 0.2, 0.2]), USE_MINI_MASK=True,
                                 MASK_SHAPE=[6, 6], MINI_MASK_SHAPE=(8, 8))


def _case():
    gt_boxes = np.array([[0.1, 0.1, 0.5, 0.6], [0.5, 0.4, 0.9, 0.9]], np.float32)
    jitter = np.array([0.01, -0.02, 0.02, 0.01], np.float32)
    proposals = np.concatenate([gt_boxes + jitter, gt_boxes - jitter, [[0.6, 0.0, 0.8, 0.2]]]).astype(np.float32)
    masks = np.zeros((8, 8, 2), bool)
    masks[2:6, 1:7, 0] = masks[1:7, 2:5, 1] = True
    return proposals, np.array([1, 2], np.int32), gt_boxes, masks


@pytest.mark.parametrize("stop", [False, True])
def test_gradients_reach_the_proposals_through_box_targets_only_as_matterport(stop):
    """Matterport cuts no target gradient (only ROI align stops them); the option cuts them."""
    cfg = _config()
    proposals, gt_class_ids, gt_boxes, gt_masks = _case()
    layer = DetectionTargetLayer(cfg, shuffle=False, stop_target_gradients=stop)
    variable = tf.constant(proposals[None])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(variable)
        rois, _, deltas, masks = layer([variable, gt_class_ids[None], gt_boxes[None], gt_masks[None]])
        bbox_term, mask_term = tf.reduce_sum(deltas ** 2), tf.reduce_sum(masks)
    grad = tape.gradient(bbox_term, variable)
    assert float(tf.reduce_sum(masks)) > 0 and tape.gradient(mask_term, variable) is None
    reaches = grad is not None and float(tf.reduce_max(tf.abs(grad))) > 0
    assert reaches == (not stop)


def test_roi_align_stops_the_gradient_of_the_boxes_only():
    meta = np.zeros((1, 16), np.float32)
    meta[0, 4:7] = (64, 64, 3)
    boxes = tf.constant([[[0.1, 0.1, 0.6, 0.5], [0.2, 0.3, 0.9, 0.8]]], dtype=tf.float32)
    maps = [tf.constant(np.random.default_rng(i).random((1, 16 >> i, 16 >> i, 2)), dtype=tf.float32)
            for i in range(4)]
    with tf.GradientTape() as tape:
        tape.watch([boxes] + maps)
        out = PyramidROIAlign((3, 3))([boxes, meta] + maps)
        total = tf.reduce_sum(out)
    grads = tape.gradient(total, [boxes] + maps)
    assert grads[0] is None and grads[1] is not None and float(tf.reduce_max(tf.abs(grads[1]))) > 0
