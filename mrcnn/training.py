"""Mask R-CNN training: the training-mode graph, losses in `compute_loss`, layer freezing,
checkpoints / resume and the train loop (Matterport's MaskRCNN.build('training'), compile,
set_trainable, set_log_dir, find_last and train), backend-neutral (TensorFlow and JAX).

Keras 3 has no `add_loss` on functional graphs the Matterport way, so the training model's last
five outputs are the loss tensors and `MaskRCNNTrainingModel.compute_loss` sums them
(times config.LOSS_WEIGHTS) plus Matterport's L2 weight decay; `fit()` then works on any backend.
"""
import datetime
import logging
import os
import re
import warnings

import keras
import numpy as np
from keras import layers as KL
from keras import ops

from gonefiles import write_atomic
from mrcnn import transform
from mrcnn.data_generator import DataGenerator
from mrcnn.detection_targets import DetectionTargetLayer
from mrcnn.graph import build_backbone_and_rpn, check_image_size
from mrcnn.heads import build_fpn_mask_graph, fpn_classifier_graph
from mrcnn.losses import (mrcnn_bbox_loss_graph, mrcnn_class_loss_graph, mrcnn_mask_loss_graph,
                          rpn_bbox_loss_graph, rpn_class_loss_graph, weight_decay_loss)
from mrcnn.ops import parse_image_meta_graph
from mrcnn.proposal import ProposalLayer, norm_boxes_graph
from mrcnn.weights import WeightLoadError, check_weight_file, save_weights

log = logging.getLogger(__name__)

LOSS_NAMES = ("rpn_class_loss", "rpn_bbox_loss", "mrcnn_class_loss", "mrcnn_bbox_loss", "mrcnn_mask_loss")

# Matterport's predefined layer selections for train(layers=...).
LAYER_REGEX = {
    "heads": r"(mrcnn\_.*)|(rpn\_.*)|(fpn\_.*)",
    "3+": r"(res3.*)|(bn3.*)|(res4.*)|(bn4.*)|(res5.*)|(bn5.*)|(mrcnn\_.*)|(rpn\_.*)|(fpn\_.*)",
    "4+": r"(res4.*)|(bn4.*)|(res5.*)|(bn5.*)|(mrcnn\_.*)|(rpn\_.*)|(fpn\_.*)",
    "5+": r"(res5.*)|(bn5.*)|(mrcnn\_.*)|(rpn\_.*)|(fpn\_.*)",
    "all": ".*",
}

CHECKPOINT_SUFFIX = ".h5"  # Keras-2 HDF5 by layer name (mrcnn.weights.save_legacy_h5)


############################################################
#  Graph
############################################################

@keras.saving.register_keras_serializable(package="mrcnn")
class ConstantAnchors(KL.Layer):
    """Normalized anchors [A, 4] broadcast to the batch of its input (Matterport's `anchors`)."""

    def __init__(self, anchors, **kwargs):
        super().__init__(**kwargs)
        self.anchors = np.asarray(anchors, np.float32)

    def get_config(self):
        config = super().get_config()
        config.update(anchors=self.anchors.tolist())
        return config

    def call(self, image):
        anchors = ops.convert_to_tensor(self.anchors)
        return ops.broadcast_to(anchors[None], (ops.shape(image)[0],) + self.anchors.shape)

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) + self.anchors.shape


LOSS_GRAPHS = {
    "rpn_class_loss": rpn_class_loss_graph,
    "rpn_bbox_loss": lambda *x: rpn_bbox_loss_graph(None, *x),  # the config argument is unused
    "mrcnn_class_loss": mrcnn_class_loss_graph,
    "mrcnn_bbox_loss": mrcnn_bbox_loss_graph,
    "mrcnn_mask_loss": mrcnn_mask_loss_graph,
}


