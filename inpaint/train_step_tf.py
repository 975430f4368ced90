"""TensorFlow train steps of InpaintTrainer: tf.GradientTape inside tf.function.

`build_tf_steps(trainer)` returns `(critic_step, generator_step)`:
- `critic_step(batch, mask, tl, alpha_local, alpha_global) -> scalars` (one critic Adam update);
- `generator_step(batch, mask, tl) -> (scalars, x1, x2)` (one generator Adam update).
`batch` is B x H x W x 3 float32 BGR in [0, 255]; `mask` 1 x H x W x 1 (1 = hole); `tl` the
local patch's (top, left). With a tf.distribute strategy (`trainer.strategy`), each replica runs
the step on its slice of the global batch and the gradients are averaged across replicas (the
losses are batch means, so the averaged loss equals the single-device loss of the global batch).
"""
from __future__ import annotations

import warnings


def build_tf_steps(trainer):
    import tensorflow as tf

    generator, critics = trainer.generator, trainer.critics
    g_opt, d_opt = trainer.g_optimizer, trainer.d_optimizer
    strategy = getattr(trainer, "strategy", None)

    def critic_fn(a, b):
        return critics([a, b], training=True)

    def replica_scale():
        return 1.0 if strategy is None else 1.0 / strategy.num_replicas_in_sync

    def critic_body(batch, mask, tl, alpha_local, alpha_global):
        pos = batch / 127.5 - 1.0
        x1, x2, _ = generator([pos * (1.0 - mask), mask], training=True)
        x1, x2 = tf.stop_gradient(x1), tf.stop_gradient(x2)
        with tf.GradientTape() as tape:
            losses = trainer.losses(pos, x1, x2, mask, tl, critic_fn, alpha_local, alpha_global)
            loss = losses["d_loss"] * replica_scale()
        grads = tape.gradient(loss, critics.trainable_variables)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            d_opt.apply_gradients(zip(grads, critics.trainable_variables))
        return trainer.scalars(losses)

    def generator_body(batch, mask, tl):
        pos = batch / 127.5 - 1.0
        with tf.GradientTape() as tape:
            x1, x2, _ = generator([pos * (1.0 - mask), mask], training=True)
            losses = trainer.losses(pos, x1, x2, mask, tl, critic_fn, with_gradient_penalty=False)
            loss = losses["g_loss"] * replica_scale()
        grads = tape.gradient(loss, generator.trainable_variables)
        grads = trainer.process_generator_grads(grads)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            g_opt.apply_gradients(zip(grads, generator.trainable_variables))
        return trainer.scalars(losses), x1, x2

    if strategy is None:
        return (tf.function(critic_body, reduce_retracing=True),
                tf.function(generator_body, reduce_retracing=True))

    def mean(values):
        return tf.nest.map_structure(
            lambda v: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None), values)

    def split(batch, *rest):
        """The global batch -> per-replica slices (the mask / alphas follow the batch)."""
        n = strategy.num_replicas_in_sync

        def value_fn(ctx):
            index = ctx.replica_id_in_sync_group
            size = tf.shape(batch)[0] // n
            out = [batch[index * size:(index + 1) * size]]
            for item in rest:
                if item is not None and item.shape.rank == 2 and item.shape[0] == batch.shape[0]:
                    out.append(item[index * size:(index + 1) * size])  # per-sample alphas
                else:
                    out.append(item)
            return tuple(out)
        return strategy.experimental_distribute_values_from_function(value_fn)

    @tf.function(reduce_retracing=True)
    def critic_step(batch, mask, tl, alpha_local, alpha_global):
        args = split(batch, mask, tl, alpha_local, alpha_global)
        return mean(strategy.run(critic_body, args=args))

    @tf.function(reduce_retracing=True)
    def generator_step(batch, mask, tl):
        args = split(batch, mask, tl)
        scalars, x1, x2 = strategy.run(generator_body, args=args)
        x1 = tf.concat(strategy.experimental_local_results(x1), 0)
        x2 = tf.concat(strategy.experimental_local_results(x2), 0)
        return mean(scalars), x1, x2

    return critic_step, generator_step
