"""DeepFill v1 losses against the original graph (`losses_case.npz`, README section of the same name).

Tolerance: the README expects a float32 port within ~1e-5 relative of the loss scalars and ~1e-6
relative of the critic outputs.
"""

import numpy as np
import pytest

from inpaint import critics as critics_lib
from inpaint import losses
from inpaint.masks import bbox2mask

RTOL = 1e-5


@pytest.fixture(scope="module")
def case(deepfill_reference_dir):
    return dict(np.load(deepfill_reference_dir / "losses_case.npz"))


def _config(case):
    """inpaint.yml v1.0.0 values (Python floats, as the original read them from YAML)."""
    config = dict(
        IMG_SHAPES=[256, 256, 3], HEIGHT=128, WIDTH=128, MAX_DELTA_HEIGHT=32, MAX_DELTA_WIDTH=32,
        VERTICAL_MARGIN=0, HORIZONTAL_MARGIN=0, L1_LOSS_ALPHA=1.2, AE_LOSS_ALPHA=1.2, COARSE_L1_ALPHA=1.2,
        GAN_LOSS_ALPHA=0.001, WGAN_GP_LAMBDA=10.0, GLOBAL_WGAN_LOSS_ALPHA=1.0, SPATIAL_DISCOUNTING_GAMMA=0.9,
        PRETRAIN_COARSE_NETWORK=False, DISCOUNTED_MASK=True, GAN_WITH_MASK=False, AE_LOSS=True, GAN="wgan_gp")
    for key in ("L1_LOSS_ALPHA", "AE_LOSS_ALPHA", "COARSE_L1_ALPHA", "GAN_LOSS_ALPHA", "WGAN_GP_LAMBDA",
                "GLOBAL_WGAN_LOSS_ALPHA", "SPATIAL_DISCOUNTING_GAMMA", "PRETRAIN_COARSE_NETWORK"):
        assert np.float32(config[key]) == case[f"config_{key}"], key
    return config


def _read_checkpoint(path):
    """The variables of a TF1 checkpoint, through our pure-numpy reader."""
    from inpaint.checkpoint import read_tf_checkpoint
    return read_tf_checkpoint(str(path))


@pytest.fixture(scope="module")
def full_variables(deepfill_full_ckpt):
    return _read_checkpoint(deepfill_full_ckpt)


@pytest.fixture(scope="module")
def loaded_critics(full_variables):
    critics = critics_lib.build_critics((128, 128, 3), (256, 256, 3))
    assigned = critics_lib.assign_critic_weights(critics, full_variables)
    assert len(assigned) == 20
    return critics


def _np(x):
    from keras import ops
    return np.asarray(ops.convert_to_numpy(x))


def _close(actual, expected, rtol=RTOL, atol=0.0):
    np.testing.assert_allclose(_np(actual), np.asarray(expected), rtol=rtol, atol=atol)


@pytest.mark.jax
def test_spatial_discounting_mask_and_bbox_mask(case):
    config = _config(case)
    sdm = losses.spatial_discounting_mask(config)
    np.testing.assert_array_equal(sdm, case["spatial_discounting_mask"])
    t, l, h, w = (int(v) for v in case["bbox"])
    mask = bbox2mask((t, l, h, w), config, delta=tuple(int(v) for v in case["mask_delta"]))
    np.testing.assert_array_equal(mask, case["mask"])
    assert mask.sum() == 11832


@pytest.mark.jax
def test_loss_functions_from_stored_outputs(case):
    config = _config(case)
    pos = case["batch_bgr"].astype(np.float32) / np.float32(127.5) - np.float32(1.0)
    bbox = tuple(int(v) for v in case["bbox"])
    sdm = losses.spatial_discounting_mask(config)
    _close(losses.l1_loss(pos, case["x1"], case["x2"], bbox, sdm, 1.2), case["l1_loss"])
    _close(losses.ae_loss(pos, case["x1"], case["x2"], case["mask"], 1.2), case["ae_loss"])
    for scope in ("local", "global"):
        pos_out, neg_out = np.split(case[f"dout_pos_neg_{scope}"], 2)
        g, d = losses.gan_wgan_loss(pos_out, neg_out)
        _close(g, case[f"g_loss_{scope}"])
        _close(d, case[f"d_loss_{scope}"])
    g_wgan = np.float32(case["g_loss_global"]) + np.float32(case["g_loss_local"])
    _close(g_wgan, case["g_loss_wgan"])
    total = (np.float32(0.001) * case["g_loss_wgan"] + np.float32(1.2) * case["l1_loss"]
             + np.float32(1.2) * case["ae_loss"])
    _close(total, case["g_loss_total"])
    _close(case["d_loss_wgan"] + case["gp_loss"], case["d_loss_total"])


