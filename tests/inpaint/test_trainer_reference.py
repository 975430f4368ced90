"""InpaintTrainer's faithful default against the original trainer (`train_step_case.npz`).

One critic Adam step, then one generator Adam step, from `full_ckpt` with the losses case's batch,
bbox, mask deltas and interpolation alphas (README section "train_step_case.npz"). Tolerances are
the README's "suggested checks for another float32 implementation": losses ~1e-5 relative; beta
powers exact; G-step m / v within 1e-3 of each variable's max; D-step m / v within 0.1 of max;
updated G variables within ~1e-8 where |m| > 1e-3 max|m|. The distinguishing signal of the shared
Adam is the G step size: median 9.189e-5 (a separate Adam would move 1.0e-4).

Runs on both backends: on JAX the steps work on the trainer's own state (their buffers are
donated), so the test syncs it back to the Keras variables (`sync_to_keras`) after each step
before reading them, as the trainer does before snapshots and summaries.
"""
import numpy as np
import pytest
import keras

from inpaint.config import InpaintConfig
from inpaint.masks import bbox2mask
from inpaint.trainer import InpaintTrainer

pytestmark = [pytest.mark.jax, pytest.mark.filterwarnings("ignore::UserWarning")]


@pytest.fixture(scope="module")
def case(deepfill_reference_dir):
    return dict(np.load(deepfill_reference_dir / "train_step_case.npz"))


def _np(x):
    return np.array(keras.ops.convert_to_numpy(x), copy=True)   # a copy: JAX donates the buffers


def _stored(case, prefix, name):
    """(values, flat indices or None) of a compact-stored array."""
    if f"{prefix}{name}" in case:
        return case[f"{prefix}{name}"].reshape(-1), None
    return case[f"{prefix}{name}:sample"], case[f"idx/{name}"]


def _slot(optimizer, variable, which):
    slots = optimizer._momentums if which == "m" else optimizer._velocities
    return slots[optimizer._get_variable_index(variable)]


@pytest.fixture(scope="module")
def stepped(case, deepfill_full_ckpt, tmp_path_factory):
    config = InpaintConfig().override({"BATCH_SIZE": 2})
    trainer = InpaintTrainer(config, log_dir=tmp_path_factory.mktemp("ref_log"), verbose=0)
    assert trainer.load_weights(deepfill_full_ckpt) == 104
    named = trainer._named_variables()
    t, l, h, w = (int(v) for v in case["bbox"])
    mask = bbox2mask((t, l, h, w), config, delta=tuple(int(v) for v in case["mask_delta"]))
    batch = case["batch_bgr"].astype(np.float32)
    tl = np.array([t, l], np.int32)
    d = trainer.critic_update(batch, mask, tl, case["alpha_local"], case["alpha_global"])
    trainer.sync_to_keras()
    after_d = {n: _np(named[n]) for n in case["d_var_names"]}
    after_d_m = {n: _np(_slot(trainer.d_optimizer, named[n], "m")) for n in case["d_var_names"]}
    g, _, _ = trainer.generator_update(batch, mask, tl)
    trainer.sync_to_keras()
    return dict(trainer=trainer, named=named, d=d, g=g, after_d=after_d, after_d_m=after_d_m)


def test_losses_and_shared_beta_powers(case, stepped):
    np.testing.assert_allclose(float(_np(stepped["d"]["d_loss"])), case["d_loss"], rtol=1e-5)
    np.testing.assert_allclose(float(_np(stepped["g"]["g_loss"])), case["g_loss"], rtol=1e-5)
    optimizer = stepped["trainer"].g_optimizer
    assert optimizer is stepped["trainer"].d_optimizer  # the original's single Adam
    steps = int(_np(optimizer.iterations))
    assert steps == 2
    # the next update's powers, beta ** (iterations + 1), are TF1's accumulated products after G
    assert np.float32(0.5) ** (steps + 1) == case["beta1_power_after_g"]
    assert np.float32(0.9) ** (steps + 1) == pytest.approx(float(case["beta2_power_after_g"]), rel=1e-7)


def test_generator_step_matches_shared_adam(case, stepped):
    named, optimizer = stepped["named"], stepped["trainer"].g_optimizer
    steps, worst_m, worst_var = [], 0.0, 0.0
    for name in case["g_var_names"]:
        variable = named[name]
        value = _np(variable).reshape(-1)
        m = _np(_slot(optimizer, variable, "m")).reshape(-1)
        ref_var, idx = _stored(case, "after_g/var/", name)
        ref_m, _ = _stored(case, "after_g/m/", name)
        ref_v, _ = _stored(case, "after_g/v/", name)
        v = _np(_slot(optimizer, variable, "v")).reshape(-1)
        init, _ = _stored(case, "init/var/", name)
        if idx is not None:
            value, m, v = value[idx], m[idx], v[idx]
        scale_m = max(float(np.abs(ref_m).max()), 1e-30)
        worst_m = max(worst_m, float(np.abs(m - ref_m).max()) / scale_m)
        np.testing.assert_allclose(v, ref_v, rtol=0, atol=1e-3 * max(float(np.abs(ref_v).max()), 1e-30),
                                   err_msg=name)
        big = np.abs(ref_m) > 1e-3 * scale_m
        if big.any():
            worst_var = max(worst_var, float(np.abs(value[big] - ref_var[big]).max()))
        steps.append(np.abs(ref_var - init))
        steps.append(np.abs(value - init))
    assert worst_m < 1e-3, worst_m
    assert worst_var < 2e-8, worst_var
    ours = np.median(np.concatenate(steps[1::2]))
    assert ours == pytest.approx(9.18917e-5, rel=2e-3)  # a separate Adam: 1.0e-4


def test_critic_step_matches(case, stepped):
    off_all = []
    for name in case["d_var_names"]:
        ref_m, idx = _stored(case, "after_d/m/", name)
        m = stepped["after_d_m"][name].reshape(-1)
        value = stepped["after_d"][name].reshape(-1)
        ref_var, _ = _stored(case, "after_d/var/", name)
        if idx is not None:
            m, value = m[idx], value[idx]
        scale = max(float(np.abs(ref_m).max()), 1e-30)
        assert float(np.abs(m - ref_m).max()) <= 0.1 * scale, name
        big = np.abs(ref_m) > 1e-3 * scale
        off = np.abs(value[big] - ref_var[big]) > 1e-7
        off_all.append(off)
        # the README: individual critic variables may jump (elements flipped by 2 lr_t)
        fraction = float(off.mean()) if off.size else 0.0  # dout_*_fc/bias: zero gradient, m = 0
        assert fraction <= 0.05, (name, fraction)
        assert float(np.abs(value - ref_var).max()) <= 2.5e-4, name
    assert np.concatenate(off_all).mean() <= 0.01
