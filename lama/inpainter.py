"""`LamaInpainter`: load LaMa weights, run the generator, and the prediction pipeline of `bin/predict.py`.

    lama = LamaInpainter.from_checkpoint("big-lama")   # folder / best.ckpt / converted .npz / make_weights .npz
    out = lama.predict(image_rgb_uint8, mask)          # uint8 (H, W, 3), exactly what bin/predict.py writes

`predict` follows advimman/lama 786f593 `bin/predict.py` with `configs/prediction/default.yaml`
(../shared/reference/lama/README.md, "Data path"): image / 255 in float32; image and mask padded at
the bottom and right to a multiple of 8 with numpy's edge-including 'symmetric' mirror; any non-zero
mask value is a hole; generator input = [image * (1 - mask), mask]; result =
mask * prediction + (1 - mask) * image, cropped, `clip(x * 255, 0, 255).astype(uint8)` (truncating).

`fill` is the network alone on ready batches, for pipelines that crop and pad themselves.
"""
from __future__ import annotations

import os
import pathlib

import keras
import numpy as np

from lama.checkpoint import (CheckpointError, is_npz, load_npz_state, read_generator_state)
from lama.config import LamaConfig, LamaConfigError
from lama.generator import LamaGenerator

PRECISIONS = ("float32", "bfloat16")


def infer_config(state) -> LamaConfig:
    """Generator settings read off a state dict's keys and shapes (used when no config.yaml says
    them): NGF and INPUT_NC from `model.1.ffc.convl2l.weight`, N_DOWNSAMPLING from the strided
    convolutions before the first residual block, N_BLOCKS from the residual blocks, OUTPUT_NC from
    the last convolution; everything else is big-lama's."""
    first = state.get("model.1.ffc.convl2l.weight")
    if first is None or np.ndim(first) != 4:
        raise CheckpointError("not a LaMa FFC generator: model.1.ffc.convl2l.weight is missing")
    indices = sorted({int(k.split(".")[1]) for k in state if k.startswith("model.") and k.split(".")[1].isdigit()})
    blocks = [i for i in indices if f"model.{i}.conv1.ffc.convl2l.weight" in state]
    if not blocks:
        raise CheckpointError("not a LaMa FFC generator: no residual blocks (model.<i>.conv1.*)")
    n_down = blocks[0] - 2
    last = max(indices)
    out = state.get(f"model.{last}.weight")
    if out is None or np.ndim(out) != 4:
        raise CheckpointError(f"not a LaMa FFC generator: model.{last}.weight is not the output convolution")
    try:
        return LamaConfig(NGF=int(first.shape[0]), INPUT_NC=int(first.shape[1]), N_DOWNSAMPLING=n_down,
                          N_BLOCKS=len(blocks), OUTPUT_NC=int(out.shape[0]))
    except LamaConfigError as e:
        raise CheckpointError(f"not a LaMa FFC generator: {e}") from None


def read_weights(path):
    """(generator state dict, LamaConfig or None, description) from any accepted weight source:
    a `big-lama/` folder (config.yaml + models/best.ckpt), a torch .ckpt, our converted .npz, or
    a make_weights.py --npz file."""
    path = pathlib.Path(path)
    config = None
    if path.is_dir():
        ckpt = path / "models" / "best.ckpt"
        if not ckpt.is_file():
            raise CheckpointError(f"{path}: not a LaMa model folder (models/best.ckpt is missing)")
        yaml_path = path / "config.yaml"
        if yaml_path.is_file():
            config = config_from_yaml(yaml_path)
        return read_generator_state(ckpt), config, str(ckpt)
    if not path.exists():
        raise CheckpointError(f"{path}: no such file or folder")
    if is_npz(path):
        state, manifest = load_npz_state(path)
        if manifest and manifest.get("generator_config"):
            try:
                config = LamaConfig.from_dict(manifest["generator_config"])
            except (LamaConfigError, TypeError) as e:
                raise CheckpointError(f"{path}: bad generator config in the manifest ({e})") from None
        return state, config, str(path)
    return read_generator_state(path), None, str(path)


