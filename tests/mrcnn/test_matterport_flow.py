"""Matterport's workflow on a tiny shapes config: train -> find_last() -> load_weights(by_name=True)
into an inference model -> detect -> utils.compute_ap, with checkpoints in Matterport's naming and
Keras-2 HDF5 layout; and a run killed mid-epoch that resumes exactly where it stopped."""
import os

import h5py
import keras
import numpy as np
import pytest

from mrcnn import training, utils
from mrcnn import model as modellib
from mrcnn.config import Config
from mrcnn.datasets.shapes import ShapesDataset
from mrcnn.weights import WeightsMismatchError, save_weights


def tiny_config(**overrides):
    backbone, shapes = training.small_backbone(filters=(8, 8, 16, 16, 16))
    fields = dict(NAME="flow", NUM_CLASSES=4, IMAGES_PER_GPU=1, IMAGE_MIN_DIM=64, IMAGE_MAX_DIM=64,
                  BACKBONE=backbone, COMPUTE_BACKBONE_SHAPE=shapes, RPN_ANCHOR_SCALES=(8, 16, 32, 64, 128),
                  TOP_DOWN_PYRAMID_SIZE=16, FPN_CLASSIF_FC_LAYERS_SIZE=32, TRAIN_ROIS_PER_IMAGE=8,
                  POST_NMS_ROIS_TRAINING=32, POST_NMS_ROIS_INFERENCE=32, PRE_NMS_LIMIT=100,
                  RPN_TRAIN_ANCHORS_PER_IMAGE=32, MAX_GT_INSTANCES=4, MINI_MASK_SHAPE=(8, 8), POOL_SIZE=3,
                  MASK_POOL_SIZE=3, MASK_SHAPE=[6, 6], STEPS_PER_EPOCH=1, VALIDATION_STEPS=0,
                  DETECTION_MIN_CONFIDENCE=0.0, DETECTION_MAX_INSTANCES=8)
    fields.update(overrides)
    return Config(**fields)


def tiny_shapes(count, seed):
    ds = ShapesDataset()
    ds.load_shapes(count, 64, 64, seed=seed, buffer=8)
    ds.prepare()
    return ds


def layer_weights(keras_model):
    return {layer.name: [keras.ops.convert_to_numpy(w) for w in layer.weights]
            for layer in keras_model.layers if layer.weights}


@pytest.mark.jax
def test_train_find_last_load_by_name_detect_compute_ap(tmp_path):
    keras.utils.set_random_seed(0)
    config = tiny_config()
    dataset = tiny_shapes(2, seed=1)
    model = modellib.MaskRCNN(mode="training", config=config, model_dir=str(tmp_path))
    model.train(dataset, None, learning_rate=0.01, epochs=1, layers="all", verbose=0, seed=0)

    checkpoint = model.find_last()
    assert os.path.dirname(checkpoint) == model.log_dir
    assert os.path.basename(checkpoint) == "mask_rcnn_flow_0001.h5"
    assert training._CHECKPOINT_RE.match(checkpoint)  # Matterport's set_log_dir pattern
    with h5py.File(checkpoint, "r") as f:  # Keras-2 layout: layer groups with weight_names
        assert "rpn_model" in [n.decode() for n in f.attrs["layer_names"]]
        assert len(f["mrcnn_mask"].attrs["weight_names"]) == 2

    inference_config = tiny_config(IMAGES_PER_GPU=1)
    inference = modellib.MaskRCNN(mode="inference", config=inference_config, model_dir=str(tmp_path))
    assert inference.find_last() == checkpoint
    assert inference.load_weights(inference.find_last(), by_name=True) == []
    trained, loaded = layer_weights(model.keras_model), layer_weights(inference.keras_model)
    assert set(loaded) <= set(trained) and "rpn_model" in loaded and "mrcnn_mask" in loaded
    for name, values in loaded.items():
        for a, b in zip(trained[name], values):
            np.testing.assert_array_equal(a, b, err_msg=name)

    image, image_meta, gt_class_id, gt_bbox, gt_mask = modellib.load_image_gt(dataset, inference_config, 0)
    r = inference.detect([image], verbose=0)[0]
    assert r["masks"].shape[:2] == image.shape[:2] and r["masks"].shape[2] == len(r["class_ids"]) > 0
    ap, precisions, recalls, overlaps = utils.compute_ap(gt_bbox, gt_class_id, gt_mask, r["rois"],
                                                         r["class_ids"], r["scores"], r["masks"])
    assert 0.0 <= ap <= 1.0 and overlaps.shape == (len(r["class_ids"]), len(gt_class_id))

    # balloon's recipe: another class count loads everything but the class-specific heads
    heads = ["mrcnn_class_logits", "mrcnn_bbox_fc", "mrcnn_bbox", "mrcnn_mask"]
    other = modellib.MaskRCNN(mode="inference", config=tiny_config(NUM_CLASSES=2), model_dir=str(tmp_path))
    with pytest.raises(WeightsMismatchError, match=r"mrcnn_class_logits: expected \[\(32, 2\), \(2,\)\]"):
        other.load_weights(checkpoint, by_name=True)
    assert other.load_weights(checkpoint, by_name=True, exclude=heads) == []
    np.testing.assert_array_equal(layer_weights(other.keras_model)["fpn_p2"][0], trained["fpn_p2"][0])


