"""Anchor generation (numpy), in Matterport's exact row order and float64 pixel values.

Order (README of the golden data): levels in the order of `scales`; within a level row-major
over the feature cells (y, then x) and, per cell, the ratios in the given order. The centre of a
cell's anchors is its top-left pixel `(y * feature_stride, x * feature_stride)`.
"""
import numpy as np


def generate_anchors(scales, ratios, shape, feature_stride, anchor_stride):
    """Anchors of one pyramid level, [cells * len(scales) * len(ratios), (y1, x1, y2, x2)] float64.

    scales: anchor side(s) in pixels; ratios: width / height; shape: (height, width) of the
    feature map; feature_stride: its stride in image pixels; anchor_stride: step in cells.
    """
    # Every (ratio, scale) pair; ratios vary slowest, as meshgrid(scales, ratios) flattens.
    scale_grid, ratio_grid = np.meshgrid(np.array(scales), np.array(ratios))
    scale_grid = scale_grid.flatten()
    ratio_grid = ratio_grid.flatten()
    heights = scale_grid / np.sqrt(ratio_grid)
    widths = scale_grid * np.sqrt(ratio_grid)

    centres_y = np.arange(0, shape[0], anchor_stride) * feature_stride
    centres_x = np.arange(0, shape[1], anchor_stride) * feature_stride
    grid_x, grid_y = np.meshgrid(centres_x, centres_y)
    cells_y = grid_y.reshape(-1)
    cells_x = grid_x.reshape(-1)
    n_cells, n_sizes = cells_y.shape[0], heights.shape[0]

    centres = np.stack([np.repeat(cells_y, n_sizes), np.repeat(cells_x, n_sizes)], axis=1)
    sizes = np.stack([np.tile(heights, n_cells), np.tile(widths, n_cells)], axis=1)
    return np.concatenate([centres - 0.5 * sizes, centres + 0.5 * sizes], axis=1)


def generate_pyramid_anchors(scales, ratios, feature_shapes, feature_strides, anchor_stride):
    """Anchors of all levels concatenated: level i uses scales[i], feature_shapes[i] and
    feature_strides[i]; every ratio is used at every level. float64 pixels."""
    if not (len(scales) == len(feature_shapes) == len(feature_strides)):
        raise ValueError(f"generate_pyramid_anchors: {len(scales)} scales, {len(feature_shapes)} "
                         f"feature shapes and {len(feature_strides)} strides must match")
    return np.concatenate([generate_anchors(scales[i], ratios, feature_shapes[i], feature_strides[i],
                                            anchor_stride) for i in range(len(scales))], axis=0)
