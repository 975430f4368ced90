"""Contextual attention against the original's direct calls (contextual_attention_cases.npz)."""
import functools

import keras
import numpy as np
import pytest

from inpaint.contextual_attention import contextual_attention, extract_patches
from inpaint.flow import flow_to_image_np
from inpaint.ops import nearest_indices_align_corners, resize_nearest

pytestmark = pytest.mark.jax
CASES = ["ca0", "ca1", "ca2", "ca3", "ca4"]


def _attention(f, b, mask, fuse=True, per_sample_mask=False):
    call = functools.partial(contextual_attention, ksize=3, stride=1, rate=2, fuse=fuse,
                             per_sample_mask=per_sample_mask, return_offsets=True)
    if keras.backend.backend() == "jax":  # JAX op-by-op dispatch is slow; jit the whole layer
        import jax
        call = jax.jit(call)
    return [keras.ops.convert_to_numpy(t) for t in call(f, b, mask)]


@pytest.fixture(scope="module")
def cases(deepfill_reference_dir):
    with np.load(deepfill_reference_dir / "contextual_attention_cases.npz") as data:
        return {k: data[k] for k in data.files}


@pytest.mark.parametrize("case", CASES)
def test_matches_reference(cases, case):
    c = {k[len(case) + 1:]: v for k, v in cases.items() if k.startswith(case + "_")}
    y, flow, offsets = _attention(c["f"], c["b"], c["mask"], fuse=bool(c["fuse"]))
    np.testing.assert_allclose(y, c["y"], rtol=0, atol=1e-5)
    assert np.abs(y - c["y"]).max() < 1e-6  # README: expected ~1e-6, observed ~5e-8
    np.testing.assert_array_equal(offsets, c["offsets"])
    # flow colours: float32 in-graph; a code may differ by one step (1/127.5) where the float64
    # original sits within rounding of an integer
    diff = np.abs(flow - c["flow"])
    assert diff.max() <= 1 / 127.5 + 1e-6 and (diff > 1e-5).mean() < 0.01
    ref_small = flow_to_image_np(c["offsets"])
    up = ref_small[:, nearest_indices_align_corners(ref_small.shape[1], flow.shape[1])]
    up = up[:, :, nearest_indices_align_corners(ref_small.shape[2], flow.shape[2])]
    diff_np = np.abs(up - c["flow"])
    assert diff_np.max() <= 1 / 127.5 + 1e-6 and (diff_np > 1e-5).mean() < 0.01


def test_default_uses_mask_of_item_zero_and_per_sample_option(cases):
    f = cases["ca1_f"]
    mask = cases["ca1_mask"]
    other = np.zeros_like(mask)
    other[:, 10:20, 0:10] = 1.0
    both = np.concatenate([mask, other])
    # faithful default: item 1's own mask is ignored
    y_default, _, off_default = _attention(f, f, both)
    y_first, _, off_first = _attention(f, f, mask)
    np.testing.assert_array_equal(y_default, y_first)
    # per-sample: item i equals a batch-1 call with its own mask
    y_ps, _, off_ps = _attention(f, f, both, per_sample_mask=True)
    for i, m in enumerate([mask, other]):
        y_i, _, off_i = _attention(f[i:i + 1], f[i:i + 1], m)
        np.testing.assert_allclose(y_ps[i:i + 1], y_i, rtol=0, atol=1e-6)
        np.testing.assert_array_equal(off_ps[i:i + 1], off_i)
    assert not np.allclose(y_ps[1], y_default[1])


def test_resize_indices_follow_tf_align_corners():
    # TF: roundf(dst * (in-1)/(out-1)), half away from zero, in float32
    np.testing.assert_array_equal(nearest_indices_align_corners(3, 5), [0, 1, 1, 2, 2])
    np.testing.assert_array_equal(nearest_indices_align_corners(5, 3), [0, 2, 4])
    np.testing.assert_array_equal(nearest_indices_align_corners(25, 50)[:4], [0, 0, 1, 1])
    x = np.arange(2 * 4 * 6, dtype=np.float32).reshape(1, 4, 6, 2)
    out = keras.ops.convert_to_numpy(resize_nearest(x, (8, 12)))
    assert out.shape == (1, 8, 12, 2)


def test_extract_patches_same_padding():
    x = np.arange(1 * 4 * 4 * 1, dtype=np.float32).reshape(1, 4, 4, 1) + 1
    p = keras.ops.convert_to_numpy(extract_patches(x, 4, 2))  # TF SAME: pad 1 before, 1 after
    assert p.shape == (1, 4, 4, 4, 1)
    np.testing.assert_array_equal(p[0, 0, :, :, 0], [[0, 0, 0, 0], [0, 1, 2, 3], [0, 5, 6, 7], [0, 9, 10, 11]])


def test_bad_shapes():
    with pytest.raises(ValueError, match="same shape"):
        contextual_attention(np.zeros((1, 8, 8, 2), np.float32), np.zeros((1, 8, 4, 2), np.float32), rate=2)
    with pytest.raises(ValueError, match="divisible by rate"):
        contextual_attention(np.zeros((1, 7, 8, 2), np.float32), np.zeros((1, 7, 8, 2), np.float32), rate=2)
