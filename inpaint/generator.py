"""DeepFill v1 generator (`build_inpaint_net` of generative_inpainting v1.0.0), Keras 3.

Coarse network (conv1..conv17) + refinement network with a dilated-conv branch (xconv*) and a
contextual-attention branch (pmconv*), merged by allconv*. cnum = 32, ELU everywhere except
pmconv6 (ReLU) and conv17/allconv17 (linear, then clip to [-1, 1]; v1 clips, it has no tanh).
Inputs are BGR in [-1, 1]; the network sees 5 channels: [x, ones, ones * mask].
Layer and variable names equal the TF1 checkpoint names (`inpaint_net/<layer>/kernel`).
"""
from __future__ import annotations

import keras
from keras import ops

from inpaint.contextual_attention import contextual_attention
from inpaint.ops import GenConv, GenDeconv, resize_nearest

CNUM = 32

# (name, kind, cnum multiple or absolute, ksize, stride, rate, activation) in graph creation order
_COARSE = [
    ("conv1", "conv", 1, 5, 1, 1, "elu"),
    ("conv2_downsample", "conv", 2, 3, 2, 1, "elu"),
    ("conv3", "conv", 2, 3, 1, 1, "elu"),
    ("conv4_downsample", "conv", 4, 3, 2, 1, "elu"),
    ("conv5", "conv", 4, 3, 1, 1, "elu"),
    ("conv6", "conv", 4, 3, 1, 1, "elu"),
    ("conv7_atrous", "conv", 4, 3, 1, 2, "elu"),
    ("conv8_atrous", "conv", 4, 3, 1, 4, "elu"),
    ("conv9_atrous", "conv", 4, 3, 1, 8, "elu"),
    ("conv10_atrous", "conv", 4, 3, 1, 16, "elu"),
    ("conv11", "conv", 4, 3, 1, 1, "elu"),
    ("conv12", "conv", 4, 3, 1, 1, "elu"),
    ("conv13_upsample", "deconv", 2, 3, 1, 1, "elu"),
    ("conv14", "conv", 2, 3, 1, 1, "elu"),
    ("conv15_upsample", "deconv", 1, 3, 1, 1, "elu"),
    ("conv16", "conv", 0.5, 3, 1, 1, "elu"),
    ("conv17", "conv", "rgb", 3, 1, 1, None),
]
_HALLU = [
    ("xconv1", "conv", 1, 5, 1, 1, "elu"),
    ("xconv2_downsample", "conv", 1, 3, 2, 1, "elu"),
    ("xconv3", "conv", 2, 3, 1, 1, "elu"),
    ("xconv4_downsample", "conv", 2, 3, 2, 1, "elu"),
    ("xconv5", "conv", 4, 3, 1, 1, "elu"),
    ("xconv6", "conv", 4, 3, 1, 1, "elu"),
    ("xconv7_atrous", "conv", 4, 3, 1, 2, "elu"),
    ("xconv8_atrous", "conv", 4, 3, 1, 4, "elu"),
    ("xconv9_atrous", "conv", 4, 3, 1, 8, "elu"),
    ("xconv10_atrous", "conv", 4, 3, 1, 16, "elu"),
]
_ATTN_IN = [
    ("pmconv1", "conv", 1, 5, 1, 1, "elu"),
    ("pmconv2_downsample", "conv", 1, 3, 2, 1, "elu"),
    ("pmconv3", "conv", 2, 3, 1, 1, "elu"),
    ("pmconv4_downsample", "conv", 4, 3, 2, 1, "elu"),
    ("pmconv5", "conv", 4, 3, 1, 1, "elu"),
    ("pmconv6", "conv", 4, 3, 1, 1, "relu"),
]
_ATTN_OUT = [
    ("pmconv9", "conv", 4, 3, 1, 1, "elu"),
    ("pmconv10", "conv", 4, 3, 1, 1, "elu"),
]
_MERGE = [
    ("allconv11", "conv", 4, 3, 1, 1, "elu"),
    ("allconv12", "conv", 4, 3, 1, 1, "elu"),
    ("allconv13_upsample", "deconv", 2, 3, 1, 1, "elu"),
    ("allconv14", "conv", 2, 3, 1, 1, "elu"),
    ("allconv15_upsample", "deconv", 1, 3, 1, 1, "elu"),
    ("allconv16", "conv", 0.5, 3, 1, 1, "elu"),
    ("allconv17", "conv", "rgb", 3, 1, 1, None),
]
LAYER_SPECS = _COARSE + _HALLU + _ATTN_IN + _ATTN_OUT + _MERGE