@keras.saving.register_keras_serializable(package="mrcnn")
class LossLayer(KL.Layer):
    """One of the five *_loss_graph functions (LOSS_GRAPHS[loss]); outputs the loss as [1]."""

    def __init__(self, loss, **kwargs):
        super().__init__(**kwargs)
        if loss not in LOSS_GRAPHS:
            raise ValueError(f"LossLayer: loss must be one of {sorted(LOSS_GRAPHS)}, got {loss!r}")
        self.loss = loss

    def get_config(self):
        config = super().get_config()
        config.update(loss=self.loss)
        return config

    def call(self, inputs):
        return ops.reshape(LOSS_GRAPHS[self.loss](*inputs), (1,))

    def compute_output_shape(self, input_shape):
        return (1,)


class MaskRCNNTrainingModel(keras.Model):
    """Functional training model whose last five outputs are the losses (LOSS_NAMES order).

    compute_loss = sum(mean(loss) * LOSS_WEIGHTS[name]) + WEIGHT_DECAY L2 term (Matterport's
    `compile()`); each weighted loss is reported as a metric of the same name.
    """

    def __init__(self, inputs, outputs, config=None, **kwargs):
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.mrcnn_config = config
        self.loss_trackers = [keras.metrics.Mean(name=name) for name in LOSS_NAMES]

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        cfg = self.mrcnn_config
        weights = getattr(cfg, "LOSS_WEIGHTS", None) or {}
        total = 0.0
        for name, tensor, tracker in zip(LOSS_NAMES, y_pred[-len(LOSS_NAMES):], self.loss_trackers):
            value = ops.mean(tensor) * float(weights.get(name, 1.0))
            tracker.update_state(value)
            total = total + value
        decay = float(getattr(cfg, "WEIGHT_DECAY", 0.0) or 0.0)
        if decay:
            total = total + weight_decay_loss(self.trainable_weights, decay)
        return total


