"""DeepFill v1 training losses (Yu et al. 2018), backend-neutral (`keras.ops`).

Every formula follows `inpaint_model.py` (`build_graph_with_losses`, `spatial_discounting_mask`) and
neuralgym's `gan_ops` (`gan_wgan_loss`, `random_interpolates`, `gradients_penalty`) of
JiahuiYu/generative_inpainting v1.0.0; the golden values are in
`../shared/reference/deepfill_v1/losses_case.npz`. The only backend-specific piece is
`input_gradients` (d critic / d input for the gradient penalty), dispatched on the Keras backend.
"""
from __future__ import annotations

import numpy as np
import keras
from keras import ops


def _cfg(config, name, default=None):
    """Config field by the original inpaint.yml name (object attribute or mapping)."""
    if isinstance(config, dict):
        return config.get(name, default)
    return getattr(config, name, default)


def spatial_discounting_mask(config=None, *, height=None, width=None, gamma=None, discounted=None):
    """1 x HEIGHT x WIDTH x 1 float32 weights `max(g**min(i, H-i), g**min(j, W-j))`.

    As the original: float64 arithmetic cast once to float32; the mask is asymmetric (row 0 is 1,
    row H-1 is g). With DISCOUNTED_MASK False it is all ones.
    """
    height = int(height if height is not None else _cfg(config, "HEIGHT"))
    width = int(width if width is not None else _cfg(config, "WIDTH"))
    gamma = float(gamma if gamma is not None else _cfg(config, "SPATIAL_DISCOUNTING_GAMMA", 0.9))
    if discounted is None:
        discounted = bool(_cfg(config, "DISCOUNTED_MASK", True))
    if not discounted:
        return np.ones((1, height, width, 1), np.float32)
    rows = np.arange(height)
    cols = np.arange(width)
    row_weight = np.array([gamma ** min(i, height - i) for i in rows], np.float64)
    col_weight = np.array([gamma ** min(j, width - j) for j in cols], np.float64)
    values = np.maximum(row_weight[:, None], col_weight[None, :])
    return values.astype(np.float32)[None, :, :, None]


def local_patch(x, bbox):
    """Crop `x` (B x H x W x C) to bbox (t, l, h, w). t, l may be tensors (traced); h, w are static."""
    t, l, h, w = bbox
    if isinstance(t, (int, np.integer)) and isinstance(l, (int, np.integer)):
        return x[:, int(t):int(t) + int(h), int(l):int(l) + int(w), :]
    shape = ops.shape(x)
    start = ops.stack([ops.convert_to_tensor(0, "int32"), ops.cast(t, "int32"),
                       ops.cast(l, "int32"), ops.convert_to_tensor(0, "int32")])
    return ops.slice(x, start, (shape[0], int(h), int(w), shape[3]))


def l1_loss(batch_pos, x1, x2, bbox, discounting_mask, coarse_l1_alpha=1.2, pretrain_coarse=False):
    """Spatially discounted l1 over the local patch: coarse (x COARSE_L1_ALPHA) + refined."""
    lp_pos = local_patch(batch_pos, bbox)
    loss = coarse_l1_alpha * ops.mean(ops.abs(lp_pos - local_patch(x1, bbox)) * discounting_mask)
    if not pretrain_coarse:
        loss = loss + ops.mean(ops.abs(lp_pos - local_patch(x2, bbox)) * discounting_mask)
    return loss


def ae_loss(batch_pos, x1, x2, mask, coarse_l1_alpha=1.2, pretrain_coarse=False):
    """l1 outside the hole, normalised by mean(1 - mask) (as the original)."""
    known = 1.0 - mask
    loss = coarse_l1_alpha * ops.mean(ops.abs(batch_pos - x1) * known)
    if not pretrain_coarse:
        loss = loss + ops.mean(ops.abs(batch_pos - x2) * known)
    return loss / ops.mean(known)


def gan_wgan_loss(pos, neg):
    """neuralgym `gan_wgan_loss`: returns (g_loss, d_loss) = (-mean(neg), mean(neg - pos))."""
    d_loss = ops.mean(neg - pos)
    g_loss = -ops.mean(neg)
    return g_loss, d_loss


