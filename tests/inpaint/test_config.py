"""InpaintConfig: the original inpaint.yml names and defaults, YAML round trip, flag overrides."""
import pytest

from inpaint.config import DEFAULT_YAML, InpaintConfig

# no Keras: the TensorFlow run covers it (the `jax` subset is for code on the backend)

REQUIRED = """DATASET RANDOM_CROP VAL LOG_DIR MODEL_RESTORE GAN PRETRAIN_COARSE_NETWORK GAN_LOSS_ALPHA
WGAN_GP_LAMBDA COARSE_L1_ALPHA L1_LOSS_ALPHA AE_LOSS_ALPHA GAN_WITH_MASK DISCOUNTED_MASK RANDOM_SEED
PADDING NUM_GPUS GPU_ID TRAIN_SPE MAX_ITERS VIZ_MAX_OUT GRADS_SUMMARY GRADIENT_CLIP GRADIENT_CLIP_VALUE
VAL_PSTEPS IMG_SHAPES HEIGHT WIDTH MAX_DELTA_HEIGHT MAX_DELTA_WIDTH BATCH_SIZE VERTICAL_MARGIN
HORIZONTAL_MARGIN GLOBAL_WGAN_LOSS_ALPHA SPATIAL_DISCOUNTING_GAMMA LEARNING_RATE ADAM_BETA1 ADAM_BETA2
ADAM_EPSILON CRITIC_STEPS""".split()


def test_every_original_field_is_present():
    names = set(InpaintConfig.field_names())
    assert set(REQUIRED) <= names, sorted(set(REQUIRED) - names)


def test_defaults_are_the_v1_values():
    c = InpaintConfig()
    assert c.GAN == "wgan_gp" and c.PADDING == "SAME" and c.PRETRAIN_COARSE_NETWORK is False
    assert c.IMG_SHAPES == [256, 256, 3] and (c.HEIGHT, c.WIDTH) == (128, 128)
    assert (c.MAX_DELTA_HEIGHT, c.MAX_DELTA_WIDTH) == (32, 32) and c.BATCH_SIZE == 16
    assert (c.L1_LOSS_ALPHA, c.AE_LOSS_ALPHA, c.COARSE_L1_ALPHA) == (1.2, 1.2, 1.2)
    assert c.GAN_LOSS_ALPHA == 0.001 and c.WGAN_GP_LAMBDA == 10 and c.GLOBAL_WGAN_LOSS_ALPHA == 1
    assert c.SPATIAL_DISCOUNTING_GAMMA == 0.9 and c.DISCOUNTED_MASK is True and c.GAN_WITH_MASK is False
    assert (c.LEARNING_RATE, c.ADAM_BETA1, c.ADAM_BETA2, c.ADAM_EPSILON) == (1e-4, 0.5, 0.9, 1e-8)
    assert c.CRITIC_STEPS == 5 and c.RANDOM_CROP is False


def test_shipped_yaml_equals_defaults():
    assert DEFAULT_YAML.is_file()
    assert InpaintConfig.from_yaml() == InpaintConfig()


def test_yaml_round_trip(tmp_path):
    c = InpaintConfig().override({"BATCH_SIZE": 2, "PADDING": "SYMMETRIC"})
    path = tmp_path / "c.yml"
    c.to_yaml(path)
    assert InpaintConfig.from_yaml(path) == c


def test_override_from_flags():
    c = InpaintConfig().override({"batch_size": "4", "learning_rate": "1e-5", "img_shapes": "[128, 128, 3]",
                                  "random_crop": "true", "gan_loss_alpha": None})
    assert c.BATCH_SIZE == 4 and c.LEARNING_RATE == 1e-5 and c.IMG_SHAPES == [128, 128, 3]
    assert c.RANDOM_CROP is True and c.GAN_LOSS_ALPHA == 0.001
    assert InpaintConfig().BATCH_SIZE == 16  # override returns a copy


def test_bad_input_messages(tmp_path):
    with pytest.raises(ValueError, match="unknown inpaint config field"):
        InpaintConfig().override({"BATCH_SIZ": 3})
    with pytest.raises(ValueError, match="BATCH_SIZE: expected int"):
        InpaintConfig().override({"BATCH_SIZE": "many"})
    with pytest.raises(ValueError, match="PADDING"):
        InpaintConfig(PADDING="VALID")
    with pytest.raises(FileNotFoundError):
        InpaintConfig.from_yaml(tmp_path / "missing.yml")
    (tmp_path / "x.yml").write_text("FOO: 1\nBATCH_SIZE: 3\n")
    assert InpaintConfig.from_yaml(tmp_path / "x.yml", strict=False).BATCH_SIZE == 3
