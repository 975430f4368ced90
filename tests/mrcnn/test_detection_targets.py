"""DetectionTargetLayer on hand-made boxes, against a numpy transcription of Matterport's
detection_targets_graph (with the shuffles replaced by proposal order: shuffle=False)."""
import types

import numpy as np
import pytest
from keras import ops

from mrcnn.detection_targets import DetectionTargetLayer, box_refinement_graph, overlaps_graph

pytestmark = pytest.mark.jax


def _config(use_mini_mask=True, rois=12, ratio=0.33):
    return types.SimpleNamespace(TRAIN_ROIS_PER_IMAGE=rois, ROI_POSITIVE_RATIO=ratio,
                                 BBOX_STD_DEV=np.array([0.1, 0.1, 0.2, 0.2]), USE_MINI_MASK=use_mini_mask,
                                 MASK_SHAPE=[8, 8], MINI_MASK_SHAPE=(16, 16))


def _np_iou(a, b):
    y1 = np.maximum(a[:, None, 0], b[None, :, 0])
    x1 = np.maximum(a[:, None, 1], b[None, :, 1])
    y2 = np.minimum(a[:, None, 2], b[None, :, 2])
    x2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.maximum(y2 - y1, 0) * np.maximum(x2 - x1, 0)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def _np_crop_and_resize(image, box, size):
    """tf.image.crop_and_resize, one box, bilinear, extrapolation 0 (float32 arithmetic)."""
    h, w = image.shape[:2]
    out = np.zeros((size[0], size[1]), np.float32)
    y1, x1, y2, x2 = box.astype(np.float32)
    for i in range(size[0]):
        y = y1 * np.float32(h - 1) + i * ((y2 - y1) * np.float32(h - 1) / np.float32(size[0] - 1))
        for j in range(size[1]):
            x = x1 * np.float32(w - 1) + j * ((x2 - x1) * np.float32(w - 1) / np.float32(size[1] - 1))
            if y < 0 or y > h - 1 or x < 0 or x > w - 1:
                continue
            t, b_, l, r = int(np.floor(y)), int(np.ceil(y)), int(np.floor(x)), int(np.ceil(x))
            yl, xl = y - t, x - l
            top = image[t, l] + (image[t, r] - image[t, l]) * xl
            bot = image[b_, l] + (image[b_, r] - image[b_, l]) * xl
            out[i, j] = top + (bot - top) * yl
    return out


def _np_targets(proposals, gt_class_ids, gt_boxes, gt_masks, cfg):
    """Matterport detection_targets_graph with tf.random_shuffle replaced by identity."""
    proposals = proposals[np.abs(proposals).sum(1) > 0]
    nz = np.abs(gt_boxes).sum(1) > 0
    gt_boxes, gt_class_ids, gt_masks = gt_boxes[nz], gt_class_ids[nz], gt_masks[..., nz]
    crowd = gt_class_ids < 0
    crowd_boxes = gt_boxes[crowd]
    keep = gt_class_ids > 0
    gt_boxes, gt_class_ids, gt_masks = gt_boxes[keep], gt_class_ids[keep], gt_masks[..., keep]
    overlaps = _np_iou(proposals, gt_boxes) if len(gt_boxes) else np.zeros((len(proposals), 0))
    crowd_max = _np_iou(proposals, crowd_boxes).max(1) if len(crowd_boxes) else np.full(len(proposals), -np.inf)
    roi_max = overlaps.max(1) if overlaps.shape[1] else np.full(len(proposals), -np.inf)
    pos = np.where(roi_max >= 0.5)[0][:int(cfg.TRAIN_ROIS_PER_IMAGE * cfg.ROI_POSITIVE_RATIO)]
    n_neg = int(np.float32(1.0 / cfg.ROI_POSITIVE_RATIO) * np.float32(len(pos))) - len(pos)
    neg = np.where((roi_max < 0.5) & (crowd_max < 0.001))[0][:n_neg]
    assign = overlaps[pos].argmax(1) if len(pos) else np.zeros(0, int)
    pos_rois, gt = proposals[pos], gt_boxes[assign]
    deltas = ops.convert_to_numpy(box_refinement_graph(pos_rois, gt)) / cfg.BBOX_STD_DEV.astype(np.float32)
    masks = []
    for roi, g, a in zip(pos_rois, gt, assign):
        box = roi
        if cfg.USE_MINI_MASK:
            h, w = g[2] - g[0], g[3] - g[1]
            box = np.array([(roi[0] - g[0]) / h, (roi[1] - g[1]) / w, (roi[2] - g[0]) / h, (roi[3] - g[1]) / w],
                           np.float32)
        masks.append(np.round(_np_crop_and_resize(gt_masks[..., a].astype(np.float32), box, cfg.MASK_SHAPE)))
    t = cfg.TRAIN_ROIS_PER_IMAGE
    rois = np.zeros((t, 4), np.float32)
    rois[:len(pos) + len(neg)] = np.concatenate([pos_rois, proposals[neg]])
    class_ids = np.zeros(t, np.int32)
    class_ids[:len(pos)] = gt_class_ids[assign]
    out_deltas = np.zeros((t, 4), np.float32)
    out_deltas[:len(pos)] = deltas
    out_masks = np.zeros((t,) + tuple(cfg.MASK_SHAPE), np.float32)
    if masks:
        out_masks[:len(pos)] = masks
    return rois, class_ids, out_deltas, out_masks


