"""mrcnn.transform (numpy pre/post-processing) against the three full-model reference cases."""
import hashlib

import numpy as np
import pytest

from mrcnn import transform, utils
from mrcnn.config import Config


@pytest.fixture(scope="module")
def mrcnn_layer_cases(mrcnn_reference_dir):
    return np.load(mrcnn_reference_dir / "mrcnn_layer_cases.npz")


CASES = ["astronaut", "skater", "street"]


@pytest.fixture(scope="module")
def coco_config():
    return Config(NAME="coco", NUM_CLASSES=81, IMAGES_PER_GPU=1)


@pytest.fixture(scope="module", params=CASES)
def case(request, mrcnn_reference_dir):
    return np.load(mrcnn_reference_dir / f"mrcnn_case_{request.param}.npz")


def test_resize_window_scale_padding(case, coco_config):
    c = coco_config
    image, window, scale, padding, _ = utils.resize_image(case["image"], min_dim=c.IMAGE_MIN_DIM, max_dim=c.IMAGE_MAX_DIM,
                                                          min_scale=c.IMAGE_MIN_SCALE, mode=c.IMAGE_RESIZE_MODE)
    np.testing.assert_array_equal(image, case["resized_image"])
    assert list(window) == case["window"].tolist()
    assert scale == float(case["scale"])
    np.testing.assert_array_equal(padding, case["padding"])


def test_mold_inputs_meta_and_molded_sha(case, coco_config):
    molded, metas, windows = transform.mold_inputs([case["image"]], coco_config)
    assert molded.shape == (1, 1024, 1024, 3) and molded.dtype == np.float64  # float64 subtraction
    assert hashlib.sha256(molded.astype(np.float32).tobytes()).hexdigest() == str(case["molded_image_sha256"])
    assert metas.dtype == np.float64 and metas.shape == (1, coco_config.IMAGE_META_SIZE)
    np.testing.assert_array_equal(metas[0], case["image_meta"])
    np.testing.assert_array_equal(windows[0], case["window"])
    # README: rebuilding the input from resized_image gives the same bytes.
    rebuilt = transform.mold_image(case["resized_image"], coco_config)[None].astype(np.float32)
    np.testing.assert_array_equal(rebuilt, molded.astype(np.float32))


def test_get_anchors_sha_and_cache(case, coco_config):
    anchors = transform.get_anchors(coco_config, (1024, 1024, 3))
    assert anchors.dtype == np.float32 and anchors.shape == (int(case["anchors_count"]), 4)
    assert hashlib.sha256(anchors.tobytes()).hexdigest() == str(case["anchors_sha256"])
    np.testing.assert_array_equal(anchors[:8], case["anchors_first"])
    np.testing.assert_array_equal(anchors[-8:], case["anchors_last"])
    assert transform.get_anchors(coco_config, np.array([1024, 1024, 3])) is anchors
    assert not anchors.flags.writeable


def _reference_masks(case):
    h, w, n = case["result_masks_shape"].tolist()
    return np.unpackbits(case["result_masks_packed"], count=h * w * n).reshape(h, w, n).astype(bool)


def test_unmold_detections_matches_detect_results(case, coco_config):
    detections = case["detections"][0]
    n = int(case["n_detections"])
    # Only the detected class of each detection matters: build a [100, 28, 28, 81] array from
    # mrcnn_mask_det (plus the stored full first three rows).
    mrcnn_mask = np.zeros((detections.shape[0], 28, 28, coco_config.NUM_CLASSES), np.float32)
    mrcnn_mask[np.arange(n), :, :, detections[:n, 4].astype(int)] = case["mrcnn_mask_det"]
    mrcnn_mask[:3] = case["mrcnn_mask_first"]
    _, _, windows = transform.mold_inputs([case["image"]], coco_config)
    boxes, class_ids, scores, masks = transform.unmold_detections(
        detections, mrcnn_mask, case["image"].shape, (1024, 1024, 3), windows[0])
    assert boxes.dtype == np.int32 and class_ids.dtype == np.int32 and scores.dtype == np.float32
    assert masks.dtype == bool and masks.shape == tuple(case["result_masks_shape"].tolist())
    np.testing.assert_array_equal(boxes, case["result_rois"])
    np.testing.assert_array_equal(class_ids, case["result_class_ids"])
    np.testing.assert_allclose(scores, case["result_scores"], atol=1e-4)
    reference = _reference_masks(case)
    for i in range(n):
        union = (masks[..., i] | reference[..., i]).sum()
        iou = 1.0 if union == 0 else (masks[..., i] & reference[..., i]).sum() / union
        assert iou >= 0.99, (i, iou)


