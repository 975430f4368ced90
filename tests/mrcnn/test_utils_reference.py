"""mrcnn.utils against the golden layer cases (exact unless the README says otherwise)."""
import json

import numpy as np
import pytest

from mrcnn import utils


@pytest.fixture(scope="module")
def mrcnn_layer_cases(mrcnn_reference_dir):
    return np.load(mrcnn_reference_dir / "mrcnn_layer_cases.npz")


@pytest.mark.parametrize("tag", ["square_down", "square_up", "pad64"])
def test_resize_image_and_mask(mrcnn_layer_cases, tag):
    d = mrcnn_layer_cases
    args = json.loads(str(d[f"resize__{tag}__args"]))
    image, window, scale, padding, crop = utils.resize_image(d["resize__image"], **args)
    assert image.dtype == np.uint8 and crop is None
    np.testing.assert_array_equal(image, d[f"resize__{tag}__image"])
    assert tuple(window) == tuple(d[f"resize__{tag}__window"].tolist())
    assert scale == float(d[f"resize__{tag}__scale"])
    np.testing.assert_array_equal(padding, d[f"resize__{tag}__padding"])
    mask = utils.resize_mask(d["resize__mask"], scale, padding)
    assert mask.dtype == bool
    np.testing.assert_array_equal(mask, d[f"resize__{tag}__mask"])


def test_resize_image_none_and_crop_modes():
    image = np.arange(40 * 60 * 3, dtype=np.uint8).reshape(40, 60, 3)
    out, window, scale, padding, crop = utils.resize_image(image, mode="none")
    assert out is image and window == (0, 0, 40, 60) and scale == 1 and crop is None
    import random
    random.seed(3)
    out, window, scale, padding, crop = utils.resize_image(image, min_dim=32, mode="crop")
    assert out.shape == (32, 32, 3) and window == (0, 0, 32, 32) and crop[2:] == (32, 32)
    mask = np.ones((40, 60, 1), bool)
    assert utils.resize_mask(mask, scale, padding, crop).shape == (32, 32, 1)
    with pytest.raises(ValueError, match="not supported"):
        utils.resize_image(image, mode="squash")
    with pytest.raises(ValueError, match="multiple of 64"):
        utils.resize_image(image, min_dim=100, mode="pad64")


def test_resize_casts_bool_to_float64():
    mask = np.zeros((4, 4), bool)
    mask[1:3, 1:3] = True
    out = utils.resize(mask, (8, 8))
    assert out.dtype == np.float64 and out.max() == 1.0


def test_norm_denorm_boxes(mrcnn_layer_cases):
    d = mrcnn_layer_cases
    shape = tuple(d["normbox__shape"])
    norm = utils.norm_boxes(d["normbox__boxes"], shape)
    assert norm.dtype == np.float32
    np.testing.assert_array_equal(norm, d["normbox__norm"])
    denorm = utils.denorm_boxes(norm, shape)
    assert denorm.dtype == np.int32
    np.testing.assert_array_equal(denorm, d["normbox__denorm_of_norm"])
    np.testing.assert_array_equal(utils.denorm_boxes(d["normbox__float_boxes"], shape), d["normbox__denorm_of_float"])


def test_apply_box_deltas_and_refinement(mrcnn_layer_cases):
    d = mrcnn_layer_cases
    applied = utils.apply_box_deltas(d["deltas__boxes"], d["deltas__deltas"])
    assert applied.dtype == np.float32
    np.testing.assert_array_equal(applied, d["deltas__apply_numpy"])
    refined = utils.box_refinement(d["deltas__boxes"], applied)
    assert refined.dtype == np.float32
    np.testing.assert_array_equal(refined, d["deltas__box_refinement_numpy"])


def test_mini_mask_round_trip(mrcnn_layer_cases):
    d = mrcnn_layer_cases
    bbox = utils.extract_bboxes(d["minimask__mask"])
    assert bbox.dtype == np.int32
    np.testing.assert_array_equal(bbox, d["minimask__bbox"])
    mini = utils.minimize_mask(bbox, d["minimask__mask"], tuple(d["minimask__mini_shape"]))
    np.testing.assert_array_equal(mini, d["minimask__mini"])
    expanded = utils.expand_mask(bbox, mini, d["minimask__mask"].shape)
    np.testing.assert_array_equal(expanded, d["minimask__expanded"])
    assert (expanded != d["minimask__mask"]).sum(axis=(0, 1)).tolist() == [0, 9]


def test_minimize_mask_zero_area_box_is_a_clear_error():
    with pytest.raises(ValueError, match="zero area"):
        utils.minimize_mask(np.array([[2, 2, 2, 5]]), np.ones((8, 8, 1), bool), (4, 4))


def test_unmold_mask(mrcnn_layer_cases):
    d = mrcnn_layer_cases
    full = utils.unmold_mask(d["unmold__mask28"], d["unmold__bbox"], tuple(d["unmold__image_shape"]))
    assert full.dtype == bool
    np.testing.assert_array_equal(full, d["unmold__full"])


