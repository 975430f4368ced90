"""gone.models error handling, and the pipeline with the real (small / random-weight) models."""
import numpy as np
import pytest

from gone.models import ModelLoadError, load_detector, load_inpainter


@pytest.mark.jax
def test_detector_weight_errors(tmp_path):
    with pytest.raises(ModelLoadError, match="not found"):
        load_detector(tmp_path / "missing.h5")
    (tmp_path / "text.h5").write_text("hello")
    with pytest.raises(ModelLoadError, match="not an HDF5 file"):
        load_detector(tmp_path / "text.h5")
    import h5py
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f.create_group("dense_1")
    with pytest.raises(ModelLoadError, match="does not look like Mask R-CNN"):
        load_detector(tmp_path / "other.h5")
    with pytest.raises(ModelLoadError, match="mask_rcnn_coco"):
        load_detector(None)


@pytest.mark.jax
def test_inpainter_checkpoint_errors(tmp_path):
    with pytest.raises(ModelLoadError, match="not found"):
        load_inpainter(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="empty folder"):
        load_inpainter(tmp_path / "empty")
    with pytest.raises(ModelLoadError, match="deepfill_v1_places2"):
        load_inpainter(None)


@pytest.mark.jax
def test_config_is_matterport_coco_inference():
    pytest.importorskip("mrcnn.config")
    from gone import models
    cfg = models.GoneMaskRCNNConfig()
    assert (cfg.NUM_CLASSES, cfg.GPU_COUNT, cfg.IMAGES_PER_GPU, cfg.DETECTION_MIN_CONFIDENCE) == (81, 1, 1, 0.7)
    assert cfg.BATCH_SIZE == 1 and cfg.BACKBONE == "resnet101"
    assert models.make_detector_config(images_per_gpu=2).BATCH_SIZE == 2


@pytest.mark.jax
def test_random_inpainter_composites_only_the_hole(make_scene):
    inpaint = pytest.importorskip("inpaint")
    from gone.pipeline import PeopleRemover
    model = inpaint.InpaintModel()
    assert model.weights_source == "random"
    img = make_scene(h=70, w=90, people=())
    hole = np.zeros(img.shape[:2], bool)
    hole[20:40, 30:55] = True
    remover = PeopleRemover(None, model, min_context=8)
    (res,) = remover.remove([img], hole_masks=[hole])
    assert res.status == "inpainted" and res.output.shape == img.shape and res.output.dtype == np.uint8
    np.testing.assert_array_equal(res.output[~hole], img[~hole])
    assert not np.array_equal(res.output[hole], img[hole])


@pytest.mark.slow
def test_real_models_from_reference_weights(mrcnn_reference_weights, deepfill_release_ckpt, make_scene):
    """Mask R-CNN (COCO R101, synthetic weights) + DeepFill v1 (release-format checkpoint) on one
    small image: shapes, compositing and bookkeeping (the outputs themselves are meaningless)."""
    pytest.importorskip("mrcnn.model")
    pytest.importorskip("inpaint")
    from gone.pipeline import PeopleRemover
    det = load_detector(mrcnn_reference_weights)
    inp = load_inpainter(deepfill_release_ckpt)
    assert str(deepfill_release_ckpt) in inp.weights_source
    img = make_scene(h=120, w=160, people=((30, 40, 100, 70),))
    remover = PeopleRemover(det, inp, classes=None, min_score=0.0, strategy="mask")
    (res,) = remover.remove([img])
    d = res.detections
    n = len(d["class_ids"])
    assert d["rois"].shape == (n, 4) and d["masks"].shape == (120, 160, n) and d["masks"].dtype == bool
    expected = np.zeros((120, 160), bool)
    for i in range(n):
        expected |= d["masks"][..., i]
    np.testing.assert_array_equal(res.hole_mask, expected)
    assert res.large_crop_fraction == pytest.approx(expected.mean())
    np.testing.assert_array_equal(res.output[~res.hole_mask], img[~res.hole_mask])
    assert res.status == ("inpainted" if expected.any() else "nothing_to_remove")
