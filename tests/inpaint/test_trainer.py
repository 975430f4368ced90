"""InpaintTrainer on the active backend (TF in the main run, JAX under KERAS_BACKEND=jax -m jax).

Tiny setup: 64x64 images (IMG_SHAPES [64, 64, 3]), 32x32 local patch (critic dense sizes follow),
batch 2; 2 critic steps per generator step in the snapshot test (the default 5 only multiplies
the cost: on XLA:CPU the critic step is the slow one), 1 while pretraining.
"""
import numpy as np
import pytest
import keras

from inpaint.config import InpaintConfig
from inpaint.data import InpaintImageDataset
from inpaint.trainer import InpaintTrainer, latest_snapshot

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _tiny_config(**overrides):
    values = dict(IMG_SHAPES=[64, 64, 3], HEIGHT=32, WIDTH=32, MAX_DELTA_HEIGHT=8, MAX_DELTA_WIDTH=8,
                  BATCH_SIZE=2, TRAIN_SPE=2, VAL_PSTEPS=1000)
    values.update(overrides)
    return InpaintConfig().override(values)


@pytest.fixture(scope="module")
def image_paths(tmp_path_factory):
    from PIL import Image
    folder = tmp_path_factory.mktemp("tiny_images")
    rng = np.random.default_rng(0)
    paths = []
    for index in range(24):  # 12 batches: the generator and critic streams of the short runs
        base = rng.uniform(0, 255, (1, 1, 3))
        gradient = np.linspace(0, 60, 80)[None, :, None]
        image = np.clip(base + gradient + rng.normal(0, 10, (72, 80, 3)), 0, 255).astype(np.uint8)
        path = folder / f"img{index:02d}.png"
        Image.fromarray(image).save(path)
        paths.append(str(path))
    return paths


def _values(variables):
    return [np.array(keras.ops.convert_to_numpy(v)) for v in variables]


def _max_change(before, variables):
    return max(float(np.abs(a - b).max()) for a, b in zip(before, _values(variables)))


@pytest.mark.slow
@pytest.mark.jax
def test_train_two_steps_snapshot_and_resume(image_paths, tmp_path):
    config = _tiny_config(RANDOM_CROP=True, CRITIC_STEPS=2)
    dataset = InpaintImageDataset.from_config(config, image_paths, seed=3)
    log_dir = tmp_path / "log"
    trainer = InpaintTrainer(config, log_dir=log_dir, seed=1, snapshot_every=2, log_every=1, image_every=1,
                             verbose=0)
    g_before = _values(trainer.generator.trainable_variables)
    d_before = _values(trainer.critics.trainable_variables)

    history = trainer.fit(dataset, steps=2)
    assert trainer.step == 2
    assert _max_change(g_before, trainer.generator.trainable_variables) > 0
    assert _max_change(d_before, trainer.critics.trainable_variables) > 0
    # the original's single Adam: CRITIC_STEPS critic + 1 generator updates per step
    assert trainer.g_optimizer is trainer.d_optimizer
    assert int(keras.ops.convert_to_numpy(trainer.g_optimizer.iterations)) == 2 * (2 + 1)
    assert [h["step"] for h in history] == [1, 2]
    for record in history:
        for key in ("g_loss", "d_loss", "l1_loss", "ae_loss", "gp_loss"):
            assert np.isfinite(record[key]), (key, record)
    snapshot = latest_snapshot(log_dir)
    assert snapshot is not None and snapshot.name == "snap-2.npz"
    assert (log_dir / "scalars.csv").read_text().count(",losses/g_loss,") == 2
    assert list(log_dir.glob("events.out.tfevents.*"))  # tf.summary on TF, tensorboardX on JAX

    # continuing from the snapshot is exact: step 3 from the live trainer == step 3 after restore
    saved_g = _values(trainer.generator.trainable_variables)
    trainer.fit(dataset, steps=3)
    after_live = _values(trainer.generator.trainable_variables)
    assert trainer.restore(snapshot) == 2
    for a, b in zip(saved_g, _values(trainer.generator.trainable_variables)):
        np.testing.assert_array_equal(a, b)
    trainer.fit(dataset, steps=3)
    for a, b in zip(after_live, _values(trainer.generator.trainable_variables)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)

    # a fresh process (new trainer) resumes from the newest snapshot with its optimizer state
    resumed = InpaintTrainer(config, log_dir=log_dir, seed=1, snapshot_every=2, verbose=0)
    assert resumed.resume() == 3
    assert int(keras.ops.convert_to_numpy(resumed.g_optimizer.iterations)) == 3 * (2 + 1)
    for a, b in zip(_values(trainer.g_optimizer.variables), _values(resumed.g_optimizer.variables)):
        np.testing.assert_array_equal(a, b)
    resumed.fit(dataset, steps=4)
    assert resumed.step == 4
    assert latest_snapshot(log_dir).name == "snap-4.npz"
    assert all(np.isfinite(v) for k, v in resumed.history[-1].items())


