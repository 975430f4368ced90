"""IMAGE_RESIZE_MODE "fit" (not in Matterport): square's scale, padding only to multiples of 64."""
import numpy as np
import pytest

from mrcnn.resizing import resize_image


@pytest.mark.parametrize("shape, molded, window", [
    ((1080, 1920, 3), (576, 1024, 3), (0, 0, 576, 1024)),      # 16:9 photo: no padding at all
    ((300, 500, 3), (640, 1024, 3), (13, 0, 627, 1024)),        # upscaled, capped by max_dim, then padded
    ((1024, 700, 3), (1024, 704, 3), (0, 2, 1024, 702)),
])
def test_fit_scales_as_square_and_pads_to_64(shape, molded, window):
    image = np.full(shape, 200, np.uint8)
    got, win, scale, padding, crop = resize_image(image, min_dim=800, max_dim=1024, mode="fit")
    _, sq_win, sq_scale, _, _ = resize_image(image, min_dim=800, max_dim=1024, mode="square")
    assert got.shape == molded and got.dtype == np.uint8 and crop is None
    assert win == window and scale == sq_scale
    assert (win[2] - win[0], win[3] - win[1]) == (sq_win[2] - sq_win[0], sq_win[3] - sq_win[1])
    inside = np.zeros(molded[:2], bool)
    inside[win[0]:win[2], win[1]:win[3]] = True
    assert (got[inside] == 200).all() and (got[~inside] == 0).all()
    assert [sum(p) for p in padding[:2]] == [molded[0] - (win[2] - win[0]), molded[1] - (win[3] - win[1])]


def test_fit_needs_max_dim_multiple_of_64():
    with pytest.raises(ValueError, match="fit needs max_dim a multiple of 64, got 1000"):
        resize_image(np.zeros((10, 20, 3), np.uint8), min_dim=800, max_dim=1000, mode="fit")


def test_fit_detect_equals_square_without_padding_and_maps_back_otherwise():
    import keras

    from mrcnn import training
    from mrcnn.config import Config
    from mrcnn.model import MaskRCNN
    keras.utils.set_random_seed(0)
    backbone, shapes = training.small_backbone()
    common = dict(NAME="fit", NUM_CLASSES=5, IMAGE_MIN_DIM=64, IMAGE_MAX_DIM=128, BACKBONE=backbone,
                  COMPUTE_BACKBONE_SHAPE=shapes, RPN_ANCHOR_SCALES=(8, 16, 32, 64, 128),
                  DETECTION_MIN_CONFIDENCE=0.0, POST_NMS_ROIS_INFERENCE=32, PRE_NMS_LIMIT=300,
                  TOP_DOWN_PYRAMID_SIZE=32, FPN_CLASSIF_FC_LAYERS_SIZE=32)
    square = MaskRCNN("inference", Config(**common), model_dir=None)
    fit = MaskRCNN("inference", Config(IMAGE_RESIZE_MODE="fit", **common), model_dir=None)
    fit.keras_model.set_weights(square.keras_model.get_weights())
    rng = np.random.default_rng(0)
    # 100x100 -> 100x100 padded to 128x128 by both modes: the same network input, the same results
    same = rng.integers(0, 255, (100, 100, 3), dtype=np.uint8)
    a, b = square.detect([same])[0], fit.detect([same])[0]
    assert len(a["class_ids"]) > 0
    for key in ("rois", "class_ids", "scores", "masks"):
        np.testing.assert_array_equal(a[key], b[key])
    # 40x100 -> 51x128: square pads to 128x128, fit to 64x128; results come back in photo pixels
    wide = rng.integers(0, 255, (40, 100, 3), dtype=np.uint8)
    (r,) = fit.detect([wide])
    n = len(r["class_ids"])
    assert n > 0 and r["masks"].shape == (40, 100, n)
    assert (r["rois"] >= 0).all() and (r["rois"][:, [0, 2]] <= 40).all() and (r["rois"][:, [1, 3]] <= 100).all()
