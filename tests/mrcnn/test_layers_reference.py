"""Graph layers against the golden layer cases (mrcnn_layer_cases.npz) and small hand cases."""
import json

import numpy as np
import pytest
from keras import ops

from mrcnn.detection import DetectionLayer
from mrcnn.ops import crop_and_resize, non_max_suppression_padded
from mrcnn.proposal import (ProposalLayer, apply_box_deltas_graph, clip_boxes_graph,
                            denorm_boxes_graph, norm_boxes_graph)
from mrcnn.roi_align import PyramidROIAlign, roi_pyramid_levels


@pytest.fixture(scope="module")
def cases(mrcnn_reference_dir):
    return dict(np.load(mrcnn_reference_dir / "mrcnn_layer_cases.npz"))


def np_(x):
    return np.asarray(ops.convert_to_numpy(x))


@pytest.mark.jax
def test_box_coding_graph(cases):
    d = cases
    np.testing.assert_allclose(np_(apply_box_deltas_graph(d["deltas__boxes"], d["deltas__deltas"])),
                               d["deltas__apply_graph"], atol=1e-7, rtol=0)
    np.testing.assert_allclose(np_(clip_boxes_graph(d["deltas__apply_graph"], d["deltas__clip_window"])),
                               d["deltas__clip_graph"], atol=1e-7, rtol=0)
    np.testing.assert_allclose(np_(norm_boxes_graph(d["normbox__boxes"], d["normbox__shape"])),
                               d["normbox__norm_graph"], atol=1e-7, rtol=0)
    np.testing.assert_array_equal(np_(denorm_boxes_graph(d["normbox__float_boxes"], d["normbox__shape"])),
                                  d["normbox__denorm_graph_of_float"])


@pytest.mark.jax
def test_proposal_layer(cases):
    cfg = json.loads(str(cases["proposal__config"]))
    layer = ProposalLayer(cfg["proposal_count"], cfg["nms_threshold"],
                          rpn_bbox_std_dev=cfg["RPN_BBOX_STD_DEV"], pre_nms_limit=cfg["PRE_NMS_LIMIT"])
    out = np_(layer([cases["proposal__rpn_probs"], cases["proposal__rpn_bbox"], cases["proposal__anchors"]]))
    assert out.shape == cases["proposal__output"].shape
    np.testing.assert_allclose(out, cases["proposal__output"], atol=1e-6, rtol=0)


def _roialign_inputs(d):
    return [d["roialign__boxes"], d["roialign__image_meta"]] + [d[f"roialign__P{i}"] for i in range(2, 6)]


def test_roi_levels(cases):
    levels = np_(roi_pyramid_levels(cases["roialign__boxes"], np.float32([512, 512, 3])))
    np.testing.assert_array_equal(levels, cases["roialign__levels_numpy_formula"])


def test_pyramid_roi_align(cases):
    # TF only: XLA (JAX) may fuse the sample-coordinate arithmetic into FMAs, which moves the
    # y2 = 1.0 samples across the extrapolation edge (README "Sensitivity").
    out7 = np_(PyramidROIAlign([7, 7])(_roialign_inputs(cases)))
    np.testing.assert_allclose(out7, cases["roialign__output"], atol=1e-5, rtol=0)
    out14 = np_(PyramidROIAlign([14, 14])(_roialign_inputs(cases)))
    np.testing.assert_allclose(out14, cases["roialign__output_14"], atol=1e-5, rtol=0)


@pytest.mark.jax
def test_detection_layer(cases):
    cfg = json.loads(str(cases["detection__config"]))
    layer = DetectionLayer(bbox_std_dev=cfg["BBOX_STD_DEV"], min_confidence=cfg["DETECTION_MIN_CONFIDENCE"],
                           nms_threshold=cfg["DETECTION_NMS_THRESHOLD"],
                           max_instances=cfg["DETECTION_MAX_INSTANCES"])
    out = np_(layer([cases["detection__rois"], cases["detection__mrcnn_class"],
                     cases["detection__mrcnn_bbox"], cases["detection__image_meta"]]))
    ref = cases["detection__output"]
    np.testing.assert_array_equal(out[..., 4], ref[..., 4])  # same selection and order
    np.testing.assert_allclose(out, ref, atol=1e-6, rtol=0)


# --------------------------------------------------------------------------------------------
# hand cases
# --------------------------------------------------------------------------------------------
def _greedy_nms_numpy(boxes, scores, max_out, thr):
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    keep = []

    def iou(a, b):
        ya1, ya2 = sorted([a[0], a[2]]); xa1, xa2 = sorted([a[1], a[3]])
        yb1, yb2 = sorted([b[0], b[2]]); xb1, xb2 = sorted([b[1], b[3]])
        aa, ab = (ya2 - ya1) * (xa2 - xa1), (yb2 - yb1) * (xb2 - xb1)
        if aa <= 0 or ab <= 0:
            return 0.0
        inter = max(min(ya2, yb2) - max(ya1, yb1), 0) * max(min(xa2, xb2) - max(xa1, xb1), 0)
        return inter / (aa + ab - inter)

    for i in order:
        if all(iou(boxes[i], boxes[k]) <= thr for k in keep):
            keep.append(i)
        if len(keep) == max_out:
            break
    return keep


@pytest.mark.jax
@pytest.mark.parametrize("n,block", [(37, 8), (300, 64), (700, 256)])
def test_nms_matches_greedy(n, block):
    rng = np.random.default_rng(n)
    centers = rng.uniform(0, 1, (n, 2))
    sizes = rng.uniform(0.02, 0.3, (n, 2))
    boxes = np.concatenate([centers - sizes / 2, centers + sizes / 2], 1).astype(np.float32)
    boxes[::11, 2] = boxes[::11, 0]  # zero-area boxes never suppress
    scores = rng.integers(0, 20, n).astype(np.float32) / 20  # many ties -> lower index first
    max_out = n // 3
    idx, filled = non_max_suppression_padded(boxes[None], scores[None], max_out, 0.5,
                                             block_size=block)
    expected = _greedy_nms_numpy(boxes, scores, max_out, 0.5)
    got = np_(idx)[0][np_(filled)[0]]
    assert list(got) == expected
    assert np_(idx).shape == (1, max_out)


@pytest.mark.jax
def test_crop_and_resize_extrapolation():
    image = np.arange(5 * 6, dtype=np.float32).reshape(1, 5, 6, 1)
    boxes = np.float32([[[0, 0, 1, 1], [0.25, 0.2, 0.75, 0.8], [-0.5, 0.5, 0.5, 1.5]]])
    out = np_(crop_and_resize(image, boxes, (3, 4)))[0, ..., 0]
    # full box: exact corners; samples outside [0, H-1] give 0
    assert out[0, 0, 0] == 0 and out[0, 2, 3] == 29
    ys = 0.25 * 4 + np.arange(3) * 0.5 * 4 / 2
    xs = 0.2 * 5 + np.arange(4) * 0.6 * 5 / 3
    np.testing.assert_allclose(out[1], ys[:, None] * 6 + xs[None, :], atol=1e-5)
    assert out[2, 0, 0] == 0 and out[2, 0, -1] == 0  # y < 0 and x > W-1
