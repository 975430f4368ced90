"""`InpaintModel`: DeepFill v1 inference on full-resolution RGB uint8 images.

What it does per image (as the original test.py / build_server_graph, with our fixes):
- RGB -> BGR (the network was trained on cv2.imread's BGR), `img / 127.5 - 1` in float32,
  hole = mask > 127.5 (uint8) or mask (bool);
- pad at the bottom/right to a multiple of 8 by reflection (the original crops instead), image and
  hole alike so that hidden pixels never leak into the padding as known context;
- x2 inside the hole, composited `x2 * m + inc * (1 - m)` and truncated to uint8 exactly as test.py
  (so within 1 of the original there); outside the hole the input pixels are copied unchanged (the
  original's float round trip changed them by 1);
- optional crop around the hole for large photos, because contextual attention memory grows with
  the square of the number of H/8 x W/8 grid cells (see docs/inpaint.md).
"""
from __future__ import annotations

import math
import pathlib

import keras
import numpy as np

from inpaint.checkpoint import (CheckpointError, assign_generator_weights, generator_variables_numpy,
                                is_native_file, load_native, read_tf_checkpoint, save_native)
from inpaint.config import InpaintConfig
from inpaint.generator import InpaintGenerator
from inpaint.ops import pad_to_multiple

# a score-matrix copy above this size per image triggers crop-around-the-hole in `crop="auto"`
DEFAULT_ATTENTION_BUDGET_BYTES = 1 << 30  # 1 GiB per copy = a 1024 x 1024 image


def attention_matrix_bytes(height: int, width: int) -> int:
    """Bytes of ONE float32 attention score matrix for an image (grid H/8 x W/8, squared)."""
    cells = math.ceil(height / 8) * math.ceil(width / 8)
    return cells * cells * 4


class InpaintError(ValueError):
    """Bad input to InpaintModel (clear message, no deep traceback)."""


def _as_hole(mask, shape, index=None):
    where = "" if index is None else f" (item {index})"
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[2] in (1, 3, 4):
        mask = mask[..., 0]  # the original reads channel 0 of a 3-channel mask
    if mask.ndim != 2:
        raise InpaintError(f"mask{where} must be HxW or HxWx(1|3), got shape {mask.shape}")
    if mask.shape != tuple(shape[:2]):
        raise InpaintError(f"mask{where} is {mask.shape[0]}x{mask.shape[1]} but the image is "
                           f"{shape[0]}x{shape[1]}")
    if mask.dtype == np.bool_:
        return mask.copy()
    if mask.dtype == np.uint8:
        return mask > 127.5  # as the original: 255 = hole
    raise InpaintError(f"mask{where} must be bool or uint8 (255 = hole), got {mask.dtype}")