def build_training_model(config, stop_target_gradients=False):
    """Matterport's training-mode graph as a MaskRCNNTrainingModel.

    stop_target_gradients=False (Matterport): the heads' box targets are differentiable in the
    proposals, so the mrcnn_bbox loss also trains the RPN's box deltas; only ROI align stops
    gradients. True: the ROI targets are constants, the RPN learns from its own losses only.

    Inputs (INPUT_NAMES order): input_image [B, H, W, 3] molded, input_image_meta,
    input_rpn_match [B, A, 1], input_rpn_bbox [B, RPN_TRAIN_ANCHORS_PER_IMAGE, 4],
    input_gt_class_ids [B, MAX_GT], input_gt_boxes [B, MAX_GT, 4] pixels,
    input_gt_masks [B, h, w, MAX_GT] bool (+ input_roi when USE_RPN_ROIS is False).
    Outputs: rpn_class_logits, rpn_class, rpn_bbox, mrcnn_class_logits, mrcnn_class, mrcnn_bbox,
    mrcnn_mask, rpn_rois, output_rois, then the five losses.
    """
    check_image_size(config)
    h, w = (int(s) for s in config.IMAGE_SHAPE[:2])
    channels = int(config.IMAGE_SHAPE[2])
    batch = int(config.BATCH_SIZE)
    input_image = KL.Input(shape=[h, w, channels], batch_size=batch, name="input_image")
    input_image_meta = KL.Input(shape=[config.IMAGE_META_SIZE], batch_size=batch, name="input_image_meta")
    anchors = transform.get_anchors(config, config.IMAGE_SHAPE)
    input_rpn_match = KL.Input(shape=[anchors.shape[0], 1], batch_size=batch, name="input_rpn_match",
                               dtype="int32")
    input_rpn_bbox = KL.Input(shape=[config.RPN_TRAIN_ANCHORS_PER_IMAGE, 4], batch_size=batch,
                              name="input_rpn_bbox", dtype="float32")
    input_gt_class_ids = KL.Input(shape=[config.MAX_GT_INSTANCES], batch_size=batch,
                                  name="input_gt_class_ids", dtype="int32")
    input_gt_boxes = KL.Input(shape=[config.MAX_GT_INSTANCES, 4], batch_size=batch, name="input_gt_boxes",
                              dtype="float32")
    mask_hw = tuple(config.MINI_MASK_SHAPE) if config.USE_MINI_MASK else (h, w)
    input_gt_masks = KL.Input(shape=[mask_hw[0], mask_hw[1], config.MAX_GT_INSTANCES], batch_size=batch,
                              name="input_gt_masks", dtype="bool")
    gt_boxes = norm_boxes_graph(input_gt_boxes, (h, w))

    rpn_feature_maps, mrcnn_feature_maps, rpn_class_logits, rpn_class, rpn_bbox = build_backbone_and_rpn(
        input_image, config)
    anchors_tensor = ConstantAnchors(anchors, name="anchors")(input_image)

    rpn_rois = ProposalLayer(proposal_count=config.POST_NMS_ROIS_TRAINING, nms_threshold=config.RPN_NMS_THRESHOLD,
                             name="ROI", config=config)([rpn_class, rpn_bbox, anchors_tensor])
    active_class_ids = parse_image_meta_graph(input_image_meta)["active_class_ids"]

    inputs = [input_image, input_image_meta, input_rpn_match, input_rpn_bbox, input_gt_class_ids,
              input_gt_boxes, input_gt_masks]
    if config.USE_RPN_ROIS:
        target_rois = rpn_rois
    else:  # ROIs given as an input (debugging / training the heads alone)
        input_rois = KL.Input(shape=[config.POST_NMS_ROIS_TRAINING, 4], batch_size=batch, name="input_roi",
                              dtype="int32")
        inputs.append(input_rois)
        target_rois = norm_boxes_graph(input_rois, (h, w))

    rois, target_class_ids, target_bbox, target_mask = DetectionTargetLayer(
        config, stop_target_gradients=stop_target_gradients, name="proposal_targets")(
        [target_rois, input_gt_class_ids, gt_boxes, input_gt_masks])

    mrcnn_class_logits, mrcnn_class, mrcnn_bbox = fpn_classifier_graph(
        rois, mrcnn_feature_maps, input_image_meta, config.POOL_SIZE, config.NUM_CLASSES,
        train_bn=config.TRAIN_BN, fc_layers_size=config.FPN_CLASSIF_FC_LAYERS_SIZE)
    mrcnn_mask = build_fpn_mask_graph(rois, mrcnn_feature_maps, input_image_meta, config.MASK_POOL_SIZE,
                                      config.NUM_CLASSES, train_bn=config.TRAIN_BN)
    output_rois = KL.Identity(name="output_rois")(rois)

    loss_inputs = {
        "rpn_class_loss": [input_rpn_match, rpn_class_logits],
        "rpn_bbox_loss": [input_rpn_bbox, input_rpn_match, rpn_bbox],
        "mrcnn_class_loss": [target_class_ids, mrcnn_class_logits, active_class_ids],
        "mrcnn_bbox_loss": [target_bbox, target_class_ids, mrcnn_bbox],
        "mrcnn_mask_loss": [target_mask, target_class_ids, mrcnn_mask],
    }
    losses = [LossLayer(name, name=name)(loss_inputs[name]) for name in LOSS_NAMES]
    outputs = [rpn_class_logits, rpn_class, rpn_bbox, mrcnn_class_logits, mrcnn_class, mrcnn_bbox, mrcnn_mask,
               rpn_rois, output_rois] + losses
    return MaskRCNNTrainingModel(inputs, outputs, config=config, name="mask_rcnn")


def small_backbone(filters=(16, 32, 48, 64, 96)):
    """A small from-scratch backbone for CPU tests and quick runs: returns (backbone, compute_shapes)
    for config.BACKBONE / config.COMPUTE_BACKBONE_SHAPE. Five stride-2 conv stages give C1..C5
    at strides 2..32 (the ResNet layout); layers are named `small_c<k>_*`."""

    def backbone(input_image, stage5=True, train_bn=True):
        x = input_image
        outs = []
        for k, f in enumerate(filters, start=1):
            x = KL.Conv2D(f, 3, strides=2, padding="same", name=f"small_c{k}_conv")(x)
            x = KL.Activation("relu", name=f"small_c{k}_relu")(x)
            x = KL.Conv2D(f, 3, padding="same", name=f"small_c{k}_conv2")(x)
            x = KL.Activation("relu", name=f"small_c{k}_out")(x)
            outs.append(x)
        return outs

    def compute_shapes(image_shape, strides=(4, 8, 16, 32, 64)):
        return np.array([[int(np.ceil(image_shape[0] / s)), int(np.ceil(image_shape[1] / s))] for s in strides])

    return backbone, compute_shapes


