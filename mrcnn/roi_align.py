"""PyramidROIAlign: crop each ROI from the FPN level that matches its size (Matterport names)."""
import math

import keras
from keras import ops

from mrcnn.ops import crop_and_resize_flat, parse_image_meta_graph


def roi_pyramid_levels(boxes, image_shape):
    """FPN level (2..5) per box [..., 4] normalized:
    min(5, max(2, 4 + round(log2(sqrt(h*w) / (224 / sqrt(H*W)))))), round half to even.
    Zero-area (padding) boxes give log2(0) = -inf and land on level 2, as in the original."""
    h = boxes[..., 2] - boxes[..., 0]
    w = boxes[..., 3] - boxes[..., 1]
    image_area = ops.cast(image_shape[0] * image_shape[1], "float32")
    ratio = ops.sqrt(h * w) / (224.0 / ops.sqrt(image_area))
    # log2 as log(x) / log(2) (Matterport's log2_graph), not a native log2
    level = ops.log(ratio) / math.log(2.0)
    level = 4.0 + ops.round(level)
    level = ops.where(ops.isnan(level), ops.full_like(level, 2.0), level)
    return ops.cast(ops.clip(level, 2.0, 5.0), "int32")


@keras.saving.register_keras_serializable(package="mrcnn")
class PyramidROIAlign(keras.layers.Layer):
    """Inputs: [boxes [B, R, 4] normalized, image_meta [B, META], P2, P3, P4, P5].
    Output [B, R, pool_h, pool_w, C]: bilinear crop (tf.image.crop_and_resize numerics,
    extrapolation 0) of each box on its assigned level, in the input ROI order. No gradient
    flows into the boxes (Matterport's `tf.stop_gradient(level_boxes)`); the feature maps get it."""

    def __init__(self, pool_shape, **kwargs):
        super().__init__(**kwargs)
        self.pool_shape = tuple(int(v) for v in pool_shape)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(pool_shape=list(self.pool_shape))
        return cfg

    def call(self, inputs):
        boxes = ops.stop_gradient(ops.cast(inputs[0], "float32"))
        image_meta = inputs[1]
        feature_maps = inputs[2:]
        image_shape = parse_image_meta_graph(image_meta)["image_shape"][0]
        level = roi_pyramid_levels(boxes, image_shape)  # [B, R]
        # All levels flattened into one [B, sum(Hl*Wl), C] tensor so that each box needs a
        # single gather from its own level (instead of cropping every level).
        flats, heights, widths, offsets = [], [], [], []
        offset = 0
        for fmap in feature_maps:
            shp = ops.shape(fmap)
            flats.append(ops.reshape(fmap, (shp[0], -1, shp[3])))
            heights.append(shp[1])
            widths.append(shp[2])
            offsets.append(offset)
            offset = offset + shp[1] * shp[2]
        flat = ops.concatenate(flats, axis=1)
        h_sel = ops.zeros_like(level)
        w_sel = ops.zeros_like(level)
        o_sel = ops.zeros_like(level)
        for i in range(len(feature_maps)):
            on = ops.equal(level, i + 2)
            h_sel = ops.where(on, ops.cast(heights[i], "int32"), h_sel)
            w_sel = ops.where(on, ops.cast(widths[i], "int32"), w_sel)
            o_sel = ops.where(on, ops.cast(offsets[i], "int32"), o_sel)
        return crop_and_resize_flat(flat, boxes, h_sel, w_sel, o_sel, self.pool_shape)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], input_shape[0][1]) + self.pool_shape + (input_shape[2][-1],)
