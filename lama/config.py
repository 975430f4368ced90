"""LaMa generator configuration: big-lama's settings as defaults, every field documented once, here.

The values are those of `configs/training/big-lama.yaml` (advimman/lama 786f593, section
`generator:`) plus the `FFCResNetGenerator` defaults it does not override, and the prediction
settings of `configs/prediction/default.yaml`. Override fields as keywords,
`LamaConfig(NGF=16, N_BLOCKS=2)`, or read the `generator:` section of a published `config.yaml`
with `LamaConfig.from_generator_dict(yaml.safe_load(...)["generator"])`.
"""
from __future__ import annotations

import typing


class LamaConfigError(ValueError):
    """A generator configuration this port does not implement (or a malformed one)."""


class LamaConfig:
    """FFCResNetGenerator settings (upper-case names of the YAML keys)."""

    # Input channels: RGB with the hole zeroed, then the binary mask (concat_mask true, no noise).
    INPUT_NC = 4

    # Output channels (RGB).
    OUTPUT_NC = 3

    # Channels after the first 7x7 convolution; doubled by each downsampling step (capped at
    # MAX_FEATURES). big-lama: 64 (bottleneck 512 channels).
    NGF = 64

    # Stride-2 3x3 convolutions before the residual blocks (and transposed convolutions after them).
    # The network's input must be a multiple of 2 ** N_DOWNSAMPLING in height and width.
    N_DOWNSAMPLING = 3

    # FFCResnetBlocks at the bottleneck. big-lama: 18.
    N_BLOCKS = 18

    # Upper limit on channel counts (FFCResNetGenerator default; big-lama never reaches it).
    MAX_FEATURES = 1024

    # Global ("Fourier") share of input / output channels inside the residual blocks (resnet_conv_kwargs):
    # global = int(C * ratio), local = C - global, local channels first wherever the two are
    # concatenated. The last downsampling convolution outputs RESNET_RATIO_GIN as its global share,
    # as in the original; the earlier convolutions are purely local (big-lama's init_conv_kwargs and
    # downsample_conv_kwargs have ratio 0; other ratios there are refused).
    RESNET_RATIO_GIN = 0.75
    RESNET_RATIO_GOUT = 0.75

    # Output activation (add_out_act): "sigmoid" (big-lama), "tanh", or None.
    ADD_OUT_ACT = "sigmoid"

    # Padding mode of every padded convolution inside the network (edge-excluding mirror).
    PADDING_TYPE = "reflect"

    # BatchNorm epsilon (torch's default; Keras' own default 1e-3 would be wrong).
    BN_EPSILON = 1e-5

    # Prediction (configs/prediction/default.yaml): the image and mask are padded at the bottom
    # and right, with numpy's edge-including 'symmetric' mirror, to a multiple of this.
    PAD_OUT_TO_MODULO = 8

    # Original options this port does not implement; a config that enables one is refused
    # (big-lama enables none of them): local Fourier units, a spectral positional encoding,
    # squeeze-excitation in the FourierUnit, an FFC output head, learnable spatial transforms.
    ENABLE_LFU = False

    _YAML_SCALARS = {"input_nc": "INPUT_NC", "output_nc": "OUTPUT_NC", "ngf": "NGF",
                     "n_downsampling": "N_DOWNSAMPLING", "n_blocks": "N_BLOCKS",
                     "max_features": "MAX_FEATURES", "add_out_act": "ADD_OUT_ACT",
                     "padding_type": "PADDING_TYPE"}
    _YAML_UNSUPPORTED = ("spatial_transform_layers", "out_ffc")

    def __init__(self, **overrides):
        for key, value in overrides.items():
            if key not in self._field_names():
                raise LamaConfigError(f"unknown LamaConfig field {key!r}")
            setattr(self, key, value)
        self.validate()

    @classmethod
    def _field_names(cls):
        return [n for n in dir(cls) if n.isupper() and not n.startswith("_")]

    def validate(self):
        if self.ENABLE_LFU:
            raise LamaConfigError("enable_lfu=True (local Fourier units) is not implemented; big-lama does not use it")
        if self.PADDING_TYPE != "reflect":
            raise LamaConfigError(f"padding_type {self.PADDING_TYPE!r} is not implemented (big-lama: 'reflect')")
        if self.ADD_OUT_ACT not in ("sigmoid", "tanh", None):
            raise LamaConfigError(f"add_out_act {self.ADD_OUT_ACT!r} is not implemented")
        for name in ("RESNET_RATIO_GIN", "RESNET_RATIO_GOUT"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not 0 <= v <= 1:
                raise LamaConfigError(f"{name} must be in [0, 1], got {v!r}")
        for name in ("INPUT_NC", "OUTPUT_NC", "NGF", "N_DOWNSAMPLING", "N_BLOCKS", "MAX_FEATURES"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < (0 if name == "N_BLOCKS" else 1):
                raise LamaConfigError(f"{name} must be a positive integer, got {v!r}")

    @property
    def bottleneck_channels(self):
        return min(self.MAX_FEATURES, self.NGF * 2 ** self.N_DOWNSAMPLING)

    @classmethod
    def from_generator_dict(cls, generator: typing.Mapping) -> "LamaConfig":
        """From the `generator:` section of a LaMa training config.yaml (already parsed)."""
        if not isinstance(generator, typing.Mapping):
            raise LamaConfigError("config.yaml has no 'generator' mapping")
        kind = generator.get("kind", "ffc_resnet")
        if kind != "ffc_resnet":
            raise LamaConfigError(f"generator kind {kind!r} is not implemented (big-lama: ffc_resnet)")
        values = {}
        for key, field in cls._YAML_SCALARS.items():
            if key in generator:
                value = generator[key]
                if field == "ADD_OUT_ACT" and value is True:
                    value = "tanh"          # the original's get_activation('tanh' if add_out_act is True ...)
                elif field == "ADD_OUT_ACT" and value is False:
                    value = None
                values[field] = value
        for key in cls._YAML_UNSUPPORTED:
            if generator.get(key):
                raise LamaConfigError(f"generator option {key!r} is not implemented")

        def kw(section):
            d = generator.get(section) or {}
            if not isinstance(d, typing.Mapping):
                raise LamaConfigError(f"generator.{section} is not a mapping")
            if d.get("enable_lfu"):
                values["ENABLE_LFU"] = True
            if d.get("spectral_pos_encoding") or d.get("use_se") or d.get("gated"):
                raise LamaConfigError(f"generator.{section}: spectral_pos_encoding / use_se / gated are not implemented")
            return d

        init, down, res = kw("init_conv_kwargs"), kw("downsample_conv_kwargs"), kw("resnet_conv_kwargs")
        for name, d in (("init_conv_kwargs", init), ("downsample_conv_kwargs", down)):
            if float(d.get("ratio_gin", 0) or 0) != 0 or float(d.get("ratio_gout", 0) or 0) != 0:
                raise LamaConfigError(f"generator.{name}: a non-zero global ratio is not implemented (big-lama: 0)")
        values["RESNET_RATIO_GIN"] = float(res.get("ratio_gin", 0) or 0)
        values["RESNET_RATIO_GOUT"] = float(res.get("ratio_gout", 0) or 0)
        return cls(**values)

    def to_dict(self) -> dict:
        return {n: getattr(self, n) for n in self._field_names()}

    @classmethod
    def from_dict(cls, values: typing.Mapping) -> "LamaConfig":
        return cls(**dict(values))

    def __eq__(self, other):
        return isinstance(other, LamaConfig) and self.to_dict() == other.to_dict()

    def __repr__(self):
        return "LamaConfig(" + ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items()) + ")"
