"""Mask R-CNN training on a tiny shapes set: the graph, its losses, layer freezing, the loss falls,
set_log_dir. Checkpoints and resume: test_matterport_flow.py. Runs on TF and JAX."""
import os

import keras
import numpy as np
import pytest

from mrcnn import training
from mrcnn.config import Config
from mrcnn.datasets.shapes import ShapesDataset

pytestmark = pytest.mark.jax


def tiny_config(**overrides):
    backbone, shapes = training.small_backbone(filters=(8, 16, 16, 24, 24))
    fields = dict(NAME="tinyshapes", NUM_CLASSES=4, IMAGES_PER_GPU=2, IMAGE_MIN_DIM=64, IMAGE_MAX_DIM=64,
                  BACKBONE=backbone, COMPUTE_BACKBONE_SHAPE=shapes, RPN_ANCHOR_SCALES=(8, 16, 32, 64, 128),
                  TOP_DOWN_PYRAMID_SIZE=32, FPN_CLASSIF_FC_LAYERS_SIZE=64, TRAIN_ROIS_PER_IMAGE=12,
                  POST_NMS_ROIS_TRAINING=48, PRE_NMS_LIMIT=200, RPN_TRAIN_ANCHORS_PER_IMAGE=64,
                  MAX_GT_INSTANCES=4, MINI_MASK_SHAPE=(16, 16), POOL_SIZE=5, MASK_POOL_SIZE=5,
                  MASK_SHAPE=[10, 10], STEPS_PER_EPOCH=2, VALIDATION_STEPS=1)
    fields.update(overrides)
    return Config(**fields)


def tiny_shapes(count, seed):
    ds = ShapesDataset()
    ds.load_shapes(count, 64, 64, seed=seed, buffer=8)
    ds.prepare()
    return ds


@pytest.mark.slow  # ~100 s eagerly under JAX on 2 CPU cores
def test_training_model_outputs_and_losses_are_finite():
    keras.utils.set_random_seed(0)
    cfg = tiny_config()
    model = training.build_training_model(cfg)
    names = [layer.name for layer in model.layers]
    for name in training.LOSS_NAMES + ("proposal_targets", "ROI", "anchors", "output_rois"):
        assert name in names
    from mrcnn.data_generator import DataGenerator
    batch = DataGenerator(tiny_shapes(4, 0), cfg, seed=0)[0][0]
    outputs = model(list(batch), training=False)
    losses = [float(keras.ops.convert_to_numpy(t)[0]) for t in outputs[-5:]]
    assert all(np.isfinite(losses)) and losses[0] > 0


def test_layer_freezing_heads_leaves_backbone_frozen():
    cfg = tiny_config()
    model = training.build_training_model(cfg)
    training.set_trainable(model, training.LAYER_REGEX["heads"])
    trainable = {w.path.split("/")[0] for w in model.trainable_weights}
    assert not any(n.startswith("small_c") for n in trainable)
    assert any(n.startswith("fpn_") for n in trainable) and any(n.startswith("mrcnn_") for n in trainable)
    assert any("rpn" in w.path for w in model.trainable_weights)
    training.set_trainable(model, training.LAYER_REGEX["all"])
    assert len(model.trainable_weights) > len(trainable)


@pytest.mark.slow
def test_overfits_tiny_shapes_set():
    """30 steps on one batch of 2 shapes images: the total loss falls by a clear factor.

    Adam is used here to overfit quickly: this checks the training graph, the five losses and
    their gradients; train() itself (SGD + momentum, Matterport's optimizer) is exercised below."""
    keras.utils.set_random_seed(0)
    cfg = tiny_config()
    ds = tiny_shapes(2, seed=1)
    model = training.build_training_model(cfg)
    training.set_trainable(model, ".*")
    model.compile(optimizer=keras.optimizers.Adam(0.002, global_clipnorm=cfg.GRADIENT_CLIP_NORM),
                  jit_compile=keras.backend.backend() != "tensorflow")
    model.optimizer.build(model.trainable_variables)  # one trace of the step on TensorFlow, not two
    from mrcnn.data_generator import DataGenerator
    gen = DataGenerator(ds, cfg, shuffle=True, seed=0)
    # One step per "epoch" so that the history holds per-step losses (not running means).
    history = model.fit(gen, epochs=30, steps_per_epoch=1, verbose=0).history
    loss = np.array(history["loss"])
    assert np.all(np.isfinite(loss))
    # Step 0 often has no positive ROI yet (head box/mask losses 0): start the baseline at step 1.
    first, last = loss[1:7].mean(), loss[-6:].mean()
    assert last < 0.65 * first, f"loss did not fall clearly: {first:.3f} -> {last:.3f} ({loss.round(2)})"
    for name in ("rpn_class_loss", "rpn_bbox_loss", "mrcnn_mask_loss"):
        assert np.mean(history[name][-6:]) < np.mean(history[name][1:7]), name


def test_set_log_dir_parses_epoch_and_date(tmp_path):
    class Holder:
        config = tiny_config()
        model_dir = str(tmp_path)

    holder = Holder()
    training.set_log_dir(holder)
    assert holder.epoch == 0 and os.path.basename(holder.log_dir).startswith("tinyshapes")
    path = os.path.join(str(tmp_path), "tinyshapes20240102T0304", "mask_rcnn_tinyshapes_0007.weights.h5")
    training.set_log_dir(holder, path)
    assert holder.epoch == 7
    assert holder.log_dir.endswith("tinyshapes20240102T0304")
    assert holder.checkpoint_path.endswith("mask_rcnn_tinyshapes_{epoch:04d}.h5")
    # Matterport's Keras-2 name is understood as well.
    training.set_log_dir(holder, path.replace(".weights.h5", ".h5"))
    assert holder.epoch == 7 and holder.log_dir.endswith("tinyshapes20240102T0304")
    with pytest.raises(FileNotFoundError, match="Could not find a model directory"):
        training.find_last(type("H", (), {"config": holder.config, "model_dir": str(tmp_path / "none")})())