@pytest.mark.parametrize("tag,threshold", [("iou50", 0.5), ("iou75", 0.75)])
def test_compute_ap_and_matches(mrcnn_layer_cases, tag, threshold):
    d = mrcnn_layer_cases
    args = [d[f"ap__{k}"] for k in ("gt_boxes", "gt_class_ids", "gt_masks", "pred_boxes", "pred_class_ids",
                                     "pred_scores", "pred_masks")]
    gt_match, pred_match, overlaps = utils.compute_matches(*args, iou_threshold=threshold)
    np.testing.assert_array_equal(gt_match, d[f"ap__{tag}__gt_match"])
    np.testing.assert_array_equal(pred_match, d[f"ap__{tag}__pred_match"])
    mAP, precisions, recalls, overlaps = utils.compute_ap(*args, iou_threshold=threshold)
    assert mAP == float(d[f"ap__{tag}__mAP"])
    np.testing.assert_array_equal(precisions, d[f"ap__{tag}__precisions"])
    np.testing.assert_array_equal(recalls, d[f"ap__{tag}__recalls"])
    assert overlaps.dtype == np.float32
    np.testing.assert_array_equal(overlaps, d[f"ap__{tag}__overlaps"])


def test_compute_ap_range_is_the_mean(mrcnn_layer_cases):
    d = mrcnn_layer_cases
    args = [d[f"ap__{k}"] for k in ("gt_boxes", "gt_class_ids", "gt_masks", "pred_boxes", "pred_class_ids",
                                     "pred_scores", "pred_masks")]
    value = utils.compute_ap_range(*args, iou_thresholds=[0.5, 0.75], verbose=0)
    assert value == pytest.approx((float(d["ap__iou50__mAP"]) + float(d["ap__iou75__mAP"])) / 2)
    default = utils.compute_ap_range(*args, verbose=0)
    expected = np.mean([utils.compute_ap(*args, iou_threshold=t)[0] for t in np.arange(0.5, 1.0, 0.05)])
    assert default == expected


def _masks_from_boxes(boxes, shape):
    masks = np.zeros(shape + (len(boxes),), bool)
    for i, (y1, x1, y2, x2) in enumerate(boxes):
        masks[y1:y2, x1:x2, i] = True
    return masks


def test_compute_matches_rematch_bug_kept_by_default_and_fixable():
    # Two predictions of the same class on one GT: the original lets the second one match the
    # GT again when the first match was prediction 0 (gt_match == 0 is not "> 0").
    gt_boxes = np.array([[0, 0, 10, 10]])
    pred_boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 9]])
    args = (gt_boxes, np.array([1]), _masks_from_boxes(gt_boxes, (16, 16)), pred_boxes, np.array([1, 1]),
            np.array([0.9, 0.8]), _masks_from_boxes(pred_boxes, (16, 16)))
    gt_match, pred_match, _ = utils.compute_matches(*args)
    assert pred_match.tolist() == [0, 0] and gt_match.tolist() == [1]
    gt_match, pred_match, _ = utils.compute_matches(*args, fix_rematch=True)
    assert pred_match.tolist() == [0, -1] and gt_match.tolist() == [0]


def test_overlaps_iou_nms_recall():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 5], [20, 20, 30, 30]], dtype=np.float32)
    overlaps = utils.compute_overlaps(boxes, boxes)
    np.testing.assert_allclose(overlaps, [[1, .5, 0], [.5, 1, 0], [0, 0, 1]])
    keep = utils.non_max_suppression(boxes, np.array([0.9, 0.8, 0.7]), 0.4)
    assert keep.dtype == np.int32 and keep.tolist() == [0, 2]
    assert utils.non_max_suppression(boxes, np.array([0.9, 0.8, 0.7]), 0.5).tolist() == [0, 1, 2]
    recall, positive = utils.compute_recall(boxes[:2], boxes, 0.5)
    assert recall == pytest.approx(2 / 3) and positive.tolist() == [0, 1]
    masks = _masks_from_boxes(boxes.astype(int), (32, 32))
    np.testing.assert_allclose(utils.compute_overlaps_masks(masks, masks), overlaps)
    assert utils.compute_overlaps_masks(masks, masks[..., :0]).shape == (3, 0)
    assert utils.trim_zeros(np.array([[1, 2], [0, 0]])).tolist() == [[1, 2]]
    with pytest.raises(ValueError):
        utils.non_max_suppression(np.zeros((0, 4)), np.zeros(0), 0.5)


def test_download_trained_weights_offline_error(tmp_path):
    target = tmp_path / "w.h5"
    with pytest.raises(OSError, match="could not download"):
        utils.download_trained_weights(str(target), verbose=0, url="http://127.0.0.1:9/none.h5", timeout=2)
    assert not target.exists() and list(tmp_path.iterdir()) == []
