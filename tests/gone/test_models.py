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
