"""The five Mask R-CNN losses against numpy versions of Matterport's gather-based formulas."""

import keras
import numpy as np
import pytest
from keras import ops

from mrcnn import losses

pytestmark = pytest.mark.jax


def _np(x):
    return np.asarray(ops.convert_to_numpy(x))


def _np_smooth_l1(t, p):
    d = np.abs(t - p)
    return np.where(d < 1, 0.5 * d ** 2, d - 0.5)


def _np_softmax_ce(labels, logits):
    logits = logits - logits.max(-1, keepdims=True)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    return -np.take_along_axis(logp, labels[..., None], -1)[..., 0]


def test_smooth_l1_values():
    t = np.zeros(5, np.float32)
    p = np.array([-2.0, -0.5, 0.0, 0.5, 3.0], np.float32)
    np.testing.assert_allclose(_np(losses.smooth_l1_loss(t, p)), [1.5, 0.125, 0.0, 0.125, 2.5], atol=1e-7)


def test_rpn_class_loss_ignores_neutral_anchors():
    rng = np.random.default_rng(0)
    match = rng.choice([-1, 0, 1], size=(2, 50, 1)).astype(np.int32)
    logits = rng.normal(size=(2, 50, 2)).astype(np.float32)
    used = match[..., 0] != 0
    expected = _np_softmax_ce((match[..., 0] == 1).astype(int)[used], logits[used]).mean()
    got = _np(losses.rpn_class_loss_graph(match, logits))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    # All neutral: 0, not NaN.
    assert float(_np(losses.rpn_class_loss_graph(np.zeros_like(match), logits))) == 0.0


def test_rpn_bbox_loss_packs_targets_per_image():
    rng = np.random.default_rng(1)
    match = np.zeros((2, 40, 1), np.int32)
    match[0, [3, 7, 20], 0] = 1
    match[1, [0, 39], 0] = 1
    match[1, [5, 6], 0] = -1
    target = np.zeros((2, 8, 4), np.float32)
    target[0, :3] = rng.normal(size=(3, 4))
    target[1, :2] = rng.normal(size=(2, 4))
    pred = rng.normal(size=(2, 40, 4)).astype(np.float32) * 2
    # Matterport: gather positives (batch-major, anchor order), trim targets per image, mean.
    rows_pred = np.concatenate([pred[0, [3, 7, 20]], pred[1, [0, 39]]])
    rows_target = np.concatenate([target[0, :3], target[1, :2]])
    expected = _np_smooth_l1(rows_target, rows_pred).mean()
    got = _np(losses.rpn_bbox_loss_graph(None, target, match, pred))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    assert float(_np(losses.rpn_bbox_loss_graph(None, target, np.zeros_like(match), pred))) == 0.0


def test_mrcnn_class_loss_erases_inactive_predictions():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(2, 10, 4)).astype(np.float32)
    target = rng.integers(0, 4, size=(2, 10)).astype(np.int32)
    active = np.array([[1, 1, 0, 1], [1, 1, 1, 1]], np.float32)
    pred_active = active[0][logits.argmax(-1)]
    expected = (_np_softmax_ce(target, logits) * pred_active).sum() / pred_active.sum()
    got = _np(losses.mrcnn_class_loss_graph(target, logits, active))
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_mrcnn_bbox_loss_uses_target_class_deltas():
    rng = np.random.default_rng(3)
    target_ids = np.array([[2, 0, 1, 0], [0, 3, 0, 0]], np.int32)
    target_bbox = rng.normal(size=(2, 4, 4)).astype(np.float32)
    pred = rng.normal(size=(2, 4, 4, 4)).astype(np.float32) * 2
    rows = [(0, 0), (0, 2), (1, 1)]
    expected = np.mean([_np_smooth_l1(target_bbox[b, r], pred[b, r, target_ids[b, r]]) for b, r in rows])
    got = _np(losses.mrcnn_bbox_loss_graph(target_bbox, target_ids, pred))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    assert float(_np(losses.mrcnn_bbox_loss_graph(target_bbox, np.zeros_like(target_ids), pred))) == 0.0


def test_mrcnn_mask_loss_binary_cross_entropy_of_target_class():
    rng = np.random.default_rng(4)
    target_ids = np.array([[1, 0, 2], [0, 0, 1]], np.int32)
    target_masks = (rng.random((2, 3, 6, 6)) > 0.5).astype(np.float32)
    pred = rng.random((2, 3, 6, 6, 3)).astype(np.float32)
    pred[0, 0, 0, 0, 1] = 0.0  # exercises the epsilon clip
    eps = 1e-7
    vals = []
    for b, r in [(0, 0), (0, 2), (1, 2)]:
        p = np.clip(pred[b, r, :, :, target_ids[b, r]], eps, 1 - eps)
        t = target_masks[b, r]
        vals.append(-(t * np.log(p) + (1 - t) * np.log(1 - p)))
    expected = np.mean(vals)
    got = _np(losses.mrcnn_mask_loss_graph(target_masks, target_ids, pred))
    np.testing.assert_allclose(got, expected, rtol=1e-4)
    assert float(_np(losses.mrcnn_mask_loss_graph(target_masks, np.zeros_like(target_ids), pred))) == 0.0


def test_weight_decay_matches_matterport_scaling_and_skips_batchnorm():
    inputs = keras.Input((4, 4, 2))
    x = keras.layers.Conv2D(3, 3, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    model = keras.Model(inputs, x)
    conv = model.get_layer("conv")
    kernel, bias = (_np(w) for w in conv.weights)
    expected = 1e-4 * ((kernel ** 2).sum() / kernel.size + (bias ** 2).sum() / max(bias.size, 1))
    got = _np(losses.weight_decay_loss(model.trainable_weights, 1e-4))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