def random_interpolates(x, y, alpha=None, seed=None):
    """`x + alpha * (y - x)` with one alpha per sample (B x 1), uniform [0, 1) when not given."""
    batch = ops.shape(x)[0]
    if alpha is None:
        alpha = keras.random.uniform((batch, 1), dtype=x.dtype, seed=seed)
    alpha = ops.reshape(ops.convert_to_tensor(alpha, x.dtype), (-1,) + (1,) * (len(x.shape) - 1))
    return x + alpha * (y - x)


def gradient_slopes(gradients, mask=None):
    """Per-sample `sqrt(sum(grad**2 * mask))` over H, W, C (neuralgym `gradients_penalty`)."""
    squared = ops.square(gradients)
    if mask is not None:
        squared = squared * mask
    return ops.sqrt(ops.sum(squared, axis=tuple(range(1, len(gradients.shape)))))


def gradients_penalty(gradients, mask=None, norm=1.0):
    """`mean_b((slope_b - norm)**2)` from the critic's input gradients, masked."""
    return ops.mean(ops.square(gradient_slopes(gradients, mask) - norm))


def input_gradients(fn, inputs):
    """Gradients of `sum(fn(*inputs))` w.r.t. each input, differentiable again (for WGAN-GP).

    `fn` returns a tensor or a list of tensors (all summed). Backend-specific: TF uses a
    GradientTape (the caller's outer tape records it), JAX uses `jax.grad`, torch autograd.
    """
    backend = keras.backend.backend()
    inputs = list(inputs)

    def total(*xs):
        out = fn(*xs)
        if isinstance(out, (list, tuple)):
            return sum(ops.sum(o) for o in out)
        return ops.sum(out)

    if backend == "tensorflow":
        import tensorflow as tf  # lazy: only the TF backend needs it
        with tf.GradientTape() as tape:
            for x in inputs:
                tape.watch(x)
            value = total(*inputs)
        return tape.gradient(value, inputs)
    if backend == "jax":
        import jax
        return list(jax.grad(lambda *xs: total(*xs), argnums=tuple(range(len(inputs))))(*inputs))
    if backend == "torch":
        import torch
        inputs = [x if x.requires_grad else x.detach().requires_grad_(True) for x in inputs]
        value = total(*inputs)
        return list(torch.autograd.grad(value, inputs, create_graph=True))
    raise NotImplementedError(f"gradient penalty is not implemented for the {backend!r} backend")


def complete_image(batch_predicted, batch_incomplete, mask):
    """Prediction inside the hole, the (masked) input outside."""
    return batch_predicted * mask + batch_incomplete * (1.0 - mask)


