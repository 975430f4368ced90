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
    from gone import models
    cfg = models.GoneMaskRCNNConfig()
    assert (cfg.NUM_CLASSES, cfg.GPU_COUNT, cfg.IMAGES_PER_GPU, cfg.DETECTION_MIN_CONFIDENCE) == (81, 1, 1, 0.7)
    assert cfg.BATCH_SIZE == 1 and cfg.BACKBONE == "resnet101"
    assert models.make_detector_config(images_per_gpu=2).BATCH_SIZE == 2


@pytest.mark.jax
def test_random_inpainter_composites_only_the_hole(make_scene):
    import inpaint
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
    # the pipeline hands InpaintModel network-ready arrays (fill); inpaint() is the same network
    crop, crop_hole = img[:64, :64], hole[:64, :64]
    filled = model.fill(crop[None], crop_hole[None])
    assert filled.shape == (1, 64, 64, 3) and filled.dtype == np.uint8
    np.testing.assert_array_equal(filled[0][~crop_hole], crop[~crop_hole])
    np.testing.assert_array_equal(filled[0], model.inpaint(crop, crop_hole))
    from inpaint.model import InpaintError
    with pytest.raises(InpaintError, match="multiples of 8"):
        model.fill(img[None], hole[None])


def _h5(path, layers, root_attr=True):
    import h5py
    with h5py.File(path, "w") as f:
        if root_attr:
            f.attrs["layer_names"] = [n.encode() for n in layers]
        for n in layers:
            g = f.create_group(n)
            g.attrs["weight_names"] = [f"{n}/kernel:0".encode()]
            g.create_dataset(f"{n}/kernel:0", data=np.zeros(1, np.float32))
    return path


@pytest.mark.jax
def test_weight_precheck_refuses_partial_files(tmp_path):
    from gone.models import check_detector_weights, matterport_weighted_layers
    names = matterport_weighted_layers()
    assert len(names) == 233 and len(set(names)) == 233        # mask_rcnn_coco.h5's weighted groups
    assert names[:2] == ["conv1", "bn_conv1"] and "res4w_branch2c" in names and names[-1] == "mrcnn_mask"
    assert check_detector_weights(_h5(tmp_path / "full.h5", names)) == []
    partial = _h5(tmp_path / "partial.h5", names[:10] + ["mrcnn_mask"])
    with pytest.raises(ModelLoadError, match=r"lacks weights for 222 of the detector's 233 layers \(res2b_branch2a, bn2b"):
        check_detector_weights(partial)
    missing = check_detector_weights(partial, allow_partial=True)
    assert len(missing) == 222 and missing[0] == "res2b_branch2a"
    import h5py
    with h5py.File(tmp_path / "weightless.h5", "w") as f:   # the right groups, but no weights in them
        for n in ("conv1", "mrcnn_mask"):
            f.create_group(n).attrs["weight_names"] = np.zeros(0)
    with pytest.raises(ModelLoadError, match="lacks weights for 233 of"):
        check_detector_weights(tmp_path / "weightless.h5")


@pytest.mark.jax
def test_weight_names_match_the_published_layout(mrcnn_reference_dir):
    import json
    from gone.models import matterport_weighted_layers
    manifest = json.loads((mrcnn_reference_dir / "mrcnn_coco_h5_manifest.json").read_text())
    published = [g["name"] for g in manifest["groups"] if g["weight_names"]]
    assert sorted(published) == sorted(matterport_weighted_layers())


@pytest.mark.jax
def test_inpainter_checkpoint_precheck(tmp_path, deepfill_release_ckpt):
    from gone.models import check_inpainter_checkpoint
    check_inpainter_checkpoint(deepfill_release_ckpt)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "checkpoint").write_text("nonsense")
    with pytest.raises(ModelLoadError, match="cannot read inpainting checkpoint"):
        check_inpainter_checkpoint(tmp_path / "junk")
