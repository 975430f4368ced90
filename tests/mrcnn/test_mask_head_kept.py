"""MaskRCNN's mask head run on the kept detections only (``mask_head_rois="kept"``, the CPU
default) gives the same detections and masks as Matterport's graph, which runs it on all
DETECTION_MAX_INSTANCES slots (``"all"``). Small from-scratch backbone, random weights."""
import numpy as np
import pytest


def test_mask_head_on_kept_detections_matches_all_slots():
    import keras

    from mrcnn import training, transform
    from mrcnn.config import Config
    from mrcnn.model import MaskRCNN
    keras.utils.set_random_seed(0)
    backbone, shapes = training.small_backbone()
    config = Config(NAME="kept", NUM_CLASSES=5, IMAGES_PER_GPU=2, IMAGE_MIN_DIM=64, IMAGE_MAX_DIM=64,
                    BACKBONE=backbone, COMPUTE_BACKBONE_SHAPE=shapes, RPN_ANCHOR_SCALES=(8, 16, 32, 64, 128),
                    DETECTION_MIN_CONFIDENCE=0.0, POST_NMS_ROIS_INFERENCE=32, PRE_NMS_LIMIT=300,
                    TOP_DOWN_PYRAMID_SIZE=32, FPN_CLASSIF_FC_LAYERS_SIZE=32)
    model = MaskRCNN("inference", config, model_dir=None)
    images = [np.random.default_rng(i).integers(0, 255, (60, 50, 3), dtype=np.uint8) for i in range(2)]
    molded, metas, _ = transform.mold_inputs(images, config)
    anchors = transform.get_anchors(config, molded.shape[1:])
    anchors = np.broadcast_to(anchors, (2,) + anchors.shape)
    model.mask_head_rois = "all"
    det_all, masks_all = model._predict(molded, metas, anchors)
    model.mask_head_rois = "kept"
    det_kept, masks_kept = model._predict(molded, metas, anchors)
    n = (det_all[..., 4] > 0).sum(axis=1)
    assert masks_kept.shape == masks_all.shape == (2, 100, 28, 28)
    assert 0 < n.max() < 100          # fewer kept rows than slots: the head ran on a power-of-two bucket
    np.testing.assert_array_equal(det_kept, det_all)
    for b in range(2):
        np.testing.assert_array_equal(masks_kept[b, :n[b]], masks_all[b, :n[b]])
    bucket = 1 << (int(n.max()) - 1).bit_length()
    assert not masks_kept[:, bucket:].any() and masks_all[:, bucket:].any()   # rows past the bucket: not run
    results = model.detect(images)       # the public path agrees too
    model.mask_head_rois = "all"
    for got, ref in zip(results, model.detect(images)):
        for key in ("rois", "class_ids", "scores", "masks"):
            np.testing.assert_array_equal(got[key], ref[key])
    model.mask_head_rois = "fast"
    with pytest.raises(ValueError, match="mask_head_rois must be"):
        model._predict(molded, metas, anchors)