def _check_image(image, index=None):
    where = "" if index is None else f" (item {index})"
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise InpaintError(f"image{where} must be uint8 RGB, got dtype {image.dtype}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise InpaintError(f"image{where} must be HxWx3 RGB, got shape {image.shape}")
    if image.shape[0] < 8 or image.shape[1] < 8:
        raise InpaintError(f"image{where} is {image.shape[0]}x{image.shape[1]}; at least 8x8 is needed")
    return image


def hole_crop_box(hole, margin=None):
    """(top, left, bottom, right) of the hole's bounding box grown by `margin` pixels of context on
    each side (default: the larger hole side, at least 64), clipped to the image."""
    ys, xs = np.nonzero(hole)
    h, w = hole.shape
    if ys.size == 0:
        return 0, 0, h, w
    if margin is None:
        margin = max(64, int(ys.max() - ys.min() + 1), int(xs.max() - xs.min() + 1))
    top, bottom = max(int(ys.min()) - margin, 0), min(int(ys.max()) + 1 + margin, h)
    left, right = max(int(xs.min()) - margin, 0), min(int(xs.max()) + 1 + margin, w)
    return top, left, bottom, right


class InpaintModel:
    """DeepFill v1 inpainting. `InpaintModel()` has random weights (`weights_source == "random"`);
    `InpaintModel.from_checkpoint(path)` loads Yu's TF1 checkpoint (directory or snap-N prefix) or
    our native .npz. `fill(images, holes)` takes network-ready arrays (what gone's pipeline
    prepares); `inpaint(image, mask)` / `inpaint_batch(images, masks)` keep Yu's test.py-style
    use on any RGB uint8 image (they pad, and crop around the hole when needed)."""

    def __init__(self, config: InpaintConfig | None = None, batch_size: int = 8,
                 attention_budget_bytes: int = DEFAULT_ATTENTION_BUDGET_BYTES, precision: str = "float32"):
        """precision: "float32" (default; full-precision matmuls/convs, as the reference) or "tf32"
        (lets NVIDIA GPUs use TF32 tensor cores: faster, errors ~1e-3, not the reference numerics).
        Under TensorFlow "float32" switches TF32 off process-wide (a TensorFlow global setting)."""
        if precision not in ("float32", "tf32"):
            raise InpaintError(f"precision must be 'float32' or 'tf32', got {precision!r}")
        self.precision = precision
        self.config = config if config is not None else InpaintConfig()
        self.batch_size = int(batch_size)
        self.attention_budget_bytes = int(attention_budget_bytes)
        # per-sample attention masks: batched images have different holes (same as the original
        # for batch 1)
        self.generator = InpaintGenerator(padding=self.config.PADDING, per_sample_attention_mask=True)
        self.generator.build()
        self.weights_source = "random"
        self._compiled = None

    # ------------------------------------------------------------------ weights
    @classmethod
    def from_checkpoint(cls, path, config: InpaintConfig | None = None, **kwargs) -> "InpaintModel":
        path = pathlib.Path(path)
        if is_native_file(path):
            variables, manifest = load_native(path)
            if config is None and manifest.get("config"):
                config = InpaintConfig.from_dict(manifest["config"], strict=False)
        else:
            variables = read_tf_checkpoint(path)
        model = cls(config=config, **kwargs)
        assign_generator_weights(model.generator, variables)
        model.weights_source = str(path)
        return model

    def load_weights(self, path):
        variables = load_native(path)[0] if is_native_file(path) else read_tf_checkpoint(path)
        assign_generator_weights(self.generator, variables)
        self.weights_source = str(path)
        self._compiled = None

    def save(self, path):
        """Write the generator to a native .npz (names = TF checkpoint names) with the config."""
        return save_native(path, generator_variables_numpy(self.generator), config=self.config.to_dict())

    # ------------------------------------------------------------------ forward
    def _forward_fn(self, full=False):
        """Compiled generator call (x, m) -> x2, or -> (x1, x2, flow, offsets) when `full`."""
        key = "full" if full else "x2"
        if self._compiled is None:
            self._compiled = {}
        if key in self._compiled:
            return self._compiled[key]
        gen = self.generator

        def pick(outs):
            return outs if full else outs[1]

        backend = keras.backend.backend()
        if backend == "jax":
            import jax

            def run(trainable, non_trainable, x, m):
                outputs, _ = gen.stateless_call(trainable, non_trainable, [x, m], training=False,
                                                return_offsets=full)
                return pick(outputs)

            jitted = jax.jit(run)
            # JAX's default f32 matmul/conv precision on recent NVIDIA GPUs is TF32
            precision = "float32" if self.precision == "float32" else "tensorfloat32"

            def call(x, m):
                trainable = [v.value for v in gen.trainable_variables]
                non_trainable = [v.value for v in gen.non_trainable_variables]
                with jax.default_matmul_precision(precision):
                    outs = jitted(trainable, non_trainable, x, m)
                return jax.tree_util.tree_map(np.asarray, outs)
        elif backend == "tensorflow":
            # imported lazily, only when TensorFlow already is the Keras backend: one trace per
            # input shape (the generator needs static shapes, so no shape relaxation)
            import tensorflow as tf

            # TF uses TF32 for float32 convs/matmuls on Ampere+ GPUs by default (global switch)
            tf.config.experimental.enable_tensor_float_32_execution(self.precision == "tf32")

            def forward(x, m):
                return pick(gen([x, m], training=False, return_offsets=full))

            fn = tf.function(forward, reduce_retracing=False, autograph=False)

            def call(x, m):
                return tf.nest.map_structure(lambda t: t.numpy(), fn(tf.constant(x), tf.constant(m)))
        else:
            def call(x, m):
                outs = pick(gen([x, m], training=False, return_offsets=full))
                return keras.tree.map_structure(keras.ops.convert_to_numpy, outs)
        self._compiled[key] = call
        return call

    def predict_raw(self, image_bgr, hole):
        """Reference-style outputs for ONE BGR uint8 image whose size is a multiple of 8 and a bool
        hole: dict with x1, x2, flow, offsets (batch 1, numpy), and output_bgr (test.py's uint8,
        including its off-by-one outside the hole)."""
        image_bgr = np.asarray(image_bgr)
        pos = image_bgr.astype(np.float32) / np.float32(127.5) - np.float32(1.0)
        m = np.asarray(hole).astype(np.float32)[None, :, :, None]
        inc = pos[None] * (np.float32(1.0) - m)
        x1, x2, flow, offsets = self._forward_fn(full=True)(inc, m)
        complete = x2 * m + inc * (np.float32(1.0) - m)
        out = np.clip((complete + np.float32(1.0)) * np.float32(127.5), 0, 255).astype(np.uint8)[0]
        return dict(x1=x1, x2=x2, flow=flow, offsets=offsets, output_bgr=out)

    def _run_group(self, images_bgr, holes):
        """Same-size padded BGR uint8 images (N x H x W x 3) + bool holes -> uint8 fills (N x H x W x 3)."""
        pos = images_bgr.astype(np.float32) / np.float32(127.5) - np.float32(1.0)
        m = holes.astype(np.float32)[..., None]
        inc = pos * (np.float32(1.0) - m)
        x2 = self._forward_fn()(inc, m)
        complete = x2 * m + inc * (np.float32(1.0) - m)  # the original's composite, then truncation
        return np.clip((complete + np.float32(1.0)) * np.float32(127.5), 0, 255).astype(np.uint8)

    # ------------------------------------------------------------------ public API
    def fill(self, images, holes, batch_size=None):
        """Network-ready inference: RGB uint8 N x H x W x 3 (H, W multiples of 8; one H x W x 3
        image also works) and bool holes N x H x W -> RGB uint8, the network's fill inside each hole
        (composited and truncated as test.py) and the input's pixels outside it. No cropping,
        scaling or padding: callers (gone.pipeline.PeopleRemover) prepare the arrays."""
        images = np.asarray(images)
        holes = np.asarray(holes)
        single = images.ndim == 3
        if single:
            images, holes = images[None], holes[None]
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise InpaintError(f"fill expects RGB uint8 N x H x W x 3, got {images.dtype} {images.shape}")
        if holes.dtype != np.bool_ or holes.shape != images.shape[:3]:
            raise InpaintError(f"fill expects bool holes {images.shape[:3]}, got {holes.dtype} {holes.shape}")
        if images.shape[1] % 8 or images.shape[2] % 8:
            raise InpaintError(f"fill expects sides that are multiples of 8, got {images.shape[1]}x{images.shape[2]}")
        out = images.copy()
        batch_size = int(batch_size or self.batch_size)
        for start in range(0, len(images), batch_size):
            part = slice(start, start + batch_size)
            if not holes[part].any():
                continue
            fills = self._run_group(np.ascontiguousarray(images[part, ..., ::-1]), holes[part])[..., ::-1]
            region = out[part]
            region[holes[part]] = fills[holes[part]]
        return out[0] if single else out

    def inpaint(self, image, mask, crop="auto", margin=None):
        """RGB uint8 HxWx3 + mask (HxW bool, or uint8 255 = hole, 2-D or 3-channel) -> RGB uint8.

        Pixels outside the hole are returned unchanged. crop: "auto" (crop around the hole when the
        whole image's attention matrix would exceed `attention_budget_bytes`), True, or False."""
        return self.inpaint_batch([image], [mask], crop=crop, margin=margin, progress=False)[0]

    def inpaint_batch(self, images, masks, batch_size=None, crop="auto", margin=None, progress=None):
        """Inpaint several images; images of the same padded size run together in batches."""
        images, masks = list(images), list(masks)
        if len(images) != len(masks):
            raise InpaintError(f"got {len(images)} images but {len(masks)} masks")
        if crop not in ("auto", True, False):
            raise InpaintError(f"crop must be 'auto', True or False, got {crop!r}")
        batch_size = int(batch_size or self.batch_size)
        results = [None] * len(images)
        jobs = {}  # padded shape -> list of (index, padded bgr, padded hole, box, (h, w))
        for i, (image, mask) in enumerate(zip(images, masks)):
            image = _check_image(image, i if len(images) > 1 else None)
            hole = _as_hole(mask, image.shape, i if len(images) > 1 else None)
            if not hole.any():
                results[i] = image.copy()
                continue
            box = (0, 0) + image.shape[:2]
            use_crop = crop is True or (crop == "auto" and attention_matrix_bytes(*image.shape[:2])
                                        > self.attention_budget_bytes)
            if use_crop:
                box = hole_crop_box(hole, margin)
            t, l_, b, r = box
            bgr = np.ascontiguousarray(image[t:b, l_:r, ::-1])
            bgr_p, size = pad_to_multiple(bgr, 8, "reflect")
            hole_p, _ = pad_to_multiple(hole[t:b, l_:r], 8, "reflect")
            jobs.setdefault(bgr_p.shape, []).append((i, bgr_p, hole_p, box, size))
        total = sum(len(v) for v in jobs.values())
        bar = None
        if progress or (progress is None and total > batch_size):
            try:
                from tqdm import tqdm
                bar = tqdm(total=total, desc="inpaint", unit="img", disable=None)   # off a terminal
            except ImportError:
                bar = None
        for group in jobs.values():
            for start in range(0, len(group), batch_size):
                chunk = group[start:start + batch_size]
                fills = self._run_group(np.stack([c[1] for c in chunk]), np.stack([c[2] for c in chunk]))
                for (i, _, _, (t, l_, b, r), (h, w)), fill in zip(chunk, fills):
                    out = np.array(images[i], dtype=np.uint8, copy=True)
                    hole = _as_hole(masks[i], out.shape)
                    region = out[t:b, l_:r]
                    region_hole = hole[t:b, l_:r]
                    region[region_hole] = fill[:h, :w, ::-1][region_hole]
                    results[i] = out
                if bar is not None:
                    bar.update(len(chunk))
        if bar is not None:
            bar.close()
        return results

    def __repr__(self):
        return f"InpaintModel(weights_source={self.weights_source!r}, padding={self.config.PADDING!r})"


__all__ = ["InpaintModel", "InpaintError", "CheckpointError", "attention_matrix_bytes", "hole_crop_box"]
