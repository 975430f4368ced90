"""Anchors: exact Matterport order and values (sha256 of the reference arrays)."""
import hashlib

import numpy as np
import pytest

from mrcnn import utils
from mrcnn.anchors import generate_anchors, generate_pyramid_anchors
from mrcnn.config import Config
from mrcnn.transform import compute_backbone_shapes


@pytest.fixture(scope="module")
def layer_cases(mrcnn_reference_dir):
    return np.load(mrcnn_reference_dir / "mrcnn_layer_cases.npz")


def test_pyramid_anchors_1024_bit_exact(layer_cases):
    config = Config(NUM_CLASSES=81, IMAGES_PER_GPU=1)
    shapes = compute_backbone_shapes(config, (1024, 1024, 3))
    np.testing.assert_array_equal(shapes, layer_cases["anchors1024__backbone_shapes"])
    anchors = generate_pyramid_anchors(config.RPN_ANCHOR_SCALES, config.RPN_ANCHOR_RATIOS, shapes,
                                       config.BACKBONE_STRIDES, config.RPN_ANCHOR_STRIDE)
    assert anchors.dtype == np.float64
    assert anchors.shape == tuple(layer_cases["anchors1024__shape"])
    assert hashlib.sha256(anchors.astype("<f8").tobytes()).hexdigest() == str(layer_cases["anchors1024__sha256_float64"])
    starts = layer_cases["anchors1024__level_starts"]
    for level in range(5):
        np.testing.assert_array_equal(anchors[starts[level]:starts[level] + 8],
                                      layer_cases["anchors1024__first_rows_per_level"][level])
        np.testing.assert_array_equal(anchors[starts[level + 1] - 8:starts[level + 1]],
                                      layer_cases["anchors1024__last_rows_per_level"][level])
    np.testing.assert_array_equal(anchors[layer_cases["anchors1024__sample_idx"]], layer_cases["anchors1024__sample_rows"])
    normalized = utils.norm_boxes(anchors, (1024, 1024))
    assert hashlib.sha256(normalized.tobytes()).hexdigest() == str(layer_cases["anchors1024__norm_sha256_float32"])


def test_small_nonsquare_anchor_stride_2(layer_cases):
    anchors = generate_pyramid_anchors(layer_cases["anchors_small__scales"], layer_cases["anchors_small__ratios"],
                                       layer_cases["anchors_small__backbone_shapes"],
                                       layer_cases["anchors_small__strides"], int(layer_cases["anchors_small__anchor_stride"]))
    np.testing.assert_array_equal(anchors, layer_cases["anchors_small__anchors"])


def test_single_level_order_and_sizes():
    # One cell row of 2 cells, stride 4: per cell the ratios 0.5, 1, 2 in order.
    anchors = generate_anchors(8, [0.5, 1, 2], (1, 2), 4, 1)
    assert anchors.shape == (6, 4)
    heights = anchors[:, 2] - anchors[:, 0]
    widths = anchors[:, 3] - anchors[:, 1]
    np.testing.assert_allclose(heights[:3], 8 / np.sqrt([0.5, 1, 2]))
    np.testing.assert_allclose(widths[:3], 8 * np.sqrt([0.5, 1, 2]))
    centres_x = (anchors[:, 1] + anchors[:, 3]) / 2
    np.testing.assert_allclose(centres_x, [0, 0, 0, 4, 4, 4])  # top-left pixel of the cell


def test_mismatched_levels_raise():
    with pytest.raises(ValueError, match="must match"):
        generate_pyramid_anchors((8, 16), [1], [(2, 2)], [4, 8], 1)


def test_utils_reexports():
    assert utils.generate_anchors is generate_anchors
    assert utils.generate_pyramid_anchors is generate_pyramid_anchors