############################################################
#  Freezing, compiling
############################################################

def set_trainable(keras_model, layer_regex, verbose=0, indent=0):
    """Make trainable exactly the layers (with weights) whose name fully matches layer_regex;
    nested models (rpn_model) are entered, TimeDistributed wrappers update their inner layer."""
    for layer in keras_model.layers:
        if isinstance(layer, keras.Model) and not isinstance(layer, MaskRCNNTrainingModel):
            if verbose:
                log.info("In model: %s", layer.name)
            set_trainable(layer, layer_regex, verbose=verbose, indent=indent + 4)
            continue
        if not layer.weights:
            continue
        trainable = bool(re.fullmatch(layer_regex, layer.name))
        if isinstance(layer, KL.TimeDistributed):
            layer.layer.trainable = trainable
        else:
            layer.trainable = trainable
        if trainable and verbose:
            log.info("%s%-20s   (%s)", " " * indent, layer.name, layer.__class__.__name__)


def compile_training_model(keras_model, config, learning_rate, momentum, jit_compile=None,
                           global_clipnorm=True):
    """SGD with momentum and gradient clipping at GRADIENT_CLIP_NORM.

    jit_compile None: False on TensorFlow, True on JAX.
    global_clipnorm=True clips the global norm over all gradients, as the Keras 2.0/2.1 `clipnorm`
    Matterport was written for; False clips each gradient tensor (tf.keras >= 2.4 `clipnorm`)."""
    if jit_compile is None:  # XLA-compiling this graph on TF takes minutes on CPU; JAX always jits
        jit_compile = keras.backend.backend() != "tensorflow"
    clip = {"global_clipnorm" if global_clipnorm else "clipnorm": config.GRADIENT_CLIP_NORM}
    optimizer = keras.optimizers.SGD(learning_rate=learning_rate, momentum=momentum, **clip)
    keras_model.compile(optimizer=optimizer, jit_compile=jit_compile)


############################################################
#  Log dir, checkpoints
############################################################

# Matterport's set_log_dir pattern (model.py, 3deaec5): `<dir>/<name><YYYYmmddTHHMM>/
# mask_rcnn_<name>_<epoch:04d>.h5`; `.weights.h5` (native Keras 3 checkpoints) is accepted too.
_CHECKPOINT_RE = re.compile(r".*[/\\][\w-]+(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})[/\\]mask\_rcnn\_[\w-]+(\d{4})"
                            r"(?:\.weights)?\.h5$")


def _log_dir_name(mrcnn_model, when):
    return os.path.join(str(mrcnn_model.model_dir),
                        "{}{:%Y%m%dT%H%M}".format(str(mrcnn_model.config.NAME).lower(), when))


def set_log_dir(mrcnn_model, model_path=None):
    """Set mrcnn_model.epoch, .log_dir (`<model_dir>/<name><YYYYmmddTHHMM>`) and .checkpoint_path
    (`mask_rcnn_<name>_{epoch:04d}.h5`). A model_path in that layout continues its log dir
    from the epoch after the one in the file name (with the training state saved beside it);
    anything else starts a new log dir at epoch 0. The folder is created by train()."""
    mrcnn_model.epoch = 0
    mrcnn_model._log_dir_resumed = False
    mrcnn_model._resume_state = None
    now = datetime.datetime.now().replace(second=0, microsecond=0)
    if model_path:
        m = _CHECKPOINT_RE.match(os.path.abspath(os.fspath(model_path)))
        if m:
            now = datetime.datetime(*(int(m.group(i)) for i in range(1, 6)))
            # File epochs are 1-based, Keras' are 0-based: restart at the next epoch.
            mrcnn_model.epoch = int(m.group(6))
            mrcnn_model._log_dir_resumed = True
            state = training_state_path(model_path)
            mrcnn_model._resume_state = state if os.path.exists(state) else None
            log.info("Re-starting from epoch %d", mrcnn_model.epoch)
    name = str(mrcnn_model.config.NAME).lower()
    mrcnn_model.log_dir = _log_dir_name(mrcnn_model, now)
    mrcnn_model._log_dir_time = now
    mrcnn_model.checkpoint_path = os.path.join(mrcnn_model.log_dir,
                                               "mask_rcnn_{}_{{epoch:04d}}{}".format(name, CHECKPOINT_SUFFIX))


