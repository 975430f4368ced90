"""build_rpn_targets against Matterport's outputs stored in mrcnn_layer_cases.npz."""
import types

import numpy as np
import pytest

from mrcnn.data_generator import build_rpn_targets

pytestmark = pytest.mark.jax  # pure numpy: runs identically under both backends


def _case(mrcnn_reference_dir, tag):
    d = np.load(mrcnn_reference_dir / "mrcnn_layer_cases.npz")
    p = f"rpntargets__{tag}__"
    cfg = types.SimpleNamespace(RPN_TRAIN_ANCHORS_PER_IMAGE=int(d[p + "rpn_train_anchors_per_image"]),
                                RPN_BBOX_STD_DEV=np.array([0.1, 0.1, 0.2, 0.2]))
    args = (tuple(d[p + "image_shape"]), d[p + "anchors"], d[p + "gt_class_ids"], d[p + "gt_boxes"], cfg)
    return args, d[p + "rpn_match"], d[p + "rpn_bbox"]


@pytest.mark.parametrize("tag", ["nosub", "crowd"])
def test_deterministic_cases_exact(mrcnn_reference_dir, tag):
    args, ref_match, ref_bbox = _case(mrcnn_reference_dir, tag)
    rpn_match, rpn_bbox = build_rpn_targets(*args)
    assert rpn_match.dtype == np.int32 and rpn_bbox.dtype == np.float64
    np.testing.assert_array_equal(rpn_match, ref_match)
    np.testing.assert_array_equal(rpn_bbox, ref_bbox)


def test_crowd_case_has_crowd_and_neutral_anchors(mrcnn_reference_dir):
    args, ref_match, _ = _case(mrcnn_reference_dir, "crowd")
    assert (args[2] < 0).any()
    rpn_match, _ = build_rpn_targets(*args)
    # Anchors touching the crowd box are not negatives.
    assert (rpn_match == 0).sum() > 0


def test_subsampled_case_with_legacy_global_rng(mrcnn_reference_dir):
    args, ref_match, ref_bbox = _case(mrcnn_reference_dir, "sub256_seed0")
    state = np.random.get_state()
    try:
        np.random.seed(0)
        rpn_match, rpn_bbox = build_rpn_targets(*args)
    finally:
        np.random.set_state(state)
    np.testing.assert_array_equal(rpn_match, ref_match)
    np.testing.assert_array_equal(rpn_bbox, ref_bbox)
    assert [(rpn_match == v).sum() for v in (1, -1, 0)] == [3, 253, 3836]


def test_subsampled_counts_without_seed(mrcnn_reference_dir):
    args, ref_match, ref_bbox = _case(mrcnn_reference_dir, "sub256_seed0")
    rpn_match, rpn_bbox = build_rpn_targets(*args)
    assert [(rpn_match == v).sum() for v in (1, -1, 0)] == [3, 253, 3836]
    np.testing.assert_array_equal(np.where(rpn_match == 1)[0], np.where(ref_match == 1)[0])
    np.testing.assert_array_equal(rpn_bbox[:3], ref_bbox[:3])