def test_unmold_detections_drops_zero_area_and_handles_empty():
    detections = np.zeros((4, 6), np.float32)
    detections[0] = [0.1, 0.1, 0.5, 0.5, 1, 0.9]
    # Normalized y2 one pixel step below y1: zero height after denorm_boxes' +1 -> dropped.
    detections[1] = [0.2, 0.2, 0.2 - 1 / 63, 0.6, 2, 0.8]
    mrcnn_mask = np.ones((4, 28, 28, 3), np.float32)
    boxes, class_ids, scores, masks = transform.unmold_detections(detections, mrcnn_mask, (64, 64, 3), (64, 64, 3),
                                                                  np.array([0, 0, 64, 64]))
    assert class_ids.tolist() == [1] and boxes.shape == (1, 4) and masks.shape == (64, 64, 1)
    assert masks[..., 0].sum() == (boxes[0, 2] - boxes[0, 0]) * (boxes[0, 3] - boxes[0, 1])
    boxes, class_ids, scores, masks = transform.unmold_detections(np.zeros((4, 6), np.float32), mrcnn_mask,
                                                                  (50, 60, 3), (64, 64, 3), np.array([0, 0, 64, 64]))
    assert boxes.shape == (0, 4) and masks.shape == (50, 60, 0) and masks.dtype == bool


def test_meta_compose_parse_round_trip(mrcnn_layer_cases):
    active = [i % 2 for i in range(81)]
    meta = transform.compose_image_meta(7, (448, 640, 3), (1024, 1024, 3), (153, 0, 870, 1024), 1.6, active)
    np.testing.assert_array_equal(meta, mrcnn_layer_cases["meta__example"])
    parsed = transform.parse_image_meta(np.stack([meta, meta]))
    assert parsed["image_id"].tolist() == [7, 7]
    assert parsed["original_image_shape"][0].tolist() == [448, 640, 3]
    assert parsed["image_shape"][0].tolist() == [1024, 1024, 3]
    assert parsed["window"][1].tolist() == [153, 0, 870, 1024]
    assert parsed["scale"][0] == np.float32(1.6)
    assert parsed["active_class_ids"][0].tolist() == active
    with pytest.raises(ValueError, match="parse_image_meta"):
        transform.parse_image_meta(meta)


def test_mold_inputs_many_images_and_unmold_image():
    config = Config(NUM_CLASSES=3, IMAGE_MIN_DIM=64, IMAGE_MAX_DIM=64)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in [(32, 48), (40, 30), (64, 64)]]
    molded, metas, windows = transform.mold_inputs(images, config)
    assert molded.shape == (3, 64, 64, 3) and metas.shape == (3, 15) and windows.shape == (3, 4)
    y1, x1, y2, x2 = windows[2]
    np.testing.assert_array_equal(transform.unmold_image(molded[2], config), images[2])
    with pytest.raises(ValueError, match=r"image 0 has shape \(8, 8, 5\); expected HxWx3 RGB"):
        transform.mold_inputs([np.zeros((8, 8, 5), np.uint8)], config)
    # grayscale and RGBA are converted, as detect() does (the one image check)
    gray, rgba = rng.integers(0, 256, (64, 64), dtype=np.uint8), rng.integers(0, 256, (64, 64, 4), dtype=np.uint8)
    converted, _, _ = transform.mold_inputs([gray, rgba], config)
    np.testing.assert_array_equal(transform.unmold_image(converted[0], config), np.stack([gray] * 3, -1))
    np.testing.assert_array_equal(transform.unmold_image(converted[1], config), rgba[..., :3])
    with pytest.raises(ValueError, match="no images"):
        transform.mold_inputs([], config)


def test_compute_backbone_shapes():
    config = Config()
    assert transform.compute_backbone_shapes(config, (128, 192, 3)).tolist() == [[32, 48], [16, 24], [8, 12], [4, 6], [2, 3]]
    assert transform.compute_backbone_shapes(config, (100, 100, 3))[-1].tolist() == [2, 2]  # ceil
    custom = Config(BACKBONE=lambda *a, **k: None, COMPUTE_BACKBONE_SHAPE=lambda shape: [[7, 7]])
    assert transform.compute_backbone_shapes(custom, (64, 64, 3)) == [[7, 7]]
    with pytest.raises(ValueError, match="BACKBONE"):
        transform.compute_backbone_shapes(Config(BACKBONE="vgg"), (64, 64, 3))