def _channels(mult):
    return 3 if mult == "rgb" else int(CNUM * mult)


@keras.saving.register_keras_serializable(package="inpaint")
class InpaintGenerator(keras.Model):
    """`x1, x2, offset_flow = gen([x_incomplete, mask], training=...)`.

    x_incomplete: B x H x W x 3 BGR in [-1, 1], already multiplied by (1 - mask); mask: B x H x W x 1
    or 1 x H x W x 1 float32 (1 = hole). H and W must be multiples of 8.
    per_sample_attention_mask=False reproduces the original (attention validity from mask item 0);
    True uses each item's own mask (batched inference of different holes).
    `call(..., return_offsets=True)` also returns the raw attention offsets (B x H/8 x W/8 x 2)."""

    def __init__(self, padding="SAME", per_sample_attention_mask=False, name="inpaint_net", **kwargs):
        super().__init__(name=name, **kwargs)
        self.padding = padding
        self.per_sample_attention_mask = bool(per_sample_attention_mask)
        self.gen_layers = {}
        for lname, kind, mult, ksize, stride, rate, act in LAYER_SPECS:
            if kind == "deconv":
                layer = GenDeconv(_channels(mult), padding=padding, name=lname)
            else:
                layer = GenConv(_channels(mult), ksize, stride, rate, padding=padding, activation=act,
                                name=lname)
            self.gen_layers[lname] = layer
            setattr(self, lname, layer)  # tracked attribute so Keras owns the variables

    def build(self, input_shape=None):
        if self.built:
            return
        # variables only depend on channel counts: build each layer from the static layer list
        in_channels = {"conv1": 5, "xconv1": 5, "pmconv1": 5, "pmconv9": 4 * CNUM, "allconv11": 8 * CNUM}
        previous = None
        for lname, kind, mult, *_ in LAYER_SPECS:
            channels = in_channels.get(lname, previous)
            self.gen_layers[lname].build((None, None, None, channels))
            previous = _channels(mult)
        self.built = True

    def _run(self, specs, x):
        for spec in specs:
            x = self.gen_layers[spec[0]](x)
        return x

    def call(self, inputs, training=None, return_offsets=False):
        x_in, mask = inputs
        x_in = ops.convert_to_tensor(x_in, dtype="float32")
        mask = ops.convert_to_tensor(mask, dtype="float32")
        h, w = int(x_in.shape[1]), int(x_in.shape[2])
        if h % 8 or w % 8:
            raise ValueError(f"InpaintGenerator needs height and width that are multiples of 8, got "
                             f"{h}x{w} (pad the image first, e.g. with inpaint.ops.pad_to_multiple)")
        xin = x_in
        ones = ops.ones_like(x_in)[..., 0:1]
        x = ops.concatenate([x_in, ones, ones * mask], axis=3)

        # stage 1 (coarse)
        x = self._run(_COARSE[:6], x)
        mask_s = resize_nearest(mask, (int(x.shape[1]), int(x.shape[2])))  # resize_mask_like(mask, conv6)
        x = self._run(_COARSE[6:], x)
        x = ops.clip(x, -1.0, 1.0)
        x_stage1 = x

        # stage 2: paste the coarse result into the hole
        x = x * mask + xin[..., 0:3] * (1.0 - mask)
        xnow = ops.concatenate([x, ones, ones * mask], axis=3)
        x_hallu = self._run(_HALLU, xnow)
        x = self._run(_ATTN_IN, xnow)
        x, offset_flow, offsets = contextual_attention(
            x, x, mask_s, 3, 1, rate=2, per_sample_mask=self.per_sample_attention_mask,
            return_offsets=True)
        x = self._run(_ATTN_OUT, x)
        x = ops.concatenate([x_hallu, x], axis=3)
        x = self._run(_MERGE, x)
        x_stage2 = ops.clip(x, -1.0, 1.0)
        if return_offsets:
            return x_stage1, x_stage2, offset_flow, offsets
        return x_stage1, x_stage2, offset_flow

    def checkpoint_variables(self) -> dict:
        """{TF1 checkpoint name: keras variable}, e.g. 'inpaint_net/conv1/kernel'."""
        if not self.built:
            self.build()
        out = {}
        for v in self.weights:
            out[v.path if v.path.startswith(self.name + "/") else f"{self.name}/{v.path}"] = v
        return out

    def get_config(self):
        cfg = super().get_config()
        cfg.update(padding=self.padding, per_sample_attention_mask=self.per_sample_attention_mask)
        return cfg
