"""DeepFill v1 training (Yu et al. 2018, `train.py` + neuralgym trainers of v1.0.0), TF and JAX.

Schedule as the original: every generator step is preceded by CRITIC_STEPS (5) critic steps, each on
its own batch with its own random bbox / mask (neuralgym's SecondaryMultiGPUTrainer with
max_iters=5 runs before each primary step). Two Adam optimizers (LEARNING_RATE 1e-4, beta1 0.5,
beta2 0.9, epsilon 1e-8 as TF1's AdamOptimizer). The loss code is shared (`inpaint.losses`);
the step is backend-specific: TensorFlow uses tf.GradientTape inside a tf.function, JAX uses
jax.value_and_grad on `stateless_call` inside jax.jit.

`step` counts generator steps (the original's global step). Snapshots `LOG_DIR/snap-<step>.npz`
hold generator + critic weights, both optimizers' state, the step/data position and the RNG state,
so `resume()` continues exactly where an interrupted run stopped.
"""
from __future__ import annotations

import csv
import math
import os
import re
from pathlib import Path

import keras
import numpy as np
from keras import ops

from inpaint import losses as loss_lib
from inpaint.files import write_atomic
from inpaint.critics import assign_critic_weights, critic_variable_map, critics_from_config
from inpaint.masks import MaskSampler

SNAPSHOT_PATTERN = re.compile(r"^snap-(\d+)\.npz$")
SCALAR_KEYS = ("g_loss", "d_loss", "l1_loss", "ae_loss", "g_loss_wgan", "d_loss_wgan", "gp_loss",
               "penalty_local", "penalty_global")


def _cfg(config, name, default=None):
    if isinstance(config, dict):
        return config.get(name, default)
    return getattr(config, name, default)


def latest_snapshot(log_dir):
    """Path of the newest `snap-<step>.npz` in log_dir, or None."""
    log_dir = Path(log_dir)
    if not log_dir.is_dir():
        return None
    found = [(int(m.group(1)), log_dir / name) for name in os.listdir(log_dir)
             if (m := SNAPSHOT_PATTERN.match(name))]
    return max(found)[1] if found else None


def default_generator(config):
    from inpaint.generator import InpaintGenerator  # colleague's module (pinned API)
    return InpaintGenerator(padding=_cfg(config, "PADDING", "SAME"))


def _plugin_metadata(plugin_name):
    """SummaryMetadata for TensorBoard's scalars / images plugins; written through the core
    `tf.summary.write` so no `tensorboard` package is needed to produce the event files."""
    from tensorflow.core.framework import summary_pb2
    metadata = summary_pb2.SummaryMetadata()
    metadata.plugin_data.plugin_name = plugin_name
    return metadata.SerializeToString()


def _clip_by_average_norm(grad, clip_norm):
    """tf.clip_by_average_norm (the original's GRADIENT_CLIP processor)."""
    size = float(np.prod(grad.shape)) if len(grad.shape) else 1.0
    norm = ops.sqrt(ops.sum(ops.square(grad)))
    return grad * ops.minimum(1.0, clip_norm * size / ops.maximum(norm, 1e-12))