def config_from_yaml(path):
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: unreadable config.yaml ({type(e).__name__})") from None
    if not isinstance(data, dict) or "generator" not in data:
        raise CheckpointError(f"{path}: config.yaml has no generator section")
    try:
        return LamaConfig.from_generator_dict(data["generator"])
    except LamaConfigError as e:
        raise CheckpointError(f"{path}: {e}") from None


def pad_to_modulo(array, modulo):
    """bin/predict.py's pad_img_to_modulo on an (H, W, ...) array: bottom/right, 'symmetric'."""
    h, w = array.shape[:2]
    ph, pw = (-h) % modulo, (-w) % modulo
    if not ph and not pw:
        return array
    return np.pad(array, [(0, ph), (0, pw)] + [(0, 0)] * (array.ndim - 2), mode="symmetric")


class LamaInpainter:
    """The LaMa generator with the prediction pipeline. `precision`: 'float32' (faithful) or
    'bfloat16' (convolutions in bfloat16, FFTs in float32; faster on CPUs with AVX512_BF16 /
    AMX and on GPUs, less exact)."""

    def __init__(self, config: LamaConfig | None = None, precision="float32"):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        self.config = config or LamaConfig()
        self.precision = precision
        if precision == "bfloat16":
            old = keras.config.dtype_policy()
            keras.config.set_dtype_policy("mixed_bfloat16")
            try:
                self.generator = LamaGenerator(self.config)
            finally:
                keras.config.set_dtype_policy(old)
        else:
            self.generator = LamaGenerator(self.config)
        self.weights_source = None
        self._compiled = None

    @classmethod
    def from_checkpoint(cls, path, precision="float32"):
        """From a published `best.ckpt`, a `big-lama/` folder (its config.yaml gives the generator
        settings), our converted .npz, or the `make_weights.py --npz` form. Without a config the
        settings are read off the weights' shapes (`infer_config`). Raises CheckpointError."""
        state, config, source = read_weights(path)
        config = config or infer_config(state)
        model = cls(config, precision=precision)
        try:
            model.generator.load_torch_state(state)
        except ValueError as e:
            raise CheckpointError(f"{source}: {e}") from None
        model.weights_source = source
        return model

    def state_dict(self):
        """The generator's weights as a torch-layout state dict (keys 'model.…', numpy)."""
        out = {}
        for key, variable, kind in self.generator.torch_variables():
            value = keras.ops.convert_to_numpy(variable).astype(np.float32)
            if kind in ("conv", "conv_transpose"):
                value = np.transpose(value, (3, 2, 0, 1))
            elif kind == "matrix":
                value = value[:, :, None, None]
            out[key] = value
        return out

    # ------------------------------------------------------------------ network
    def _forward(self, trace=False):
        """Compiled generator call x -> prediction (or -> (prediction, {layer index: output}))."""
        if self._compiled is None:
            self._compiled = {}
        if trace in self._compiled:
            return self._compiled[trace]
        gen = self.generator
        to_numpy = keras.ops.convert_to_numpy
        backend = keras.backend.backend()
        if backend == "jax":
            import jax

            jitted = jax.jit(lambda tv, ntv, x: gen.stateless_call(tv, ntv, x, return_trace=trace)[0])

            def call(x):
                tv = [v.value for v in gen.trainable_variables]
                ntv = [v.value for v in gen.non_trainable_variables]
                with jax.default_matmul_precision("float32"):
                    return jitted(tv, ntv, x)
        elif backend == "tensorflow":
            # imported only when TensorFlow is the Keras backend; one trace per input shape
            import tensorflow as tf

            fn = tf.function(lambda x: gen(x, return_trace=trace), reduce_retracing=False, autograph=False,
                             jit_compile=os.environ.get("GONE_LAMA_XLA", "0") == "1")

            def call(x):
                return fn(tf.constant(x))
        else:
            def call(x):
                return gen(x, return_trace=trace)

        def run(x):
            out = call(x)
            return keras.tree.map_structure(
                lambda t: None if t is None else np.asarray(to_numpy(t), dtype=np.float32), out)

        self._compiled[trace] = run
        return run

    def trace(self, network_input):
        """(prediction, {k: output of the original's generator.model[k]}) for one ready input, NHWC;
        tuple outputs as (local, global) with None for an absent part. For finding where a port
        diverges from the original (generator_trace*.npz)."""
        return self._forward(trace=True)(self._check_input(network_input))

    def generate(self, network_input):
        """The raw generator on (N, H, W, INPUT_NC) float32 (H, W multiples of 8): (N, H, W, 3)."""
        return self._forward()(self._check_input(network_input))

    def _check_input(self, network_input):
        x = np.asarray(network_input, dtype=np.float32)
        m = self.generator.multiple
        if x.ndim != 4 or x.shape[-1] != self.config.INPUT_NC or x.shape[1] % m or x.shape[2] % m:
            raise ValueError(f"generator input must be (N, H, W, {self.config.INPUT_NC}) with H and W "
                             f"multiples of {m}, got {x.shape}")
        if x.shape[1] < 2 * m or x.shape[2] < 2 * m:
            # the reflect padding at the bottleneck needs at least 2 x 2 there (the original fails too)
            raise ValueError(f"generator input must be at least {2 * m} x {2 * m} (the image at least "
                             f"{m + 1} x {m + 1} before padding), got {x.shape[1]} x {x.shape[2]}")
        return x

    def fill(self, images, masks):
        """The network on ready batches, compositing nothing: `images` (N, H, W, 3) float in [0, 1],
        `masks` (N, H, W) or (N, H, W, 1), non-zero = hole; H, W multiples of 8 (pad yourself,
        e.g. with `pad_to_modulo`). Returns the raw prediction (N, H, W, 3) float32 in (0, 1)."""
        images = np.asarray(images, dtype=np.float32)
        masks = np.asarray(masks)
        if masks.ndim == 4:
            masks = masks[..., 0]
        if images.ndim != 4 or images.shape[-1] != 3 or masks.shape != images.shape[:3]:
            raise ValueError(f"fill needs images (N, H, W, 3) and masks (N, H, W), got {images.shape} and "
                             f"{masks.shape}")
        hole = (masks > 0).astype(np.float32)[..., None]
        x = np.concatenate([images * (np.float32(1) - hole), hole], axis=-1)
        return self.generate(x)

    # ------------------------------------------------------------------ bin/predict.py
    def predict(self, image, mask):
        """bin/predict.py on one image: RGB uint8 (H, W, 3) and an (H, W) uint8 or bool mask
        (non-zero = hole). Returns RGB uint8 (H, W, 3)."""
        image = np.asarray(image)
        mask = np.asarray(mask)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"image must be RGB uint8 (H, W, 3), got {image.dtype} {image.shape}")
        if mask.shape != image.shape[:2]:
            raise ValueError(f"mask must be (H, W) = {image.shape[:2]}, got {mask.shape}")
        if mask.dtype == np.bool_:
            mask = mask.astype(np.uint8) * np.uint8(255)
        elif mask.dtype != np.uint8:
            raise ValueError(f"mask must be uint8 or bool, got {mask.dtype}")
        h, w = mask.shape
        modulo = self.config.PAD_OUT_TO_MODULO
        img = pad_to_modulo(image, modulo).astype(np.float32) / np.float32(255)
        hole = (pad_to_modulo(mask, modulo) > 0).astype(np.float32)[None, :, :, None]
        img = img[None]
        pred = self.fill(img, hole)
        inpainted = hole * pred + (np.float32(1) - hole) * img
        return np.clip(inpainted[0, :h, :w] * 255, 0, 255).astype(np.uint8)
