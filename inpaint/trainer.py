"""DeepFill v1 training (Yu et al. 2018, `train.py` + neuralgym trainers of v1.0.0), TF and JAX.

Faithful by default (numbers checked against `../shared/reference/deepfill_v1/train_step_case.npz`):
- Schedule: every generator step is preceded by CRITIC_STEPS (5) critic steps, each on its own batch
  with its own random bbox / mask (neuralgym's SecondaryTrainer with max_iters=5 runs before each
  primary step). With PRETRAIN_COARSE_NETWORK: True the original adds no critic trainer at all
  (train.py only registers the SecondaryTrainer when not pretraining), so no critic step runs;
  `train_critics_when_pretraining=True` runs them anyway.
- Optimizer: train.py builds ONE `tf.train.AdamOptimizer(lr, beta1=0.5, beta2=0.9)` and passes it
  as both `d_optimizer` and `g_optimizer`; its beta powers are shared, so every critic update
  advances the bias correction the generator update uses (the first generator step after one
  critic step uses beta powers 0.25 / 0.81 and moves each weight ~9.19e-5 instead of 1.0e-4).
  `optimizer="shared"` (default) reproduces it with one Keras Adam built on critics + generator
  variables (Keras' `iterations` plays the role of the shared beta powers);
  `optimizer="separate"` gives each network its own Adam (the textbook GAN setup).
- Initialisation: glorot-uniform kernels and zero biases (TF1's defaults for `tf.layers.conv2d` /
  `dense`), drawn from `seed`, so two runs with the same seed start from the same weights.

Data: the generator reads the training split in a fresh permutation every epoch, so an **epoch is
one pass of the generator over the training split**: `len(dataset)` = N // BATCH_SIZE generator
steps. The critic steps read their own permuted stream of the same split (5 batches per generator
step), so they see the split 5 times per epoch. Yu's `TRAIN_SPE` is neuralgym's "steps per epoch",
only a logging / snapshot period there (10000 in inpaint.yml, independent of the data size); set
TRAIN_SPE = N // BATCH_SIZE to make its epochs ours.

`step` counts generator steps (the original's global step). Snapshots hold generator + critic
weights, optimizer state, the step / data positions and the RNG state, so `resume()` continues
exactly where an interrupted run stopped:
- `snap-<step>.npz` every `snapshot_every` steps, at the end of every epoch (unless
  `snapshot_each_epoch=False`: then only at the epochs that get an `epoch-<E>.npz`) and at the
  end of `fit`; only the newest `keep_snapshots` are kept (None or 0: all);
- `epoch-<E>.npz` at the end of every epoch E (1, 2, ...): never pruned (Tables 5-6 compare them).
Temp files left by a killed run are removed when a trainer opens the log dir; after a resume,
`scalars.csv` is cut back to the resumed step, so it holds every step once. `resume()` skips, with
one warning each, snapshots that cannot be read (truncated, corrupt, NaN/Inf weights) and
continues from the newest good one.

The backend-specific steps live in `inpaint.train_step_tf` and `inpaint.train_step_jax`.
"""
from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import re
import shutil
import warnings
from pathlib import Path

import keras
import numpy as np
from keras import ops

from gonefiles.quiet import progbar as quiet_progbar
from inpaint import losses as loss_lib
from gonefiles.atomic import write_atomic
from inpaint.critics import assign_critic_weights, critic_variable_map, critics_from_config
from inpaint.masks import MaskSampler

SNAPSHOT_PATTERN = re.compile(r"^snap-(\d+)\.npz$")
EPOCH_SNAPSHOT_PATTERN = re.compile(r"^epoch-(\d+)\.npz$")
TEMP_PATTERN = re.compile(r"^\.(snap-\d+\.npz|epoch-\d+\.npz|checkpoint|scalars\.csv)\..*\.tmp(\.npz)?$")
SCALAR_KEYS = ("g_loss", "d_loss", "l1_loss", "ae_loss", "g_loss_wgan", "d_loss_wgan", "gp_loss",
               "penalty_local", "penalty_global")
OPTIMIZER_MODES = ("shared", "separate")
CRITIC_STREAM = 1 << 20  # the critics' batches: epochs CRITIC_STREAM + k of the dataset's order


class SnapshotSkippedWarning(RuntimeWarning):
    """`resume()` skipped a snapshot it cannot read and tried an older one."""


def _cfg(config, name, default=None):
    if isinstance(config, dict):
        return config.get(name, default)
    return getattr(config, name, default)


def snapshots_newest_first(log_dir):
    """Paths of the `snap-<step>.npz` in log_dir, highest step first."""
    log_dir = Path(log_dir)
    if not log_dir.is_dir():
        return []
    found = [(int(m.group(1)), log_dir / name) for name in os.listdir(log_dir)
             if (m := SNAPSHOT_PATTERN.match(name))]
    return [path for _, path in sorted(found, reverse=True)]


