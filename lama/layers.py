"""LaMa's Fast Fourier Convolution layers on `keras.ops` (TensorFlow and JAX), channels last (NHWC).

Each layer mirrors one module of `saicinpainting/training/modules/ffc.py` (advimman/lama 786f593)
in eval mode, and knows the state-dict names of its parameters (`torch_variables(prefix)`), so a
torch state dict loads by name: conv weights (out, in, kh, kw) and transposed-conv weights
(in, out, kh, kw) both become Keras' (kh, kw, in, out) / (kh, kw, out, in) by transpose(2, 3, 1, 0).

Conventions (../shared/reference/lama/README.md): every padded convolution inside the network uses
an edge-excluding mirror ("reflect"), done explicitly before a 'valid' convolution; BatchNorm uses
its running statistics with eps 1e-5; a FFC splits channels into local (first) and global parts.
"""
from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

PACKAGE = "lama"

# kinds of state-dict entries: how a torch array becomes the Keras variable
CONV, CONV_T, MATRIX, VECTOR = "conv", "conv_transpose", "matrix", "vector"


def torch_to_keras(kind, array):
    """A torch-layout parameter as the Keras variable's layout."""
    array = np.asarray(array)
    if kind in (CONV, CONV_T):
        return np.transpose(array, (2, 3, 1, 0))
    if kind == MATRIX:   # a 1x1 convolution (out, in, 1, 1) used as an (out, in) matrix
        return array.reshape(array.shape[0], -1)
    return array


def assign_torch_state(expected, state, what="module"):
    """Assign torch-layout arrays to Keras variables. `expected`: [(key, variable, kind)] (a layer's
    `torch_variables(prefix)`); `state`: {key: array}. Keys must match exactly (num_batches_tracked
    entries are ignored) and shapes must fit; raises ValueError (one line) before assigning anything."""
    keys = {k for k, _, _ in expected}
    given = {k for k in state if not k.endswith(".num_batches_tracked")}
    missing, unexpected = sorted(keys - given), sorted(given - keys)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        raise ValueError(f"{what} weights do not match the configuration: " + ", ".join(parts))
    values = []
    for key, variable, kind in expected:
        value = torch_to_keras(kind, state[key])
        if tuple(value.shape) != tuple(variable.shape):
            raise ValueError(f"{what} weight {key} has shape {tuple(np.shape(state[key]))}, "
                             "which does not fit the configuration")
        values.append((variable, value))
    for variable, value in values:
        variable.assign(np.asarray(value, dtype=variable.dtype))


def split_channels(channels, ratio):
    """(local, global) channel counts of the original: global = int(C * ratio)."""
    g = int(channels * ratio)
    return channels - g, g


def reflect_pad(x, pad):
    """Edge-excluding mirror of `pad` pixels on both spatial sides (torch 'reflect', np 'reflect')."""
    if not pad:
        return x
    return ops.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="reflect")


# A stride-1 k x k convolution with few output channels (big-lama's last one: 7x7, 64 -> 3) makes
# a skinny matrix product that CPU kernels run far below their matrix rate; with at most this many
# k * out channels it runs as one 1 x k convolution to k * out channels plus k shifted row sums.
ROWS_MAX_CHANNELS = 64


def _conv_by_rows(x_padded, kernel):
    """'valid' stride-1 convolution of NHWC `x_padded` with `kernel` (k, k, in, out), computed as
    a 1 x k convolution whose k * out outputs hold every kernel row, then the sum over the rows of
    the shifted parts (the same terms in another order)."""
    k, _, cin, cout = kernel.shape
    rows = ops.reshape(ops.transpose(kernel, (1, 2, 0, 3)), (1, k, cin, k * cout))   # [0, dx, ci, dy*out+co]
    z = ops.conv(x_padded, rows, strides=1, padding="valid")                        # (N, H + k - 1, W, k*out)
    h = x_padded.shape[1] - k + 1
    y = z[:, 0:h, :, 0:cout]
    for dy in range(1, k):
        y = y + z[:, dy:dy + h, :, dy * cout:(dy + 1) * cout]
    return y