@pytest.mark.jax
def test_critics_reproduce_dout(case, loaded_critics):
    pos = case["batch_bgr"].astype(np.float32) / np.float32(127.5) - np.float32(1.0)
    mask = case["mask"]
    bbox = tuple(int(v) for v in case["bbox"])
    complete = losses.complete_image(case["x2"], pos * (1.0 - mask), mask)
    local_in, global_in = losses.critic_inputs(pos, complete, mask, bbox)
    dout_local, dout_global = loaded_critics([local_in, global_in])
    scale_l = np.abs(case["dout_pos_neg_local"]).max()
    scale_g = np.abs(case["dout_pos_neg_global"]).max()
    _close(dout_local, case["dout_pos_neg_local"], rtol=0, atol=1e-5 * scale_l)
    _close(dout_global, case["dout_pos_neg_global"], rtol=0, atol=1e-5 * scale_g)


@pytest.mark.jax
def test_gradient_penalty_with_fixed_alphas(case, loaded_critics):
    config = _config(case)
    pos = case["batch_bgr"].astype(np.float32) / np.float32(127.5) - np.float32(1.0)
    bbox = tuple(int(v) for v in case["bbox"])
    critic_fn = lambda a, b: loaded_critics([a, b])  # noqa: E731
    result = losses.inpaint_losses(config, pos, case["x1"], case["x2"], case["mask"], bbox, critic_fn,
                                   alpha_local=case["alpha_local"], alpha_global=case["alpha_global"])
    _close(result["penalty_local"], case["penalty_local"], rtol=1e-5)
    _close(result["penalty_global"], case["penalty_global"], rtol=1e-5)
    _close(result["gp_loss"], case["gp_loss"], rtol=1e-5)
    for key in ("l1_loss", "ae_loss", "g_loss_local", "g_loss_global", "d_loss_local", "d_loss_global",
                "g_loss_wgan", "d_loss_wgan", "d_loss"):
        expected = case["d_loss_total"] if key == "d_loss" else case[key]
        _close(result[key], expected, rtol=2e-5, atol=1e-7)
    _close(result["g_loss"], case["g_loss_total"], rtol=1e-5)
    # the interpolates' critic outputs (diagnostic): same interpolation as the penalty used
    local_pos = losses.local_patch(pos, bbox)
    complete = losses.complete_image(case["x2"], pos * (1.0 - case["mask"]), case["mask"])
    interp_local = losses.random_interpolates(local_pos, losses.local_patch(complete, bbox), case["alpha_local"])
    interp_global = losses.random_interpolates(pos, complete, case["alpha_global"])
    d_local, d_global = loaded_critics([interp_local, interp_global])
    _close(d_local, case["dout_interp_local"], rtol=0, atol=1e-5 * np.abs(case["dout_interp_local"]).max())
    _close(d_global, case["dout_interp_global"], rtol=0, atol=1e-5 * np.abs(case["dout_interp_global"]).max())
    grads = losses.input_gradients(lambda a, b: list(critic_fn(a, b)), [interp_local, interp_global])
    _close(losses.gradient_slopes(grads[0], losses.local_patch(case["mask"], bbox)),
           case["gp_slopes_local"], rtol=1e-5)
    _close(losses.gradient_slopes(grads[1], case["mask"]), case["gp_slopes_global"], rtol=1e-5)


def _generator_classes():
    from inpaint.generator import InpaintGenerator
    from inpaint.checkpoint import assign_generator_weights
    return InpaintGenerator, assign_generator_weights


@pytest.mark.jax
def test_generator_and_total_losses(case, full_variables, loaded_critics):
    InpaintGenerator, assign_generator_weights = _generator_classes()
    config = _config(case)
    pos = case["batch_bgr"].astype(np.float32) / np.float32(127.5) - np.float32(1.0)
    mask = case["mask"]
    bbox = tuple(int(v) for v in case["bbox"])
    generator = InpaintGenerator()
    generator([np.zeros((1, 256, 256, 3), np.float32), np.zeros((1, 256, 256, 1), np.float32)])
    assign_generator_weights(generator, full_variables)
    x1, x2, _ = generator([pos * (1.0 - mask), mask], training=True)
    _close(x1, case["x1"], rtol=0, atol=1e-4)
    _close(x2, case["x2"], rtol=0, atol=1e-4)
    result = losses.inpaint_losses(config, pos, x1, x2, mask, bbox, lambda a, b: loaded_critics([a, b]),
                                   alpha_local=case["alpha_local"], alpha_global=case["alpha_global"])
    _close(result["g_loss"], case["g_loss_total"], rtol=1e-4)
    _close(result["d_loss"], case["d_loss_total"], rtol=1e-4)