def _case(seed, num_proposals=30, num_gt=4, mask_size=16, crowd=False):
    rng = np.random.default_rng(seed)
    gt_boxes = np.zeros((num_gt, 4), np.float32)
    gt_class_ids = np.zeros(num_gt, np.int32)
    gt_masks = np.zeros((mask_size, mask_size, num_gt), bool)
    n_real = num_gt - 1  # last row is zero padding
    for i in range(n_real):
        y, x = rng.uniform(0.05, 0.5, 2)
        h, w = rng.uniform(0.2, 0.45, 2)
        gt_boxes[i] = [y, x, y + h, x + w]
        gt_class_ids[i] = rng.integers(1, 4)
        m = rng.random((mask_size, mask_size)) > 0.4
        gt_masks[..., i] = m
    if crowd:
        gt_class_ids[n_real - 1] = -1
    proposals = np.zeros((num_proposals, 4), np.float32)
    for i in range(num_proposals - 3):  # last 3 rows zero padding
        if i % 2 == 0:  # jitter a GT box -> mostly positives
            g = gt_boxes[i % n_real]
            proposals[i] = g + rng.normal(0, 0.03, 4).astype(np.float32)
        else:
            y, x = rng.uniform(0, 0.7, 2)
            h, w = rng.uniform(0.05, 0.3, 2)
            proposals[i] = [y, x, y + h, x + w]
    return proposals, gt_class_ids, gt_boxes, gt_masks


@pytest.mark.parametrize("use_mini_mask,crowd", [(True, False), (False, False), (True, True)])
def test_matches_numpy_transcription(use_mini_mask, crowd):
    cfg = _config(use_mini_mask)
    cases = [_case(s, crowd=crowd) for s in (0, 1)]
    batch = [np.stack(x) for x in zip(*cases)]
    layer = DetectionTargetLayer(cfg, shuffle=False)
    rois, class_ids, deltas, masks = (ops.convert_to_numpy(x) for x in layer(batch))
    assert rois.shape == (2, 12, 4) and class_ids.shape == (2, 12)
    assert deltas.shape == (2, 12, 4) and masks.shape == (2, 12, 8, 8)
    for b in range(2):
        e_rois, e_ids, e_deltas, e_masks = _np_targets(*[x[b] for x in batch], cfg)
        assert (e_ids > 0).sum() > 0, "the case should have positives"
        np.testing.assert_allclose(rois[b], e_rois, atol=1e-7)
        np.testing.assert_array_equal(class_ids[b], e_ids)
        np.testing.assert_allclose(deltas[b], e_deltas, atol=1e-5)
        # Mask samples exactly at 0.5 may round either way under float noise.
        assert np.mean(masks[b] != e_masks) < 0.01


def test_crowd_boxes_are_never_targets_and_block_negatives():
    cfg = _config(rois=20)
    proposals, gt_class_ids, gt_boxes, gt_masks = _case(3, crowd=True)
    crowd_box = gt_boxes[gt_class_ids < 0][0]
    proposals[-4] = crowd_box  # a proposal exactly on the crowd box
    layer = DetectionTargetLayer(cfg, shuffle=False)
    rois, class_ids, _, _ = (ops.convert_to_numpy(x) for x in layer(
        [proposals[None], gt_class_ids[None], gt_boxes[None], gt_masks[None]]))
    assert (class_ids >= 0).all()
    assert not np.any(np.all(np.isclose(rois[0], crowd_box), axis=1))


def test_no_positive_means_no_rois():
    cfg = _config()
    proposals = np.array([[[0.7, 0.7, 0.8, 0.8], [0.8, 0.1, 0.9, 0.2]]], np.float32)
    gt_boxes = np.array([[[0.1, 0.1, 0.3, 0.3]]], np.float32)
    out = DetectionTargetLayer(cfg)([proposals, np.array([[1]], np.int32), gt_boxes,
                                     np.ones((1, 16, 16, 1), bool)])
    for x in out:
        assert not np.any(ops.convert_to_numpy(x))


def test_shuffle_picks_random_subset_of_positives():
    cfg = _config(rois=6, ratio=0.5)  # 3 positives of many
    gt_boxes = np.array([[[0.2, 0.2, 0.6, 0.6]]], np.float32)
    jitter = np.linspace(-0.02, 0.02, 20, dtype=np.float32)[:, None]
    proposals = np.concatenate([gt_boxes[0] + jitter, np.tile([[0.7, 0.7, 0.9, 0.9]], (10, 1))])[None]
    layer = DetectionTargetLayer(cfg, seed=1)
    seen = set()
    for _ in range(4):
        rois, class_ids, _, _ = layer([proposals.astype(np.float32), np.array([[2]], np.int32), gt_boxes,
                                       np.ones((1, 16, 16, 1), bool)])
        rois, class_ids = ops.convert_to_numpy(rois), ops.convert_to_numpy(class_ids)
        np.testing.assert_array_equal(class_ids[0], [2, 2, 2, 0, 0, 0])
        seen.add(tuple(np.round(rois[0, :3, 0], 5)))
    assert len(seen) > 1


def test_box_refinement_graph_matches_reference(mrcnn_reference_dir):
    d = np.load(mrcnn_reference_dir / "mrcnn_layer_cases.npz")
    got = ops.convert_to_numpy(box_refinement_graph(d["deltas__boxes"], d["deltas__apply_graph"]))
    np.testing.assert_allclose(got, d["deltas__box_refinement_graph"], atol=1e-6)


def test_overlaps_graph():
    a = np.array([[0, 0, 2, 2], [0, 0, 0, 0]], np.float32)
    b = np.array([[1, 1, 3, 3], [0, 0, 2, 2]], np.float32)
    np.testing.assert_allclose(ops.convert_to_numpy(overlaps_graph(a, b)), [[1 / 7, 1.0], [0.0, 0.0]], atol=1e-7)
