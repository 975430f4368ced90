"""Building blocks of the DeepFill v1 generator, in keras.ops (TensorFlow and JAX backends).

`GenConv` / `GenDeconv` follow `gen_conv` / `gen_deconv` of the original `inpaint_ops.py` (v1.0.0):
conv + ELU by default; the "deconv" is a x2 nearest resize (align_corners=True) followed by a 3x3
GenConv named `<name>_conv` inside a scope `<name>`, which gives checkpoint names such as
`inpaint_net/conv13_upsample/conv13_upsample_conv/kernel`.
"""
from __future__ import annotations

import functools

import keras
import numpy as np
from keras import ops

PADDING_MODES = ("SAME", "SYMMETRIC", "REFELECT", "REFLECT")


# ---------------------------------------------------------------------------------- resizing
@functools.lru_cache(maxsize=256)
def nearest_indices_align_corners(in_size: int, out_size: int) -> np.ndarray:
    """Source indices of TF's resize_nearest_neighbor(align_corners=True, half_pixel_centers=False).

    TF computes `roundf(dst * ((in - 1) / (float)(out - 1)))` in float32 with rounding half away
    from zero (and `in / out` as the scale when out == 1), clamped to in - 1."""
    if out_size > 1:
        scale = np.float32(in_size - 1) / np.float32(out_size - 1)
    else:
        scale = np.float32(in_size) / np.float32(out_size)
    pos = np.arange(out_size, dtype=np.float32) * np.float32(scale)
    lower = np.floor(pos)
    idx = np.where(pos - lower >= np.float32(0.5), lower + 1, lower).astype(np.int64)
    return np.minimum(idx, in_size - 1).astype(np.int32)


def resize_nearest(x, out_hw):
    """Nearest-neighbour resize of NHWC `x` to `out_hw`, align_corners=True (as the original)."""
    in_h, in_w = int(x.shape[1]), int(x.shape[2])
    out_h, out_w = int(out_hw[0]), int(out_hw[1])
    if (in_h, in_w) != (out_h, out_w):
        if in_h != out_h:
            x = ops.take(x, nearest_indices_align_corners(in_h, out_h), axis=1)
        if in_w != out_w:
            x = ops.take(x, nearest_indices_align_corners(in_w, out_w), axis=2)
    return x


def resize_nearest_scale(x, scale):
    """neuralgym `resize(x, scale=s)`: the new size is `int(size * scale)` (truncation)."""
    return resize_nearest(x, (int(int(x.shape[1]) * scale), int(int(x.shape[2]) * scale)))


# ---------------------------------------------------------------------------------- padding
def same_padding(size: int, ksize: int, stride: int, dilation: int = 1):
    """(before, after) padding of TF 'SAME' for one spatial axis."""
    eff = (ksize - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + eff - size, 0)
    return total // 2, total - total // 2


def pad_to_multiple(image: np.ndarray, multiple: int = 8, mode: str = "reflect"):
    """Pad an HxW[xC] numpy array at the bottom/right to multiples of `multiple`.

    Returns (padded, (h, w)) so the caller can crop back. 'reflect' mirrors without repeating the
    edge row; for images smaller than the pad it falls back to 'symmetric' (numpy needs size > pad)."""
    h, w = image.shape[:2]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return image, (h, w)
    pad = [(0, ph), (0, pw)] + [(0, 0)] * (image.ndim - 2)
    if mode == "reflect" and (ph >= h or pw >= w):
        mode = "symmetric"
    return np.pad(image, pad, mode=mode), (h, w)


# ---------------------------------------------------------------------------------- layers
def _activation(name):
    if name in (None, "linear"):
        return None
    return keras.activations.get(name)


_INIT_RNG = np.random.default_rng()


def numpy_glorot_uniform(shape, dtype=None):
    """Glorot-uniform values drawn by numpy (TF1's default conv init): no per-shape compilation of
    a random op, which makes building the generator fast under JAX."""
    receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return _INIT_RNG.uniform(-limit, limit, size=shape).astype(dtype or "float32")


@keras.saving.register_keras_serializable(package="inpaint")
class GenConv(keras.layers.Layer):
    """`gen_conv`: conv2d(cnum, ksize, stride, dilation) + activation (ELU by default).

    padding 'SAME' uses the convolution's TF-style SAME padding; 'SYMMETRIC' / 'REFELECT' (the
    original's spelling; 'REFLECT' is accepted too) pad explicitly by rate*(ksize-1)/2, then VALID."""

    def __init__(self, cnum, ksize, stride=1, rate=1, padding="SAME", activation="elu", **kwargs):
        super().__init__(**kwargs)
        padding = padding.upper()
        if padding not in PADDING_MODES:
            raise ValueError(f"padding must be one of {PADDING_MODES}, got {padding!r}")
        self.cnum, self.ksize, self.stride, self.rate = int(cnum), int(ksize), int(stride), int(rate)
        self.padding_mode = padding
        self.activation_name = activation
        self._act = _activation(activation)

    def build(self, input_shape):
        in_ch = int(input_shape[-1])
        self.kernel = self.add_weight(name="kernel", shape=(self.ksize, self.ksize, in_ch, self.cnum),
                                      initializer=numpy_glorot_uniform)
        self.bias = self.add_weight(name="bias", shape=(self.cnum,), initializer="zeros")

    def call(self, x):
        if self.padding_mode == "SAME":
            pad = "same"
        else:
            p = int(self.rate * (self.ksize - 1) / 2)
            if self.padding_mode != "SYMMETRIC" and p >= min(int(x.shape[1]), int(x.shape[2])):
                raise ValueError(f"{self.name}: {self.padding_mode} padding by {p} needs feature maps "
                                 f"larger than {p}, got {int(x.shape[1])}x{int(x.shape[2])}; use a larger "
                                 f"image or PADDING='SAME'")
            mode = "symmetric" if self.padding_mode == "SYMMETRIC" else "reflect"
            x = ops.pad(x, [[0, 0], [p, p], [p, p], [0, 0]], mode=mode)
            pad = "valid"
        y = ops.conv(x, self.kernel, strides=self.stride, padding=pad, dilation_rate=self.rate)
        y = ops.add(y, self.bias)
        return self._act(y) if self._act is not None else y

    def get_config(self):
        cfg = super().get_config()
        cfg.update(cnum=self.cnum, ksize=self.ksize, stride=self.stride, rate=self.rate,
                   padding=self.padding_mode, activation=self.activation_name)
        return cfg


@keras.saving.register_keras_serializable(package="inpaint")
class GenDeconv(keras.layers.Layer):
    """`gen_deconv`: x2 nearest resize (align_corners=True), then a 3x3 GenConv `<name>_conv`."""

    def __init__(self, cnum, padding="SAME", **kwargs):
        super().__init__(**kwargs)
        self.cnum = int(cnum)
        self.padding_mode = padding
        self.conv = GenConv(cnum, 3, 1, padding=padding, name=self.name + "_conv")

    def build(self, input_shape):
        self.conv.build((input_shape[0], None, None, input_shape[-1]))

    def call(self, x):
        x = resize_nearest_scale(x, 2)
        return self.conv(x)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(cnum=self.cnum, padding=self.padding_mode)
        return cfg