def make_log_dir(mrcnn_model):
    """Create mrcnn_model.log_dir. A new run whose `<name><YYYYmmddTHHMM>` folder already exists
    (another run started in the same minute) moves on to the next free minute, so two runs never
    share a folder and the newest still sorts last for find_last(); a resumed run reuses its own."""
    if mrcnn_model._log_dir_resumed or getattr(mrcnn_model, "_log_dir_owned", False):
        os.makedirs(mrcnn_model.log_dir, exist_ok=True)
        return mrcnn_model.log_dir
    os.makedirs(str(mrcnn_model.model_dir), exist_ok=True)
    when = mrcnn_model._log_dir_time
    while True:
        log_dir = _log_dir_name(mrcnn_model, when)
        try:
            os.mkdir(log_dir)
            break
        except FileExistsError:
            when += datetime.timedelta(minutes=1)
    if log_dir != mrcnn_model.log_dir:
        log.info("%s is in use by another run; logging to %s", mrcnn_model.log_dir, log_dir)
        mrcnn_model.checkpoint_path = os.path.join(log_dir, os.path.basename(mrcnn_model.checkpoint_path))
        mrcnn_model.log_dir = log_dir
        mrcnn_model._log_dir_time = when
    mrcnn_model._log_dir_owned = True
    return log_dir


class CheckpointSkippedWarning(RuntimeWarning):
    """find_last() skipped a checkpoint it cannot read and returned an older one."""


def find_last(mrcnn_model):
    """Path of the last checkpoint of the last log dir of this config's NAME in model_dir
    (Matterport's find_last; log dirs without a checkpoint yet are skipped). A checkpoint that
    cannot be read back (cut short by a kill or a full disk, corrupt, NaN/Inf weights:
    mrcnn.weights.check_weight_file) is skipped with one warning, and the one before it used."""
    model_dir = str(mrcnn_model.model_dir)
    key = str(mrcnn_model.config.NAME).lower()
    try:
        dir_names = sorted(d for d in next(os.walk(model_dir))[1] if d.startswith(key))
    except StopIteration:
        dir_names = []
    if not dir_names:
        raise FileNotFoundError(f"Could not find a model directory for '{key}' under {model_dir}")
    for dir_name in reversed(dir_names):
        dir_name = os.path.join(model_dir, dir_name)
        checkpoints = sorted(f for f in next(os.walk(dir_name))[2]
                             if f.startswith("mask_rcnn") and f.endswith(".h5"))
        for name in reversed(checkpoints):
            path = os.path.join(dir_name, name)
            try:
                check_weight_file(path)
            except WeightLoadError as error:
                warnings.warn(f"find_last: skipped an unreadable checkpoint: {error}", CheckpointSkippedWarning, stacklevel=3)
                continue
            return path
    raise FileNotFoundError(f"Could not find weight files in {os.path.join(model_dir, dir_names[-1])}")


def training_state_path(checkpoint_path):
    """`<log_dir>/training_state_<name>_<epoch>.h5` beside `mask_rcnn_<name>_<epoch>.h5`
    (a name find_last() and Matterport's own find_last ignore)."""
    folder, name = os.path.split(os.fspath(checkpoint_path))
    stem = name[len("mask_rcnn_"):] if name.startswith("mask_rcnn_") else name
    stem = stem[:-len(".weights.h5")] if stem.endswith(".weights.h5") else stem[:-len(".h5")]
    return os.path.join(folder, f"training_state_{stem}.h5")