def latest_snapshot(log_dir):
    """Path of the newest `snap-<step>.npz` in log_dir, or None."""
    found = snapshots_newest_first(log_dir)
    return found[0] if found else None


def epoch_snapshots(log_dir):
    """{epoch: path} of the `epoch-<E>.npz` snapshots in log_dir."""
    log_dir = Path(log_dir)
    if not log_dir.is_dir():
        return {}
    return {int(m.group(1)): log_dir / name for name in sorted(os.listdir(log_dir))
            if (m := EPOCH_SNAPSHOT_PATTERN.match(name))}


def clean_temp_files(log_dir):
    """Remove the temp files a killed run left in log_dir (write_atomic's `.<name>.*.tmp`)."""
    log_dir = Path(log_dir)
    removed = []
    if log_dir.is_dir():
        for name in os.listdir(log_dir):
            if TEMP_PATTERN.match(name):
                os.unlink(log_dir / name)
                removed.append(name)
    return removed


def default_generator(config):
    from inpaint.generator import InpaintGenerator
    return InpaintGenerator(padding=_cfg(config, "PADDING", "SAME"))


def seeded_glorot_init(model, rng):
    """Glorot-uniform kernels (fan-in/out as TF1's glorot_uniform_initializer), zero biases, drawn
    from `rng` in the model's weight order."""
    for variable in model.weights:
        shape = tuple(variable.shape)
        if variable.path.endswith("bias") or len(shape) < 2:
            variable.assign(np.zeros(shape, variable.dtype))
            continue
        receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
        fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        variable.assign(rng.uniform(-limit, limit, size=shape).astype(variable.dtype))


def _plugin_metadata(plugin_name):
    """SummaryMetadata for TensorBoard's scalars / images plugins (TF backend only)."""
    from tensorflow.core.framework import summary_pb2
    metadata = summary_pb2.SummaryMetadata()
    metadata.plugin_data.plugin_name = plugin_name
    return metadata.SerializeToString()


def _clip_by_average_norm(grad, clip_norm):
    """tf.clip_by_average_norm (the original's GRADIENT_CLIP processor)."""
    size = float(np.prod(grad.shape)) if len(grad.shape) else 1.0
    norm = ops.sqrt(ops.sum(ops.square(grad)))
    return grad * ops.minimum(1.0, clip_norm * size / ops.maximum(norm, 1e-12))


def make_distribution(kind):
    """None / "none" -> None; "data_parallel" -> keras.distribution.DataParallel over every device
    (JAX) or tf.distribute.MirroredStrategy (TensorFlow)."""
    if kind in (None, "none", ""):
        return None
    if kind != "data_parallel":
        raise ValueError(f"distribution must be 'none' or 'data_parallel', got {kind!r}")
    if keras.backend.backend() == "jax":
        return keras.distribution.DataParallel()
    import tensorflow as tf
    # every GPU, else every (logical) CPU device: MirroredStrategy() alone picks one CPU
    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    return tf.distribute.MirroredStrategy([d.name for d in devices])


class SummaryWriter:
    """TensorBoard event files: `tf.summary` on TensorFlow; on JAX the maintained tensorboardX
    writer (no TensorFlow import), when installed. `open` returns None when neither is there
    (scalars.csv and PNG grids are still written)."""

    def __init__(self, kind, writer):
        self.kind, self._writer = kind, writer

    @classmethod
    def open(cls, log_dir, backend):
        if backend != "tensorflow":
            try:
                from tensorboardX import SummaryWriter as XWriter
            except ImportError:
                return None
            return cls("tensorboardX", XWriter(str(log_dir), flush_secs=30))
        try:
            import tensorflow as tf
        except ImportError:
            return None
        return cls("tf", tf.summary.create_file_writer(str(log_dir)))

    def scalar(self, name, value, step):
        if self.kind == "tensorboardX":
            self._writer.add_scalar(name, float(value), int(step))
            return
        import tensorflow as tf
        with self._writer.as_default(step=int(step)):
            tf.summary.write(name, tf.constant(float(value), tf.float32), metadata=_plugin_metadata("scalars"))

    def image(self, name, grid_uint8, step):
        if self.kind == "tensorboardX":
            self._writer.add_image(name, grid_uint8, int(step), dataformats="HWC")
            return
        import tensorflow as tf
        with self._writer.as_default(step=int(step)):
            png = tf.io.encode_png(grid_uint8)
            tensor = tf.stack([tf.as_string(grid_uint8.shape[1]), tf.as_string(grid_uint8.shape[0]), png])
            tf.summary.write(name, tensor, metadata=_plugin_metadata("images"))

    def flush(self):
        self._writer.flush()