class InpaintTrainer:
    """Generator + local/global critics + two Adam optimizers, with the 5:1 WGAN-GP schedule.

    Args:
        config: InpaintConfig (or a dict with the inpaint.yml names).
        log_dir: where snapshots, TensorBoard events / CSV and image grids go (default LOG_DIR).
        generator, critics: prebuilt models (default: InpaintGenerator(PADDING), critics for IMG_SHAPES).
        mask_kind: "bbox" (original), "free_form" or "user" (with user_mask_paths).
        seed: seeds masks and interpolation alphas (data has its own seed).
        snapshot_every: generator steps between snapshots (default TRAIN_SPE); one is also written
            at the end of every data epoch and at the end of `fit`.
        log_every / image_every: steps between scalar / image-grid summaries.
        skip_critics_when_pretraining: the original still trains the critics during
            PRETRAIN_COARSE_NETWORK (their output is unused); True skips them (faster).
    """

    def __init__(self, config, log_dir=None, generator=None, critics=None, mask_kind="bbox",
                 user_mask_paths=None, seed=0, snapshot_every=None, log_every=10, image_every=None,
                 skip_critics_when_pretraining=False, keep_snapshots=5, verbose=1):
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
        self.log_dir = Path(log_dir or _cfg(config, "LOG_DIR", "logs"))
        self.img_h, self.img_w = int(_cfg(config, "IMG_SHAPES")[0]), int(_cfg(config, "IMG_SHAPES")[1])
        if self.img_h % 8 or self.img_w % 8:
            raise ValueError(f"IMG_SHAPES height and width must be multiples of 8, got {self.img_h}x{self.img_w}")
        self.patch_h, self.patch_w = int(_cfg(config, "HEIGHT")), int(_cfg(config, "WIDTH"))
        self.batch_size = int(_cfg(config, "BATCH_SIZE", 16))
        self.critic_steps = int(_cfg(config, "CRITIC_STEPS", 5))
        self.pretrain = bool(_cfg(config, "PRETRAIN_COARSE_NETWORK", False))
        self.skip_critics = bool(skip_critics_when_pretraining and self.pretrain)
        self.snapshot_every = int(snapshot_every or _cfg(config, "TRAIN_SPE", 10000))
        self.log_every = max(1, int(log_every))
        self.image_every = int(image_every or max(self.log_every, _cfg(config, "VAL_PSTEPS", 1000)))
        self.keep_snapshots = keep_snapshots
        self.verbose = verbose
        self.seed = int(seed)

        self.generator = generator if generator is not None else default_generator(config)
        self.critics = critics if critics is not None else critics_from_config(config)
        self.generator([np.zeros((1, self.img_h, self.img_w, 3), np.float32),
                        np.zeros((1, self.img_h, self.img_w, 1), np.float32)], training=False)
        self.discounting_mask = loss_lib.spatial_discounting_mask(config)

        def adam():
            return keras.optimizers.Adam(
                learning_rate=float(_cfg(config, "LEARNING_RATE", 1e-4)),
                beta_1=float(_cfg(config, "ADAM_BETA1", 0.5)), beta_2=float(_cfg(config, "ADAM_BETA2", 0.9)),
                epsilon=float(_cfg(config, "ADAM_EPSILON", 1e-8)))
        self.g_optimizer = adam()
        self.d_optimizer = adam()
        self.g_optimizer.build(self.generator.trainable_variables)
        self.d_optimizer.build(self.critics.trainable_variables)

        self.mask_sampler = MaskSampler(config, mask_kind, np.random.default_rng([self.seed, 7]),
                                        user_mask_paths)
        self.alpha_rng = np.random.default_rng([self.seed, 11])
        self.step = 0
        self.epoch = 0
        self.batch_index = 0
        self.best_val_l1 = math.inf
        self.bad_validations = 0
        self.history = []
        self._jax_state = None
        self._mid_step = False
        self._summary_writer = None
        self._build_steps()

    # ------------------------------------------------------------------ loss wiring (shared)
    def _losses(self, pos, x1, x2, mask, tl, critic_fn, alpha_local=None, alpha_global=None,
                with_gradient_penalty=True):
        bbox = (tl[0], tl[1], self.patch_h, self.patch_w)
        return loss_lib.inpaint_losses(self.config, pos, x1, x2, mask, bbox, critic_fn,
                                       discounting_mask=self.discounting_mask, alpha_local=alpha_local,
                                       alpha_global=alpha_global, with_gradient_penalty=with_gradient_penalty)

    @staticmethod
    def _scalars(losses):
        return {k: losses[k] for k in SCALAR_KEYS if k in losses}

    def _process_generator_grads(self, grads):
        if bool(_cfg(self.config, "GRADIENT_CLIP", False)):
            clip = float(_cfg(self.config, "GRADIENT_CLIP_VALUE", 0.1))
            grads = [None if g is None else _clip_by_average_norm(g, clip) for g in grads]
        return grads

    # ------------------------------------------------------------------ backend steps
    def _build_steps(self):
        if self.backend == "tensorflow":
            self._build_tf_steps()
        else:
            self._build_jax_steps()

    def _build_tf_steps(self):
        import tensorflow as tf
        generator, critics = self.generator, self.critics

        def critic_fn(a, b):
            return critics([a, b], training=True)

        @tf.function(reduce_retracing=True)
        def critic_step(batch, mask, tl, alpha_local, alpha_global):
            pos = batch / 127.5 - 1.0
            x1, x2, _ = generator([pos * (1.0 - mask), mask], training=True)
            x1, x2 = tf.stop_gradient(x1), tf.stop_gradient(x2)
            with tf.GradientTape() as tape:
                losses = self._losses(pos, x1, x2, mask, tl, critic_fn, alpha_local, alpha_global)
            grads = tape.gradient(losses["d_loss"], critics.trainable_variables)
            self.d_optimizer.apply_gradients(zip(grads, critics.trainable_variables))
            return self._scalars(losses)

        @tf.function(reduce_retracing=True)
        def generator_step(batch, mask, tl):
            pos = batch / 127.5 - 1.0
            with tf.GradientTape() as tape:
                x1, x2, _ = generator([pos * (1.0 - mask), mask], training=True)
                losses = self._losses(pos, x1, x2, mask, tl, critic_fn, with_gradient_penalty=False)
            grads = tape.gradient(losses["g_loss"], generator.trainable_variables)
            grads = self._process_generator_grads(grads)
            self.g_optimizer.apply_gradients(zip(grads, generator.trainable_variables))
            return self._scalars(losses), x1, x2

        self._tf_critic_step = critic_step
        self._tf_generator_step = generator_step

    def _build_jax_steps(self):
        import jax
        generator, critics = self.generator, self.critics
        g_opt, d_opt = self.g_optimizer, self.d_optimizer

        def critic_call(d_tv, d_ntv):
            return lambda a, b: critics.stateless_call(d_tv, d_ntv, [a, b], training=True)[0]

        def generate(g_tv, g_ntv, pos, mask):
            (x1, x2, _), g_ntv = generator.stateless_call(g_tv, g_ntv, [pos * (1.0 - mask), mask], training=True)
            return x1, x2, g_ntv

        def d_loss_fn(d_tv, d_ntv, x1, x2, pos, mask, tl, alpha_local, alpha_global):
            losses = self._losses(pos, x1, x2, mask, tl, critic_call(d_tv, d_ntv), alpha_local, alpha_global)
            return losses["d_loss"], self._scalars(losses)

        def g_loss_fn(g_tv, g_ntv, d_tv, d_ntv, pos, mask, tl):
            x1, x2, g_ntv = generate(g_tv, g_ntv, pos, mask)
            losses = self._losses(pos, x1, x2, mask, tl, critic_call(d_tv, d_ntv), with_gradient_penalty=False)
            return losses["g_loss"], (self._scalars(losses), x1, x2, g_ntv)

        d_grad = jax.value_and_grad(d_loss_fn, has_aux=True)
        g_grad = jax.value_and_grad(g_loss_fn, has_aux=True)

        def critic_step(state, batch, mask, tl, alpha_local, alpha_global):
            g_tv, g_ntv, d_tv, d_ntv, g_ov, d_ov = state
            pos = batch / 127.5 - 1.0
            x1, x2, _ = generate(g_tv, g_ntv, pos, mask)
            x1, x2 = jax.lax.stop_gradient(x1), jax.lax.stop_gradient(x2)
            (_, scalars), grads = d_grad(d_tv, d_ntv, x1, x2, pos, mask, tl, alpha_local, alpha_global)
            d_tv, d_ov = d_opt.stateless_apply(d_ov, grads, d_tv)
            return (g_tv, g_ntv, d_tv, d_ntv, g_ov, d_ov), scalars

        def generator_step(state, batch, mask, tl):
            g_tv, g_ntv, d_tv, d_ntv, g_ov, d_ov = state
            pos = batch / 127.5 - 1.0
            (_, (scalars, x1, x2, g_ntv)), grads = g_grad(g_tv, g_ntv, d_tv, d_ntv, pos, mask, tl)
            grads = self._process_generator_grads(grads)
            g_tv, g_ov = g_opt.stateless_apply(g_ov, grads, g_tv)
            return (g_tv, g_ntv, d_tv, d_ntv, g_ov, d_ov), scalars, x1, x2

        self._jax_critic_step = jax.jit(critic_step, donate_argnums=0)
        self._jax_generator_step = jax.jit(generator_step, donate_argnums=0)

    def _jax_pull_state(self):
        """Keras variables -> the JAX state tuple (after building / restoring)."""
        self._jax_state = (
            [v.value for v in self.generator.trainable_variables],
            [v.value for v in self.generator.non_trainable_variables],
            [v.value for v in self.critics.trainable_variables],
            [v.value for v in self.critics.non_trainable_variables],
            [v.value for v in self.g_optimizer.variables],
            [v.value for v in self.d_optimizer.variables],
        )

    def sync_to_keras(self):
        """JAX state -> Keras variables (before snapshots, summaries, evaluation)."""
        if self.backend != "jax" or self._jax_state is None:
            return
        g_tv, g_ntv, d_tv, d_ntv, g_ov, d_ov = self._jax_state
        for variables, values in ((self.generator.trainable_variables, g_tv),
                                  (self.generator.non_trainable_variables, g_ntv),
                                  (self.critics.trainable_variables, d_tv),
                                  (self.critics.non_trainable_variables, d_ntv),
                                  (self.g_optimizer.variables, g_ov), (self.d_optimizer.variables, d_ov)):
            for variable, value in zip(variables, values):
                variable.assign(value)
        self._jax_state = None  # re-pulled lazily: the donated buffers must not be reused

    # ------------------------------------------------------------------ one training iteration
    def _sample_mask(self):
        sample = self.mask_sampler.sample()
        return sample.mask, np.asarray(sample.bbox[:2], np.int32)

    def _alphas(self):
        # neuralgym random_interpolates: tf.random_uniform([B, 1]), one alpha per sample
        a_local = self.alpha_rng.random((self.batch_size, 1), dtype=np.float32)
        a_global = self.alpha_rng.random((self.batch_size, 1), dtype=np.float32)
        return a_local, a_global

    def train_step(self, next_batch):
        """CRITIC_STEPS critic updates then one generator update; `next_batch()` returns a
        B x H x W x 3 float32 BGR batch in [0, 255]. Returns (scalars dict of floats-to-be, x1, x2,
        the generator batch, mask)."""
        critic_scalars = None
        if not self.skip_critics:
            for _ in range(self.critic_steps):
                batch = np.asarray(next_batch(), np.float32)
                mask, tl = self._sample_mask()
                a_local, a_global = self._alphas()
                if self.backend == "tensorflow":
                    critic_scalars = self._tf_critic_step(batch, mask, tl, a_local, a_global)
                else:
                    if self._jax_state is None:
                        self._jax_pull_state()
                    self._jax_state, critic_scalars = self._jax_critic_step(
                        self._jax_state, batch, mask, tl, a_local, a_global)
        batch = np.asarray(next_batch(), np.float32)
        mask, tl = self._sample_mask()
        if self.backend == "tensorflow":
            g_scalars, x1, x2 = self._tf_generator_step(batch, mask, tl)
        else:
            if self._jax_state is None:
                self._jax_pull_state()
            self._jax_state, g_scalars, x1, x2 = self._jax_generator_step(self._jax_state, batch, mask, tl)
        scalars = {k: v for k, v in g_scalars.items() if k in ("g_loss", "l1_loss", "ae_loss", "g_loss_wgan")}
        if critic_scalars is not None:  # the critic losses as the last critic update saw them
            scalars.update({k: v for k, v in critic_scalars.items()
                            if k in ("d_loss", "d_loss_wgan", "gp_loss", "penalty_local", "penalty_global")})
        self.step += 1
        return scalars, x1, x2, batch, mask

    # ------------------------------------------------------------------ data position
    def _batch_reader(self, dataset, on_epoch_end):
        def next_batch():
            if self.batch_index >= len(dataset):
                self.epoch += 1
                self.batch_index = 0
                on_epoch_end()
            data = dataset.batch(self.epoch, self.batch_index)
            self.batch_index += 1
            return data
        return next_batch

    # ------------------------------------------------------------------ fit
    def fit(self, dataset, steps=None, val_dataset=None, val_every=None, patience=None, min_delta=0.0,
            max_val_batches=None):
        """Train until `steps` generator steps in total (default MAX_ITERS), resuming from
        `self.step`. Early stopping: every `val_every` steps (default VAL_PSTEPS) the validation
        l1 (mean |completed - real| inside the hole, fixed masks) is computed; training stops after
        `patience` validations without an improvement of more than `min_delta`.
        Returns the list of logged scalar dicts."""
        total = int(steps if steps is not None else _cfg(self.config, "MAX_ITERS", 1000000))
        val_every = int(val_every or _cfg(self.config, "VAL_PSTEPS", 1000))
        if dataset.batch_size != self.batch_size:
            raise ValueError(f"dataset batch size {dataset.batch_size} != BATCH_SIZE {self.batch_size}")
        epoch_ended = []
        next_batch = self._batch_reader(dataset, lambda: epoch_ended.append(self.epoch))
        progbar = keras.utils.Progbar(total, stateful_metrics=list(SCALAR_KEYS), verbose=self.verbose)
        progbar.update(self.step)
        stopped_early = False
        last_snapshot_step = None
        while self.step < total:
            try:
                self._mid_step = True
                scalars, x1, x2, batch, mask = self.train_step(next_batch)
                self._mid_step = False
            except KeyboardInterrupt:
                # keep the progress: a snapshot between steps (JAX buffers are donated mid-step,
                # so there only the last periodic snapshot is safe)
                if not self._mid_step or self.backend == "tensorflow":
                    self.save_snapshot()
                raise
            values = None
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
            if self.step % self.snapshot_every == 0 or epoch_ended:
                epoch_ended.clear()
                self.save_snapshot()
                last_snapshot_step = self.step
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
            try:
                import tensorflow as tf
                self._summary_writer = tf.summary.create_file_writer(str(self.log_dir))
            except ImportError:
                self._summary_writer = False
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
            import tensorflow as tf
            with writer.as_default(step=self.step):
                for key, value in values.items():
                    tf.summary.write(f"{prefix}/{key}", tf.constant(value, tf.float32),
                                     metadata=_plugin_metadata("scalars"))

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
            import tensorflow as tf
            with writer.as_default(step=self.step):
                png = tf.io.encode_png(grid)
                tensor = tf.stack([tf.as_string(grid.shape[1]), tf.as_string(grid.shape[0]), png])
                tf.summary.write("train/real_input_coarse_refined_completed", tensor,
                                 metadata=_plugin_metadata("images"))
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
        for prefix, optimizer in (("optimizer/generator", self.g_optimizer),
                                  ("optimizer/critics", self.d_optimizer)):
            for index, variable in enumerate(optimizer.variables):
                named[f"{prefix}/{index:04d}"] = variable
        return named

    def save_snapshot(self, path=None):
        """Write `log_dir/snap-<step>.npz` atomically (native checkpoint format of
        inpaint.checkpoint: weights under their checkpoint names, optimizer state, counters, RNG)."""
        from inpaint.checkpoint import save_native
        path = Path(path) if path is not None else self.log_dir / f"snap-{self.step}.npz"
        self.sync_to_keras()
        arrays = {name: ops.convert_to_numpy(v) for name, v in self._named_variables().items()}
        extra = {
            "step": self.step, "epoch": self.epoch, "batch_index": self.batch_index,
            "best_val_l1": None if math.isinf(self.best_val_l1) else self.best_val_l1,
            "bad_validations": self.bad_validations, "backend": self.backend,
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
        self.best_val_l1 = math.inf if meta["best_val_l1"] is None else meta["best_val_l1"]
        self.bad_validations = meta["bad_validations"]
        self.mask_sampler.rng.bit_generator.state = meta["mask_rng"]
        self.alpha_rng.bit_generator.state = meta["alpha_rng"]
        self._jax_state = None
        return self.step

    def resume(self):
        """Restore the newest snapshot in log_dir if there is one; returns the step (0 if none)."""
        path = latest_snapshot(self.log_dir)
        if path is None:
            return 0
        step = self.restore(path)
        if self.verbose:
            print(f"resumed from {path} at step {step}")
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
        self._jax_state = None
        return count