def _extra_state_variables(keras_model):
    """Model variables that are not weights: the random seed states of the ROI sampling."""
    weight_ids = {id(w) for w in keras_model.weights}
    return [v for v in keras_model.non_trainable_variables if id(v) not in weight_ids]


def save_training_state(path, keras_model, generator_seeds):
    """Optimizer variables (iteration, momentums), the ROI sampling's seed states and the
    data-generator seeds: what a resumed run needs besides the weights to continue exactly.
    Variables are stored in order (their paths and the trainable variables' paths beside them:
    auto-named layers get other names in another process). Written atomically."""
    import h5py

    def write(tmp):
        with h5py.File(tmp, "w") as f:
            for group, variables in (("optimizer", keras_model.optimizer.variables),
                                     ("model", _extra_state_variables(keras_model))):
                g = f.create_group(group)
                for i, v in enumerate(variables):
                    g.create_dataset(f"{i:05d}", data=ops.convert_to_numpy(v)).attrs["path"] = v.path
            f.attrs["trainable"] = np.array([v.path.encode() for v in keras_model.trainable_variables], "S")
            for key, seed in generator_seeds.items():
                f.attrs[f"{key}_seed"] = int(seed)

    write_atomic(path, write, suffix=".h5")


def read_training_state(path):
    import h5py
    with h5py.File(path, "r") as f:
        state = {group: [(str(f[group][k].attrs["path"]), np.asarray(f[group][k])) for k in sorted(f[group])]
                 for group in ("optimizer", "model")}
        state["trainable_count"] = len(f.attrs["trainable"])
        state["seeds"] = {k[:-len("_seed")]: int(v) for k, v in f.attrs.items() if k.endswith("_seed")}
    return state


def restore_training_state(keras_model, state):
    """Assign the saved optimizer and seed-state variables, in order, when they fit (same
    trainable set and shapes); the learning rate stays the new train() call's. A run that trains
    other layers than the saved one starts with a fresh optimizer, as Matterport's train() does.
    Returns the number of variables restored."""
    optimizer = keras_model.optimizer
    restored = 0
    for group, variables in (("optimizer", optimizer.variables), ("model", _extra_state_variables(keras_model))):
        saved = state[group]
        fits = len(saved) == len(variables) and all(
            tuple(value.shape) == tuple(v.shape) for (_, value), v in zip(saved, variables))
        if group == "optimizer":
            fits = fits and state["trainable_count"] == len(keras_model.trainable_variables)
        if not fits:
            log.info("training state: the saved %s state does not fit this run (other layers are "
                     "trained); it starts fresh", group)
            continue
        for (path, value), v in zip(saved, variables):
            if path.endswith("learning_rate"):
                continue
            v.assign(value)
            restored += 1
    return restored


class EpochCheckpoint(keras.callbacks.Callback):
    """After every epoch, writes the weights to checkpoint_path.format(epoch=epoch + 1) (Keras-2
    HDF5 by layer name, Matterport's format) and the training state beside them; both atomically.
    Only the newest training state is kept (it is as large as the trainable weights): resuming
    from an older checkpoint starts with a fresh optimizer."""

    def __init__(self, checkpoint_path, generator_seeds=None):
        super().__init__()
        self.checkpoint_path = checkpoint_path
        self.generator_seeds = dict(generator_seeds or {})

    def on_epoch_end(self, epoch, logs=None):
        path = self.checkpoint_path.format(epoch=epoch + 1)
        save_training_state(training_state_path(path), self.model, self.generator_seeds)
        save_weights(self.model, path)
        if epoch > 0:
            previous = training_state_path(self.checkpoint_path.format(epoch=epoch))
            if os.path.exists(previous):
                os.remove(previous)


############################################################
#  Train
############################################################

