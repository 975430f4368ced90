"""Config: Matterport field names, defaults and derived values; compared with the reference dump."""
import json

import numpy as np
import pytest

from mrcnn.config import Config

MATTERPORT_FIELDS = (
    "NAME GPU_COUNT IMAGES_PER_GPU STEPS_PER_EPOCH VALIDATION_STEPS BACKBONE COMPUTE_BACKBONE_SHAPE "
    "BACKBONE_STRIDES FPN_CLASSIF_FC_LAYERS_SIZE TOP_DOWN_PYRAMID_SIZE NUM_CLASSES RPN_ANCHOR_SCALES "
    "RPN_ANCHOR_RATIOS RPN_ANCHOR_STRIDE RPN_NMS_THRESHOLD RPN_TRAIN_ANCHORS_PER_IMAGE PRE_NMS_LIMIT "
    "POST_NMS_ROIS_TRAINING POST_NMS_ROIS_INFERENCE USE_MINI_MASK MINI_MASK_SHAPE IMAGE_RESIZE_MODE "
    "IMAGE_MIN_DIM IMAGE_MAX_DIM IMAGE_MIN_SCALE IMAGE_CHANNEL_COUNT MEAN_PIXEL TRAIN_ROIS_PER_IMAGE "
    "ROI_POSITIVE_RATIO POOL_SIZE MASK_POOL_SIZE MASK_SHAPE MAX_GT_INSTANCES RPN_BBOX_STD_DEV BBOX_STD_DEV "
    "DETECTION_MAX_INSTANCES DETECTION_MIN_CONFIDENCE DETECTION_NMS_THRESHOLD LEARNING_RATE "
    "LEARNING_MOMENTUM WEIGHT_DECAY LOSS_WEIGHTS USE_RPN_ROIS TRAIN_BN GRADIENT_CLIP_NORM "
    "BATCH_SIZE IMAGE_SHAPE IMAGE_META_SIZE").split()


def _plain(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, tuple):
        return list(value)
    return value


def test_fields_and_defaults():
    config = Config()
    assert sorted(config.to_dict()) == sorted(MATTERPORT_FIELDS)
    assert config.NAME is None and config.NUM_CLASSES == 1 and config.IMAGES_PER_GPU == 2
    assert config.BATCH_SIZE == 2 and config.IMAGE_META_SIZE == 13
    assert config.MEAN_PIXEL.dtype == np.float64
    assert config.IMAGE_SHAPE.tolist() == [1024, 1024, 3]


def test_matches_reference_coco_inference_config(mrcnn_reference_dir):
    ref = json.loads((mrcnn_reference_dir / "mrcnn_reference_summary.json").read_text())["config"]
    ours = {k: _plain(v) for k, v in Config(NAME="coco", NUM_CLASSES=81, IMAGES_PER_GPU=1).to_dict().items()}
    assert ours == ref


def test_subclass_and_derived_values():
    class Tiny(Config):
        NAME = "tiny"
        GPU_COUNT = 2
        IMAGES_PER_GPU = 3
        NUM_CLASSES = 4
        IMAGE_RESIZE_MODE = "crop"
        IMAGE_MIN_DIM = 256
        IMAGE_CHANNEL_COUNT = 1

    config = Tiny()
    assert config.BATCH_SIZE == 6
    assert config.IMAGE_SHAPE.tolist() == [256, 256, 1]  # crop: IMAGE_MIN_DIM
    assert config.IMAGE_META_SIZE == 12 + 4
    # Class attributes of the base are not modified by a subclass or an instance override.
    assert Config().NUM_CLASSES == 1
    assert Config(IMAGES_PER_GPU=1).BATCH_SIZE == 1 and Config.IMAGES_PER_GPU == 2


def test_backbone_callable_allowed():
    def my_backbone(*args, **kwargs):
        return None

    config = Config(BACKBONE=my_backbone, COMPUTE_BACKBONE_SHAPE=lambda shape: [[1, 1]])
    assert config.to_dict()["BACKBONE"] is my_backbone


def test_bad_overrides_have_clear_errors():
    with pytest.raises(ValueError, match="unknown field"):
        Config(NUM_CLASS=3)
    with pytest.raises(ValueError, match="derived"):
        Config(BATCH_SIZE=3)
    with pytest.raises(ValueError, match="IMAGE_RESIZE_MODE"):
        Config(IMAGE_RESIZE_MODE="squash")


def test_display_prints_every_field(capsys):
    Config(NAME="shown").display()
    out = capsys.readouterr().out
    assert "Configurations:" in out
    for name in MATTERPORT_FIELDS:
        assert name in out
    assert "NAME                           shown" in out