@keras.saving.register_keras_serializable(package=PACKAGE)
class Conv(keras.layers.Layer):
    """torch Conv2d(in, out, k, stride, padding, bias, padding_mode='reflect') as explicit reflect
    padding + a 'valid' convolution."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, use_bias=False, **kwargs):
        super().__init__(**kwargs)
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size, self.stride, self.padding = int(kernel_size), int(stride), int(padding)
        self.use_bias = bool(use_bias)
        k = self.kernel_size
        self.kernel = self.add_weight(shape=(k, k, self.in_channels, self.out_channels), initializer="zeros",
                                      name="kernel")
        self.bias = self.add_weight(shape=(self.out_channels,), initializer="zeros", name="bias") if use_bias else None
        self.built = True

    def call(self, x):
        return self.conv_padded(reflect_pad(x, self.padding))

    def conv_padded(self, x_padded, kernel=None):
        kernel = self.kernel if kernel is None else kernel
        k = self.kernel_size
        if self.stride == 1 and k > 1 and self.out_channels * k <= ROWS_MAX_CHANNELS:
            y = _conv_by_rows(x_padded, kernel)
        else:
            y = ops.conv(x_padded, kernel, strides=self.stride, padding="valid")
        if self.bias is not None:
            y = y + self.bias
        return y

    def torch_variables(self, prefix):
        out = [(prefix + "weight", self.kernel, CONV)]
        if self.bias is not None:
            out.append((prefix + "bias", self.bias, VECTOR))
        return out

    def get_config(self):
        cfg = super().get_config()
        cfg.update(in_channels=self.in_channels, out_channels=self.out_channels, kernel_size=self.kernel_size,
                   stride=self.stride, padding=self.padding, use_bias=self.use_bias)
        return cfg


@keras.saving.register_keras_serializable(package=PACKAGE)
class ConvTranspose(keras.layers.Layer):
    """torch ConvTranspose2d(in, out, kernel_size=3, stride=2, padding=1, output_padding=1), with
    bias: out[o] = sum x[i] w[k] over o = 2i + k - 1, i.e. the padding-free transposed convolution
    (length 2n + 1) cropped to [1 : 2n + 1], exactly twice the input size. The kernel variable has
    Keras' conv_transpose layout (3, 3, out, in)."""

    def __init__(self, in_channels, out_channels, **kwargs):
        super().__init__(**kwargs)
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel = self.add_weight(shape=(3, 3, self.out_channels, self.in_channels), initializer="zeros",
                                      name="kernel")
        self.bias = self.add_weight(shape=(self.out_channels,), initializer="zeros", name="bias")
        self.built = True

    def call(self, x):
        # Output row 2m takes tap 1 of input row m; row 2m + 1 takes tap 2 of row m and tap 0 of
        # row m + 1 (zero past the end: output_padding); the same along columns. So the four
        # output phases are exact 1x1, 1x2, 2x1 and 2x2 convolutions of the input (the 9 taps
        # once each; CPU convolution kernels run them faster than a transposed convolution),
        # interleaved with stack + reshape.
        n, h, w, _ = x.shape
        k = ops.transpose(self.kernel, (0, 1, 3, 2))      # (3, 3, in, out), k[ky, kx] = torch w[:, :, ky, kx]
        x_r = ops.pad(x, [[0, 0], [0, 0], [0, 1], [0, 0]])
        x_b = ops.pad(x, [[0, 0], [0, 1], [0, 0], [0, 0]])
        x_rb = ops.pad(x, [[0, 0], [0, 1], [0, 1], [0, 0]])
        taps = {0: 1, 1: (2, 0)}   # phase -> kernel taps for input offsets 0 (and 1)

        def kern(a, b):
            ky = (taps[a],) if a == 0 else taps[a]
            kx = (taps[b],) if b == 0 else taps[b]
            return ops.stack([ops.stack([k[i, j] for j in kx]) for i in ky])

        p00 = ops.conv(x, kern(0, 0), padding="valid")
        p01 = ops.conv(x_r, kern(0, 1), padding="valid")
        p10 = ops.conv(x_b, kern(1, 0), padding="valid")
        p11 = ops.conv(x_rb, kern(1, 1), padding="valid")
        c = self.out_channels
        even = ops.reshape(ops.stack([p00, p01], axis=3), (-1, h, 2 * w, c))
        odd = ops.reshape(ops.stack([p10, p11], axis=3), (-1, h, 2 * w, c))
        return ops.reshape(ops.stack([even, odd], axis=2), (-1, 2 * h, 2 * w, c)) + self.bias

    def torch_variables(self, prefix):
        return [(prefix + "weight", self.kernel, CONV_T), (prefix + "bias", self.bias, VECTOR)]

    def get_config(self):
        cfg = super().get_config()
        cfg.update(in_channels=self.in_channels, out_channels=self.out_channels)
        return cfg