def train(mrcnn_model, train_dataset, val_dataset, learning_rate, epochs, layers, augmentation=None,
          custom_callbacks=None, no_augmentation_sources=None, verbose=1, jit_compile=None, workers=1,
          use_multiprocessing=False, seed=None):
    """Train `mrcnn_model.keras_model` (Matterport's MaskRCNN.train).

    epochs is the total epoch count: training continues from mrcnn_model.epoch (set by
    set_log_dir / load of a checkpoint) up to `epochs`. layers: 'heads', '3+', '4+', '5+', 'all'
    or a regular expression on layer names. augmentation: callable(image, masks) -> (image, masks)
    or an imgaug augmenter. A checkpoint is written after every epoch in mrcnn_model.log_dir,
    with TensorBoard logs beside it.
    """
    if getattr(mrcnn_model, "mode", "training") != "training":
        raise ValueError("Create the model in training mode to train it (MaskRCNN(mode='training', ...))")
    cfg = mrcnn_model.config
    if not isinstance(layers, str):
        raise TypeError(f"layers must be one of {sorted(LAYER_REGEX)} or a regex string, got {layers!r}")
    layer_regex = LAYER_REGEX.get(layers, layers)
    if epochs <= mrcnn_model.epoch:
        log.warning("Nothing to train: epochs=%d but the model is already at epoch %d", epochs, mrcnn_model.epoch)

    if getattr(mrcnn_model, "log_dir", None) is None:
        raise ValueError("train() needs a model_dir: MaskRCNN(mode='training', config=..., model_dir=...)")
    state = None
    if getattr(mrcnn_model, "_resume_state", None):
        state = read_training_state(mrcnn_model._resume_state)
    saved_seeds = state["seeds"] if state else {}
    pydataset_args = {"workers": workers, "use_multiprocessing": use_multiprocessing}
    train_generator = DataGenerator(train_dataset, cfg, shuffle=True, augmentation=augmentation,
                                    batch_size=cfg.BATCH_SIZE, no_augmentation_sources=no_augmentation_sources,
                                    steps_per_epoch=cfg.STEPS_PER_EPOCH,
                                    seed=saved_seeds.get("train") if seed is None else seed, **pydataset_args)
    seeds = {"train": train_generator.seed}
    val_generator = None
    if val_dataset is not None and cfg.VALIDATION_STEPS:
        val_generator = DataGenerator(val_dataset, cfg, shuffle=True, batch_size=cfg.BATCH_SIZE,
                                      steps_per_epoch=cfg.VALIDATION_STEPS,
                                      seed=saved_seeds.get("val") if seed is None else seed, **pydataset_args)
        seeds["val"] = val_generator.seed
    # The generators draw their batches from (seed, epoch, step): a resumed run sees the batches
    # the uninterrupted run would have seen.
    for generator in (train_generator, val_generator):
        if generator is not None:
            generator.epoch = mrcnn_model.epoch

    make_log_dir(mrcnn_model)
    callbacks = [EpochCheckpoint(mrcnn_model.checkpoint_path, seeds)]
    callbacks.append(keras.callbacks.TensorBoard(log_dir=mrcnn_model.log_dir, histogram_freq=0, write_graph=False))
    callbacks += list(custom_callbacks or [])

    if verbose:
        print(f"\nStarting at epoch {mrcnn_model.epoch}. LR={learning_rate}\n")
        print(f"Checkpoint Path: {mrcnn_model.checkpoint_path}")
    keras_model = mrcnn_model.keras_model
    set_trainable(keras_model, layer_regex, verbose=verbose)
    compile_training_model(keras_model, cfg, learning_rate, cfg.LEARNING_MOMENTUM, jit_compile=jit_compile)
    # Built here, not in the first step: on TensorFlow a step that creates the optimizer's
    # variables is traced twice, which doubles the start-up time of every train() call.
    keras_model.optimizer.build(keras_model.trainable_variables)
    if state is not None:
        restore_training_state(keras_model, state)
        mrcnn_model._resume_state = None  # only the first train() after loading continues it
    history = keras_model.fit(train_generator, initial_epoch=mrcnn_model.epoch, epochs=epochs,
                              steps_per_epoch=cfg.STEPS_PER_EPOCH, validation_data=val_generator,
                              validation_steps=cfg.VALIDATION_STEPS if val_generator is not None else None,
                              callbacks=callbacks, verbose=verbose)
    mrcnn_model.epoch = max(mrcnn_model.epoch, epochs)
    return history

