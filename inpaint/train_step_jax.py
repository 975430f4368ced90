"""JAX train steps of InpaintTrainer: jax.value_and_grad on `stateless_call` inside jax.jit.

The training state is a tuple of value lists (generator trainable / non-trainable, critics
trainable / non-trainable, one list per optimizer). It lives on the device between steps
(`JaxSteps.state`) and is written back to the Keras variables by `sync_to_keras` (before
snapshots, summaries and evaluation).

Data parallel (`trainer.distribution` = a `keras.distribution.DataParallel`): the global batch is
sharded over the mesh's batch axis and the state replicated; jit partitions the step (GSPMD), so
the loss and gradients are those of the global batch, exactly as on one device.
"""
from __future__ import annotations

import warnings


class JaxSteps:
    def __init__(self, trainer):
        import jax

        self.trainer = trainer
        self.state = None
        generator, critics = trainer.generator, trainer.critics
        g_opt, d_opt = trainer.g_optimizer, trainer.d_optimizer
        shared = g_opt is d_opt
        self.shared = shared

        def critic_call(d_tv, d_ntv):
            return lambda a, b: critics.stateless_call(d_tv, d_ntv, [a, b], training=True)[0]

        def generate(g_tv, g_ntv, pos, mask):
            (x1, x2, _), g_ntv = generator.stateless_call(g_tv, g_ntv, [pos * (1.0 - mask), mask],
                                                          training=True)
            return x1, x2, g_ntv

        def d_loss_fn(d_tv, d_ntv, x1, x2, pos, mask, tl, alpha_local, alpha_global):
            losses = trainer.losses(pos, x1, x2, mask, tl, critic_call(d_tv, d_ntv), alpha_local,
                                    alpha_global)
            return losses["d_loss"], trainer.scalars(losses)

        def g_loss_fn(g_tv, g_ntv, d_tv, d_ntv, pos, mask, tl):
            x1, x2, g_ntv = generate(g_tv, g_ntv, pos, mask)
            losses = trainer.losses(pos, x1, x2, mask, tl, critic_call(d_tv, d_ntv),
                                    with_gradient_penalty=False)
            return losses["g_loss"], (trainer.scalars(losses), x1, x2, g_ntv)

        d_grad = jax.value_and_grad(d_loss_fn, has_aux=True)
        g_grad = jax.value_and_grad(g_loss_fn, has_aux=True)
        n_g = len(generator.trainable_variables)
        n_d = len(critics.trainable_variables)

        def apply(optimizer, ov, grads, values, other_values, first):
            """One Adam update of `values`; a shared optimizer was built on critics + generator
            variables and gets None (skipped) for the other network's gradients."""
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "Gradients do not exist for variables ..."
                if not shared:
                    return optimizer.stateless_apply(ov, grads, values)
                if first:  # critics first (the optimizer's variable order)
                    new, ov = optimizer.stateless_apply(ov, list(grads) + [None] * n_g,
                                                        list(values) + list(other_values))
                    return new[:n_d], ov
                new, ov = optimizer.stateless_apply(ov, [None] * n_d + list(grads),
                                                    list(other_values) + list(values))
                return new[n_d:], ov

        def critic_step(state, batch, mask, tl, alpha_local, alpha_global):
            g_tv, g_ntv, d_tv, d_ntv, ovs = state
            pos = batch / 127.5 - 1.0
            x1, x2, _ = generate(g_tv, g_ntv, pos, mask)
            x1, x2 = jax.lax.stop_gradient(x1), jax.lax.stop_gradient(x2)
            (_, scalars), grads = d_grad(d_tv, d_ntv, x1, x2, pos, mask, tl, alpha_local, alpha_global)
            d_ov = ovs[0] if shared else ovs[1]
            d_tv, d_ov = apply(d_opt, d_ov, grads, d_tv, g_tv, True)
            ovs = (d_ov,) if shared else (ovs[0], d_ov)
            return (g_tv, g_ntv, d_tv, d_ntv, ovs), scalars

        def generator_step(state, batch, mask, tl):
            g_tv, g_ntv, d_tv, d_ntv, ovs = state
            pos = batch / 127.5 - 1.0
            (_, (scalars, x1, x2, g_ntv)), grads = g_grad(g_tv, g_ntv, d_tv, d_ntv, pos, mask, tl)
            grads = trainer.process_generator_grads(grads)
            g_tv, g_ov = apply(g_opt, ovs[0], grads, g_tv, d_tv, False)
            ovs = (g_ov,) if shared else (g_ov, ovs[1])
            return (g_tv, g_ntv, d_tv, d_ntv, ovs), scalars, x1, x2

        self._critic_step = jax.jit(critic_step, donate_argnums=0)
        self._generator_step = jax.jit(generator_step, donate_argnums=0)

    # ------------------------------------------------------------------ state
    def _optimizers(self):
        t = self.trainer
        return (t.g_optimizer,) if self.shared else (t.g_optimizer, t.d_optimizer)

    def _groups(self):
        t = self.trainer
        return [t.generator.trainable_variables, t.generator.non_trainable_variables,
                t.critics.trainable_variables, t.critics.non_trainable_variables]

    def pull(self):
        """Keras variables -> the state tuple (after building / restoring)."""
        groups = [[v.value for v in group] for group in self._groups()]
        ovs = tuple([v.value for v in opt.variables] for opt in self._optimizers())
        self.state = self._place((*groups, ovs))

    def _place(self, state):
        distribution = getattr(self.trainer, "distribution", None)
        if distribution is None:
            return state
        import jax
        from jax.sharding import NamedSharding, PartitionSpec

        replicated = NamedSharding(distribution.device_mesh.backend_mesh, PartitionSpec())
        return jax.tree_util.tree_map(lambda x: jax.device_put(x, replicated), state)

    def shard_batch(self, batch):
        distribution = getattr(self.trainer, "distribution", None)
        if distribution is None:
            return batch
        import jax
        from jax.sharding import NamedSharding, PartitionSpec

        mesh = distribution.device_mesh
        axis = distribution.batch_dim_name
        spec = PartitionSpec(axis, *([None] * (batch.ndim - 1)))
        return jax.device_put(batch, NamedSharding(mesh.backend_mesh, spec))

    def sync_to_keras(self):
        if self.state is None:
            return
        *groups, ovs = self.state
        for variables, values in zip(self._groups(), groups):
            for variable, value in zip(variables, values):
                variable.assign(value)
        for optimizer, values in zip(self._optimizers(), ovs):
            for variable, value in zip(optimizer.variables, values):
                variable.assign(value)
        self.state = None  # re-pulled lazily: the donated buffers must not be reused

    # ------------------------------------------------------------------ steps
    def critic_step(self, batch, mask, tl, alpha_local, alpha_global):
        if self.state is None:
            self.pull()
        alpha_local, alpha_global = self.shard_batch(alpha_local), self.shard_batch(alpha_global)
        self.state, scalars = self._critic_step(self.state, self.shard_batch(batch), mask, tl,
                                                alpha_local, alpha_global)
        return scalars

    def generator_step(self, batch, mask, tl):
        if self.state is None:
            self.pull()
        self.state, scalars, x1, x2 = self._generator_step(self.state, self.shard_batch(batch), mask, tl)
        return scalars, x1, x2
