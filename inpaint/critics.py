"""DeepFill v1 WGAN-GP critics (local patch + global image), Keras 3.

Architecture from `build_wgan_local_discriminator` / `build_wgan_global_discriminator` /
`build_wgan_discriminator` (JiahuiYu/generative_inpainting v1.0.0): 4 x (conv 5x5, stride 2, SAME,
bias, leaky_relu 0.2) with 64, 128, 256, 512 (local) or 64, 128, 256, 256 (global) filters,
row-major NHWC flatten, dense to 1. The dense input size follows the patch / image size
(128x128 -> 32768, 256x256 -> 65536 as in the released graph).

Checkpoint names (`discriminator/discriminator_local/conv1/kernel`, `discriminator/dout_local_fc/bias`,
...) map onto the Keras layers of `build_critics`: sub-models `discriminator_local` /
`discriminator_global` with layers `conv1`..`conv4`, and dense layers `dout_local_fc` /
`dout_global_fc`.
"""
from __future__ import annotations

import numpy as np
import keras

LOCAL_FILTERS = (64, 128, 256, 512)
GLOBAL_FILTERS = (64, 128, 256, 256)
CHECKPOINT_SCOPE = "discriminator"


def _critic_trunk(input_shape, filters, name):
    inputs = keras.Input(shape=tuple(input_shape), name=f"{name}_input")
    x = inputs
    for index, count in enumerate(filters, start=1):
        x = keras.layers.Conv2D(count, 5, strides=2, padding="same", name=f"conv{index}")(x)
        x = keras.layers.LeakyReLU(negative_slope=0.2, name=f"conv{index}_leaky_relu")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    return keras.Model(inputs, x, name=name)


def build_critics(local_shape=(128, 128, 3), global_shape=(256, 256, 3), name=CHECKPOINT_SCOPE):
    """Both critics as one Keras model: `dout_local, dout_global = critics([local, global])`.

    local_shape: HEIGHT x WIDTH x 3 of the local patch; global_shape: IMG_SHAPES (4 channels with
    GAN_WITH_MASK). Each output is B x 1.
    """
    for shape in (local_shape, global_shape):
        if len(shape) != 3 or shape[0] < 16 or shape[1] < 16:
            raise ValueError(f"critic input shape must be (H, W, C) with H, W >= 16, got {shape}")
    local_in = keras.Input(shape=tuple(local_shape), name="local_patches")
    global_in = keras.Input(shape=tuple(global_shape), name="global_images")
    local_trunk = _critic_trunk(local_shape, LOCAL_FILTERS, "discriminator_local")
    global_trunk = _critic_trunk(global_shape, GLOBAL_FILTERS, "discriminator_global")
    dout_local = keras.layers.Dense(1, name="dout_local_fc")(local_trunk(local_in))
    dout_global = keras.layers.Dense(1, name="dout_global_fc")(global_trunk(global_in))
    return keras.Model([local_in, global_in], [dout_local, dout_global], name=name)


def critics_from_config(config):
    """Critics sized for a config (IMG_SHAPES, HEIGHT, WIDTH, GAN_WITH_MASK)."""
    get = (lambda k, d=None: config.get(k, d)) if isinstance(config, dict) else \
        (lambda k, d=None: getattr(config, k, d))
    height, width = int(get("IMG_SHAPES")[0]), int(get("IMG_SHAPES")[1])
    channels = 3 + (1 if get("GAN_WITH_MASK", False) else 0)
    return build_critics((int(get("HEIGHT")), int(get("WIDTH")), 3), (height, width, channels))


def critic_variable_map(critics):
    """{checkpoint variable name: keras Variable} for the 20 critic variables."""
    mapping = {}
    for trunk_name in ("discriminator_local", "discriminator_global"):
        trunk = critics.get_layer(trunk_name)
        for index in range(1, 5):
            layer = trunk.get_layer(f"conv{index}")
            prefix = f"{CHECKPOINT_SCOPE}/{trunk_name}/conv{index}"
            mapping[f"{prefix}/kernel"] = layer.kernel
            mapping[f"{prefix}/bias"] = layer.bias
    for dense_name in ("dout_local_fc", "dout_global_fc"):
        layer = critics.get_layer(dense_name)
        mapping[f"{CHECKPOINT_SCOPE}/{dense_name}/kernel"] = layer.kernel
        mapping[f"{CHECKPOINT_SCOPE}/{dense_name}/bias"] = layer.bias
    return mapping


def assign_critic_weights(critics, variables, strict=True):
    """Assign critic weights from a checkpoint dict (e.g. `read_tf_checkpoint(full_ckpt)`).

    Returns the list of assigned names. With strict=True a missing name or a shape mismatch raises
    a ValueError naming the variable (e.g. a 256x256 checkpoint on critics for 64x64 images).
    """
    assigned, missing = [], []
    for name, variable in critic_variable_map(critics).items():
        if name not in variables:
            missing.append(name)
            continue
        value = np.asarray(variables[name])
        if tuple(value.shape) != tuple(variable.shape):
            raise ValueError(f"critic variable {name}: checkpoint shape {tuple(value.shape)} does not "
                             f"match the model's {tuple(variable.shape)} (the dense size follows "
                             f"IMG_SHAPES / HEIGHT x WIDTH)")
        variable.assign(value.astype(np.float32))
        assigned.append(name)
    if missing and strict:
        raise ValueError(f"checkpoint lacks {len(missing)} critic variables, e.g. {missing[0]} "
                         f"(a release checkpoint holds only the generator; use full_ckpt)")
    return assigned


def critic_weights_dict(critics):
    """{checkpoint name: numpy array}, the inverse of `assign_critic_weights`."""
    return {name: keras.ops.convert_to_numpy(v) for name, v in critic_variable_map(critics).items()}
