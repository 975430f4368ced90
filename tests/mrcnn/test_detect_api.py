"""MaskRCNN.detect() API on a tiny random model (callable backbone) and the on-device mask paste."""
import math

import numpy as np
import pytest


def tiny_config(**overrides):
    from keras import layers as KL

    from mrcnn.config import Config

    def tiny_backbone(input_image, stage5=True, train_bn=False):
        x, maps = input_image, []
        for i, ch in enumerate([8, 16, 16, 32, 32]):  # strides 2, 4, 8, 16, 32 (C1..C5)
            x = KL.Conv2D(ch, 3, strides=2, padding="same", activation="relu", name=f"tiny_c{i + 1}")(x)
            maps.append(x)
        return maps

    def shapes(image_shape):
        return np.array([[math.ceil(image_shape[0] / s), math.ceil(image_shape[1] / s)]
                         for s in (4, 8, 16, 32, 64)])

    fields = dict(NAME="tiny", NUM_CLASSES=4, IMAGES_PER_GPU=2, GPU_COUNT=1, IMAGE_MIN_DIM=64,
                  IMAGE_MAX_DIM=64, BACKBONE=tiny_backbone, COMPUTE_BACKBONE_SHAPE=shapes,
                  TOP_DOWN_PYRAMID_SIZE=32, FPN_CLASSIF_FC_LAYERS_SIZE=32,
                  RPN_ANCHOR_SCALES=(8, 16, 32, 64, 128), PRE_NMS_LIMIT=200,
                  POST_NMS_ROIS_INFERENCE=40, DETECTION_MIN_CONFIDENCE=0.0,
                  DETECTION_MAX_INSTANCES=10)
    fields.update(overrides)
    return Config(**fields)


@pytest.fixture(scope="module")
def tiny_model():
    import keras

    from mrcnn.model import MaskRCNN
    keras.utils.set_random_seed(1)
    return MaskRCNN("inference", tiny_config(), model_dir=None)


def _images():
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (50, 80, 3), dtype=np.uint8),
            rng.integers(0, 255, (64, 64), dtype=np.uint8),       # grayscale -> RGB
            rng.integers(0, 255, (70, 40, 4), dtype=np.uint8)]    # RGBA -> RGB


def _check_result(r, shape):
    n = len(r["class_ids"])
    assert r["rois"].dtype == np.int32 and r["rois"].shape == (n, 4)
    assert r["class_ids"].dtype == np.int32 and r["scores"].dtype == np.float32
    assert r["masks"].dtype == bool and r["masks"].shape == shape[:2] + (n,)
    assert np.all(r["class_ids"] > 0)
    assert np.all(np.diff(r["scores"]) <= 0)


@pytest.mark.jax
def test_detect_any_number_and_size(tiny_model):
    images = _images()
    results = tiny_model.detect(images)  # 3 images with BATCH_SIZE 2: last chunk padded
    assert len(results) == 3
    for r, im in zip(results, images):
        _check_result(r, im.shape)
    assert sum(len(r["class_ids"]) for r in results) > 0
    # padding and batching do not change a result
    alone = tiny_model.detect([images[2]])[0]
    np.testing.assert_array_equal(alone["rois"], results[2]["rois"])
    np.testing.assert_array_equal(alone["class_ids"], results[2]["class_ids"])
    np.testing.assert_allclose(alone["scores"], results[2]["scores"], atol=1e-5)
    # five images in one call with an explicit batch size
    assert len(tiny_model.detect(images + images[:2], batch_size=4)) == 5


@pytest.mark.jax
def test_detect_device_paste_agrees(tiny_model):
    images = _images()
    slow = tiny_model.detect(images)
    fast = tiny_model.detect(images, mask_paste="device")
    for a, b in zip(slow, fast):
        np.testing.assert_array_equal(a["rois"], b["rois"])
        np.testing.assert_array_equal(a["class_ids"], b["class_ids"])
        assert a["masks"].shape == b["masks"].shape
        for i in range(a["masks"].shape[-1]):
            union = np.logical_or(a["masks"][..., i], b["masks"][..., i]).sum()
            inter = np.logical_and(a["masks"][..., i], b["masks"][..., i]).sum()
            assert union == 0 or inter / union >= 0.99


@pytest.mark.jax
def test_detect_bad_input(tiny_model):
    with pytest.raises(TypeError, match="image 0"):
        tiny_model.detect(["not an image"])
    with pytest.raises(ValueError, match="image 1 has shape"):
        tiny_model.detect([np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 5), np.uint8)])
    with pytest.raises(ValueError, match="mask_paste"):
        tiny_model.detect([np.zeros((8, 8, 3), np.uint8)], mask_paste="gpu")
    assert tiny_model.detect([]) == []


@pytest.mark.jax
def test_paste_masks_matches_unmold_mask():
    from keras import ops

    from mrcnn import utils
    from mrcnn.model import paste_masks
    rng = np.random.default_rng(3)
    h, w = 120, 90
    masks, boxes = [], []
    for _ in range(12):
        y1, x1 = rng.integers(0, 60), rng.integers(0, 45)
        y2, x2 = y1 + rng.integers(1, 60), x1 + rng.integers(1, 45)
        boxes.append([y1, x1, y2, x2])
        masks.append(rng.uniform(0, 1, (28, 28)).astype(np.float32))
    masks, boxes = np.stack(masks), np.int32(boxes)
    got = np.asarray(ops.convert_to_numpy(paste_masks(masks, boxes, h, w)))
    assert got.shape == (h, w, 12)
    for i in range(12):
        ref = utils.unmold_mask(masks[i], boxes[i], (h, w, 3))
        union = np.logical_or(ref, got[..., i]).sum()
        assert np.logical_and(ref, got[..., i]).sum() / union >= 0.99


def test_training_mode_delegates():
    from mrcnn.model import MaskRCNN
    model = MaskRCNN("training", tiny_config(IMAGES_PER_GPU=1), model_dir=None)
    with pytest.raises(ValueError, match="inference"):
        model.detect([np.zeros((8, 8, 3), np.uint8)])
    names = {l.name for l in model.keras_model.layers}
    assert {"rpn_model", "mrcnn_class_logits", "mrcnn_mask"} <= names