@keras.saving.register_keras_serializable(package=PACKAGE)
class BatchNorm(keras.layers.Layer):
    """torch BatchNorm2d in eval mode: x * a + b with a = weight / sqrt(running_var + eps) and
    b = bias - running_mean * a (the order torch's CPU kernel uses). `axis` is the channel axis."""

    def __init__(self, channels, epsilon=1e-5, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.channels, self.epsilon, self.axis = int(channels), float(epsilon), int(axis)
        c = (self.channels,)
        self.gamma = self.add_weight(shape=c, initializer="ones", name="gamma")
        self.beta = self.add_weight(shape=c, initializer="zeros", name="beta")
        self.moving_mean = self.add_weight(shape=c, initializer="zeros", name="moving_mean", trainable=False)
        self.moving_variance = self.add_weight(shape=c, initializer="ones", name="moving_variance", trainable=False)
        self.built = True

    def scale_shift(self):
        a = self.gamma / ops.sqrt(self.moving_variance + self.epsilon)
        return a, self.beta - self.moving_mean * a

    def call(self, x):
        a, b = self.scale_shift()
        if self.axis not in (-1, len(x.shape) - 1):
            shape = [1] * len(x.shape)
            shape[self.axis] = self.channels
            a, b = ops.reshape(a, shape), ops.reshape(b, shape)
        return x * ops.cast(a, x.dtype) + ops.cast(b, x.dtype)

    def torch_variables(self, prefix):
        return [(prefix + "weight", self.gamma, VECTOR), (prefix + "bias", self.beta, VECTOR),
                (prefix + "running_mean", self.moving_mean, VECTOR),
                (prefix + "running_var", self.moving_variance, VECTOR)]

    def get_config(self):
        cfg = super().get_config()
        cfg.update(channels=self.channels, epsilon=self.epsilon, axis=self.axis)
        return cfg


def rfft2_ortho(x):
    """torch.fft.rfftn(x, dim=(-2, -1), norm='ortho') of a real (..., H, W) tensor, from keras.ops
    FFTs: the half spectrum along W, then the full transform along H. Returns (real, imag), each
    (..., W // 2 + 1, H), i.e. with the two last axes swapped (the caller's 1x1 convolution does not
    care about the spatial order, and it saves two transposes)."""
    h, w = x.shape[-2], x.shape[-1]
    re, im = ops.rfft(x)                                     # along W: (..., H, Wf)
    perm = list(range(len(x.shape) - 2)) + [len(x.shape) - 1, len(x.shape) - 2]
    re, im = ops.fft((ops.transpose(re, perm), ops.transpose(im, perm)))   # along H: (..., Wf, H)
    scale = np.float32(1.0 / math.sqrt(h * w))
    return re * scale, im * scale


def irfft2_ortho(re, im, h, w):
    """The original's irfftn(Y, s=(H, W), dim=(-2, -1), norm='ortho') of a (possibly
    non-Hermitian) half spectrum, given as (real, imag) of shape (..., W // 2 + 1, H) (the layout
    of `rfft2_ortho`), written in the README's explicit, backend-independent three steps:
    Z = ifft along H; Z[..., 0] (and Z[..., W/2] for even W) := its real part; irfft along W."""
    # keras.ops has no 1-D ifft: ifft(z) = conj(fft(conj(z))) / n; the 1/H is folded into the
    # final scale below (1/(H W) from the two inverses, times sqrt(H W) -> 1/sqrt(H W), 'ortho')
    zr, zi = ops.fft((re, -im))                              # along H: (..., Wf, H), conj'ed, unscaled
    zi = -zi
    nd = len(zr.shape)
    perm = list(range(nd - 2)) + [nd - 1, nd - 2]
    zr, zi = ops.transpose(zr, perm), ops.transpose(zi, perm)    # (..., H, Wf)
    keep_imag = np.ones((w // 2 + 1,), np.float32)
    keep_imag[0] = 0.0
    if w % 2 == 0:
        keep_imag[w // 2] = 0.0
    y = ops.irfft((zr, zi * keep_imag), fft_length=w)        # (..., H, W), 1/W normalised
    return y * np.float32(1.0 / math.sqrt(h * w) * w)


@keras.saving.register_keras_serializable(package=PACKAGE)
class FourierUnit(keras.layers.Layer):
    """FourierUnit(C, C, groups=1), fft_norm 'ortho', no positional encoding, no SE: rfft2 of the
    input, real/imaginary parts interleaved per channel (2c = Re, 2c + 1 = Im), 1x1 convolution
    (2C -> 2C, no bias), BatchNorm, ReLU, back to complex and the explicit inverse."""

    def __init__(self, channels, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.epsilon = float(epsilon)
        c2 = 2 * self.channels
        # (out, in) matrix of the 1x1 convolution: torch's (out, in, 1, 1) weight, squeezed
        self.conv_kernel = self.add_weight(shape=(c2, c2), initializer="zeros", name="conv_kernel")
        self.bn = BatchNorm(c2, epsilon=epsilon, axis=1, name="bn", dtype=self.dtype_policy)
        self.built = True

    def spectrum(self, x):
        """Interleaved spectrum of NHWC `x`: (N, 2C, W//2+1, H) channels first."""
        n, h, w, c = x.shape
        re, im = rfft2_ortho(ops.transpose(x, (0, 3, 1, 2)))     # (N, C, Wf, H) each
        return ops.reshape(ops.stack([re, im], axis=2), (-1, 2 * c, w // 2 + 1, h))

    def call(self, x):
        n, h, w, c = x.shape
        dtype = x.dtype
        x = ops.cast(x, "float32")   # FFTs run in float32 under any precision policy
        wf = w // 2 + 1
        stacked = self.spectrum(x)
        flat = ops.reshape(stacked, (-1, 2 * c, wf * h))
        y = ops.matmul(ops.cast(self.conv_kernel, "float32"), flat)          # the 1x1 convolution
        y = ops.relu(self.bn(y))
        y = ops.reshape(y, (-1, c, 2, wf, h))
        out = irfft2_ortho(y[:, :, 0], y[:, :, 1], h, w)         # (N, C, H, W)
        return ops.cast(ops.transpose(out, (0, 2, 3, 1)), dtype)

    def torch_variables(self, prefix):
        return [(prefix + "conv_layer.weight", self.conv_kernel, MATRIX)] + self.bn.torch_variables(prefix + "bn.")

    def get_config(self):
        cfg = super().get_config()
        cfg.update(channels=self.channels, epsilon=self.epsilon)
        return cfg


@keras.saving.register_keras_serializable(package=PACKAGE)
class SpectralTransform(keras.layers.Layer):
    """SpectralTransform(in, out, stride=1, groups=1, enable_lfu=False):
    a = ReLU(BN(conv1x1_{in -> out/2}(x))); y = conv1x1_{out/2 -> out}(a + FourierUnit(a))."""

    def __init__(self, in_channels, out_channels, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.in_channels, self.out_channels, self.epsilon = int(in_channels), int(out_channels), float(epsilon)
        half = self.out_channels // 2
        self.conv1 = Conv(self.in_channels, half, 1, name="conv1")
        self.bn1 = BatchNorm(half, epsilon=epsilon, name="bn1")
        self.fu = FourierUnit(half, epsilon=epsilon, name="fu", dtype="float32")   # FFTs in float32 always
        self.conv2 = Conv(half, self.out_channels, 1, name="conv2")
        self.built = True

    def call(self, x):
        a = ops.relu(self.bn1(self.conv1(x)))
        f = self.fu(a)      # float32 under any policy
        return self.conv2(ops.cast(a, f.dtype) + f)

    def torch_variables(self, prefix):
        return (self.conv1.torch_variables(prefix + "conv1.0.") + self.bn1.torch_variables(prefix + "conv1.1.")
                + self.fu.torch_variables(prefix + "fu.") + self.conv2.torch_variables(prefix + "conv2."))

    def get_config(self):
        cfg = super().get_config()
        cfg.update(in_channels=self.in_channels, out_channels=self.out_channels, epsilon=self.epsilon)
        return cfg


@keras.saving.register_keras_serializable(package=PACKAGE)
class FFC_BN_ACT(keras.layers.Layer):  # noqa: N801 (the original's name)
    """FFC_BN_ACT(in, out, k, ratio_gin, ratio_gout, stride, padding, BatchNorm2d, ReLU,
    padding_type='reflect', enable_lfu=False). Called as `layer(x_l, x_g)` with `x_g` None where
    the input has no global part; returns `(y_l, y_g)`, `y_g` None where ratio_gout is 0:

        y_l = ReLU(bn_l(convl2l(x_l) + convg2l(x_g)))
        y_g = ReLU(bn_g(convl2g(x_l) + SpectralTransform(x_g)))

    convl2l and convg2l are evaluated as one convolution over the concatenated padded inputs
    (the same sum, one kernel pass)."""

    def __init__(self, in_channels, out_channels, kernel_size, ratio_gin, ratio_gout, stride=1, padding=0,
                 epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size, self.stride, self.padding = int(kernel_size), int(stride), int(padding)
        self.ratio_gin, self.ratio_gout, self.epsilon = float(ratio_gin), float(ratio_gout), float(epsilon)
        in_cl, in_cg = split_channels(self.in_channels, self.ratio_gin)
        out_cl, out_cg = split_channels(self.out_channels, self.ratio_gout)
        self.in_cl, self.in_cg, self.out_cl, self.out_cg = in_cl, in_cg, out_cl, out_cg
        conv = dict(kernel_size=self.kernel_size, stride=self.stride, padding=self.padding)
        # the original uses nn.Identity where a part is empty (in or out channels 0)
        self.convl2l = Conv(in_cl, out_cl, name="convl2l", **conv) if in_cl and out_cl else None
        self.convl2g = Conv(in_cl, out_cg, name="convl2g", **conv) if in_cl and out_cg else None
        self.convg2l = Conv(in_cg, out_cl, name="convg2l", **conv) if in_cg and out_cl else None
        if in_cg and out_cg:
            if self.stride != 1:
                raise ValueError("a strided SpectralTransform (stride 2 average pooling) is not implemented")
            self.convg2g = SpectralTransform(in_cg, out_cg, epsilon=epsilon, name="convg2g")
        else:
            self.convg2g = None
        self.bn_l = BatchNorm(out_cl, epsilon=epsilon, name="bn_l") if self.ratio_gout != 1 else None
        self.bn_g = BatchNorm(out_cg, epsilon=epsilon, name="bn_g") if self.ratio_gout != 0 else None
        self.built = True

    def call(self, x_l, x_g=None):
        p = self.padding
        xl_p = reflect_pad(x_l, p) if x_l is not None and (self.convl2l or self.convl2g) else None
        xg_p = reflect_pad(x_g, p) if x_g is not None and self.convg2l is not None else None
        y_l = y_g = None
        if self.ratio_gout != 1:
            if self.convl2l is not None and xg_p is not None:
                kernel = ops.concatenate([self.convl2l.kernel, self.convg2l.kernel], axis=2)
                y_l = self.convl2l.conv_padded(ops.concatenate([xl_p, xg_p], axis=-1), kernel)
            elif self.convl2l is not None:
                y_l = self.convl2l.conv_padded(xl_p)
            elif xg_p is not None:
                y_l = self.convg2l.conv_padded(xg_p)
            y_l = ops.relu(self.bn_l(y_l))
        if self.ratio_gout != 0:
            if self.convl2g is not None:
                y_g = self.convl2g.conv_padded(xl_p)
            if self.convg2g is not None and x_g is not None:
                s = self.convg2g(x_g)
                y_g = s if y_g is None else y_g + s
            y_g = ops.relu(self.bn_g(y_g))
        return y_l, y_g

    def torch_variables(self, prefix):
        out = []
        for name in ("convl2l", "convl2g", "convg2l", "convg2g"):
            layer = getattr(self, name)
            if layer is not None:
                out += layer.torch_variables(f"{prefix}ffc.{name}.")
        for name in ("bn_l", "bn_g"):
            layer = getattr(self, name)
            if layer is not None:
                out += layer.torch_variables(f"{prefix}{name}.")
        return out

    def get_config(self):
        cfg = super().get_config()
        cfg.update(in_channels=self.in_channels, out_channels=self.out_channels, kernel_size=self.kernel_size,
                   ratio_gin=self.ratio_gin, ratio_gout=self.ratio_gout, stride=self.stride, padding=self.padding,
                   epsilon=self.epsilon)
        return cfg


@keras.saving.register_keras_serializable(package=PACKAGE)
class FFCResnetBlock(keras.layers.Layer):
    """FFCResnetBlock(dim, 'reflect', BatchNorm2d, ReLU, ratio_gin, ratio_gout, enable_lfu=False):
    (x_l, x_g) + conv2(conv1(x_l, x_g)) per part, no activation after the addition."""

    def __init__(self, dim, ratio_gin=0.75, ratio_gout=0.75, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.dim, self.ratio_gin, self.ratio_gout = int(dim), float(ratio_gin), float(ratio_gout)
        self.epsilon = float(epsilon)
        args = dict(kernel_size=3, ratio_gin=ratio_gin, ratio_gout=ratio_gout, padding=1, epsilon=epsilon)
        self.conv1 = FFC_BN_ACT(self.dim, self.dim, name="conv1", **args)
        self.conv2 = FFC_BN_ACT(self.dim, self.dim, name="conv2", **args)
        self.built = True

    def call(self, x_l, x_g=None):
        y_l, y_g = self.conv2(*self.conv1(x_l, x_g))
        out_l = x_l + y_l if y_l is not None else x_l
        out_g = (x_g + y_g if x_g is not None else y_g) if y_g is not None else x_g
        return out_l, out_g

    def torch_variables(self, prefix):
        return self.conv1.torch_variables(prefix + "conv1.") + self.conv2.torch_variables(prefix + "conv2.")

    def get_config(self):
        cfg = super().get_config()
        cfg.update(dim=self.dim, ratio_gin=self.ratio_gin, ratio_gout=self.ratio_gout, epsilon=self.epsilon)
        return cfg
