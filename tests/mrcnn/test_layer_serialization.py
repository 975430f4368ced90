"""Every custom Mask R-CNN layer has a complete get_config: serialized (JSON) and deserialized, it
is the same layer and computes the same outputs."""
import json

import keras
import numpy as np
import pytest
from keras import layers as KL

from mrcnn.backbone import BatchNorm
from mrcnn.detection import DetectionLayer
from mrcnn.detection_targets import DetectionTargetLayer
from mrcnn.heads import TimeDistributed
from mrcnn.model import DetectionBoxes, SelectClassMasks
from mrcnn.proposal import ProposalLayer
from mrcnn.roi_align import PyramidROIAlign
from mrcnn.training import ConstantAnchors, LossLayer

RNG = np.random.default_rng(0)


def _boxes(*shape):
    a, b = RNG.uniform(0, 0.5, shape + (2,)), RNG.uniform(0.1, 0.5, shape + (2,))
    return np.concatenate([a, a + b], -1).astype(np.float32)


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return (e / e.sum(-1, keepdims=True)).astype(np.float32)


def _meta(num_classes=3):
    meta = np.zeros((1, 12 + num_classes), np.float32)
    meta[0, 4:7] = (64, 64, 3)
    meta[0, 7:11] = (0, 0, 64, 64)
    return meta


def _cases():
    maps = [RNG.random((1, 16 >> i, 16 >> i, 2)).astype(np.float32) for i in range(4)]
    masks = np.zeros((1, 8, 8, 2), bool)
    masks[0, 2:6, 2:6] = True
    detections = np.concatenate([_boxes(1, 4), np.array([[[1], [2], [1], [0]]], np.float32),
                                 RNG.random((1, 4, 1)).astype(np.float32)], -1)
    return {
        "BatchNorm": (lambda: BatchNorm(name="bn"), RNG.random((2, 4, 4, 3)).astype(np.float32)),
        "TimeDistributed": (lambda: TimeDistributed(KL.Dense(3), name="td"), RNG.random((2, 5, 4)).astype(np.float32)),
        "PyramidROIAlign": (lambda: PyramidROIAlign((3, 3), name="roi_align"), [_boxes(1, 3), _meta()] + maps),
        "ProposalLayer": (lambda: ProposalLayer(4, 0.7, rpn_bbox_std_dev=[0.1, 0.1, 0.2, 0.2], pre_nms_limit=10),
                          [RNG.random((1, 12, 2)).astype(np.float32), RNG.normal(size=(1, 12, 4)).astype(np.float32),
                           _boxes(1, 12)]),
        "DetectionLayer": (lambda: DetectionLayer(bbox_std_dev=[0.1, 0.1, 0.2, 0.2], min_confidence=0.1,
                                                  nms_threshold=0.3, max_instances=5),
                           [_boxes(1, 6), _softmax(RNG.normal(size=(1, 6, 3))),
                            RNG.normal(size=(1, 6, 3, 4)).astype(np.float32), _meta()]),
        "DetectionTargetLayer": (lambda: DetectionTargetLayer(shuffle=False, rois_per_image=6, positive_ratio=0.33,
                                                              bbox_std_dev=[0.1, 0.1, 0.2, 0.2], use_mini_mask=True,
                                                              mask_shape=[4, 4], stop_target_gradients=True),
                                 [_boxes(1, 8), np.array([[1, 2]], np.int32), _boxes(1, 2), masks]),
        "DetectionBoxes": (DetectionBoxes, detections),
        "SelectClassMasks": (SelectClassMasks, [detections, RNG.random((1, 4, 5, 5, 3)).astype(np.float32)]),
        "ConstantAnchors": (lambda: ConstantAnchors(_boxes(6)), np.zeros((2, 8, 8, 3), np.float32)),
        "LossLayer": (lambda: LossLayer("rpn_class_loss"),
                      [RNG.integers(-1, 2, (1, 6, 1)).astype(np.int32), RNG.normal(size=(1, 6, 2)).astype(np.float32)]),
    }


CASES = _cases()


@pytest.mark.parametrize("name", sorted(CASES))  # get_config is backend-neutral: TensorFlow only
def test_serialization_round_trip(name):
    make, inputs = CASES[name]
    layer = make()
    expected = layer(inputs)
    serialized = json.loads(json.dumps(keras.saving.serialize_keras_object(layer)))
    restored = keras.saving.deserialize_keras_object(serialized)
    as_json = lambda config: json.loads(json.dumps(config))  # noqa: E731  (tuples -> lists)
    assert type(restored) is type(layer) and as_json(restored.get_config()) == as_json(layer.get_config())
    got = restored(inputs)
    if layer.weights:
        restored.set_weights(layer.get_weights())
        got = restored(inputs)
    for e, g in zip(keras.tree.flatten(expected), keras.tree.flatten(got)):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(g), keras.ops.convert_to_numpy(e))
