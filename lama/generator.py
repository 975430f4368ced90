"""The LaMa generator (FFCResNetGenerator, `saicinpainting/training/modules/ffc.py`) in Keras 3.

Input: (N, H, W, INPUT_NC) float32, RGB in [0, 1] with the hole zeroed, then the binary mask;
H and W multiples of 2 ** N_DOWNSAMPLING. Output: (N, H, W, OUTPUT_NC), the sigmoid of the last
convolution. Layer `k` of the original `generator.model` loads from state-dict keys `model.k.*`;
for big-lama (3 downsamplings, 18 blocks):

    0 reflect pad 3 | 1 FFC_BN_ACT 7x7 | 2-4 FFC_BN_ACT 3x3 stride 2 (4 splits local/global)
    5-22 FFCResnetBlock | 23 concat (local first) | 24/27/30 ConvTranspose2d, 25/28/31 BatchNorm2d,
    26/29/32 ReLU | 33 reflect pad 3 | 34 Conv2d 7x7 with bias | 35 Sigmoid
"""
from __future__ import annotations

import keras
from keras import ops

from lama.config import LamaConfig
from lama.layers import (PACKAGE, BatchNorm, Conv, ConvTranspose, FFC_BN_ACT, FFCResnetBlock, assign_torch_state,
                         reflect_pad)


@keras.saving.register_keras_serializable(package=PACKAGE)
class LamaGenerator(keras.Model):
    """FFCResNetGenerator in eval mode, NHWC. `config`: a LamaConfig (default big-lama)."""

    def __init__(self, config: LamaConfig | dict | None = None, **kwargs):
        super().__init__(**kwargs)
        if config is None:
            config = LamaConfig()
        elif isinstance(config, dict):
            config = LamaConfig.from_dict(config)
        self.config = config
        c, eps = config, config.BN_EPSILON
        self.n_down = c.N_DOWNSAMPLING
        # model.0 is ReflectionPad2d(3) (no parameters); model.1 the 7x7 FFC_BN_ACT, purely local
        self.init_conv = FFC_BN_ACT(c.INPUT_NC, c.NGF, 7, 0.0, 0.0, padding=0, epsilon=eps, name="model_1")
        index = 2
        self.down = []
        for i in range(c.N_DOWNSAMPLING):
            mult = 2 ** i
            gout = c.RESNET_RATIO_GIN if i == c.N_DOWNSAMPLING - 1 else 0.0
            layer = FFC_BN_ACT(min(c.MAX_FEATURES, c.NGF * mult), min(c.MAX_FEATURES, c.NGF * mult * 2), 3,
                               0.0, gout, stride=2, padding=1, epsilon=eps, name=f"model_{index}")
            self.down.append(layer)
            index += 1
        dim = c.bottleneck_channels
        self.blocks = []
        for _ in range(c.N_BLOCKS):
            layer = FFCResnetBlock(dim, c.RESNET_RATIO_GIN, c.RESNET_RATIO_GOUT, epsilon=eps, name=f"model_{index}")
            self.blocks.append(layer)
            index += 1
        index += 1   # ConcatTupleLayer
        self.up_convs, self.up_bns = [], []
        for i in range(c.N_DOWNSAMPLING):
            mult = 2 ** (c.N_DOWNSAMPLING - i)
            cin, cout = min(c.MAX_FEATURES, c.NGF * mult), min(c.MAX_FEATURES, int(c.NGF * mult / 2))
            conv_t = ConvTranspose(cin, cout, name=f"model_{index}")
            bn = BatchNorm(cout, epsilon=eps, name=f"model_{index + 1}")
            self.up_convs.append(conv_t)
            self.up_bns.append(bn)
            index += 3      # ReLU (one shared module in the original, no parameters)
        index += 1   # ReflectionPad2d(3)
        self.out_conv = Conv(c.NGF, c.OUTPUT_NC, 7, padding=0, use_bias=True, name=f"model_{index}",
                             dtype="float32")   # the output convolution stays float32 under bfloat16
        self.built = True

    @staticmethod
    def torch_index(layer):
        """Index k of the original `generator.model[k]` a layer stands for (its name is model_k)."""
        return int(layer.name.rsplit("_", 1)[1])

    def indexed_layers(self):
        return ([self.init_conv] + list(self.down) + list(self.blocks)
                + [x for pair in zip(self.up_convs, self.up_bns) for x in pair] + [self.out_conv])

    @property
    def multiple(self):
        """Height and width of the network's input must be multiples of this."""
        return 2 ** self.n_down

    def call(self, x, return_trace=False):
        trace = {}
        x_l, x_g = self.init_conv(reflect_pad(x, 3))
        trace[1] = (x_l, x_g)
        for layer in self.down:
            x_l, x_g = layer(x_l, x_g)
            trace[self.torch_index(layer)] = (x_l, x_g)
        for layer in self.blocks:
            x_l, x_g = layer(x_l, x_g)
            trace[self.torch_index(layer)] = (x_l, x_g)
        x = x_l if x_g is None else (x_g if x_l is None else ops.concatenate([x_l, x_g], axis=-1))
        for conv_t, bn in zip(self.up_convs, self.up_bns):
            x = conv_t(x)
            trace[self.torch_index(conv_t)] = x
            x = bn(x)
            trace[self.torch_index(bn)] = x
            x = ops.relu(x)
        x = self.out_conv(reflect_pad(x, 3))
        trace[self.torch_index(self.out_conv)] = x
        act = self.config.ADD_OUT_ACT
        if act == "sigmoid":
            x = ops.sigmoid(x)
        elif act == "tanh":
            x = ops.tanh(x)
        return (x, trace) if return_trace else x

    # ------------------------------------------------------------------ torch names
    def torch_variables(self):
        """[(state-dict key without 'generator.', Keras variable, layout kind)] in model order."""
        out = []
        for layer in self.indexed_layers():
            out += layer.torch_variables(f"model.{self.torch_index(layer)}.")
        return out

    def torch_state_keys(self):
        return [k for k, _, _ in self.torch_variables()]

    def load_torch_state(self, state):
        """Assign a torch state dict (keys 'model.<i>.…', torch layouts, numpy arrays). Keys must
        match exactly (num_batches_tracked entries are ignored); raises ValueError otherwise."""
        assign_torch_state(self.torch_variables(), state, what="generator")

    def get_config(self):
        cfg = super().get_config()
        cfg["config"] = self.config.to_dict()
        return cfg

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        return cls(config=LamaConfig.from_dict(config.pop("config")), **config)