class InpaintTrainer:
    """Generator + local/global critics + Adam, with the 5:1 WGAN-GP schedule.

    Args:
        config: InpaintConfig (or a dict with the inpaint.yml names).
        log_dir: where snapshots, TensorBoard events / CSV and image grids go (default LOG_DIR).
        generator, critics: prebuilt models (default: InpaintGenerator(PADDING), critics for
            IMG_SHAPES, both initialised from `seed`).
        mask_kind: "bbox" (original), "free_form" or "user" (with user_mask_paths).
        seed: seeds the initial weights, masks and interpolation alphas (data has its own seed).
        optimizer: "shared" (the original's single Adam, default) or "separate".
        train_critics_when_pretraining: with PRETRAIN_COARSE_NETWORK, also run the critic steps
            (the original does not).
        snapshot_every: generator steps between `snap-<step>.npz` (default TRAIN_SPE).
        keep_snapshots: how many `snap-*` to keep (epoch snapshots are never pruned).
        log_every / image_every: steps between scalar / image-grid summaries.
        distribution: None, "data_parallel", a keras.distribution.DataParallel (JAX) or a
            tf.distribute strategy (TensorFlow); BATCH_SIZE is the global batch.
        epoch_snapshots: the epochs that get an `epoch-<E>.npz` (default None: every epoch).
        snapshot_each_epoch: write `snap-<step>.npz` at the end of every epoch (default True);
            False writes it only with an `epoch-<E>.npz` (tiny runs with 1-step epochs, whose
            cost is otherwise the ~127 MB snapshot write of every step).
    """

    def __init__(self, config, log_dir=None, generator=None, critics=None, mask_kind="bbox",
                 user_mask_paths=None, seed=0, optimizer="shared", train_critics_when_pretraining=False,
                 snapshot_every=None, keep_snapshots=5, log_every=10, image_every=None,
                 distribution=None, epoch_snapshots=None, snapshot_each_epoch=True, verbose=1):
        self.config = config
        self.backend = keras.backend.backend()
        if self.backend not in ("tensorflow", "jax"):
            raise NotImplementedError(f"InpaintTrainer supports the tensorflow and jax backends, "
                                      f"not {self.backend!r}")
        if _cfg(config, "GAN", "wgan_gp") != "wgan_gp":
            raise ValueError(f"only GAN: wgan_gp is implemented (as v1.0.0 trains), got {_cfg(config, 'GAN')!r}")
        if _cfg(config, "GAN_WITH_MASK", False):
            raise ValueError("GAN_WITH_MASK=True cannot train with wgan_gp (the original's penalty feeds "
                             "3-channel interpolates to the 4-channel critic); set GAN_WITH_MASK: False")
        if optimizer not in OPTIMIZER_MODES:
            raise ValueError(f"optimizer must be one of {OPTIMIZER_MODES}, got {optimizer!r}")
        self.log_dir = Path(log_dir or _cfg(config, "LOG_DIR", "logs"))
        self.img_h, self.img_w = int(_cfg(config, "IMG_SHAPES")[0]), int(_cfg(config, "IMG_SHAPES")[1])
        if self.img_h % 8 or self.img_w % 8:
            raise ValueError(f"IMG_SHAPES height and width must be multiples of 8, got {self.img_h}x{self.img_w}")
        self.patch_h, self.patch_w = int(_cfg(config, "HEIGHT")), int(_cfg(config, "WIDTH"))
        self.batch_size = int(_cfg(config, "BATCH_SIZE", 16))
        self.critic_steps = int(_cfg(config, "CRITIC_STEPS", 5))
        self.pretrain = bool(_cfg(config, "PRETRAIN_COARSE_NETWORK", False))
        self.skip_critics = bool(self.pretrain and not train_critics_when_pretraining)
        self.snapshot_every = int(snapshot_every or _cfg(config, "TRAIN_SPE", 10000))
        self.log_every = max(1, int(log_every))
        self.image_every = int(image_every or max(self.log_every, _cfg(config, "VAL_PSTEPS", 1000)))
        self.keep_snapshots = keep_snapshots
        self.verbose = verbose
        self.seed = int(seed)
        self.optimizer_mode = optimizer
        self.epoch_snapshots = None if epoch_snapshots is None else {int(e) for e in epoch_snapshots}
        self.snapshot_each_epoch = bool(snapshot_each_epoch)
        self.removed_temp_files = clean_temp_files(self.log_dir)

        if isinstance(distribution, str) or distribution is None:
            distribution = make_distribution(distribution)
        self.distribution = distribution if self.backend == "jax" else None
        self.strategy = distribution if self.backend == "tensorflow" else None
        if distribution is not None:
            replicas = (len(distribution.device_mesh.devices.reshape(-1)) if self.backend == "jax"
                        else distribution.num_replicas_in_sync)
            if self.batch_size % replicas:
                raise ValueError(f"BATCH_SIZE {self.batch_size} is not divisible by the {replicas} devices")
        self.replicas = 1 if distribution is None else replicas

        scope = self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()
        with scope:
            init_rng = np.random.default_rng([self.seed, 3])
            self.generator = generator if generator is not None else default_generator(config)
            self.generator([np.zeros((1, self.img_h, self.img_w, 3), np.float32),
                            np.zeros((1, self.img_h, self.img_w, 1), np.float32)], training=False)
            if generator is None:
                seeded_glorot_init(self.generator, init_rng)
            self.critics = critics if critics is not None else critics_from_config(config)
            if critics is None:
                seeded_glorot_init(self.critics, init_rng)
            self.discounting_mask = loss_lib.spatial_discounting_mask(config)

            def adam():
                return keras.optimizers.Adam(
                    learning_rate=float(_cfg(config, "LEARNING_RATE", 1e-4)),
                    beta_1=float(_cfg(config, "ADAM_BETA1", 0.5)), beta_2=float(_cfg(config, "ADAM_BETA2", 0.9)),
                    epsilon=float(_cfg(config, "ADAM_EPSILON", 1e-8)))
            if optimizer == "shared":
                # critics first, as train.py creates the D training op before G's
                self.g_optimizer = self.d_optimizer = adam()
                self.g_optimizer.build(list(self.critics.trainable_variables) +
                                       list(self.generator.trainable_variables))
            else:
                self.g_optimizer = adam()
                self.d_optimizer = adam()
                self.g_optimizer.build(self.generator.trainable_variables)
                self.d_optimizer.build(self.critics.trainable_variables)

        self.mask_sampler = MaskSampler(config, mask_kind, np.random.default_rng([self.seed, 7]),
                                        user_mask_paths)
        self.alpha_rng = np.random.default_rng([self.seed, 11])
        self.step = 0
        self.epoch = 0            # completed generator epochs
        self.batch_index = 0      # generator position within the epoch
        self.critic_epoch = 0     # critic stream position
        self.critic_index = 0
        self.best_val_l1 = math.inf
        self.bad_validations = 0
        self.history = []
        self.resumed_from = None
        self._mid_step = False
        self._summary_writer = None
        self._build_steps()

    def start_run(self, log_dir, seed=None, learning_rate=None):
        """Reuse this trainer and its compiled steps for a new run in `log_dir`: weights drawn
        again from `seed`, optimizer state zeroed (learning rate `learning_rate`), counters,
        RNGs and history reset. Only for trainers that built their own generator and critics."""
        if self._summary_writer:
            self._summary_writer.flush()
        self._summary_writer = None
        self.sync_to_keras()
        if seed is not None:
            self.seed = int(seed)
        self.log_dir = Path(log_dir)
        self.removed_temp_files = clean_temp_files(self.log_dir)
        init_rng = np.random.default_rng([self.seed, 3])
        seeded_glorot_init(self.generator, init_rng)
        seeded_glorot_init(self.critics, init_rng)
        if learning_rate is not None:
            self.config = (self.config.override({"LEARNING_RATE": float(learning_rate)})
                           if hasattr(self.config, "override") else {**self.config, "LEARNING_RATE": learning_rate})
        lr = float(_cfg(self.config, "LEARNING_RATE", 1e-4))
        for optimizer in self.optimizers:
            for variable in optimizer.variables:
                variable.assign(np.zeros(tuple(variable.shape), variable.dtype))
            optimizer.learning_rate.assign(lr)
        self.mask_sampler.rng = np.random.default_rng([self.seed, 7])
        self.alpha_rng = np.random.default_rng([self.seed, 11])
        self.step = self.epoch = self.batch_index = self.critic_epoch = self.critic_index = 0
        self.best_val_l1, self.bad_validations = math.inf, 0
        self.history, self.resumed_from = [], None
        if self._jax is not None:
            self._jax.state = None
        return self

    @property
    def optimizers(self):
        return (self.g_optimizer,) if self.g_optimizer is self.d_optimizer else (self.g_optimizer, self.d_optimizer)

    # ------------------------------------------------------------------ loss wiring (shared)
    def losses(self, pos, x1, x2, mask, tl, critic_fn, alpha_local=None, alpha_global=None,
               with_gradient_penalty=True):
        bbox = (tl[0], tl[1], self.patch_h, self.patch_w)
        return loss_lib.inpaint_losses(self.config, pos, x1, x2, mask, bbox, critic_fn,
                                       discounting_mask=self.discounting_mask, alpha_local=alpha_local,
                                       alpha_global=alpha_global, with_gradient_penalty=with_gradient_penalty)

    @staticmethod
    def scalars(losses):
        return {k: losses[k] for k in SCALAR_KEYS if k in losses}

    def process_generator_grads(self, grads):
        if bool(_cfg(self.config, "GRADIENT_CLIP", False)):
            clip = float(_cfg(self.config, "GRADIENT_CLIP_VALUE", 0.1))
            grads = [None if g is None else _clip_by_average_norm(g, clip) for g in grads]
        return grads

    # ------------------------------------------------------------------ backend steps
    def _build_steps(self):
        if self.backend == "tensorflow":
            from inpaint.train_step_tf import build_tf_steps
            self._tf_critic_step, self._tf_generator_step = build_tf_steps(self)
            self._jax = None
        else:
            from inpaint.train_step_jax import JaxSteps
            self._jax = JaxSteps(self)

    def sync_to_keras(self):
        """JAX state -> Keras variables (before snapshots, summaries, evaluation)."""
        if self._jax is not None:
            self._jax.sync_to_keras()

    def critic_update(self, batch, mask, tl, alpha_local, alpha_global):
        """One critic Adam step on a B x H x W x 3 BGR [0, 255] batch; returns the loss scalars
        (computed before the update). On JAX the step updates the trainer's own state (donating
        its buffers): call ``sync_to_keras`` before reading the Keras variables."""
        batch = np.asarray(batch, np.float32)
        mask = np.asarray(mask, np.float32)
        tl = np.asarray(tl, np.int32)
        if self._jax is None:
            return self._tf_critic_step(batch, mask, tl, np.asarray(alpha_local, np.float32),
                                        np.asarray(alpha_global, np.float32))
        return self._jax.critic_step(batch, mask, tl, np.asarray(alpha_local, np.float32),
                                     np.asarray(alpha_global, np.float32))

    def generator_update(self, batch, mask, tl):
        """One generator Adam step; returns (loss scalars before the update, x1, x2)."""
        batch = np.asarray(batch, np.float32)
        mask = np.asarray(mask, np.float32)
        tl = np.asarray(tl, np.int32)
        if self._jax is None:
            return self._tf_generator_step(batch, mask, tl)
        return self._jax.generator_step(batch, mask, tl)

    # ------------------------------------------------------------------ one training iteration
    def _sample_mask(self):
        sample = self.mask_sampler.sample()
        return sample.mask, np.asarray(sample.bbox[:2], np.int32)

    def _alphas(self):
        # neuralgym random_interpolates: tf.random_uniform([B, 1]), one alpha per sample
        a_local = self.alpha_rng.random((self.batch_size, 1), dtype=np.float32)
        a_global = self.alpha_rng.random((self.batch_size, 1), dtype=np.float32)
        return a_local, a_global

    def train_step(self, next_batch, next_critic_batch=None):
        """CRITIC_STEPS critic updates (none while pretraining the coarse network) then one
        generator update; `next_batch()` / `next_critic_batch()` return B x H x W x 3 float32 BGR
        batches in [0, 255] (the critics read `next_batch` when no critic reader is given).
        Returns (scalars dict of tensors, x1, x2, the generator batch, mask)."""
        next_critic_batch = next_critic_batch or next_batch
        critic_scalars = None
        if not self.skip_critics:
            for _ in range(self.critic_steps):
                batch = next_critic_batch()
                mask, tl = self._sample_mask()
                a_local, a_global = self._alphas()
                critic_scalars = self.critic_update(batch, mask, tl, a_local, a_global)
        batch = np.asarray(next_batch(), np.float32)
        mask, tl = self._sample_mask()
        g_scalars, x1, x2 = self.generator_update(batch, mask, tl)
        scalars = {k: v for k, v in g_scalars.items() if k in ("g_loss", "l1_loss", "ae_loss", "g_loss_wgan")}
        if critic_scalars is not None:  # the critic losses as the last critic update saw them
            scalars.update({k: v for k, v in critic_scalars.items()
                            if k in ("d_loss", "d_loss_wgan", "gp_loss", "penalty_local", "penalty_global")})
        self.step += 1
        return scalars, x1, x2, batch, mask

    # ------------------------------------------------------------------ data position
    def _batch_reader(self, dataset):
        """The generator's reader: batch `batch_index` of epoch `epoch` (epochs = passes)."""
        def next_batch():
            if self.batch_index >= len(dataset):
                self.epoch += 1
                self.batch_index = 0
            data = dataset.batch(self.epoch, self.batch_index)
            self.batch_index += 1
            return data
        return next_batch

    def _critic_reader(self, dataset):
        def next_batch():
            if self.critic_index >= len(dataset):
                self.critic_epoch += 1
                self.critic_index = 0
            data = dataset.batch(CRITIC_STREAM + self.critic_epoch, self.critic_index)
            self.critic_index += 1
            return data
        return next_batch

    # ------------------------------------------------------------------ fit
    def fit(self, dataset, steps=None, epochs=None, val_dataset=None, val_every=None, patience=None,
            min_delta=0.0, max_val_batches=None):
        """Train until `steps` generator steps in total (or `epochs` epochs = epochs x len(dataset)
        steps; default MAX_ITERS), resuming from `self.step`. Early stopping: every `val_every`
        steps (default VAL_PSTEPS) the validation l1 (mean |completed - real| inside the hole,
        fixed masks) is computed; training stops after `patience` validations without an
        improvement of more than `min_delta`. Returns the list of logged scalar dicts."""
        if steps is not None and epochs is not None:
            raise ValueError("give steps or epochs, not both")
        if epochs is not None:
            total = int(epochs) * len(dataset)
        else:
            total = int(steps if steps is not None else _cfg(self.config, "MAX_ITERS", 1000000))
        val_every = int(val_every or _cfg(self.config, "VAL_PSTEPS", 1000))
        if dataset.batch_size != self.batch_size:
            raise ValueError(f"dataset batch size {dataset.batch_size} != BATCH_SIZE {self.batch_size}")
        next_batch = self._batch_reader(dataset)
        next_critic_batch = self._critic_reader(dataset)
        progbar = quiet_progbar(total, stateful_metrics=list(SCALAR_KEYS), verbose=self.verbose)
        progbar.update(self.step)
        stopped_early = False
        last_snapshot_step = None
        while self.step < total:
            try:
                self._mid_step = True
                scalars, x1, x2, batch, mask = self.train_step(next_batch, next_critic_batch)
                self._mid_step = False
            except KeyboardInterrupt:
                # keep the progress: a snapshot between steps (JAX buffers are donated mid-step,
                # so there only the last periodic snapshot is safe)
                if not self._mid_step or self.backend == "tensorflow":
                    self.save_snapshot()
                raise
            if self.step % self.log_every == 0 or self.step == total:
                values = {k: float(ops.convert_to_numpy(v)) for k, v in scalars.items()}
                self._log_scalars(values)
                progbar.update(self.step, list(values.items()))
            if self.step % self.image_every == 0:
                self._log_images(batch, mask, x1, x2)
            if val_dataset is not None and self.step % val_every == 0:
                val_l1 = self.evaluate(val_dataset, max_val_batches)
                self._log_scalars({"val_l1": val_l1}, prefix="validation")
                if val_l1 < self.best_val_l1 - min_delta:
                    self.best_val_l1, self.bad_validations = val_l1, 0
                else:
                    self.bad_validations += 1
                if patience is not None and self.bad_validations >= patience:
                    stopped_early = True
            epoch_done = self.batch_index >= len(dataset)
            keep_epoch = epoch_done and (self.epoch_snapshots is None or self.epoch + 1 in self.epoch_snapshots)
            if self.step % self.snapshot_every == 0 or (epoch_done and self.snapshot_each_epoch) or keep_epoch:
                self.save_snapshot()
                last_snapshot_step = self.step
            if keep_epoch:
                self.save_epoch_snapshot(self.epoch + 1)
            if stopped_early:
                if self.verbose:
                    print(f"\nearly stopping at step {self.step}: validation l1 did not improve for "
                          f"{self.bad_validations} validations (best {self.best_val_l1:.5f})")
                break
        if last_snapshot_step != self.step:
            self.save_snapshot()
        self.sync_to_keras()
        if self._summary_writer is not None:
            self._summary_writer.flush()
        return self.history

    # ------------------------------------------------------------------ validation
    def evaluate(self, val_dataset, max_batches=None):
        """Mean |completed - real| inside the hole over the validation set ([-1, 1] scale), with
        masks drawn from a fixed seed so every validation sees the same holes."""
        self.sync_to_keras()
        rng = np.random.default_rng([self.seed, 99])
        sampler = MaskSampler(self.config, self.mask_sampler.kind, rng,
                              None if self.mask_sampler.kind != "user" else [])
        if self.mask_sampler.kind == "user":
            sampler.user_masks = self.mask_sampler.user_masks
        total, count = 0.0, 0.0
        n_batches = len(val_dataset) if max_batches is None else min(len(val_dataset), max_batches)
        for index in range(n_batches):
            batch = val_dataset.batch(0, index)
            mask = sampler.sample().mask
            pos = batch / 127.5 - 1.0
            _, x2, _ = self.generator([pos * (1.0 - mask), mask], training=False)
            x2 = ops.convert_to_numpy(x2)
            hole = np.broadcast_to(mask, pos.shape)
            total += float(np.sum(np.abs(x2 - pos) * hole))
            count += float(hole.sum())
        return total / max(count, 1.0)

    # ------------------------------------------------------------------ logging
    def _writer(self):
        if self._summary_writer is None:
            self._summary_writer = SummaryWriter.open(self.log_dir, self.backend) or False
        return self._summary_writer

    def _log_scalars(self, values, prefix="losses"):
        record = {"step": self.step, **values}
        self.history.append(record)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        csv_path = self.log_dir / "scalars.csv"
        new = not csv_path.exists()
        with open(csv_path, "a", newline="") as fh:
            writer = csv.writer(fh)
            if new:
                writer.writerow(["step", "name", "value"])
            for key, value in values.items():
                writer.writerow([self.step, f"{prefix}/{key}", f"{value:.8g}"])
        writer = self._writer()
        if writer:
            for key, value in values.items():
                writer.scalar(f"{prefix}/{key}", value, self.step)

    def image_grid(self, batch, mask, x1, x2):
        """VIZ_MAX_OUT rows of [real | input | coarse | refined | completed] as RGB uint8 (BGR flipped)."""
        pos = np.asarray(batch, np.float32) / 127.5 - 1.0
        mask = np.broadcast_to(np.asarray(mask, np.float32), pos.shape[:3] + (1,))
        x1, x2 = ops.convert_to_numpy(x1), ops.convert_to_numpy(x2)
        incomplete = pos * (1.0 - mask)
        complete = x2 * mask + incomplete * (1.0 - mask)
        rows = np.concatenate([pos, incomplete, x1, x2, complete], axis=2)
        rows = rows[: int(_cfg(self.config, "VIZ_MAX_OUT", 10))]
        grid = np.concatenate(list(rows), axis=0)
        return np.clip((grid[..., ::-1] + 1.0) * 127.5, 0, 255).astype(np.uint8)

    def _log_images(self, batch, mask, x1, x2):
        grid = self.image_grid(batch, mask, x1, x2)
        writer = self._writer()
        if writer:
            writer.image("train/real_input_coarse_refined_completed", grid, self.step)
        else:
            from PIL import Image
            path = self.log_dir / "images" / f"step-{self.step:08d}.png"
            write_atomic(path, lambda tmp: Image.fromarray(grid).save(tmp, format="PNG"))

    # ------------------------------------------------------------------ snapshots
    def _named_variables(self):
        """{snapshot name: keras variable}: generator and critics under their TF1 checkpoint
        names (so `InpaintModel.from_checkpoint(snap-N.npz)` and `assign_*_weights` read them),
        optimizer slots by index."""
        named = {}
        if hasattr(self.generator, "checkpoint_variables"):
            named.update(self.generator.checkpoint_variables())
        else:  # any generator with the pinned call signature
            named.update({f"{self.generator.name}/{v.path}": v for v in self.generator.weights})
        named.update(critic_variable_map(self.critics))
        if self.g_optimizer is self.d_optimizer:
            prefixes = (("optimizer/shared", self.g_optimizer),)
        else:
            prefixes = (("optimizer/generator", self.g_optimizer), ("optimizer/critics", self.d_optimizer))
        for prefix, optimizer in prefixes:
            for index, variable in enumerate(optimizer.variables):
                named[f"{prefix}/{index:04d}"] = variable
        return named

    def save_snapshot(self, path=None):
        """Write `log_dir/snap-<step>.npz` atomically (native checkpoint format of
        inpaint.checkpoint: weights under their checkpoint names, optimizer state, counters, RNG),
        then prune the oldest `snap-*` beyond `keep_snapshots` (never `epoch-*`)."""
        from inpaint.checkpoint import save_native
        path = Path(path) if path is not None else self.log_dir / f"snap-{self.step}.npz"
        self.sync_to_keras()
        arrays = {name: ops.convert_to_numpy(v) for name, v in self._named_variables().items()}
        extra = {
            "step": self.step, "epoch": self.epoch, "batch_index": self.batch_index,
            "critic_epoch": self.critic_epoch, "critic_index": self.critic_index,
            "best_val_l1": None if math.isinf(self.best_val_l1) else self.best_val_l1,
            "bad_validations": self.bad_validations, "backend": self.backend,
            "optimizer": self.optimizer_mode, "seed": self.seed,
            "mask_rng": self.mask_sampler.rng.bit_generator.state,
            "alpha_rng": self.alpha_rng.bit_generator.state,
        }
        config = self.config.to_dict() if hasattr(self.config, "to_dict") else dict(self.config)
        save_native(path, arrays, config=config, extra=extra)
        write_atomic(self.log_dir / "checkpoint",
                     lambda tmp: Path(tmp).write_text(f'model_checkpoint_path: "{path.name}"\n'))
        if self.keep_snapshots:
            old = sorted((int(m.group(1)), name) for name in os.listdir(path.parent)
                         if (m := SNAPSHOT_PATTERN.match(name)))
            for _, name in old[:-self.keep_snapshots]:
                if path.parent / name != path:
                    os.unlink(path.parent / name)
        return path

    def save_epoch_snapshot(self, epoch):
        """`log_dir/epoch-<epoch>.npz`: the snapshot of the current step (a hard link to
        `snap-<step>.npz` where the file system allows, else a copy), never pruned."""
        source = self.log_dir / f"snap-{self.step}.npz"
        if not source.is_file():
            source = self.save_snapshot()
        target = self.log_dir / f"epoch-{int(epoch)}.npz"

        def link(tmp):
            os.unlink(tmp)
            try:
                os.link(source, tmp)
            except OSError:
                shutil.copyfile(source, tmp)
        write_atomic(target, link, suffix=".npz")
        return target

    def _truncate_scalars(self, step):
        """Drop the scalars.csv rows after `step` (logged by the run that was interrupted)."""
        csv_path = self.log_dir / "scalars.csv"
        if not csv_path.is_file():
            return
        with open(csv_path, newline="") as fh:
            rows = list(csv.reader(fh))
        kept = [rows[0]] + [r for r in rows[1:] if r and r[0].isdigit() and int(r[0]) <= step]
        if len(kept) == len(rows):
            return
        buf = io.StringIO()
        csv.writer(buf).writerows(kept)
        write_atomic(csv_path, lambda tmp: Path(tmp).write_text(buf.getvalue()))

    def restore(self, path):
        """Load a snapshot written by `save_snapshot` (weights, optimizers, counters, RNG)."""
        from inpaint.checkpoint import load_native
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"snapshot not found: {path}")
        arrays, manifest = load_native(path)
        meta = manifest.get("extra") or {}
        if "step" not in meta:
            raise ValueError(f"{path} is a weights-only checkpoint, not a training snapshot "
                             f"(no step / optimizer state); use load_weights for initialisation")
        saved_mode = meta.get("optimizer", "separate")
        if saved_mode != self.optimizer_mode:
            raise ValueError(f"snapshot {path} was trained with optimizer={saved_mode!r}, this trainer "
                             f"uses {self.optimizer_mode!r}; pass the same optimizer setting")
        named = self._named_variables()
        missing = sorted(set(named) - set(arrays))
        if missing:
            raise ValueError(f"snapshot {path} lacks {len(missing)} variables, e.g. {missing[0]} "
                             f"(different architecture or IMG_SHAPES?)")
        for name, variable in named.items():
            if tuple(arrays[name].shape) != tuple(variable.shape):
                raise ValueError(f"snapshot {path}: {name} has shape {tuple(arrays[name].shape)}, the "
                                 f"model expects {tuple(variable.shape)} (different IMG_SHAPES?)")
            variable.assign(np.asarray(arrays[name]).astype(variable.dtype))
        self.step, self.epoch, self.batch_index = meta["step"], meta["epoch"], meta["batch_index"]
        self.critic_epoch = meta.get("critic_epoch", 0)
        self.critic_index = meta.get("critic_index", 0)
        self.best_val_l1 = math.inf if meta["best_val_l1"] is None else meta["best_val_l1"]
        self.bad_validations = meta["bad_validations"]
        self.mask_sampler.rng.bit_generator.state = meta["mask_rng"]
        self.alpha_rng.bit_generator.state = meta["alpha_rng"]
        if self._jax is not None:
            self._jax.state = None
        self._truncate_scalars(self.step)
        self.history = [h for h in self.history if h["step"] <= self.step]
        return self.step

    def resume(self):
        """Restore the newest readable snapshot in log_dir; returns the step (0 if none).

        A snapshot that cannot be read (truncated or corrupt file, NaN/Inf weights: a
        CheckpointError from `load_native`, raised before any variable is assigned) is skipped
        with one warning, and the next older one is tried. Snapshots that are readable but do not
        fit this trainer (another optimizer setting or architecture) still raise."""
        from inpaint.checkpoint import CheckpointError
        for path in snapshots_newest_first(self.log_dir):
            try:
                step = self.restore(path)
                break
            except CheckpointError as error:
                warnings.warn(f"skipping unreadable snapshot: {error}", SnapshotSkippedWarning, stacklevel=2)
        else:
            return 0
        self.resumed_from = path
        if self.verbose:
            print(f"resumed from step {step} ({path})")
        return step

    def load_weights(self, path):
        """Initialise weights (not the optimizer state) from Yu's TF1 checkpoint (dir or snap-N
        prefix) or a native .npz: the generator, plus the critics when present (full_ckpt).
        Returns the number of assigned variables."""
        from inpaint.checkpoint import assign_generator_weights, read_checkpoint
        variables = read_checkpoint(str(path))
        assign_generator_weights(self.generator, variables)
        count = sum(1 for k in variables if k.startswith("inpaint_net/"))
        if any(k.startswith("discriminator/") for k in variables):
            count += len(assign_critic_weights(self.critics, variables))
        elif self.verbose:
            print(f"{path} holds no critic variables: critics start from random weights")
        if self._jax is not None:
            self._jax.state = None
        return count