def critic_inputs(batch_pos, batch_complete, mask, bbox, gan_with_mask=False):
    """(local real+fake patches, global real+fake images) as the original concatenates them."""
    local_pos_neg = ops.concatenate([local_patch(batch_pos, bbox), local_patch(batch_complete, bbox)], 0)
    global_pos_neg = ops.concatenate([batch_pos, batch_complete], 0)
    if gan_with_mask:
        batch = ops.shape(global_pos_neg)[0]
        tiled = ops.tile(mask, (batch // ops.shape(mask)[0], 1, 1, 1))
        global_pos_neg = ops.concatenate([global_pos_neg, tiled], 3)
    return local_pos_neg, global_pos_neg


def inpaint_losses(config, batch_pos, x1, x2, mask, bbox, critic_fn, discounting_mask=None,
                   alpha_local=None, alpha_global=None, with_gradient_penalty=True, seed=None):
    """All losses of `build_graph_with_losses` (GAN wgan_gp) from the generator outputs.

    batch_pos: B x H x W x 3 in [-1, 1]; x1, x2: generator outputs; mask: 1|B x H x W x 1 (1 = hole);
    bbox: (t, l, HEIGHT, WIDTH) of the local patch; critic_fn(local, global) -> (dout_local,
    dout_global). Returns a dict with the original keys (l1_loss, ae_loss, g_loss, d_loss, gp_loss,
    ...). With `with_gradient_penalty=False` (generator step) the penalty terms are skipped and
    d_loss holds only the WGAN part.
    """
    pretrain = bool(_cfg(config, "PRETRAIN_COARSE_NETWORK", False))
    coarse_alpha = float(_cfg(config, "COARSE_L1_ALPHA", 1.2))
    if discounting_mask is None:
        discounting_mask = spatial_discounting_mask(config)
    discounting_mask = ops.convert_to_tensor(discounting_mask, "float32")
    batch_incomplete = batch_pos * (1.0 - mask)
    batch_predicted = x1 if pretrain else x2
    batch_complete = complete_image(batch_predicted, batch_incomplete, mask)

    losses = {}
    losses["l1_loss"] = l1_loss(batch_pos, x1, x2, bbox, discounting_mask, coarse_alpha, pretrain)
    losses["ae_loss"] = ae_loss(batch_pos, x1, x2, mask, coarse_alpha, pretrain)

    gan_with_mask = bool(_cfg(config, "GAN_WITH_MASK", False))
    local_pos_neg, global_pos_neg = critic_inputs(batch_pos, batch_complete, mask, bbox, gan_with_mask)
    dout_local, dout_global = critic_fn(local_pos_neg, global_pos_neg)
    pos_local, neg_local = ops.split(dout_local, 2, axis=0)
    pos_global, neg_global = ops.split(dout_global, 2, axis=0)
    g_loss_local, d_loss_local = gan_wgan_loss(pos_local, neg_local)
    g_loss_global, d_loss_global = gan_wgan_loss(pos_global, neg_global)
    losses.update(g_loss_local=g_loss_local, g_loss_global=g_loss_global,
                  d_loss_local=d_loss_local, d_loss_global=d_loss_global,
                  dout_pos_neg_local=dout_local, dout_pos_neg_global=dout_global)
    g_loss_wgan = float(_cfg(config, "GLOBAL_WGAN_LOSS_ALPHA", 1.0)) * g_loss_global + g_loss_local
    d_loss = d_loss_global + d_loss_local
    losses["g_loss_wgan"] = g_loss_wgan
    losses["d_loss_wgan"] = d_loss

    if with_gradient_penalty:
        local_pos = local_patch(batch_pos, bbox)
        local_complete = local_patch(batch_complete, bbox)
        local_mask = local_patch(mask, bbox)
        interp_local = random_interpolates(local_pos, local_complete, alpha_local, seed=seed)
        if gan_with_mask:
            # the original interpolates the 3-channel images and feeds them to a critic built for
            # 4 channels, so GAN_WITH_MASK with wgan_gp never ran there either
            raise ValueError("GAN_WITH_MASK=True is not supported with the wgan_gp gradient penalty "
                             "(the original graph fails the same way); set GAN_WITH_MASK: False")
        interp_global = random_interpolates(batch_pos, batch_complete, alpha_global,
                                            seed=None if seed is None else seed + 1)
        grad_local, grad_global = input_gradients(lambda a, b: list(critic_fn(a, b)),
                                                  [interp_local, interp_global])
        penalty_local = gradients_penalty(grad_local, local_mask)
        penalty_global = gradients_penalty(grad_global, mask)
        losses["penalty_local"] = penalty_local
        losses["penalty_global"] = penalty_global
        losses["gp_loss"] = float(_cfg(config, "WGAN_GP_LAMBDA", 10.0)) * (penalty_local + penalty_global)
        d_loss = d_loss + losses["gp_loss"]
    losses["d_loss"] = d_loss

    if pretrain:
        g_loss = 0.0
    else:
        g_loss = float(_cfg(config, "GAN_LOSS_ALPHA", 0.001)) * g_loss_wgan
    g_loss = g_loss + float(_cfg(config, "L1_LOSS_ALPHA", 1.2)) * losses["l1_loss"]
    if bool(_cfg(config, "AE_LOSS", True)):
        g_loss = g_loss + float(_cfg(config, "AE_LOSS_ALPHA", 1.2)) * losses["ae_loss"]
    losses["g_loss"] = g_loss
    return losses