@pytest.mark.slow
@pytest.mark.jax
def test_pretrain_coarse_and_early_stopping(image_paths, tmp_path):
    config = _tiny_config(PRETRAIN_COARSE_NETWORK=True, CRITIC_STEPS=1)
    dataset = InpaintImageDataset.from_config(config, image_paths[:8], seed=0)
    val = InpaintImageDataset.from_config(config, image_paths[8:12], seed=0, shuffle=False)
    # as Yu's train.py: no critic trainer while pretraining the coarse network
    trainer = InpaintTrainer(config, log_dir=tmp_path / "log", seed=0, verbose=0)
    d_before = _values(trainer.critics.trainable_variables)
    trainer.fit(dataset, steps=3, val_dataset=val, val_every=1, patience=1, min_delta=10.0)
    assert trainer.step == 2  # stopped by patience: an improvement of 10 is impossible
    assert _max_change(d_before, trainer.critics.trainable_variables) == 0.0
    assert int(keras.ops.convert_to_numpy(trainer.g_optimizer.iterations)) == 2  # generator only
    assert any("val_l1" in h for h in trainer.history)
    assert latest_snapshot(tmp_path / "log").name == "snap-2.npz"


@pytest.mark.jax
def test_cli_reports_bad_input_clearly(tmp_path, capsys):
    from inpaint.train import main
    assert main(["--data", str(tmp_path / "missing"), "--log-dir", str(tmp_path / "log")]) == 2
    assert "data source not found" in capsys.readouterr().err
    assert main(["--data", str(tmp_path), "--set", "NOT_A_FIELD=1"]) == 2
    assert "unknown inpaint config field" in capsys.readouterr().err


@pytest.mark.jax
def test_critic_checkpoint_shape_mismatch_is_explained():
    from inpaint.critics import assign_critic_weights, build_critics, critic_variable_map
    critics = build_critics((32, 32, 3), (64, 64, 3))
    names = critic_variable_map(critics)
    assert len(names) == 20 and "discriminator/discriminator_local/conv4/kernel" in names
    assert tuple(names["discriminator/dout_local_fc/kernel"].shape) == (2 * 2 * 512, 1)
    assert tuple(names["discriminator/dout_global_fc/kernel"].shape) == (4 * 4 * 256, 1)
    variables = {k: np.zeros(v.shape, np.float32) for k, v in names.items()}
    variables["discriminator/dout_global_fc/kernel"] = np.zeros((65536, 1), np.float32)
    with pytest.raises(ValueError, match="dout_global_fc/kernel.*follows"):
        assign_critic_weights(critics, variables)
    with pytest.raises(ValueError, match="lacks 20 critic variables"):
        assign_critic_weights(critics, {})


@pytest.mark.slow
@pytest.mark.jax
def test_trainer_initialises_from_yu_full_checkpoint(deepfill_full_ckpt, tmp_path):
    from inpaint.checkpoint import read_tf_checkpoint
    trainer = InpaintTrainer(InpaintConfig(), log_dir=tmp_path / "log", verbose=0)
    assert trainer.load_weights(deepfill_full_ckpt) == 104  # 84 generator + 20 critic variables
    variables = read_tf_checkpoint(str(deepfill_full_ckpt))
    kernel = trainer.critics.get_layer("dout_global_fc").kernel
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(kernel), variables["discriminator/dout_global_fc/kernel"])
    conv = trainer.critics.get_layer("discriminator_local").get_layer("conv3").bias
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(conv),
                                  variables["discriminator/discriminator_local/conv3/bias"])