class Killed(Exception):
    pass


class KillAt(keras.callbacks.Callback):
    """Stops training with an exception after `batch` of `epoch` (as a killed process would)."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.kill_epoch, self.kill_batch, self.epoch = epoch, batch, None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == (self.kill_epoch, self.kill_batch):
            raise Killed()


def test_killed_mid_epoch_resumes_at_next_epoch_exactly(tmp_path):
    config = tiny_config(NAME="resume", STEPS_PER_EPOCH=2)
    dataset = tiny_shapes(3, seed=2)

    def fresh(model_dir):
        keras.utils.set_random_seed(0)
        return modellib.MaskRCNN(mode="training", config=config, model_dir=str(model_dir))

    reference = fresh(tmp_path / "reference")
    reference.train(dataset, None, learning_rate=0.02, epochs=2, layers="all", verbose=0, seed=5)
    kept = sorted(f for f in os.listdir(reference.log_dir) if f.endswith(".h5"))
    assert kept == ["mask_rcnn_resume_0001.h5", "mask_rcnn_resume_0002.h5", "training_state_resume_0002.h5"]

    run = fresh(tmp_path / "run")
    with pytest.raises(Killed):
        run.train(dataset, None, learning_rate=0.02, epochs=2, layers="all", verbose=0, seed=5,
                  custom_callbacks=[KillAt(epoch=1, batch=0)])
    last = run.find_last()
    assert os.path.basename(last) == "mask_rcnn_resume_0001.h5"
    files = [f for f in os.listdir(run.log_dir) if os.path.isfile(os.path.join(run.log_dir, f))]
    assert sorted(files) == ["mask_rcnn_resume_0001.h5", "training_state_resume_0001.h5"]

    keras.utils.set_random_seed(123)  # another process: other initial weights and seeds
    resumed = modellib.MaskRCNN(mode="training", config=config, model_dir=str(tmp_path / "run"))
    resumed.load_weights(resumed.find_last(), by_name=True)
    assert resumed.epoch == 1 and resumed.log_dir == run.log_dir
    history = resumed.train(dataset, None, learning_rate=0.02, epochs=2, layers="all", verbose=0)
    assert history.epoch == [1] and resumed.epoch == 2
    assert resumed.find_last() == os.path.join(run.log_dir, "mask_rcnn_resume_0002.h5")
    expected, got = layer_weights(reference.keras_model), layer_weights(resumed.keras_model)
    for name, values in expected.items():
        for a, b in zip(values, got[name]):
            np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6, err_msg=name)
    first = layer_weights(run.keras_model)  # weights of the killed run, mid-epoch 2
    moved = sum(not np.array_equal(a, b) for n in expected for a, b in zip(expected[n], first[n]))
    assert moved > 0  # the killed run had moved past the checkpoint: the resume is not trivial


def test_log_dirs_of_runs_started_in_the_same_minute_never_collide(tmp_path):
    config = tiny_config(NAME="clash")
    a = modellib.MaskRCNN(mode="training", config=config, model_dir=str(tmp_path))
    b = modellib.MaskRCNN(mode="training", config=config, model_dir=str(tmp_path))
    b._log_dir_time = a._log_dir_time  # the same minute
    b.log_dir, b.checkpoint_path = a.log_dir, a.checkpoint_path
    dir_a, dir_b = training.make_log_dir(a), training.make_log_dir(b)
    assert dir_a != dir_b and sorted(os.listdir(tmp_path)) == [os.path.basename(dir_a), os.path.basename(dir_b)]
    assert b.checkpoint_path.startswith(dir_b)
    assert training.make_log_dir(a) == dir_a  # a second train() of a run keeps its folder
    # the newest folder sorts last; find_last skips folders with no checkpoint yet
    save_weights(a.keras_model, os.path.join(dir_a, "mask_rcnn_clash_0001.h5"))
    assert b.find_last() == os.path.join(dir_a, "mask_rcnn_clash_0001.h5")


def test_find_last_skips_a_truncated_newest_checkpoint(tmp_path):
    run = modellib.MaskRCNN(mode="training", config=tiny_config(NAME="cut"), model_dir=str(tmp_path))
    log_dir = training.make_log_dir(run)
    good = os.path.join(log_dir, "mask_rcnn_cut_0001.h5")
    save_weights(run.keras_model, good)
    data = open(good, "rb").read()
    cut = os.path.join(log_dir, "mask_rcnn_cut_0002.h5")
    with open(cut, "wb") as f:                      # a run killed while writing epoch 2
        f.write(data[: len(data) // 2])
    with pytest.warns(training.CheckpointSkippedWarning) as record:
        assert run.find_last() == good
    assert len(record) == 1
    message = str(record[0].message)
    assert message.startswith(f"find_last: skipped an unreadable checkpoint: cannot read weight file {cut} "
                              "(truncated or corrupt HDF5)")
    assert "\n" not in message
    # the older checkpoint loads (the resume goes on from epoch 1)
    with pytest.warns(training.CheckpointSkippedWarning):
        assert run.load_weights(run.find_last(), by_name=True) == []
